"""The ``motionctl`` command line: one sub-command per job, errors as one readable line.

Exit codes (:mod:`motionctl.cli.exits`): 0 success / legal, 1 a move that is not legal, 2 bad input
(files, arguments), 3 internal error, 4 a run that faulted or a rig that failed, 130 interrupted.
Without ``--debug`` no traceback is ever printed; ``--debug`` goes before or after the sub-command.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from motionctl import __version__
from motionctl.cli import check as check_cmd
from motionctl.cli import plan as plan_cmd
from motionctl.cli import preview as preview_cmd
from motionctl.cli import run as run_cmd
from motionctl.cli import stage as stage_cmd
from motionctl.cli import tc as tc_cmd
from motionctl.cli import tui as tui_cmd
from motionctl.cli import vcam as vcam_cmd
from motionctl.cli.exits import EXIT_FAULT, EXIT_ILLEGAL, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK
from motionctl.errors import HardwareError, InputError, MotionctlError


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INPUT, f"motionctl: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="motionctl", description="Robotic motion-control rig sequencer for film and "
                     "virtual production.")
    parser.add_argument("--version", action="version", version=f"motionctl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in (check_cmd, plan_cmd, preview_cmd, run_cmd, tc_cmd, vcam_cmd, tui_cmd, stage_cmd):
        module.register(sub)
    for command in set(sub.choices.values()):
        # also after the sub-command; SUPPRESS keeps a --debug given before it
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks for errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(tc_cmd.route(list(sys.argv[1:] if argv is None else argv)))
    if not args.debug:
        # python-can and canopen log an interface's failure (with python-can's traceback: a socketcand link
        # that closed); the CAN driver says what failed in words, and --debug keeps the libraries' account.
        for library in ("can", "canopen"):
            logging.getLogger(library).addHandler(logging.NullHandler())
    try:
        return int(args.handler(args) or 0)
    except InputError as exc:
        if args.debug:
            raise
        print(f"motionctl: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except HardwareError as exc:
        if args.debug:
            raise
        print(f"motionctl: error: {exc}", file=sys.stderr)
        return EXIT_FAULT
    except MotionctlError as exc:
        if args.debug:
            raise
        print(f"motionctl: {exc}", file=sys.stderr)
        return EXIT_ILLEGAL
    except KeyboardInterrupt:
        print("motionctl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
        if args.debug:
            raise
        print(f"motionctl: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


def run() -> None:
    sys.exit(main())
