"""``python -m squareseq``: the same as the ``squareseq`` command."""
from .cli import run

if __name__ == "__main__":
    run()
