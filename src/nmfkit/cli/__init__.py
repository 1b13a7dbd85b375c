"""The `nmfkit` command: thin calls into the library.

    nmfkit fit INPUT --rank K --out DIR      factorize a data file, write W, H and a summary
    nmfkit rank INPUT --ranks 2-8 --out DIR  rank survey: consensus, cophenetic, cross-validation
    nmfkit demo [NAME]                       run a bundled demonstration
    nmfkit info                              versions, solvers and optional extras (for bug reports)

Each subcommand is a module of this package listed in COMMANDS that provides
`add_parser(subparsers)` (which sets `handler` as the parser default) and the handler
`handler(args) -> int`; a new subcommand is one module plus one name here.
Errors from bad input (ValueError, TypeError, OSError, DataFileError) end the command with exit
status 2 and one line `nmfkit: error: …` on stderr, never a traceback (`--traceback` shows it);
Ctrl-C ends it with status 130.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

COMMANDS = ["fit", "rank", "demo", "info"]   # modules of nmfkit.cli; missing ones are skipped

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: `nmfkit fit: error: … (see nmfkit fit --help)`."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = _Parser(prog="nmfkit", description="Non-negative matrix factorization X ≈ W H from the command line.")
    parser.add_argument("--version", action="version", version=f"nmfkit {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error (for bug reports)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":   # a subcommand not written yet
                continue
            raise
        module.add_parser(subparsers)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"nmfkit: warning: {message}", file=sys.stderr if file is None else file)


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())   # always one line


def main(argv=None) -> int:
    """Run the `nmfkit` command with `argv` (default: sys.argv[1:]); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            return int(args.handler(args) or 0)
        except KeyboardInterrupt:
            print("nmfkit: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (ValueError, TypeError, OSError, ImportError) as exc:
            if args.traceback:
                raise
            print(f"nmfkit: error: {_message(exc)}", file=sys.stderr)
            return EXIT_USAGE


__all__ = ["main", "build_parser", "COMMANDS"]
