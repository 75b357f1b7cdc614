"""The in-LLM stage: drop visual tokens from decoder layer ``K`` on, with hooks only.

Layers ``0 .. K-1`` run on the whole sequence and keep its whole KV cache; at layer ``K - 1`` the
attention rows the method asks for are recomputed (:mod:`vlprune.runtime.attention`); a forward pre-hook
on layer ``K`` lets the method pick each image's kept tokens and gathers hidden states, rotary cos/sin
(so kept tokens keep their unpruned M-RoPE positions) and contiguous text positions; pre-hooks on layers
``K ..`` substitute masks rebuilt for the kept length with transformers' own mask builders. During
decoding the masks of layers ``>= K`` are rebuilt each step against those layers' shorter cache (the
"layered cache", docs/design.md). Qwen3-VL's DeepStack features are added by vlprune for the kept rows
(the text model's own injection uses a full-length mask). Hooks are owned by the session and removed on
exit; nothing is patched globally.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers.masking_utils import (
    create_causal_mask,
    create_recurrent_attention_mask,
    create_sliding_window_causal_mask,
)

from vlprune import compat
from vlprune.methods.base import LLMMethod, LLMRow
from vlprune.methods.views import LLMRowView, instruction_columns
from vlprune.models.base import FamilyAdapter
from vlprune.runtime.attention import attention_rows, key_norms
from vlprune.runtime.checks import check_local_indices

_MASK_BUILDERS = {
    "full_attention": create_causal_mask,
    "sliding_attention": create_sliding_window_causal_mask,
    "linear_attention": create_recurrent_attention_mask,
}
_ATTENTION_LAYERS = ("full_attention", "sliding_attention")


def valid_layers(layer_types: list[str]) -> list[int]:
    """Ks whose scoring layer K - 1 is an attention layer (K in [1, n_layers - 1])."""
    return [k for k in range(1, len(layer_types)) if layer_types[k - 1] in _ATTENTION_LAYERS]


def resolve_layer(method: LLMMethod, layer_types: list[str], family: str) -> int:
    """The K this method runs at on a model with ``layer_types``; ValueError naming ``layer`` otherwise."""
    n = len(layer_types)
    valid = valid_layers(layer_types)
    if not valid:
        raise ValueError(f"method {method.name!r}: the {family} model has no attention layer that can score")
    if method.layer is None:
        k = method.default_layer
        return k if k in valid else valid[0]
    k = method.layer
    if not 1 <= k < n:
        raise ValueError(f"option layer={k} of method {method.name!r} must be in [1, {n - 1}]: the {family} model "
                         f"has {n} decoder layers, layer K - 1 scores and layers K .. {n - 1} run pruned")
    if k not in valid:
        near = min(valid, key=lambda v: (abs(v - k), v))
        raise ValueError(f"option layer={k} of method {method.name!r}: scoring layer {k - 1} is a "
                         f"{layer_types[k - 1]} layer without attention weights on this {family} model; the "
                         f"nearest valid layer is {near} (valid: {valid[:8]}{' ...' if len(valid) > 8 else ''})")
    return k


def transformers_checks(adapter: FamilyAdapter) -> list[tuple[str, object]]:
    """(entry point, check) pairs the in-LLM hooks rely on: the decoder layers' call (rotary tables, a
    cache argument under a known name), the mask builders with ``layer_idx`` and Qwen3-VL's DeepStack."""
    layer = type(adapter.decoder_layers()[0]).forward
    checks = [
        (f"{type(adapter.decoder_layers()[0]).__name__}.forward(position_embeddings=..., cache / past_key_values=...)",
         lambda: compat.has_params(layer, "position_embeddings") and bool(compat.cache_kwarg(layer))),
        *((f"transformers.masking_utils.{fn.__name__}(layer_idx=..., cache / past_key_values=...)",
           lambda fn=fn: "layer_idx" in compat.params(fn) and bool(compat.cache_kwarg(fn)))
          for fn in (create_causal_mask, create_sliding_window_causal_mask)),
    ]
    if adapter.deepstack:
        checks.append((f"{type(adapter.language_model()).__name__}._deepstack_process",
                       lambda: callable(getattr(adapter.language_model(), "_deepstack_process", None))))
    return checks


