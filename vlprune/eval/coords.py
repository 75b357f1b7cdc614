"""Qwen-VL output conventions: coordinate frames and the parsers that read points from model output.

Frames (the family's native grounding convention):

* ``knorm``     -- integers on a 0–1000 grid of the image, whatever its size (Qwen2-VL box tokens,
  Qwen3-VL / Qwen3.5 JSON and tool calls; Alibaba's Qwen3-VL docs say 0–999, outputs of 1000 occur).
* ``canvas_px`` -- absolute pixels of the resized image the model saw, ``canvas = (W_r, H_r)``
  (Qwen2.5-VL; ``W_r = grid_w * patch_size`` from the processor's ``image_grid_thw``).

Both are mapped to *normalised* ``(x, y)`` in [0, 1] of the original screenshot; the resize keeps the
aspect ratio up to rounding, so a fraction of the canvas is the same fraction of the original.

Out-of-range points are **refused** (``ParseError``), not clamped: a point outside the image is in no
ground-truth box (the published grounding evaluators -- SeeClick ``pretrain/screenspot_test.py``,
ScreenSpot-Pro ``eval_screenspot_pro.py`` -- divide without clamping, so such a point is always
wrong), while clamping could move it onto a box touching the border and score it right. Refusal also
surfaces a canvas mismatch (model saw a different size than reported) as a format error instead of
hiding it. The closed ranges ``[0, 1000]`` (knorm) and ``[0, W_r] x [0, H_r]`` (canvas_px) are accepted.

Output shapes read by :func:`find_point` (first match wins, in this order):

1. JSON -- a ``<tool_call>{...}</tool_call>`` payload, a fenced ````` ```json ````` block or a bare JSON
   value -- holding ``"point_2d": [x, y]``, ``"bbox_2d": [x1, y1, x2, y2]`` or a tool call's
   ``"arguments": {"coordinate": [x, y]}`` (Qwen2.5-VL / Qwen3-VL ``computer_use`` / ``mobile_use``);
   a bare JSON array of exactly 2 or 4 numbers (as ScreenSpot-Pro's Qwen2.5-VL wrapper accepts).
2. Box tokens -- ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` (Qwen2-VL) or ``<box>...</box>`` (Qwen-VL),
   one or two pairs.
3. Bare parenthesised pairs: exactly one ``(x,y)``, or exactly two written as ``(x1,y1),(x2,y2)`` --
   box tokens decoded with ``skip_special_tokens=True`` leave this; any other number of pairs is
   ambiguous and refused.

A box gives its centre. Anything else raises :class:`ParseError`: no number is ever guessed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Iterator

from vlprune.families import get_family, list_families


class ParseError(ValueError):
    """A model output (or a coordinate in it) that cannot be read as the expected shape."""


#: family -> coordinate frame of its grounding / agent outputs (``FamilySpec.coord_frame``)
FRAMES: dict[str, str] = {name: get_family(name).coord_frame for name in list_families()}

KNORM_SCALE = 1000

#: keys whose value is a point (2 numbers) or a box (4 numbers), searched depth-first in JSON outputs
POINT_KEYS = ("point_2d", "bbox_2d", "coordinate")


# ---------------------------------------------------------------------------------------------- frames
def frame_of(family: str) -> str:
    """Coordinate frame of ``family`` (a vlprune family name or a ``config.model_type``)."""
    return FRAMES[get_family(family).name]


def _extent(family: str, canvas) -> tuple[float, float]:
    """(x extent, y extent) of the family's frame: 1000 x 1000, or the canvas (W_r, H_r)."""
    if frame_of(family) == "knorm":
        return float(KNORM_SCALE), float(KNORM_SCALE)
    if canvas is None or len(canvas) != 2 or not all(_is_number(v) and v > 0 for v in canvas):
        raise ValueError(f"{family}: answers in canvas pixels; canvas must be (W_r, H_r) > 0, got {canvas!r}")
    return float(canvas[0]), float(canvas[1])


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def to_norm(xy, family: str, canvas=None) -> tuple[float, float]:
    """A point in the family's frame -> normalised (x, y) of the original image.

    ``canvas`` = (W_r, H_r) the model saw (required for Qwen2.5-VL, ignored for k-norm families).
    Raises :class:`ParseError` for a non-numeric or out-of-range point (see the module docstring).
    """
    if len(xy) != 2 or not all(_is_number(v) for v in xy):
        raise ParseError(f"point must be two finite numbers, got {xy!r}")
    ex, ey = _extent(family, canvas)
    x, y = float(xy[0]), float(xy[1])
    if not (0.0 <= x <= ex and 0.0 <= y <= ey):
        raise ParseError(
            f"point ({xy[0]}, {xy[1]}) lies outside the {frame_of(family)} frame [0, {ex:g}] x [0, {ey:g}]"
        )
    return x / ex, y / ey


def from_norm(xy_norm, family: str, canvas=None) -> tuple[int, int]:
    """Normalised (x, y) -> integer point in the family's frame (to write actions into prompts).

    Integer cells are ``0 .. N-1`` (N = 1000 or W_r / H_r), so 1.0 maps to the last cell (999, W_r - 1).
    """
    if len(xy_norm) != 2 or not all(_is_number(v) and 0.0 <= v <= 1.0 for v in xy_norm):
        raise ValueError(f"normalised point must be two numbers in [0, 1], got {xy_norm!r}")
    ex, ey = _extent(family, canvas)
    return (min(round(xy_norm[0] * ex), int(ex) - 1), min(round(xy_norm[1] * ey), int(ey) - 1))


# ---------------------------------------------------------------------------------------------- JSON
_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"```json[ \t]*\n?(.*?)(?:```|$)", re.S | re.I)
_DECODER = json.JSONDecoder()


