"""Executes notebooks with nbclient, on a kernel of this very interpreter, and writes them with outputs.

    python tools/run_notebooks.py notebooks/*.ipynb --out build/notebooks [--timeout 120]

The kernel is ipykernel's own kernel spec for ``sys.executable`` (not whichever ``python3`` kernel a
Jupyter installation names), with this checkout's ``squareseq`` first on its path, so the cells run
on the same environment and the same code as the caller (``make notebooks``, the tests). Nothing is
fetched from the network. The stored notebooks keep no outputs; the executed copies go to ``--out``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
#: Seconds any one cell may run before the notebook counts as failed.
CELL_TIMEOUT = 120


def kernel_env(mpl_backend: Optional[str] = None) -> Dict[str, str]:
    """The kernel's environment: the caller's, with the ``squareseq`` package the caller imports
    (this checkout's ``src`` unless it is installed elsewhere) first on ``PYTHONPATH``, and
    matplotlib's backend set when given (``Agg``: figures are drawn but never rendered to the
    notebook, the fastest; None: ipykernel's inline backend, figures stored as images)."""
    try:
        import squareseq

        package_root = str(Path(squareseq.__file__).resolve().parents[1])
    except ImportError:
        package_root = str(ROOT / "src")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    env.pop("MPLBACKEND", None)
    if mpl_backend is not None:
        env["MPLBACKEND"] = mpl_backend
    return env


def execute(nb, cwd: Path, timeout: int = CELL_TIMEOUT, allow_errors: bool = False,
            mpl_backend: Optional[str] = None):
    """Runs every code cell of ``nb`` (an ``nbformat`` notebook, changed in place: outputs filled
    in) in a fresh kernel started in ``cwd``, each cell within ``timeout`` seconds. With
    ``allow_errors``, a failing cell (a cell past its time included: it is interrupted) is recorded
    in its outputs and the next one runs; without, the first failure raises nbclient's
    ``CellExecutionError`` (or ``CellTimeoutError``). Returns ``nb``."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    # no kernel directories: "python3" resolves to ipykernel's spec for sys.executable itself
    specs = KernelSpecManager(kernel_dirs=[])
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    client = NotebookClient(nb, km=manager, timeout=timeout, allow_errors=allow_errors,
                            interrupt_on_timeout=allow_errors,
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env=kernel_env(mpl_backend))
    return nb


def run_files(paths: Sequence[Path], out: Path, timeout: int = CELL_TIMEOUT) -> List[Path]:
    """Executes each notebook (in a scratch folder, so nothing lands beside the sources) and writes
    it with its outputs to ``out``; the first failing cell stops with its error."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        with tempfile.TemporaryDirectory(prefix="squareseq-nb-") as scratch:
            execute(nb, Path(scratch), timeout)
        target = out / path.name
        nbformat.write(nb, str(target))
        written.append(target)
        print(f"{path} -> {target}")
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="the .ipynb files to execute")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "notebooks",
                        help="where the executed copies go (default: build/notebooks)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell (default: %(default)s)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        print(f"run_notebooks: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        run_files(args.notebooks, args.out, args.timeout)
    except Exception as exc:  # nbclient's CellExecutionError carries the cell and its traceback
        print(f"run_notebooks: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
