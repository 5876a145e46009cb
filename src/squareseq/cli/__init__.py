"""``squareseq``: the command line, an interface over the library. Parsing and wiring only.

What lives here: ``parser`` builds the argument parser, its ``train`` and ``sweep`` options
generated from the fields of :class:`~squareseq.config.RunConfig` and
:class:`~squareseq.config.RunOptions`; ``commands`` and ``predict`` turn parsed options into library
calls; ``main`` maps errors to one line and an exit code. It may import every other part of the
package (it is the top layer); nothing imports it. Parsing and option checks import no torch, so
``--help`` and usage errors answer at once.

Exit codes: 0 success; 1 an unexpected failure (one line on stderr; set SQUARESEQ_DEBUG=1 for the
traceback) or a file system error; 2 bad usage or bad input (one line on stderr); 3 a numerical fault
(a NaN/inf loss or an overflow: the last good epoch is kept); 130 interrupted by SIGINT and 143 by
SIGTERM (after saving the last completed epoch; resume with ``squareseq train --resume RUN_DIR``).
"""
from .main import main, run
from .parser import build_parser

__all__ = ["main", "run", "build_parser"]
