"""GUI-agent steps from recorded episodes, and ``vlprune demo --agent``.

A step prompt (GUIPruner's agent setting): the goal, the last K actions as text, the last N history
screenshots (oldest first) and the current screenshot (last), in the Qwen-VL chat format of
:mod:`vlprune.eval.agent`. :func:`agent_request` builds one from an episode folder (``episode.json`` +
``step_NN.png``); :func:`run_agent_demo` runs it through a random-weight model of each family with
PixelPrune (every frame) + TAR (history) + SSP (current screenshot), prints the tokens after every stage
and writes an overlay of what SSP kept on the current screenshot.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vlprune.families import get_family

#: colours of the SSP overlay: foreground top-k, background top-k, uniform-grid share
STRATA_COLOURS = {"foreground": (230, 60, 60), "background": (60, 110, 230), "grid": (240, 170, 30)}


@dataclass
class AgentRequest:
    """One agent step: chat ``messages`` and its ``images`` (history oldest first, then the current)."""

    episode: str
    step: int
    goal: str
    messages: list[dict]
    images: list[Image.Image]


def agent_request(episode_dir, family: str, step: int | None = None, history_images: int = 4,
                  history_actions: int = 4, limits: tuple[int, int] | None = None) -> AgentRequest:
    """The prompt of ``step`` (default: the first step with ``history_images`` earlier frames) of the
    recorded episode in ``episode_dir``. ``limits``: the processor's (min_pixels, max_pixels)."""
    from vlprune.eval.agent import PromptConfig, build_messages, load_trajectory, trajectory_spec
    from vlprune.eval.measure import prompt_context

    spec = get_family(family)
    ep = load_trajectory(episode_dir)
    cfg = PromptConfig(history_actions=history_actions, history_images=history_images)
    step = history_images if step is None else step
    if not 0 <= step < len(ep.steps):
        raise ValueError(f"episode {ep.id!r} has {len(ep.steps)} steps; step={step} does not exist")
    if step < history_images:
        raise ValueError(f"step {step} of episode {ep.id!r} has only {step} earlier frames, "
                         f"history_images={history_images} asks for more")
    frames = [s.screenshot for s in ep.steps[step - history_images : step + 1]]
    images = [ref.open() for ref in frames]
    lo, hi = limits or (spec.min_pixels, spec.max_pixels)
    ctx = prompt_context(spec.name, [im.size for im in images], (spec.block, lo, hi))
    history = [s.action for s in ep.steps[:step]]
    messages = build_messages(ep.goal, history, len(images), ctx, trajectory_spec(ep), cfg)
    return AgentRequest(ep.id, step, ep.goal, messages, images)


def strata_overlay(image: np.ndarray, grid: tuple[int, int], vit_blocks, strata: dict) -> Image.Image:
    """The current screenshot (uint8 (H, W, 3) at the model's resolution) with SSP's kept tokens outlined
    in :data:`STRATA_COLOURS`, tokens SSP dropped dimmed, blocks dropped before the ViT dimmed darker."""
    from vlprune.overlay import OverlayStyle, overlay_array

    gh, gw = grid
    b = image.shape[0] // gh
    entered = np.zeros(gh * gw, bool)
    entered[np.asarray(vit_blocks)] = True
    kept = np.zeros(gh * gw, bool)
    for idx in strata.values():
        kept[np.asarray(idx)] = True
    out = overlay_array(image, entered.reshape(gh, gw), OverlayStyle(strength=0.75))
    out = overlay_array(out, (kept | ~entered).reshape(gh, gw), OverlayStyle(strength=0.35))
    for name, idx in strata.items():
        colour = np.asarray(STRATA_COLOURS[name], np.uint8)
        for k in np.asarray(idx):
            i, j = divmod(int(k), gw)
            blk = out[i * b : (i + 1) * b, j * b : (j + 1) * b]
            blk[[0, -1], :] = colour
            blk[:, [0, -1]] = colour
    return Image.fromarray(out)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_agent_demo(episode_dir, out_dir="vlprune_demo", families=None, preset: str = "III",
                   max_pixels: int = 512 * 512, text_layers: int = 6, max_new_tokens: int = 8) -> list[dict]:
    """For each family: one real agent step (4 history frames + the current one) through a random-weight
    model of the real architecture (reduced depth, real widths) with ``pixelprune+guipruner``; prints the
    per-stage token table, writes ``<out_dir>/agent/ssp_<family>.png``. Returns one record per family."""
    import torch

    from vlprune.families import list_families
    from vlprune.models.configs import build_config
    from vlprune.processor import align_config_to_processor, build_processor
    from vlprune.runtime import apply

    out = Path(out_dir) / "agent"
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for n, family in enumerate(families or list_families(), 1):
        spec = get_family(family)
        _log(f"[{n}/{len(families or list_families())}] {family}: building a random-weight {spec.default_shape} "
             f"({text_layers} LLM layers, 2 ViT layers)")
        # one-token floor: at the demo's small max_pixels the family's min_pixels (Qwen3-VL: 256 x 256)
        # would stop TAR from shrinking history frames to their share
        limits = (spec.block**2, max_pixels)
        proc = build_processor(family, min_pixels=limits[0], max_pixels=limits[1])
        req = agent_request(episode_dir, family, limits=limits)
        cfg = build_config(family, "real", text_layers, 2)
        align_config_to_processor(cfg, proc)
        torch.manual_seed(0)
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_config(cfg, dtype=torch.float32).eval()
        model.generation_config.pad_token_id = proc.tokenizer.pad_token_id
        text = proc.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True)
        with torch.no_grad(), apply(model, "pixelprune+guipruner", processor=proc, guipruner={"preset": preset}) as run:
            batch = run.process(text, [req.images])
            t0 = time.perf_counter()
            model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
            ms = (time.perf_counter() - t0) * 1e3
        stats = run.stats
        cur = run.last_prepared.contexts[-1]
        path = out / f"ssp_{family}.png"
        strata_overlay(cur.grid.image(), cur.grid.shape, stats[-1].vit_blocks, stats[-1].strata).save(path)
        print(f"\n{family}: episode {req.episode}, step {req.step} ('{req.goal}'), K = {run.llm_layer}, "
              f"generate {ms:.0f} ms")
        print(f"  {'image':<12} {'raw':>6} {'TAR':>6} {'PixelPrune':>11} {'SSP':>6}")
        for s in stats:
            t = s.tokens_by_stage
            role = "current" if s is stats[-1] else f"history -{len(stats) - 1 - s.order}"
            print(f"  {role:<12} {t['raw']:>6} {t['input']:>6} {t['pre_vit']:>11} {t['llm']:>6}")
        total = {k: sum(s.tokens_by_stage[k] for s in stats) for k in ("raw", "input", "pre_vit", "llm")}
        print(f"  {'all':<12} {total['raw']:>6} {total['input']:>6} {total['pre_vit']:>11} {total['llm']:>6}")
        print(f"  wrote {path} (SSP kept: red = UI foreground, blue = background, orange = grid share; "
              f"dimmed = dropped by SSP, darker = dropped before the ViT)")
        records.append({"family": family, "tokens": total, "overlay": str(path), "layer": run.llm_layer,
                        "per_image": [dict(s.tokens_by_stage) for s in stats]})
    print("\nRandom weights: the generated ids mean nothing; the point is the real pipeline (processor, TAR "
          "before it, PixelPrune before the ViT, SSP inside the LLM) on a real episode.")
    return records
