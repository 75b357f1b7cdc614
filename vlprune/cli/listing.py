"""``vlprune list``: registered methods (with their stage and options) and model families."""

from __future__ import annotations

import argparse

from vlprune.families import get_family, list_families
from vlprune.methods import list_methods
from vlprune.methods.base import get_method_class, method_options


def add_parser(sub) -> None:
    ls = sub.add_parser("list", help="list methods and model families", description="List methods and model families.")
    ls.set_defaults(func=cmd_list, parser=ls)


def _first_sentence(doc: str | None) -> str:
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    return para.split(". ")[0].rstrip(".") + "." if para else ""


def cmd_list(args: argparse.Namespace) -> int:
    print("methods (analyze --method takes the pre_vit ones; bench --method any, or a composition a+b with at most "
          "one per stage; --opt NAME.OPTION=VALUE sets an option):")
    for name in list_methods():
        cls = get_method_class(name)
        print(f"  {name:<12} {cls.stage:<8} {_first_sentence(cls.__doc__)}")
        print(f"  {'':<12} {'':<8} options: {', '.join(method_options(name)) or 'none'}")
    print("\nfamilies (--family):")
    for name in list_families():
        f = get_family(name)
        print(f"  {name:<12} block {f.block} px (patch {f.patch_size} x merge {f.merge_size}), "
              f"min_pixels {f.min_pixels}, max_pixels {f.max_pixels}")
    return 0
