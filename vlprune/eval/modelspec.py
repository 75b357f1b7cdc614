"""``--model``: a local Qwen-VL checkpoint folder, or ``random:<shape>`` for a random-weight dry run.

* folder: ``AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)`` and
  ``AutoProcessor.from_pretrained(path, local_files_only=True)``; ``config.json``'s ``model_type`` must
  be a supported family (:mod:`vlprune.families`).
* ``random:<shape>``: a named real architecture (``random:qwen2-vl-2b``, see :mod:`vlprune.shapes`) or a
  tiny test one (``random:qwen3-vl-tiny``), random weights, with the family's offline processor
  (:func:`vlprune.processor.build_processor`); the config takes the processor's special-token ids.
  Outputs are meaningless: such runs check the pipeline, records and timing, never accuracy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vlprune.eval.config import EvalUsageError
from vlprune.families import get_family, list_families

RANDOM_PREFIX = "random:"


class ModelError(ValueError):
    """A ``--model`` that cannot be loaded; the message names the folder or shape."""


@dataclass
class LoadedModel:
    model: object
    processor: object
    family: str
    name: str  # the --model text
    shape: str | None  # random: the shape name; folder: None
    random_weights: bool
    device: str
    dtype: str  # torch dtype name

    def describe(self) -> dict:
        cfg = self.model.config
        return {
            "model": self.name, "family": self.family, "model_type": cfg.model_type, "shape": self.shape,
            "random_weights": self.random_weights, "dtype": self.dtype, "device": self.device,
            "llm_layers": cfg.get_text_config().num_hidden_layers, "vit_layers": _vit_depth(cfg),
        }


def _vit_depth(cfg) -> int | None:
    v = getattr(cfg, "vision_config", None)
    return getattr(v, "depth", None) if v is not None else None


def tiny_shapes() -> dict[str, str]:
    """Tiny test shapes ``<family>-tiny`` -> family (``vlprune.models.configs.build_config(family, "tiny")``)."""
    return {f"{name}-tiny": name for name in list_families()}


def random_shapes() -> list[str]:
    from vlprune.shapes import list_shapes

    return sorted(tiny_shapes()) + list_shapes()


def model_family(text: str) -> str:
    """The family of a ``--model`` value without loading weights (reads ``config.json`` of a folder)."""
    if text.startswith(RANDOM_PREFIX):
        shape = text[len(RANDOM_PREFIX):]
        if shape in tiny_shapes():
            return tiny_shapes()[shape]
        from vlprune.shapes import SHAPES

        if shape not in SHAPES:
            raise ModelError(f"--model {text}: unknown shape {shape!r}; expected one of: {', '.join(random_shapes())}")
        return SHAPES[shape].family
    path = Path(text)
    if not path.is_dir():
        raise ModelError(f"--model {text}: no such folder (give a checkpoint folder or random:<shape>)")
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ModelError(f"--model {path}: no config.json in this folder; not a Hugging Face checkpoint")
    try:
        model_type = json.loads(cfg_file.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise ModelError(f"--model {path}: {cfg_file.name} is not a JSON object ({exc})") from None
    try:
        return get_family(str(model_type)).name
    except ValueError:
        raise ModelError(
            f"--model {path}: model_type {model_type!r} is not a supported Qwen-VL model "
            f"(supported families: {', '.join(list_families())})"
        ) from None


def resolve_device(device: str | None, dtype: str, local_rank: int | None = None) -> tuple[str, str]:
    """(device, torch dtype name): ``None`` picks CUDA when present; ``auto`` dtype is bf16 on CUDA, fp32 on CPU."""
    import torch

    from vlprune.bench import BenchError, check_device

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and local_rank is not None:
        device = f"cuda:{local_rank}"
    if dtype == "auto":
        dtype = "bf16" if device.startswith("cuda") else "fp32"
    try:
        return device, check_device(device, dtype)
    except BenchError as exc:
        raise EvalUsageError(str(exc)) from None


def load_model(text: str, *, device: str = "cpu", dtype: str = "float32", min_pixels: int | None = None,
               max_pixels: int | None = None, seed: int = 0) -> LoadedModel:
    """Load ``--model`` (see module docstring) on ``device`` in ``dtype`` (a torch dtype name), eval mode."""
    import torch

    family = model_family(text)
    tdtype = getattr(torch, dtype)
    if text.startswith(RANDOM_PREFIX):
        shape = text[len(RANDOM_PREFIX):]
        model, proc = _random_model(family, shape, tdtype, min_pixels, max_pixels, seed)
        random_weights = True
    else:
        shape, random_weights = None, False
        model, proc = _checkpoint(Path(text), family, tdtype, min_pixels, max_pixels)
    from vlprune.eval.measure import resize_limits

    _, lo, hi = resize_limits(proc)
    if lo > hi:
        raise EvalUsageError(f"--model {text}: the processor's min_pixels {lo} exceeds max_pixels {hi} "
                             f"(set --min-pixels as well when lowering --max-pixels)")
    model = model.to(device).eval()
    return LoadedModel(model, proc, family, text, shape, random_weights, device, dtype)


def _random_model(family: str, shape: str, dtype, min_pixels, max_pixels, seed: int):
    import torch
    from transformers import AutoModelForImageTextToText

    from vlprune.models.configs import build_config
    from vlprune.processor import align_config_to_processor, build_processor

    proc = build_processor(family, min_pixels=min_pixels, max_pixels=max_pixels)
    cfg = build_config(family, "tiny" if shape in tiny_shapes() else shape)
    align_config_to_processor(cfg, proc)
    tok = proc.tokenizer
    eos, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id
    tc = cfg.get_text_config()
    tc.eos_token_id, tc.pad_token_id, tc.bos_token_id = eos, pad, None
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(cfg, dtype=dtype)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.generation_config.bos_token_id = None
    return model, proc


def _checkpoint(path: Path, family: str, dtype, min_pixels, max_pixels):
    from transformers import AutoModelForImageTextToText

    try:
        model = AutoModelForImageTextToText.from_pretrained(str(path), local_files_only=True, dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"--model {path}: cannot load the checkpoint: {exc}") from None
    proc = _checkpoint_processor(path, family)
    ip = proc.image_processor
    if min_pixels is not None or max_pixels is not None:
        ip.size = {"shortest_edge": min_pixels or ip.size["shortest_edge"],
                   "longest_edge": max_pixels or ip.size["longest_edge"]}
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = proc.tokenizer.pad_token_id
    return model, proc


def _checkpoint_processor(path: Path, family: str):
    """``AutoProcessor.from_pretrained(path, local_files_only=True)``; where that cannot be built (the
    video processor needs torchvision, which vlprune does not install) the family's processor from the
    checkpoint's own tokenizer, image processor and chat template without a video processor, said on stderr."""
    import sys

    from transformers import AutoProcessor

    try:
        proc = AutoProcessor.from_pretrained(str(path), local_files_only=True)
        if hasattr(proc, "image_processor") and hasattr(proc, "tokenizer"):
            return proc
        why = f"AutoProcessor gives a {type(proc).__name__}, not a Qwen-VL processor"
    except (OSError, ValueError, ImportError, KeyError) as exc:
        why = f"AutoProcessor failed ({str(exc).splitlines()[0]})"
    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    from vlprune.processor import image_only

    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        ip = AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"--model {path}: {why}, and its tokenizer / image processor cannot be loaded: {exc}") from None
    template = tok.chat_template
    jinja = path / "chat_template.jinja"
    if template is None and jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    if template is None:
        raise ModelError(f"--model {path}: {why}, and the checkpoint has no chat template")
    cls = image_only(getattr(transformers, get_family(family).processor_class))
    print(f"note: --model {path}: {why}; using its tokenizer, image processor and chat template "
          f"(images and text only)", file=sys.stderr)
    return cls(image_processor=ip, tokenizer=tok, chat_template=template)
