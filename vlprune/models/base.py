"""Model adapters: what differs between Qwen-VL families inside transformers, one small class each.

An adapter wraps one loaded ``*ForConditionalGeneration`` model and exposes, per pipeline stage:

* ``vision_kwargs`` / ``encode_images`` (pre-ViT): run the model's own vision tower on the kept
  patch rows only, passing the precomputed tensors its public ``forward(**kwargs)`` accepts
  (``position_ids`` = original 2-D patch coordinates, ``cu_seqlens`` = per-image kept lengths, plus
  family extras: Qwen2.5-VL windows, Qwen3-VL/3.5 interpolated position-embedding taps). No upstream
  forward is copied or patched (PixelPrune §3.2.3).
* ``rope_index`` (LLM positions): the family's ``get_rope_index`` on the unpruned sequence.
* ``language_model`` / ``decoder_layers`` (for later in-LLM methods at layer K: FastV, GUIPruner SSP).

Adapters are registered by family name (:func:`register_adapter`); :func:`get_adapter` finds the family
of ``config.model_type`` in :mod:`vlprune.families`, the one home of each family's facts.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from transformers.vision_utils import get_vision_position_ids

from vlprune import compat
from vlprune.families import FamilySpec, get_family

_ADAPTERS: dict[str, type["FamilyAdapter"]] = {}


def register_adapter(cls: type["FamilyAdapter"]) -> type["FamilyAdapter"]:
    """Class decorator: register the adapter of the family ``cls.family``."""
    _ADAPTERS[get_family(cls.family).name] = cls
    return cls


def supported_model_types() -> list[str]:
    """Every ``config.model_type`` that has an adapter (all of :func:`vlprune.families.model_types`)."""
    import vlprune.models  # noqa: F401  (registers the built-in adapters)

    return sorted(mt for name in _ADAPTERS for mt in get_family(name).model_types)


def get_adapter(model) -> "FamilyAdapter":
    """The adapter for ``model`` (its family from ``model.config.model_type``); ValueError if unsupported."""
    import vlprune.models  # noqa: F401

    config = getattr(model, "config", None)
    mt = getattr(config, "model_type", None)
    try:
        name = get_family(mt).name if isinstance(mt, str) else None
    except ValueError:
        name = None
    if name not in _ADAPTERS:
        raise ValueError(
            f"unsupported model family: config.model_type={mt!r} ({type(model).__name__}); "
            f"vlprune supports {', '.join(supported_model_types())}"
        )
    return _ADAPTERS[name](model)


def patch_rows(kept_blocks: np.ndarray, offset: int, merge: int) -> torch.Tensor:
    """Rows of ``pixel_values`` holding the kept blocks: each block is ``merge**2`` consecutive rows.

    kept_blocks: (k,) sorted block indices of one image; returns (k * merge**2,) int64, sorted.
    """
    u = merge * merge
    k = torch.from_numpy(np.ascontiguousarray(kept_blocks, dtype=np.int64))
    return (offset + k[:, None] * u + torch.arange(u)).reshape(-1)


def cu_seqlens_from_sizes(sizes: list[int], device=None) -> torch.Tensor:
    """(n+1,) int32 cumulative boundaries, one attention segment per entry of ``sizes``."""
    return F.pad(torch.tensor(sizes, dtype=torch.int64, device=device).cumsum(0), (1, 0)).to(torch.int32)


def patchify(rgb: np.ndarray, family: FamilySpec, image_mean=None, image_std=None) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """uint8 (H, W, 3) -> processor-layout rows (h*w, 3*T*P*P) float32 and grid (1, h, w) in patches.

    Same layout as the Qwen image processor: rescale 1/255, normalise, repeat over the temporal
    patch, rows block-major over (h/m, w/m, m, m). H and W must be multiples of the block size.
    """
    p, m, t = family.patch_size, family.merge_size, family.temporal_patch_size
    h_px, w_px, _ = rgb.shape
    if h_px % (p * m) or w_px % (p * m):
        raise ValueError(f"image {h_px}x{w_px} px is not a multiple of the {p * m}-px block")
    mean = np.asarray(image_mean if image_mean is not None else family.image_mean, dtype=np.float32)
    std = np.asarray(image_std if image_std is not None else family.image_std, dtype=np.float32)
    x = (rgb.astype(np.float32) / 255.0 - mean) / std  # (H, W, 3)
    x = np.repeat(x.transpose(2, 0, 1)[None], t, axis=0)  # (T, 3, H, W)
    gh, gw = h_px // p, w_px // p
    x = x.reshape(t, 3, gh // m, m, p, gw // m, m, p)
    x = x.transpose(2, 5, 3, 6, 1, 0, 4, 7)  # (gh/m, gw/m, m, m, C, T, p, p)
    rows = np.ascontiguousarray(x).reshape(gh * gw, 3 * t * p * p)
    return torch.from_numpy(rows), (1, gh, gw)


class FamilyAdapter:
    """Base adapter: Qwen2-VL behaviour (2-D RoPE + per-image full attention in the ViT)."""

    family: ClassVar[str] = ""

    def __init__(self, model):
        self.model = model
        self.spec: FamilySpec = get_family(self.family)
        inner = getattr(model, "model", None)
        visual = getattr(inner, "visual", None) if inner is not None else None
        if visual is None:
            raise ValueError(
                f"{type(model).__name__} has no vision tower (model.model.visual); vlprune needs a "
                f"Qwen-VL *ForConditionalGeneration model with its vision encoder"
            )
        if not hasattr(inner, "get_rope_index") or not hasattr(inner, "language_model"):
            raise ValueError(f"{type(model).__name__} lacks get_rope_index/language_model; not a Qwen-VL model")
        self.inner = inner
        self.visual = visual
        vc = model.config.vision_config
        got = (vc.patch_size, vc.spatial_merge_size, vc.temporal_patch_size)
        want = (self.spec.patch_size, self.spec.merge_size, self.spec.temporal_patch_size)
        if got != want:
            raise ValueError(
                f"model vision config (patch, merge, temporal) = {got} disagrees with the {self.spec.name} "
                f"family {want}"
            )
        self.merge = int(vc.spatial_merge_size)
        self.row_dim = int(getattr(vc, "in_channels", 3)) * self.spec.temporal_patch_size * self.spec.patch_size**2

    # ------------------------------------------------------------------ transformers probe
    #: ``transformers.vision_utils`` helpers whose tensors the adapter precomputes for the kept rows
    vision_helpers: ClassVar[tuple[str, ...]] = ("get_vision_position_ids", "get_vision_cu_seqlens")

    def transformers_checks(self) -> list[tuple[str, object]]:
        """(entry point, check) pairs the pre-ViT path relies on (see :func:`vlprune.compat.require`):
        the vision helpers that take precomputed tensors from the tower's ``**kwargs``, the model's
        ``mm_encoder_outputs`` and the family's ``get_rope_index``."""
        import transformers.vision_utils as vu

        model_fwd = type(self.inner).forward
        return [
            *((f"transformers.vision_utils.{name}(..., kwargs=...)",
               lambda name=name: compat.has_params(getattr(vu, name), "kwargs")) for name in self.vision_helpers),
            (f"{type(self.inner).__name__}.forward(mm_encoder_outputs=...)",
             lambda: "mm_encoder_outputs" in compat.params(model_fwd)),
            (f"{type(self.inner).__name__}.get_rope_index(mm_token_type_ids=...)",
             lambda: compat.has_params(self.inner.get_rope_index, "mm_token_type_ids")),
        ]

    # ------------------------------------------------------------------ config
    @property
    def config(self):
        return self.model.config

    @property
    def image_token_id(self) -> int:
        return int(self.config.image_token_id)

    @property
    def video_token_id(self) -> int:
        return int(self.config.video_token_id)

    @property
    def attn_implementation(self) -> str:
        """The attention implementation the decoder runs (``sdpa``, ``eager``, ``flash_attention_2`` ...)."""
        return str(getattr(self.config.get_text_config(), "_attn_implementation", None) or "")

    def language_model(self) -> torch.nn.Module:
        """The decoder stack (for in-LLM methods pruning from layer K on)."""
        return self.inner.language_model

    def decoder_layers(self) -> torch.nn.ModuleList:
        return self.inner.language_model.layers

    def layer_types(self) -> list[str]:
        """Per decoder layer: ``full_attention``, ``sliding_attention`` or ``linear_attention``."""
        tc = self.config.get_text_config()
        n = len(self.decoder_layers())
        types = list(getattr(tc, "layer_types", None) or ["full_attention"] * n)
        if len(types) != n:
            raise ValueError(f"config.layer_types has {len(types)} entries for {n} decoder layers")
        return types

    def attention_module(self, layer: int) -> torch.nn.Module:
        """The self-attention module of decoder layer ``layer`` (where attention rows are recomputed)."""
        attn = getattr(self.decoder_layers()[layer], "self_attn", None)
        if attn is None:
            raise ValueError(f"decoder layer {layer} has no self-attention module")
        return attn

    def final_norm(self) -> torch.nn.Module:
        """The text model's final norm (DART / MoB measure similarity on hidden states through it)."""
        return self.inner.language_model.norm

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """(T,) token ids -> (T, D) the LLM's input embeddings (CDPruner's instruction embeddings)."""
        return self.inner.get_input_embeddings()(ids)

    # ------------------------------------------------------------------ vision tower internals
    def vision_depth(self) -> int:
        return len(self.visual.blocks)

    def vision_attention_module(self, layer: int) -> torch.nn.Module:
        """The attention module of vision block ``layer`` (``qkv``, ``num_heads``, ``scaling``; called with
        ``cu_seqlens`` and rotary ``position_embeddings``), where VisionZip / VisPruner read attention."""
        return self.visual.blocks[layer].attn

    @property
    def deepstack(self) -> bool:
        """The vision tower returns DeepStack features that must be split per image (Qwen3-VL)."""
        return self.spec.deepstack

    @property
    def query_gate(self) -> bool:
        """The attention's q_proj emits [query, gate] per head (Qwen3.5)."""
        return self.spec.query_gate

    def deepstack_layers(self) -> int:
        """Decoder layers after which DeepStack visual features are added (Qwen3-VL)."""
        return len(getattr(self.config.vision_config, "deepstack_visual_indexes", None) or ())

    def check_processor(self, processor) -> None:
        """ValueError if the processor's patch/merge/temporal size or image token disagree with the model."""
        ip = getattr(processor, "image_processor", processor)
        for attr, want in (("patch_size", self.spec.patch_size), ("merge_size", self.merge),
                           ("temporal_patch_size", self.spec.temporal_patch_size)):
            got = getattr(ip, attr, None)
            if got is not None and int(got) != int(want):
                raise ValueError(f"processor {attr}={got} disagrees with the model's {want} ({self.spec.name})")
        tok_id = getattr(processor, "image_token_id", None)
        if tok_id is not None and int(tok_id) != self.image_token_id:
            raise ValueError(f"processor image_token_id={tok_id} disagrees with the model's {self.image_token_id}")

    # ------------------------------------------------------------------ LLM positions
    def rope_index(self, input_ids, mm_token_type_ids, attention_mask, image_grid_thw, video_grid_thw, extra: dict):
        """(3, B, L) M-RoPE positions and (B, 1) deltas of the unpruned sequence (family's own code)."""
        return self.inner.get_rope_index(
            input_ids, mm_token_type_ids=mm_token_type_ids, image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw, attention_mask=attention_mask, **extra,
        )

    #: extra processor outputs ``get_rope_index`` needs (Qwen2.5-VL: video timing)
    rope_extra_keys: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ vision tower
    def vision_kwargs(self, grid_thw: torch.Tensor, rows: torch.Tensor, kept: list[np.ndarray]) -> dict:
        """Precomputed kwargs for the vision tower on the kept rows.

        grid_thw: (n, 3) patch grids of the (possibly resized) images; rows: (N_kept,) indices of the
        kept patch rows in the unpruned (virtual) pixel_values; kept[i]: kept blocks of image i.
        Returns ``position_ids`` (N_kept, 2) original (h, w) patch coordinates and ``cu_seqlens``.
        """
        pos = get_vision_position_ids(grid_thw, self.merge)
        return {"position_ids": pos[rows.to(pos.device)], "cu_seqlens": self._kept_cu_seqlens(kept, grid_thw.device)}

    def _kept_cu_seqlens(self, kept: list[np.ndarray], device=None) -> torch.Tensor:
        """(n+1,) int32 boundaries of each image's kept patch rows (one attention segment per image)."""
        return cu_seqlens_from_sizes([len(k) * self.merge**2 for k in kept], device)

    # ------------------------------------------------------------------ in-ViT pruning (runtime.vit_prune)
    def vit_sequence_order(self, vkw: dict, total: int) -> np.ndarray:
        """(total,) the block at each position of the tower's hidden sequence (raster order here)."""
        return np.arange(total, dtype=np.int64)

    def vit_block_windowed(self, block: int) -> bool:
        """Whether vision block ``block`` attends within windows (``cu_window_seqlens``) instead of per image."""
        return False

    def vit_kept_segments(self, grid_thw: torch.Tensor, kept: list[np.ndarray]) -> dict:
        """Attention segments of the kept blocks' rows: ``{"full": cu_seqlens}`` (+ ``"window"``)."""
        return {"full": self._kept_cu_seqlens(kept)}

    def encode_images(self, pixel_rows: torch.Tensor, grid_thw: torch.Tensor, vkw: dict, kept_sizes: list[int]):
        """Run the vision tower on kept rows (N_kept, D) -> output with per-image ``pooler_output``."""
        out = self.visual(pixel_rows.type(self.visual.dtype), grid_thw=grid_thw, return_dict=True, **vkw)
        if out.pooler_output.shape[0] != sum(kept_sizes):
            raise RuntimeError(
                f"vision tower returned {out.pooler_output.shape[0]} tokens for {sum(kept_sizes)} kept blocks"
            )
        out.pooler_output = torch.split(out.pooler_output, kept_sizes)
        if self.deepstack:
            out.deepstack_features = [torch.split(f, kept_sizes) for f in out.deepstack_features]
        return out
