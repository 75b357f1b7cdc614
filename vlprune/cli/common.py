"""Argument types and flag groups shared by the commands (image options, method options, output files).

Every numeric flag is parsed and then validated with the shared option validators
(:mod:`vlprune.options`), so a flag follows the Python API's rules and a bad value is a usage
error (exit 2) that names the flag.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path

from vlprune.algorithms.predictive import METRICS, ORDERS
from vlprune.flags import FlagError, parse_method_options, path_arg  # noqa: F401  (path_arg: re-exported)
from vlprune.families import get_family
from vlprune.images import ALPHA_MODES, HIGH_BIT_DEPTH_MODES, MAX_IMAGE_PIXELS, ImageOptions
from vlprune import options as opt

PROG = "vlprune"


# ------------------------------------------------------------------------------ argument types
def option_type(kind, check):
    """argparse ``type`` that parses with ``kind`` and validates with ``check`` -- one of the shared
    option validators (:mod:`vlprune.options`)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        try:
            return check(value)
        except opt.OptionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def int_option(name: str, minimum: int):
    return option_type(int, lambda v: opt.integer(name, v, minimum=minimum))


tau_type = option_type(float, lambda v: opt.unit_interval("tau", v))
retain_type = option_type(float, lambda v: opt.fraction("retain", v))
seed_type = option_type(int, opt.seed)


def family_type(text: str) -> str:
    try:
        return get_family(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def method_spec_type(text: str) -> str:
    """``--method``: a registered method or names joined by ``+`` (``pixelprune+fastv``); the names are
    checked here, the composition (one method per stage) when the methods are built."""
    from vlprune.methods import list_methods

    names = [p.strip() for p in text.split("+")]
    if not text.strip() or not all(names):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a method name or names joined by '+' (e.g. pixelprune+fastv)")
    known = list_methods()
    for n in names:
        if n not in known:
            raise argparse.ArgumentTypeError(f"unknown method {n!r} in {text!r}; expected one of: {', '.join(known)}")
    return "+".join(names)


# ------------------------------------------------------------------------------ errors and files
def usage_error(parser: argparse.ArgumentParser, exc: Exception):
    """Report a bad option value as argparse does (exit 2), naming the flag that gave it."""
    if isinstance(exc, FlagError):
        parser.error(f"argument {exc.flag}: {exc.detail}")
    if isinstance(exc, opt.OptionError):
        parser.error(f"argument {exc.flag}: {exc}")
    parser.error(str(exc))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def output_path(parser: argparse.ArgumentParser, flag: str, path: str | None, inputs=()) -> None:
    """Check an output file before the run: not a folder, not one of ``inputs`` (never overwrite an
    input), its folder can be made."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        parser.error(f"argument {flag}: {path!r} is a folder; give a file name")
    if any(_same_file(target, Path(src)) for src in inputs):
        parser.error(f"argument {flag}: {path!r} is also an input; writing it would replace the input; "
                     f"give another file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"argument {flag}: cannot create the folder of {path!r}: {exc.strerror or exc}")


def output_folder(parser: argparse.ArgumentParser, flag: str, path: str) -> Path:
    """Create an output folder before the run (exit 2 naming ``flag`` if it is a file or cannot be made)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        parser.error(f"argument {flag}: {path!r} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"argument {flag}: cannot create {path!r}: {exc.strerror or exc}")
    return out


# ------------------------------------------------------------------------------ flag groups
def add_image_options(group) -> None:
    """The image options (:class:`vlprune.images.ImageOptions`) of analyze and bench."""
    pixels = lambda name: int_option(name, 1)  # noqa: E731
    group.add_argument("--min-pixels", type=pixels("min_pixels"), default=None, metavar="N",
                       help="processor min_pixels, as the model is served (default: the family's)")
    group.add_argument("--max-pixels", type=pixels("max_pixels"), default=None, metavar="N",
                       help="processor max_pixels, as the model is served (default: the family's)")
    group.add_argument("--max-image-pixels", type=pixels("max_image_pixels"), default=MAX_IMAGE_PIXELS, metavar="N",
                       help=f"refuse decoded images larger than this (decompression bombs; default: {MAX_IMAGE_PIXELS})")
    group.add_argument("--exif", action=argparse.BooleanOptionalAction, default=None,
                       help="apply the EXIF orientation (default: yes, as transformers' load_image does for files)")
    group.add_argument("--alpha", choices=ALPHA_MODES, default=None,
                       help="transparency: ignore every kind (drop) or composite every kind on white (white); "
                            "default: as the installed transformers loads a file (alpha band dropped; a colour key "
                            "composited on white from 5.21, kept as its colour before)")
    group.add_argument("--high-bit-depth", choices=HIGH_BIT_DEPTH_MODES, default=None,
                       help="16-bit / float images: clip at 255 as PIL and transformers do (default) or scale to 8 bits")


def image_options(args: argparse.Namespace) -> ImageOptions:
    """The image flags as :class:`ImageOptions` (a bad combination is a usage error naming the flag)."""
    try:
        return ImageOptions(**{f.name: getattr(args, f.name) for f in fields(ImageOptions)})
    except opt.OptionError as exc:
        usage_error(args.parser, exc)


def add_method_options(group, seed_help: str) -> None:
    """--order/--metric/--tau/--seed/--retain (PixelPrune and the pre-ViT baselines; None = not given)
    and the generic ``--opt NAME.OPTION=VALUE`` (any registered method). A given option that the chosen
    method(s) cannot use is refused when the methods are built."""
    group.add_argument("--order", choices=ORDERS, default=None, help="PixelPrune scan order (default: pred2d)")
    group.add_argument("--metric", choices=METRICS, default=None, help="PixelPrune block distance (default: max)")
    group.add_argument("--tau", type=tau_type, default=None, metavar="T",
                       help="PixelPrune threshold in [0, 1] pixel units; 0 = exact (default: 0); for a "
                            "baseline: of the PixelPrune that sets its budget")
    group.add_argument("--seed", type=seed_type, default=None, metavar="N", help=f"integer >= 0; {seed_help}")
    group.add_argument("--retain", type=retain_type, default=None, metavar="R",
                       help="pre-ViT baselines only: keep this fraction (0, 1] of each image's blocks instead of "
                            "PixelPrune's count")
    group.add_argument("--opt", action="append", default=[], metavar="NAME.OPTION=VALUE",
                       help="an option of any method run (repeatable), the value read as a Python literal else "
                            "as text, e.g. --opt fastv.retain=0.3 --opt guipruner.preset=II (see 'vlprune list')")


def opt_flags(args: argparse.Namespace) -> dict[str, dict]:
    """``--opt`` flags as ``{method name: {option: value}}`` (a malformed one exits 2 naming --opt)."""
    try:
        return parse_method_options(args.opt, "--opt")
    except FlagError as exc:
        usage_error(args.parser, exc)
