"""Actions as each Qwen-VL family writes them, and the parser that maps an output back to an :class:`Action`.

Every family answers with the argument object of the Qwen ``mobile_use`` (phones) / ``computer_use``
(web) tool -- ``{"action": "click", "coordinate": [x, y]}`` -- and differs in two things (one row of
:data:`CONVENTIONS` each):

* the coordinate frame (:data:`vlprune.eval.coords.FRAMES`): Qwen2-VL and Qwen3-VL / Qwen3.5 use the
  0-1000 grid, Qwen2.5-VL absolute pixels of the resized canvas it saw;
* the wrapper: Qwen2.5-VL, Qwen3-VL and Qwen3.5 emit ``<tool_call>{"name": ..., "arguments": {...}}
  </tool_call>`` as in their published agent prompts; Qwen2-VL, which has no tool-call format, emits
  the bare argument object.

The parser accepts either shape from any family, maps points with :func:`vlprune.eval.coords.to_norm`
(out-of-frame points are refused) and raises :class:`ParseError` for anything it cannot read exactly:
no JSON object, an unknown action name, a missing or malformed argument. Nothing is guessed.

Argument names per action (mobile / web):

============  ==========================================  =====================================================
canonical     mobile_use                                  computer_use (web)
============  ==========================================  =====================================================
click         ``click`` coordinate                        ``left_click`` coordinate
long_press    ``long_press`` coordinate                   --
hover         --                                          ``mouse_move`` coordinate
scroll        ``swipe`` coordinate -> coordinate2          ``scroll`` direction (content direction)
type          ``type`` text                               ``type`` text [+ coordinate of the field]
select        --                                          ``select`` coordinate + text (option)
open_app      ``open`` text                               --
back / home   ``system_button`` button Back / Home        ``back``
enter         ``system_button`` button Enter              ``key`` keys ["Enter"] [+ coordinate]
recent        ``system_button`` button Recent             --
wait          ``wait``                                    ``wait``
finish        ``terminate`` status "success"              ``terminate`` status "success"
impossible    ``terminate`` status "failure"              ``terminate`` status "failure"
============  ==========================================  =====================================================

A swipe's finger direction is the dominant axis of coordinate2 - coordinate; its content direction is
the opposite one. A scroll written into a prompt uses the fixed swipe of :data:`records.FIXED_SWIPES`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from vlprune.eval.agent.records import FIXED_SWIPES, OPPOSITE, Action, RecordError, swipe_direction
from vlprune.eval.coords import ParseError, find_tool_call, frame_of, from_norm, to_norm
from vlprune.families import get_family

TOOLS = {"mobile": "mobile_use", "web": "computer_use"}
BUTTONS = {"back": "Back", "home": "Home", "enter": "Enter", "recent": "Recent"}


@dataclass(frozen=True)
class Convention:
    """How one family writes an action: ``wrap`` = inside ``<tool_call>`` with the tool name."""

    wrap: bool


CONVENTIONS: dict[str, Convention] = {
    "qwen2-vl": Convention(wrap=False),
    "qwen2.5-vl": Convention(wrap=True),
    "qwen3-vl": Convention(wrap=True),
    "qwen3.5": Convention(wrap=True),
}


def convention_of(family: str) -> Convention:
    return CONVENTIONS[get_family(family).name]


def _platform(platform: str) -> str:
    if platform not in TOOLS:
        raise ValueError(f"platform must be one of {', '.join(TOOLS)}, got {platform!r}")
    return platform


# ---------------------------------------------------------------------------------------------- writing
def action_arguments(action: Action, platform: str, family: str, canvas=None) -> dict:
    """The tool-argument object of ``action`` with points in ``family``'s frame (``canvas`` = (W_r, H_r)
    the model sees, needed for Qwen2.5-VL). Raises ValueError for an action the platform has no name for."""
    web = _platform(platform) == "web"

    def xy(p):
        return list(from_norm(p, family, canvas))

    kind, out = action.type, None
    if kind == "click":
        out = {"action": "left_click" if web else "click", "coordinate": xy(action.point)}
    elif kind == "long_press" and not web:
        out = {"action": "long_press", "coordinate": xy(action.point)}
    elif kind == "hover" and web:
        out = {"action": "mouse_move", "coordinate": xy(action.point)}
    elif kind == "scroll":
        if web:
            out = {"action": "scroll", "direction": action.direction}
        else:
            start, end = FIXED_SWIPES[action.direction]
            out = {"action": "swipe", "coordinate": xy(start), "coordinate2": xy(end)}
    elif kind == "type":
        out = {"action": "type", "text": action.text}
        if web and action.point is not None:
            out["coordinate"] = xy(action.point)
    elif kind == "select" and web:
        out = {"action": "select", "coordinate": xy(action.point), "text": action.text}
    elif kind == "open_app" and not web:
        out = {"action": "open", "text": action.app}
    elif kind == "enter" and web:
        out = {"action": "key", "keys": ["Enter"]}
        if action.point is not None:
            out["coordinate"] = xy(action.point)
    elif kind in BUTTONS and not web:
        out = {"action": "system_button", "button": BUTTONS[kind]}
    elif kind == "back" and web:
        out = {"action": "back"}
    elif kind == "wait":
        out = {"action": "wait"}
    elif kind in ("finish", "impossible"):
        out = {"action": "terminate", "status": "success" if kind == "finish" else "failure"}
    if out is None:
        raise ValueError(f"action {kind!r} has no {TOOLS[platform]} form")
    return out


def format_action(action: Action, platform: str, family: str, canvas=None) -> str:
    """``action`` as the family writes it (a tool call, or the bare JSON arguments for Qwen2-VL)."""
    args = action_arguments(action, platform, family, canvas)
    if convention_of(family).wrap:
        payload = {"name": TOOLS[platform], "arguments": args}
        return "<tool_call>\n" + json.dumps(payload, ensure_ascii=False) + "\n</tool_call>"
    return json.dumps(args, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- parsing
def _number_list(value, key: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ParseError(f'"{key}" must be a list of numbers, got {value!r}')
    return [float(v) for v in value]


def _point(args: dict, key: str, family: str, canvas) -> tuple[float, float]:
    """``args[key]`` ([x, y], or a box [x1, y1, x2, y2] -> its centre) -> normalised (x, y)."""
    if key not in args:
        raise ParseError(f'action {args.get("action")!r} needs "{key}"')
    nums = _number_list(args[key], key)
    if len(nums) == 4:
        nums = [(nums[0] + nums[2]) / 2, (nums[1] + nums[3]) / 2]
    if len(nums) != 2:
        raise ParseError(f'"{key}" must hold 2 (point) or 4 (box) numbers, got {len(nums)}')
    return to_norm(nums, family, canvas)


def _text(args: dict, key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise ParseError(f'action {args.get("action")!r} needs a string "{key}", got {value!r}')
    return value


def _optional_point(args, family, canvas):
    return _point(args, "coordinate", family, canvas) if "coordinate" in args else None


def _scroll(args: dict) -> str:
    if "direction" in args:
        d = str(args["direction"]).lower()
        if d not in OPPOSITE:
            raise ParseError(f"scroll direction must be up / down / left / right, got {args['direction']!r}")
        return d
    if "pixels" in args:  # Qwen computer_use: positive scrolls up, negative down
        px = _number_list([args["pixels"]], "pixels")[0]
        if px == 0:
            raise ParseError("scroll of 0 pixels has no direction")
        return "up" if px > 0 else "down"
    raise ParseError('scroll needs "direction" or "pixels"')


def _key(args: dict) -> str:
    keys = args.get("keys", args.get("text"))
    keys = [keys] if isinstance(keys, str) else keys
    if not isinstance(keys, list) or len(keys) != 1 or not isinstance(keys[0], str):
        raise ParseError(f"key action must press one key, got {keys!r}")
    name = keys[0].lower()
    if name not in ("enter", "back", "home"):
        raise ParseError(f"key {keys[0]!r} is not one of Enter / Back / Home")
    return name


def _action_from_args(args: dict, family: str, canvas) -> Action:
    name = args.get("action")
    if not isinstance(name, str):
        raise ParseError(f'tool arguments need a string "action", got {name!r}')
    name = name.lower()
    if name in ("click", "left_click", "tap"):
        return Action("click", _point(args, "coordinate", family, canvas))
    if name == "long_press":
        return Action("long_press", _point(args, "coordinate", family, canvas))
    if name in ("mouse_move", "hover"):
        return Action("hover", _point(args, "coordinate", family, canvas))
    if name == "swipe":
        start = _point(args, "coordinate", family, canvas)
        end = _point(args, "coordinate2", family, canvas)
        if start == end:
            raise ParseError("swipe with coordinate == coordinate2 has no direction")
        return Action("scroll", direction=OPPOSITE[swipe_direction(start, end)])
    if name == "scroll":
        return Action("scroll", direction=_scroll(args))
    if name == "type":
        return Action("type", _optional_point(args, family, canvas), text=_text(args, "text"))
    if name == "select":
        return Action("select", _point(args, "coordinate", family, canvas), text=_text(args, "text"))
    if name in ("open", "open_app"):
        return Action("open_app", app=_text(args, "text") if "text" in args else _text(args, "app_name"))
    if name == "system_button":
        button = _text(args, "button").lower()
        if button not in BUTTONS:
            raise ParseError(f"system_button must be one of {', '.join(BUTTONS.values())}, got {button!r}")
        return Action(button)
    if name == "key":
        key = _key(args)
        return Action(key, _optional_point(args, family, canvas) if key == "enter" else None)
    if name in ("back", "home", "enter", "wait"):
        return Action(name)
    if name == "terminate":
        status = str(args.get("status", "")).lower()
        if status in ("success", "successful"):
            return Action("finish")
        if status in ("failure", "fail", "failed"):
            return Action("impossible")
        raise ParseError(f"terminate status must be success or failure, got {args.get('status')!r}")
    raise ParseError(f"unsupported action {args['action']!r}")


def parse_action(text: str, family: str, canvas=None) -> Action:
    """The action in a model output (tool call or bare arguments object), points normalised to the
    original screenshot. Raises :class:`ParseError` naming what is wrong."""
    obj = find_tool_call(text)
    if obj is None:
        raise ParseError(f"no action JSON in output {text[:120]!r}")
    if "arguments" in obj:
        if "name" in obj and obj["name"] not in TOOLS.values():
            raise ParseError(f"unknown tool {obj['name']!r}; expected {' or '.join(TOOLS.values())}")
        args = obj["arguments"]
        if isinstance(args, str):  # some models serialise the arguments object as a string
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                raise ParseError(f"tool arguments string is not JSON: {args[:80]!r}") from None
        if not isinstance(args, dict):
            raise ParseError(f"tool arguments must be an object, got {type(args).__name__}")
    else:
        args = obj
    try:
        return _action_from_args(args, family, canvas)
    except RecordError as exc:
        raise ParseError(str(exc)) from None


def frame_description(family: str, canvas=None) -> str:
    """One sentence stating the coordinate frame the family answers in."""
    if frame_of(family) == "knorm":
        return ("Coordinates are integers on a 1000x1000 grid over the screenshot: (0, 0) is the top-left "
                "corner and (999, 999) the bottom-right one.")
    w, h = canvas
    return f"The screen's resolution is {w}x{h}; coordinates are pixels of that screen."
