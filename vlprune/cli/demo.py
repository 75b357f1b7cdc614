"""``vlprune demo``: PixelPrune on built-in sample images for every family (overlays, an end-to-end
generation), or ``--agent``: one recorded GUI-agent step through ``pixelprune+guipruner``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vlprune.analyze import analyze_grid, warm_up
from vlprune.cli.common import PROG, family_type, output_folder, path_arg
from vlprune.families import list_families
from vlprune.grid import BlockGrid
from vlprune.methods.guipruner import PRESETS
from vlprune.methods.pixelprune import PixelPrune


def add_parser(sub) -> None:
    d = sub.add_parser(
        "demo",
        help="run PixelPrune on built-in sample images for every family; write overlays "
             "(--agent: a recorded GUI-agent step through pixelprune+guipruner)",
        description="Make small sample images (GUI screenshot, document page, noise texture), run PixelPrune "
                    "(exact, Pred-2D) on each for every model family, print a table and write overlay PNGs. "
                    "With --agent: one step of a recorded browsing episode (4 history screenshots + the "
                    "current one) through a random-weight model of each family with PixelPrune + GUIPruner "
                    "(TAR on the history, SSP on the current screenshot); prints the tokens after every "
                    "stage and writes an overlay of what SSP kept (about 20 s per family on 2 CPU cores).",
    )
    d.add_argument("--out", type=path_arg, default="vlprune_demo", metavar="DIR", help="output folder (default: ./vlprune_demo)")
    d.add_argument("--no-generate", action="store_true",
                   help="skip the end-to-end generation section (when this build provides one)")
    a = d.add_argument_group("agent")
    a.add_argument("--agent", action="store_true", help="run the GUI-agent demo instead (needs --episode)")
    a.add_argument("--episode", type=path_arg, metavar="DIR", default=None,
                   help="a recorded episode folder: episode.json (goal, actions, platform, size) + step_NN.png "
                        "screenshots, at least 5 steps (vlprune ships none)")
    a.add_argument("--preset", choices=tuple(PRESETS), default=None,
                   help=f"GUIPruner preset, the history budget lambda ({', '.join(f'{k}: {v}' for k, v in PRESETS.items())}; "
                        f"default: III)")
    a.add_argument("--family", action="append", type=family_type, default=None, dest="families",
                   metavar="|".join(list_families()), help="only this family (repeatable; default: all)")
    d.set_defaults(func=cmd_demo, parser=d)


@dataclass
class DemoConfig:
    out: Path = Path("vlprune_demo")
    generate: bool = True


def run_demo(config: DemoConfig, samples: dict[str, Image.Image]) -> list[dict]:
    """Selection part of the demo: every sample x every family; prints the table, writes files.
    Returns one record per (sample, family)."""
    from vlprune.overlay import save_overlay

    out = Path(config.out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    for name, img in samples.items():
        img.save(out / "samples" / f"{name}.png")
    method = PixelPrune()
    rows = []
    print("PixelPrune (Pred-2D, exact: tau = 0) on built-in samples; one token = one 2x2-patch block\n")
    fmt = "{:<9}  {:<11}  {:>9}  {:>11}  {:>7}  {:>16}  {:>7}  {:>9}"
    print(fmt.format("image", "family", "input", "resized", "grid", "tokens -> kept", "retain", "select ms"))
    for family in list_families():
        warm_up(method, family)
    for name, img in samples.items():
        for family in list_families():
            grid = BlockGrid.from_image(img, family)
            result, sel = analyze_grid(grid, method, name)
            path = save_overlay(out / "overlay" / f"{name}_{family}.png", grid.image(), sel)
            (h, w), (gh, gw) = result.size, result.grid
            print(fmt.format(
                name, family, f"{img.width}x{img.height}", f"{w}x{h}", f"{gw}x{gh}",
                f"{result.tokens} -> {result.kept}", f"{result.retain:.1%}", f"{result.selector_ms:.2f}",
            ))
            rows.append({**result.to_dict(), "overlay": str(path)})
    print(f"\nwrote {len(rows)} overlays to {out / 'overlay'} (dropped blocks dimmed and outlined; kept blocks untouched)")
    print(f"sample inputs in {out / 'samples'}; try: {PROG} analyze {out / 'samples'} --overlay {out / 'analyze'}")
    return rows


def _check_agent_flags(args: argparse.Namespace) -> None:
    """--episode / --preset / --family belong to --agent; --agent needs a readable episode."""
    if not args.agent:
        for flag, value in (("--episode", args.episode), ("--preset", args.preset), ("--family", args.families)):
            if value is not None:
                args.parser.error(f"argument {flag}: only with --agent")
        return
    if args.episode is None:
        args.parser.error("argument --episode: --agent needs a recorded episode folder: --episode DIR with "
                          "episode.json and step_NN.png screenshots (at least 5 steps; vlprune ships none)")
    from vlprune.agent import agent_request

    try:  # reads the episode and builds the first family's prompt: cheap, before any model is built
        agent_request(args.episode, (args.families or list_families())[0])
    except (ValueError, OSError) as exc:  # the episode's DatasetError / RecordError are ValueErrors
        args.parser.error(f"argument --episode: {exc}")


def cmd_demo(args: argparse.Namespace) -> int:
    _check_agent_flags(args)
    out = output_folder(args.parser, "--out", args.out)
    if args.agent:
        from vlprune.agent import run_agent_demo

        families = list(dict.fromkeys(args.families)) if args.families else None
        run_agent_demo(args.episode, out, families=families, preset=args.preset or "III")
        return 0
    from vlprune.samples import make_samples

    config = DemoConfig(out=out, generate=not args.no_generate)
    samples = make_samples()
    run_demo(config, samples)
    if config.generate:
        from vlprune.demo import demo_generation

        print()
        demo_generation(samples, config.out)
    return 0
