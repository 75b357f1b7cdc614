"""The bench run: validate everything (:func:`prepare`), build the model, warm up, time every method
on every image (:func:`run_bench`)."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vlprune.bench.config import ONEDNN_CACHE_VAR, BenchConfig, BenchError, build_pipelines, configure_onednn_cache
from vlprune.bench.config import resolve_shape, shape_config
from vlprune import compat
from vlprune.bench.model import build_model
from vlprune.bench.report import BenchResult, ImageRun, Sample
from vlprune.bench.requests import (
    MemoryEstimate,
    Request,
    build_requests,
    check_attention,
    check_device,
    estimate_memory,
    meta_model,
)
from vlprune.bench.timing import PeakMemory, Timer, VisionTimer, cache_bytes, loadavg, machine_info


@dataclass
class Plan:
    """A validated request: what :func:`run_bench` builds and runs."""

    family: str
    shape: object
    config: object  # the HF config, aligned to the processor
    dtype_name: str
    processor: object
    requests: list[Request]
    pipelines: list  # [("full", None), (spec, Pipeline), ...]
    memory: MemoryEstimate


def _check_pipelines(meta, pipelines: list, processor) -> None:
    """Install and remove each pipeline on the meta-device model: the model-dependent checks of
    :func:`vlprune.apply` (family, the llm method's layer K on this depth) before anything is built."""
    from vlprune.flags import FlagError
    from vlprune.runtime import apply

    for spec, pipeline in pipelines:
        if pipeline is None:
            continue
        try:
            with apply(meta, list(pipeline.methods), processor=processor):
                pass
        except (TypeError, ValueError) as exc:
            raise FlagError("--method", f"{spec!r}: {exc}") from None


def prepare(cfg: BenchConfig) -> Plan:
    """Everything that can fail on bad input, before the model is built: settings, shape, methods and
    options, device / dtype / attention, images, the pipelines on this architecture, memory."""
    from vlprune.processor import align_config_to_processor

    cfg.check()
    configure_onednn_cache(cfg.onednn_cache)
    family, shape = resolve_shape(cfg.shape, cfg.family)
    cfg.image.bounds(family)
    pipelines = build_pipelines(cfg)
    dtype_name = check_device(cfg.device, cfg.dtype)
    check_attention(cfg.attn, cfg.device, cfg.dtype)
    config = shape_config(shape, cfg.layers, cfg.vision_layers)
    proc, requests = build_requests(cfg, family)
    align_config_to_processor(config, proc)
    meta = meta_model(config)
    _check_pipelines(meta, pipelines, proc)
    n_params = sum(p.numel() for p in meta.parameters())
    del meta
    mem = estimate_memory(config, requests, dtype_name, cfg.decode_tokens, cfg.device, cfg.max_memory_gb, cfg.attn,
                          n_params=n_params)
    if mem.total > mem.available:
        gib = 2**30
        big = max(requests, key=lambda r: r.seq_len)
        raise BenchError(
            f"estimated memory {mem.total / gib:.2f} GiB (weights {mem.weights / gib:.2f} + KV {mem.kv / gib:.2f} "
            f"+ activations {mem.activations / gib:.2f}; largest request {big.path}: {big.image_tokens} image "
            f"tokens, {big.seq_len} prompt tokens) exceeds the {mem.available / gib:.2f} GiB available "
            f"({mem.source}); use smaller images (--max-pixels), --dtype bf16, or fewer layers"
        )
    return Plan(family, shape, config, dtype_name, proc, requests, pipelines, mem)


def _image_run(req: Request, info: dict, config, dtype_name: str) -> ImageRun:
    """Token counts and analytic numbers of one method on one image, from what ran: the runtime's
    :meth:`~vlprune.runtime.CallStats.flops_prompts` (the unpruned prompt for ``full``)."""
    from vlprune import flops

    st = info["stats"]
    if st is None:
        prompt, by_stage = req.prompt(), {"raw": req.image_tokens}
        kept, llm, final, layer = req.image_tokens, req.seq_len, req.seq_len, None
    else:
        (prompt,) = st.flops_prompts()
        (img,) = st.images
        by_stage, kept = dict(img.tokens_by_stage), img.tokens_after
        llm, final, layer = st.llm_tokens_after, st.llm_tokens_final, st.llm_layer
    est = flops.estimate(config, prompt, dtype=dtype_name)
    return ImageRun(
        req.path, req.grid_thw, req.image_tokens, kept, req.seq_len, llm, float(est.prefill.total),
        float(est.prefill.vit + est.prefill.merger), float(flops.decode_flops(config, prompt).total),
        int(est.kv.total_bytes), info["kv_bytes"], info["first_token"], by_stage, final, layer,
        float(est.prefill.llm_scoring), info["attn"],
    )


def run_bench(cfg: BenchConfig, log=None) -> BenchResult:
    """Validate (see :func:`prepare`), build the model, warm up, repeat; returns a :class:`BenchResult`.

    With ``cfg.budget_s`` the passes stop once that many seconds have gone by since the call (checked
    before each pass after the first); the result is then ``partial`` with the passes that ran.
    """
    import torch
    from tqdm import tqdm

    from vlprune.analyze import warm_up

    t_call = time.monotonic()
    plan = prepare(cfg)
    threads = cfg.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    load_start = loadavg()
    t0 = time.perf_counter()
    model = build_model(plan.config, plan.dtype_name, cfg.device, cfg.seed, cfg.attn)
    build_s = time.perf_counter() - t0
    timer = Timer(cfg.device)
    peak = PeakMemory(cfg.device)
    runs: dict[str, list] = {m: [None] * len(plan.requests) for m, _ in plan.pipelines}
    dev_inputs = [{k: (v.to(cfg.device) if hasattr(v, "to") else v) for k, v in r.inputs.items()} for r in plan.requests]
    for _, pipeline in plan.pipelines:  # load the compiled selector kernels outside any timed region
        if pipeline is not None and pipeline.get("pre_vit") is not None:
            warm_up(pipeline.get("pre_vit"), plan.family)
    methods = plan.pipelines
    passes = cfg.warmup + cfg.repeats
    done = 0
    bar = tqdm(total=passes * len(methods) * len(plan.requests), desc=f"bench {plan.shape.name}", unit="prefill",
               file=sys.stderr, dynamic_ncols=True, disable=True if not cfg.progress else None)
    with torch.inference_mode(), bar, VisionTimer(model.model.visual, timer) as vt:
        for rep in range(passes):
            if rep and cfg.budget_s is not None and time.monotonic() - t_call > cfg.budget_s:
                break
            measured = rep >= cfg.warmup
            k = rep % len(methods)  # rotate the method order so that no method always runs right after another
            for mname, pipeline in methods[k:] + methods[:k]:
                for i, (req, inputs) in enumerate(zip(plan.requests, dev_inputs)):
                    bar.set_postfix_str(f"{'run' if measured else 'warmup'} {rep + 1 - (cfg.warmup if measured else 0)} "
                                        f"{mname} {Path(req.path).name}")
                    sample, info = _one(model, pipeline, inputs, vt, timer, peak, cfg, plan.processor)
                    if runs[mname][i] is None:
                        runs[mname][i] = _image_run(req, info, plan.config, plan.dtype_name)
                    if measured:
                        runs[mname][i].samples.append(sample)
                    bar.update(1)
            done += 1
    notes = []
    if done < passes:
        notes.append(f"PARTIAL: the time budget of {cfg.budget_s:g} s ran out after {done} of {passes} passes "
                     f"({max(0, done - cfg.warmup)} of {cfg.repeats} timed)")
    load_end = loadavg()
    if not timer.cuda and max(load_start[0], load_end[0]) > threads + 0.5:
        notes.append(f"machine was shared: 1-min load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at end "
                     f"with {threads} bench threads on {os.cpu_count()} cores; CPU times are inflated and noisy")
    if cfg.reduced:
        notes.append(f"REDUCED DEPTH: {plan.config.get_text_config().num_hidden_layers} LLM layers, "
                     f"{plan.config.vision_config.depth} ViT layers (shape {plan.shape.name} has "
                     f"{plan.shape.text['num_hidden_layers']} / {plan.shape.vision['depth']}); not the real model's latency")
    notes.append("random weights; analytic FLOPs from vlprune.flops of what ran (dense attention blocks, logits_to_keep=1)")
    machine = machine_info(cfg.device, threads)
    machine["loadavg_start"], machine["loadavg_end"] = load_start, load_end
    machine["onednn_primitive_cache"] = os.environ.get(ONEDNN_CACHE_VAR)
    return BenchResult(
        config=dataclasses.asdict(cfg), shape=plan.shape.name, family=plan.family, reduced=cfg.reduced,
        dtype=plan.dtype_name, device=cfg.device, machine=machine, memory_estimate=plan.memory.to_dict(),
        memory_method=peak.method,
        timing_method=timer.method + ("" if timer.cuda else f", torch threads = {threads}"),
        runs=runs, build_s=build_s, notes=notes, partial=done < passes,
        pipelines={m: ("unmodified model" if p is None else p.describe()) for m, p in plan.pipelines},
    )


def _one(model, pipeline, inputs, vt: VisionTimer, timer: Timer, peak: PeakMemory, cfg: BenchConfig, proc):
    """One prefill (+ decode steps) of one image with one pipeline (``None`` = the unmodified model)."""
    from transformers import DynamicCache

    from vlprune.models.base import get_adapter
    from vlprune.runtime import ApplyConfig, apply

    def prefill_and_decode(session):
        # the cache is made before the call, as generate does: the in-LLM stage then recognises the
        # decode steps by their cache (a cache the model made itself is not seen by its hooks)
        cache = DynamicCache(config=model.config)
        ckw = compat.model_cache_kwarg(model)  # past_key_values up to transformers 5.23, cache from 5.24
        vt.reset()
        peak.start()
        t0 = timer.mark()
        out = model(**inputs, **{ckw: cache}, use_cache=True, logits_to_keep=1)
        tok = out.logits[:, -1].argmax(-1, keepdim=True)
        t1 = timer.mark()
        mem = peak.stop()
        prefill_ms = timer.ms(t0, t1)
        vit_ms = vt.total_ms()
        st = session.last if session is not None else None  # read now: decode steps add to llm_ms
        llm_ms = st.llm_ms if st is not None else 0.0  # the prefill's in-LLM stage only
        cache = compat.cache_from_output(out)
        kv = cache_bytes(cache)
        first = int(tok[0, 0])
        dec_ms = 0.0
        if cfg.decode_tokens:
            d0 = timer.mark()
            for _ in range(cfg.decode_tokens):
                out = model(input_ids=tok, **{ckw: cache}, use_cache=True, logits_to_keep=1)
                cache = compat.cache_from_output(out)
                tok = out.logits[:, -1].argmax(-1, keepdim=True)
            d1 = timer.mark()
            dec_ms = timer.ms(d0, d1)
        tok_s = cfg.decode_tokens / (dec_ms / 1e3) if dec_ms > 0 else float("nan")
        times = ((st.plan_ms, st.post_ms, llm_ms, st.selector_ms + llm_ms) if st is not None
                 else (0.0, 0.0, 0.0, 0.0))
        attn = st.attn_implementation if st is not None else get_adapter(model).attn_implementation
        return (Sample(vit_ms, prefill_ms, tok_s, mem, *map(float, times)),
                {"stats": st, "kv_bytes": kv, "first_token": first, "attn": attn})

    inner = model.model
    saved = getattr(inner, "rope_deltas", None)
    try:
        inner.rope_deltas = None
        if pipeline is None:
            return prefill_and_decode(None)
        with apply(model, list(pipeline.methods), processor=proc, config=ApplyConfig(sync_cuda=timer.cuda)) as session:
            return prefill_and_decode(session)
    finally:
        inner.rope_deltas = saved