@dataclass
class _CallState:
    """One pruned call (prefill, then its decode steps) as the hooks see it."""

    prepared: object
    rows: list[LLMRow]
    queries: list[list[int]]
    phase: str = "pending"  # pending -> prefill -> decode
    length: int = 0  # L': prefill sequence length
    cache: object = None
    am2d: torch.Tensor | None = None  # prefill 2-D mask (B, L') or None
    text_pos: bool = False  # the model passes text position ids to the layers
    scores: torch.Tensor | None = None  # (B, L')
    key_norms: torch.Tensor | None = None  # (B, L') layer K - 1's key L1 norms (methods that ask)
    keep: torch.Tensor | None = None  # (B, L'') gather index into L'
    am2d_kept: torch.Tensor | None = None  # (B, L'') or None
    pe: tuple | None = None
    pos_kept: torch.Tensor | None = None
    masks: dict = field(default_factory=dict)
    deep: tuple | None = None  # (visual_pos_masks, [features per layer]) full length
    deep_kept: tuple | None = None
    step_mask2d: torch.Tensor | None = None
    step_ready: bool = False
    ms: float = 0.0


class LLMStage:
    """Installs the hooks of one llm-stage method on one model (see the module docstring)."""

    def __init__(self, adapter: FamilyAdapter, method: LLMMethod, sync_cuda: bool = False):
        self.ad = adapter
        self.sync_cuda = sync_cuda and torch.cuda.is_available()
        self.method = method
        self.layers = adapter.decoder_layers()
        self.layer_types = adapter.layer_types()
        self.k = resolve_layer(method, self.layer_types, adapter.family)
        self.config = adapter.language_model().config
        self.state: _CallState | None = None
        self.n_deepstack = adapter.deepstack_layers() if adapter.deepstack else 0
        self._skip_ids = (adapter.image_token_id, adapter.video_token_id)  # not instruction tokens

    # ------------------------------------------------------------------ install
    def install(self, handles: list) -> None:
        lm = self.ad.language_model()
        handles.append(lm.register_forward_pre_hook(self._lm_pre, with_kwargs=True))
        handles.append(lm.register_forward_hook(self._lm_post))
        attn = self.ad.attention_module(self.k - 1)
        handles.append(attn.register_forward_pre_hook(self._score_pre, with_kwargs=True))
        for i in range(self.k, len(self.layers)):
            handles.append(self.layers[i].register_forward_pre_hook(self._layer_pre(i), with_kwargs=True))
        for i in range(self.n_deepstack):
            handles.append(self.layers[i].register_forward_hook(self._deepstack_post(i)))

    def begin(self, prepared) -> None:
        """Arm the hooks for the prefill of ``prepared`` (the next language-model call)."""
        plan = prepared.plan
        am = plan.attention_mask
        rows = []
        for r in range(plan.input_ids.shape[0]):
            valid = torch.nonzero(am[r]).view(-1) if am is not None else torch.arange(plan.input_ids.shape[1])
            spans = [(s.start, s.end) for s in prepared.spans if s.row == r]
            rows.append(LLMRow(r, spans, int(valid[0]), int(valid[-1])))
        queries = [sorted(set(self.method.queries(row))) for row in rows]
        for row, q in zip(rows, queries):
            if any(not row.first <= c <= row.last for c in q):
                raise ValueError(f"method {self.method.name!r} asked for query columns {q} outside row "
                                 f"{row.sample}'s tokens [{row.first}, {row.last}]")
        prepared.stats.llm_layer = self.k
        prepared.stats.llm_query_rows = [len(q) for q in queries]
        self.state = _CallState(prepared, rows, queries, length=int(plan.input_ids.shape[1]))

    # ------------------------------------------------------------------ hooks
    def _lm_pre(self, module, args, kwargs):
        st = self.state
        if st is None:
            return None
        hidden = kwargs.get("inputs_embeds")
        cache = compat.cache_from_kwargs(kwargs)
        if st.phase == "pending":
            if hidden is None or hidden.shape[1] != st.length:
                raise RuntimeError(f"the language model got {None if hidden is None else hidden.shape[1]} tokens, "
                                   f"the pruned prefill has {st.length}")
            if hidden.shape[0] != len(st.rows):
                raise ValueError(f"an llm-stage method runs on the batch it prepared ({len(st.rows)} rows), got "
                                 f"{hidden.shape[0]}: num_return_sequences > 1 and beam search are not supported")
            st.phase, st.cache = "prefill", cache
            am = kwargs.get("attention_mask")
            st.am2d = am if am is not None and am.ndim == 2 else None
            pos = kwargs.get("position_ids")
            st.text_pos = pos is not None and pos.ndim == 3 and pos.shape[0] == 4
            if "deepstack_visual_embeds" in kwargs:
                ds, vm = kwargs.pop("deepstack_visual_embeds"), kwargs.pop("visual_pos_masks", None)
                st.deep = (vm, ds) if ds is not None else None
            return args, kwargs
        if st.phase in ("prefill", "decode") and cache is not None and cache is st.cache:
            st.phase, st.step_ready = "decode", False
            am = kwargs.get("attention_mask")
            st.step_mask2d = am if am is not None and am.ndim == 2 else None
            kwargs.pop("deepstack_visual_embeds", None)
            kwargs.pop("visual_pos_masks", None)
            return args, kwargs
        self.state = None  # an unrelated call: run unpruned
        return None

    def _lm_post(self, module, args, output):
        """A prefill without a cache argument gets the cache the text model made: later decode steps
        (``model(input_ids=token, past_key_values=out.past_key_values)``) are recognised by it."""
        st = self.state
        if st is not None and st.phase == "prefill" and st.cache is None:
            st.cache = compat.cache_from_output(output)
        return None

    def _clock(self) -> float:
        if self.sync_cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _score_pre(self, module, args, kwargs):
        st = self.state
        if st is None or st.phase != "prefill" or not (any(st.queries) or self.method.needs_key_norms):
            return None
        t0 = self._clock()
        hidden = args[0] if args else kwargs["hidden_states"]
        cos, sin = kwargs["position_embeddings"]
        if self.method.needs_key_norms:
            with torch.no_grad():
                st.key_norms = key_norms(module, hidden, cos, sin)
            if not any(st.queries):
                st.ms += (self._clock() - t0) * 1e3
                return None
        b, n_q = len(st.rows), max(len(q) for q in st.queries)
        q_cols = torch.zeros((b, n_q), dtype=torch.long, device=hidden.device)
        q_valid = torch.zeros((b, n_q), dtype=torch.bool, device=hidden.device)
        for r, q in enumerate(st.queries):
            q_cols[r] = q[0] if q else st.rows[r].last  # padding queries: a real column, weight 0
            q_cols[r, : len(q)] = torch.tensor(q, dtype=torch.long)
            q_valid[r, : len(q)] = True
        key_valid = (st.am2d.bool() if st.am2d is not None
                     else torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device))
        with torch.no_grad():
            st.scores = attention_rows(module, hidden, cos, sin, q_cols, q_valid, key_valid, self.ad.query_gate)
        st.ms += (self._clock() - t0) * 1e3
        return None

    def _layer_pre(self, i: int):
        def hook(module, args, kwargs):
            st = self.state
            if st is None or st.phase not in ("prefill", "decode"):
                return None
            t0 = self._clock()
            if st.phase == "prefill":
                if i == self.k:
                    hidden = args[0] if args else kwargs.pop("hidden_states")
                    args = (self._select(st, hidden, kwargs["position_embeddings"]), *args[1:])
                kwargs["position_embeddings"] = st.pe
                kwargs["position_ids"] = st.pos_kept if st.text_pos else kwargs.get("position_ids")
            elif not st.step_ready:
                hidden = args[0] if args else kwargs["hidden_states"]
                st.masks = self._masks(st, hidden, self._decode_mask2d(st, hidden))
                st.step_ready = True
            kwargs["attention_mask"] = st.masks[self.layer_types[i]]
            st.ms += (self._clock() - t0) * 1e3
            if i == len(self.layers) - 1:
                st.prepared.stats.llm_ms = st.ms
            return args, kwargs

        return hook

    def _deepstack_post(self, i: int):
        def hook(module, args, output):
            st = self.state
            if st is None or st.phase != "prefill" or st.deep is None:
                return None
            mask, feats = st.deep_kept if i >= self.k else st.deep
            return self.ad.language_model()._deepstack_process(output, mask, feats[i])

        return hook

    # ------------------------------------------------------------------ prefill at layer K
    def _select(self, st: _CallState, hidden: torch.Tensor, pe) -> torch.Tensor:
        prep = st.prepared
        dev = hidden.device
        b, length = hidden.shape[:2]
        valid = st.am2d.bool() if st.am2d is not None else torch.ones((b, length), dtype=torch.bool, device=dev)
        keep = valid.clone()
        for ctx, span, stats in zip(prep.contexts, prep.spans, prep.stats.images):
            n = span.end - span.start
            if not self.method.acts_on(ctx):
                stats.tokens_by_stage["llm"] = n
                continue
            scores = st.scores[span.row, span.start : span.end] if st.scores is not None else None
            ids = prep.plan.input_ids[span.row].to(dev)
            view = LLMRowView(st.rows[span.row], (span.start, span.end), hidden[span.row],
                              None if st.key_norms is None else st.key_norms[span.row],
                              instruction_columns(ids, valid[span.row], span.end, self._skip_ids),
                              self.ad.final_norm())
            out = self.method.select_in_row(ctx, scores, hidden[span.row, span.start : span.end], view)
            local, strata = out if isinstance(out, tuple) else (out, None)
            local = check_local_indices(local, n, self.method.name, ctx.image)
            keep[span.row, span.start : span.end] = False
            keep[span.row, span.start + local.to(dev)] = True
            stats.kept_blocks = stats.kept_blocks[local.numpy()]
            stats.tokens_by_stage["llm"] = int(local.numel())
            if strata is not None:
                stats.strata = {k: ctx.kept[torch.as_tensor(v, dtype=torch.long).numpy()] for k, v in strata.items()}
        counts = keep.sum(1)
        new_len = int(counts.max())
        side = prep.plan.side
        index = torch.zeros((b, new_len), dtype=torch.long, device=dev)
        am_new = torch.zeros((b, new_len), dtype=torch.long, device=dev)
        for r in range(b):
            cols = torch.nonzero(keep[r]).view(-1)
            o = new_len - cols.numel() if side == "left" else 0
            index[r, o : o + cols.numel()] = cols
            am_new[r, o : o + cols.numel()] = 1
        st.keep = index
        st.am2d_kept = am_new if (st.am2d is not None or bool((am_new == 0).any())) else None
        cos, sin = pe
        st.pe = (self._gather(cos, index), self._gather(sin, index))
        st.pos_kept = (am_new.cumsum(-1) - 1).masked_fill(am_new == 0, 0)
        kept_hidden = self._gather(hidden, index)
        st.masks = self._masks(st, kept_hidden, st.am2d_kept)
        if st.deep is not None:
            vm, feats = st.deep
            vm = vm.to(dev)
            ordinal = (vm.reshape(-1).long().cumsum(0) - 1).view(vm.shape)
            vm_kept = vm.gather(1, index) & am_new.bool()
            take = ordinal.gather(1, index)[vm_kept]
            st.deep_kept = (vm_kept, [f[take.to(f.device)] for f in feats])
        prep.stats.llm_tokens_final = new_len
        prep.stats.llm_keep = [index[r, am_new[r].bool()].cpu() for r in range(b)]
        prep.stats.llm_attention_mask = st.am2d_kept
        return kept_hidden

    @staticmethod
    def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x: (B, L, ...) -> (B, L'', ...) at ``index`` (B, L'')."""
        idx = index.to(x.device).view(*index.shape, *([1] * (x.ndim - 2))).expand(*index.shape, *x.shape[2:])
        return x.gather(1, idx)

    # ------------------------------------------------------------------ masks
    def _masks(self, st: _CallState, hidden: torch.Tensor, am2d: torch.Tensor | None) -> dict:
        """Per layer type, the mask layers >= K need for ``hidden`` (B, q, D) against their own cache."""
        out = {}
        for kind in set(self.layer_types[self.k :]):
            builder = _MASK_BUILDERS.get(kind)
            if builder is None:
                raise ValueError(f"layer type {kind!r} is not supported by the llm stage")
            kw = {}
            if kind != "linear_attention":
                kw["layer_idx"] = next(i for i in range(self.k, len(self.layers)) if self.layer_types[i] == kind)
            kw[compat.cache_kwarg(builder)] = st.cache
            out[kind] = builder(config=self.config, inputs_embeds=hidden, attention_mask=am2d, **kw)
        return out

    def _decode_mask2d(self, st: _CallState, hidden: torch.Tensor) -> torch.Tensor | None:
        """2-D mask of a decode step for layers >= K: the kept prefill columns, then the new columns."""
        if st.am2d_kept is None:
            return None
        layer = next(i for i in range(self.k, len(self.layers)) if self.layer_types[i] in _ATTENTION_LAYERS)
        past = st.cache.layers[layer].get_seq_length() if st.cache is not None else 0
        new = past + hidden.shape[1] - st.am2d_kept.shape[1]
        if st.step_mask2d is not None:
            tail = st.step_mask2d[:, st.length :]
            if tail.shape[1] != new:
                raise RuntimeError(f"decode mask has {tail.shape[1]} new columns, the pruned cache expects {new}")
        else:
            tail = torch.ones((hidden.shape[0], new), dtype=st.am2d_kept.dtype, device=st.am2d_kept.device)
        return torch.cat([st.am2d_kept, tail.to(st.am2d_kept.device, st.am2d_kept.dtype)], dim=1)