def _decode_strict(body: str, where: str) -> Any:
    """The one JSON value that ``body`` holds (surrounding whitespace allowed), else ParseError."""
    body = body.strip()
    try:
        value, end = _DECODER.raw_decode(body)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{where} is not valid JSON ({exc.msg} at char {exc.pos}): {body[:80]!r}") from None
    if body[end:].strip():
        raise ParseError(f"{where} has text after its JSON value: {body[end:end + 40]!r}")
    return value


def _bare_json(text: str) -> Iterator[Any]:
    """Every JSON object / array that decodes at some ``{`` or ``[`` of free text, left to right."""
    i = 0
    while True:
        starts = [p for p in (text.find("{", i), text.find("[", i)) if p >= 0]
        if not starts:
            return
        i = min(starts)
        try:
            value, end = _DECODER.raw_decode(text, i)
        except json.JSONDecodeError:
            i += 1
            continue
        yield value
        i = end


def _json_values(text: str) -> Iterator[Any]:
    """JSON values of an output: tool-call payloads, else ```json fenced blocks, else bare values.

    A tool-call tag or a ```json block whose content is not JSON raises ParseError (strict); free text
    (untagged fences included) that merely contains braces yields nothing.
    """
    calls = _TOOL_CALL.findall(text)
    if calls:
        for k, body in enumerate(calls):
            yield _decode_strict(body, f"<tool_call> #{k}")
        return
    fences = _FENCE.findall(text)
    if fences:
        for k, body in enumerate(fences):
            yield _decode_strict(body, f"fenced block #{k}")
        return
    yield from _bare_json(text)


def find_tool_call(text: str) -> dict | None:
    """The first ``<tool_call>{json}</tool_call>`` payload (or fenced / bare JSON object) as a dict.

    None when the text holds no JSON object; ParseError when a tag or fence holds invalid JSON or a
    tool-call payload is not an object. A missing ``</tool_call>`` (output cut at max tokens) is tolerated.
    """
    for value in _json_values(text):
        if isinstance(value, dict):
            return value
        if _TOOL_CALL.search(text):
            raise ParseError(f"<tool_call> payload must be a JSON object, got {type(value).__name__}")
    return None


# ---------------------------------------------------------------------------------------------- points
_NUM = r"-?\d+(?:\.\d+)?"
_PAIR = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
_BOX_TOKENS = re.compile(r"<\|box_start\|>(.*?)<\|box_end\|>|<box>(.*?)</box>", re.S)
_BOX_PAIRS = re.compile(rf"\(\s*{_NUM}\s*,\s*{_NUM}\s*\)\s*,\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\)")


def _centre(nums, where: str) -> tuple[float, float]:
    """A point from 2 numbers, or the centre of a box from 4 (x1, y1, x2, y2)."""
    if not isinstance(nums, (list, tuple)) or not all(_is_number(v) for v in nums):
        raise ParseError(f"{where} must be a list of numbers, got {nums!r}")
    if len(nums) == 2:
        return float(nums[0]), float(nums[1])
    if len(nums) == 4:
        return (nums[0] + nums[2]) / 2.0, (nums[1] + nums[3]) / 2.0
    raise ParseError(f"{where} must hold 2 (point) or 4 (box) numbers, got {len(nums)}")


def _point_in_json(value: Any) -> tuple[float, float] | None:
    """Depth-first: the first point / box under a key of POINT_KEYS, or a bare [x, y] / [x1, y1, x2, y2]."""
    if isinstance(value, dict):
        for key in POINT_KEYS:
            if key in value:
                return _centre(value[key], f'"{key}"')
        for sub in value.values():
            if isinstance(sub, (dict, list)):
                hit = _point_in_json(sub)
                if hit is not None:
                    return hit
        return None
    if isinstance(value, list):
        if len(value) in (2, 4) and all(_is_number(v) for v in value):
            return _centre(value, "JSON array")
        for sub in value:
            if isinstance(sub, (dict, list)):
                hit = _point_in_json(sub)
                if hit is not None:
                    return hit
    return None


def _point_in_pairs(chunk: str) -> tuple[float, float] | None:
    pairs = [(float(a), float(b)) for a, b in _PAIR.findall(chunk)]
    if not pairs:
        return None
    if len(pairs) > 2:
        raise ParseError(f"expected 1 or 2 (x,y) pairs, got {len(pairs)}: {chunk[:80]!r}")
    return _centre([c for p in pairs for c in p], "(x,y) pairs")


def find_point(text: str, family: str, canvas=None) -> tuple[float, float]:
    """Normalised (x, y) of the original image from any of the family's grounding output shapes.

    ``canvas`` = (W_r, H_r) the model saw (needed for Qwen2.5-VL). Raises ParseError when no point can
    be read, when a point-bearing key holds the wrong shape, or when the point is out of range.
    """
    for value in _json_values(text):
        hit = _point_in_json(value)
        if hit is not None:
            return to_norm(hit, family, canvas)
    for m in _BOX_TOKENS.finditer(text):
        hit = _point_in_pairs(m.group(1) if m.group(1) is not None else m.group(2))
        if hit is not None:
            return to_norm(hit, family, canvas)
    pairs = _PAIR.findall(text)
    if len(pairs) == 1 or (len(pairs) == 2 and _BOX_PAIRS.search(text)):
        return to_norm(_point_in_pairs(text), family, canvas)
    if pairs:
        raise ParseError(f"{len(pairs)} (x,y) pairs that are neither one point nor one box: {text[:120]!r}")
    raise ParseError(f"no point found in output {text[:120]!r}")
