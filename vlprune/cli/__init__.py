"""Command line: ``vlprune analyze | bench | demo | eval | list | samples`` (also ``python -m vlprune``).

One module per command (``add_parser(sub)`` + ``cmd_<name>(args)``), shared argument types in
:mod:`vlprune.cli.common`, the ``KEY=VALUE`` / ``NAME.OPTION=VALUE`` flag parser in
:mod:`vlprune.flags` (below the CLI: bench and eval check their flags with it too); ``eval`` is
:mod:`vlprune.eval.cli`. Command modules are imported when the parser is built, so importing this
package is cheap.

Exit codes: 0 success; 1 some input failed (each is reported, the rest still run); 2 usage error
(unknown method / metric / family, invalid number or option, an empty path, an output that would replace
an input or cannot be written; the message names the flag or the file); 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

PROG = "vlprune"

#: command modules, in the order ``vlprune --help`` lists them
COMMANDS = ("analyze", "demo", "bench", "serve", "listing", "samples")

#: names this package re-exports from its command modules (imported on first use)
_EXPORTS = {
    "CSV_COLUMNS": "analyze", "OutputConfig": "analyze", "cmd_analyze": "analyze",
    "DemoConfig": "demo", "run_demo": "demo", "cmd_demo": "demo",
    "cmd_bench": "bench", "cmd_list": "listing",
}


def build_parser() -> argparse.ArgumentParser:
    from vlprune import __version__
    from vlprune.eval.cli import add_eval_parser

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Drop visual tokens that carry no new information from Qwen-VL-family models.",
        epilog="Run 'vlprune COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"vlprune.cli.{name}").add_parser(sub)
    add_eval_parser(sub)
    return parser


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``vlprune serve ... -- FLAGS``: (the command line before ``--``, FLAGS), or (argv, None) when the
    command is not ``serve`` or has no ``--``."""
    i = next((j for j, a in enumerate(argv) if not a.startswith("-")), None)  # the command
    if i is None or argv[i] != "serve" or "--" not in argv[i:]:
        return argv, None
    cut = argv.index("--", i)
    return argv[:cut], argv[cut + 1:]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, passthrough = split_passthrough(argv)  # vlprune serve ... -- <vllm serve flags>
    try:
        args = parser.parse_args(argv)
        if passthrough is not None:
            args.vllm_flags = list(args.vllm_flags) + passthrough
        if args.command is None:
            parser.print_help()
            return 2
        return args.func(args)
    except SystemExit as exc:  # argparse usage errors (2) and --help / --version (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `vlprune analyze ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:  # a file that cannot be read or written (disk full, permissions): named, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{PROG}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"vlprune.cli.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vlprune.cli' has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
