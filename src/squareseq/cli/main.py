"""The entry points: parse, run the command, and turn every failure into one line on stderr
and an exit code (the one place where library option names become CLI flags)."""
from __future__ import annotations

import os
import sys
from typing import Callable, Dict, List, Optional, Sequence

from squareseq.config import flag_of
from squareseq.errors import ConfigError, SquareseqError

from .commands import cmd_evaluate, cmd_export, cmd_playground, cmd_plot, cmd_sweep, cmd_train, one_line
from .parser import UsageError, build_parser
from .predict import cmd_predict
from .signals import Terminated, command_signals, finished

__all__ = ["main", "run"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NUMERICAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 3, 130, 143

COMMANDS: Dict[str, Callable] = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
                                 "plot": cmd_plot, "sweep": cmd_sweep, "export": cmd_export,
                                 "playground": cmd_playground}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI with ``argv`` (default: ``sys.argv[1:]``) and returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with command_signals():
        return _main(argv)


def _main(argv: List[str]) -> int:
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # blamed on the subcommand, whose --help lists the options it takes
            parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
        return COMMANDS[args.command](args, argv)
    except UsageError as exc:
        print(f"{exc.prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"squareseq: error: {one_line(exc.render(flag_of))}", file=sys.stderr)
        return EXIT_USAGE
    except SquareseqError as exc:
        if not getattr(exc, "quiet", False):  # under torchrun, rank 0 alone says what all ranks hit
            print(f"squareseq: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("squareseq: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("squareseq: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"squareseq: error: {one_line(exc.strerror or exc)}{where}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("SQUARESEQ_DEBUG"):
            raise
        print(f"squareseq: internal error: {type(exc).__name__}: {one_line(exc)} (set SQUARESEQ_DEBUG=1 for the "
              "traceback)", file=sys.stderr)
        return EXIT_FAILURE


def run() -> None:
    """Console-script entry point. Once the command has returned, its results and its message are
    out: a signal while the interpreter shuts down (a second or more with torch loaded) must not
    replace its exit code with a kill."""
    code = main()
    finished()
    sys.exit(code)
