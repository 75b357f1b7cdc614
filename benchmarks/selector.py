"""Time the PixelPrune selectors against a plain copy of the processor's pixel_values.

Per image size (720p, 1080p, 1440p and 4K screenshots, A4 pages) the script builds the family's
real transformers image processor (PIL backend), runs it on a corpus image, and times on ONE core

* ``copy``: ``np.copy(pixel_values)`` -- the floor: what reading and writing the input once costs
  (also ``np.copyto`` into a preallocated array, which skips the page faults of fresh memory);
* each selector (pred2d / raster / serpentine), exact (τ = 0) and anchored (Max τ = 0.05,
  MAE τ = 0.05), on the grid viewed from ``pixel_values`` and on the grid of the resized uint8 image.

Timings are medians of ``--repeats`` runs after a warm-up call (numba compiles on first use).
Where the corpus has no image of a size, one is made from corpus screenshots (cropped, tiled or
upscaled); the ``source`` column says how. Without the corpus (``--corpus`` not given and the default
folder beside the repository absent, as in a fresh clone) the built-in synthetic samples
(:mod:`vlprune.samples`) are drawn at each size instead, and the output says so: their flat areas make
selection faster than on real screenshots, so compare such numbers only with each other. Benchmarks
assert nothing.

    python benchmarks/selector.py                      # Qwen3-VL grid, markdown table
    python benchmarks/selector.py --family qwen2.5-vl --repeats 31 --json selector.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from vlprune.families import get_family
from vlprune.grid import BlockGrid
from vlprune.algorithms.predictive import ORDERS, predictive_select

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
MODES = [("exact", "max", 0.0), ("max 0.05", "max", 0.05), ("mae 0.05", "mae", 0.05)]
WEB = ["web/py311_library_itertools.png", "web/git_user_manual.png", "web/pg15_sql_select.png",
       "web/valgrind_manual_core.png"]  # fmt: skip


def _open(corpus: Path, rel: str) -> Image.Image:
    return Image.open(corpus / rel).convert("RGB")


def sample_images() -> list[tuple[str, Image.Image, str]]:
    """The sizes of :func:`test_images` drawn by the built-in samples (no corpus needed)."""
    from vlprune.samples import document_page, gui_screenshot

    shots = [("720p screenshot", 1280, 720), ("1080p screenshot", 1920, 1080), ("1440p screenshot", 2560, 1440),
             ("4K screenshot", 3840, 2160)]
    out = [(label, gui_screenshot(w, h), f"built-in GUI sample drawn at {w}x{h}") for label, w, h in shots]
    for label, w, h in (("A4 page, 150 dpi", 1240, 1754), ("A4 page, 300 dpi", 2480, 3508)):
        out.append((label, document_page(w, h), f"built-in document sample drawn at {w}x{h}"))
    return out


def test_images(corpus: Path) -> list[tuple[str, Image.Image, str]]:
    """(size label, image, where it came from)."""
    needed = [*WEB, "desktop/evince_rintro.png", "doc/fontconfig_p002_text.png"]
    missing = [rel for rel in needed if not (corpus / rel).is_file()]
    if missing:
        raise FileNotFoundError(f"{corpus}: the corpus lacks {', '.join(missing)}")
    web = _open(corpus, WEB[0])
    tiles = [_open(corpus, rel) for rel in WEB]
    tiled = Image.new("RGB", (3840, 2160))
    for k, tile in enumerate(tiles):
        tiled.paste(tile, ((k % 2) * 1920, (k // 2) * 1080))
    a4 = _open(corpus, "doc/fontconfig_p002_text.png")
    return [
        ("720p screenshot", web.crop((0, 0, 1280, 720)), f"{WEB[0]} cropped to 1280x720"),
        ("1080p screenshot", web, WEB[0]),
        ("1440p screenshot", _open(corpus, "desktop/evince_rintro.png"), "desktop/evince_rintro.png"),
        ("4K screenshot", tiled, "4 corpus 1080p web screenshots tiled 2x2"),
        ("A4 page, 150 dpi", a4, "doc/fontconfig_p002_text.png"),
        ("A4 page, 300 dpi", a4.resize((a4.width * 2, a4.height * 2), Image.Resampling.BICUBIC),
         "doc/fontconfig_p002_text.png upscaled 2x (bicubic)"),
    ]


def image_processor(family: str):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    spec = get_family(family)
    return Qwen2VLImageProcessorPil(
        patch_size=spec.patch_size, merge_size=spec.merge_size, temporal_patch_size=spec.temporal_patch_size,
        image_mean=list(spec.image_mean), image_std=list(spec.image_std),
        size={"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels},
    )


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up: numba compile, page faults, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e6


def bench_grid(grid: BlockGrid, repeats: int) -> dict[str, dict]:
    out = {}
    for order in ORDERS:
        for label, metric, tau in MODES:
            kept = predictive_select(grid.base, grid.geometry, grid.scale, order, metric, tau)
            ms = median_ms(lambda: predictive_select(grid.base, grid.geometry, grid.scale, order, metric, tau), repeats)
            out[f"{order} {label}"] = {"ms": ms, "kept": int(kept.size)}
    return out


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "numba": __import__("numba").__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="qwen3-vl", help="grid / processor family (default: qwen3-vl)")
    ap.add_argument("--repeats", type=int, default=21, help="timed runs per cell; the median is reported")
    ap.add_argument("--corpus", type=Path, default=None,
                    help=f"image corpus (default: {DEFAULT_CORPUS} if present, else the built-in samples)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write all results as JSON")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)  # one core: numba kernels are single-threaded, np.copy is too
    spec = get_family(args.family)
    proc = image_processor(spec.name)
    if args.corpus is None and not DEFAULT_CORPUS.is_dir():
        print(f"note: no image corpus at {DEFAULT_CORPUS}; timing the built-in synthetic samples instead "
              f"(give --corpus DIR for real screenshots)", file=sys.stderr)
        images = sample_images()
    else:
        try:
            images = test_images(args.corpus or DEFAULT_CORPUS)
        except FileNotFoundError as exc:
            ap.error(f"argument --corpus: {exc}")
    rows = []
    for label, img, source in images:
        out = proc(img, return_tensors="np")
        pv, thw = out["pixel_values"], out["image_grid_thw"]
        (g_pv,) = BlockGrid.from_pixel_values(pv, thw, spec)
        g_u8 = BlockGrid.from_image(img, spec)
        copy_ms = median_ms(lambda: np.copy(pv), args.repeats)
        dst = np.empty_like(pv)
        copy_warm_ms = median_ms(lambda: np.copyto(dst, pv), args.repeats)
        copy_u8_ms = median_ms(lambda: np.copy(g_u8.base), args.repeats)
        for route, grid in (("pixel_values", g_pv), ("uint8 image", g_u8)):
            rows.append({
                "size": label, "source": source, "input": route, "pixels": f"{g_u8.size[1]}x{g_u8.size[0]}",
                "grid": list(grid.shape), "tokens": grid.n_blocks, "pixel_values_MB": round(pv.nbytes / 1e6, 1),
                "copy_ms": copy_ms, "copy_warm_ms": copy_warm_ms, "copy_uint8_ms": copy_u8_ms,
                "selectors": bench_grid(grid, args.repeats),
            })
            print(f"  {label:17s} {route:12s} done", file=sys.stderr, flush=True)

    info = machine()
    cells = [f"{order} {label}" for order in ORDERS for label, _, _ in MODES]
    print(f"## Selector ({spec.name} grid, one core, median of {args.repeats})\n")
    print(f"machine: {info['platform']}, {info['processor']}, {info['cpu_count']} CPUs "
          f"(1 thread used), 1-min load average {info['loadavg_1min']}; python {info['python']}, "
          f"numpy {info['numpy']}, numba {info['numba']}, torch {info['torch']}; date: {info['date']}\n")
    print("Each cell: milliseconds (ratio to `np.copy(pixel_values)` of the same image). The copy column "
          "also gives `np.copyto` into an already allocated array (warm): `np.copy` of an array over "
          "glibc's mmap threshold (32 MB) also pays the page faults of fresh memory.\n")
    print("| size | input | resized | tokens | kept (exact pred2d) | copy ms (warm; size) | "
          + " | ".join(cells) + " |")
    print("|" + "---|" * (6 + len(cells)))
    for r in rows:
        sel = r["selectors"]
        kept = sel["pred2d exact"]["kept"]
        line = [r["size"], r["input"], r["pixels"], str(r["tokens"]), f"{kept} ({kept / r['tokens']:.0%})",
                f"{r['copy_ms']:.2f} ({r['copy_warm_ms']:.2f}; {r['pixel_values_MB']} MB)"]
        line += [f"{sel[c]['ms']:.2f} ({sel[c]['ms'] / r['copy_ms']:.2f}×)" for c in cells]
        print("| " + " | ".join(line) + " |")
    print("\nImages:")
    for label, source in dict((r["size"], r["source"]) for r in rows).items():
        print(f"- {label}: {source}")
    print("\n`np.copy` of the uint8 image (for scale): "
          + ", ".join(f"{r['size']} {r['copy_uint8_ms']:.2f} ms" for r in rows[::2]))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "family": spec.name, "repeats": args.repeats,
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
