"""``python -m squareseq``: the same as the ``squareseq`` command."""
from squareseq.cli import run

if __name__ == "__main__":
    run()
