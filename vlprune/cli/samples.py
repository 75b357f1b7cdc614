"""``vlprune samples DIR``: write the example inputs the README's examples read (:mod:`vlprune.examples`)."""

from __future__ import annotations

import argparse

from vlprune.cli.common import path_arg


def add_parser(sub) -> None:
    s = sub.add_parser(
        "samples",
        help="write the README's example inputs (page.png, shot.png, screenshots/, episode/, docvqa/, "
             "predictions.jsonl) into a folder",
        description="Write the inputs the README's examples read into DIR (made if needed): page.png (a "
                    "document page), shot.png (a desktop screenshot), screenshots/ (the built-in samples), "
                    "episode/ (a 5-step GUI-agent episode, docs/episodes.md), docvqa/ (a 3-question DocVQA "
                    "folder in the RRC layout) and predictions.jsonl (predictions for it, as another harness "
                    "writes them). Refuses a folder that already holds any of them (nothing is replaced).",
    )
    s.add_argument("folder", type=path_arg, metavar="DIR", help="where to write them (e.g. examples/)")
    s.set_defaults(func=cmd_samples, parser=s)


def cmd_samples(args: argparse.Namespace) -> int:
    from vlprune.examples import ExamplesError, write_examples

    try:
        written = write_examples(args.folder)
    except ExamplesError as exc:
        args.parser.error(f"argument DIR: {exc}")
    except OSError as exc:
        args.parser.error(f"argument DIR: cannot write into {args.folder!r}: {exc.strerror or exc}")
    for path in written:
        print(f"wrote {path}{'/' if path.is_dir() else ''}")
    print(f"the README's examples run in {args.folder} (cd {args.folder})")
    return 0
