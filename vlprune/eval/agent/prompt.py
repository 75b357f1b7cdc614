"""Step prompts for GUI agents in the Qwen-VL chat format, and episode -> per-step samples.

A step prompt holds (GUIPruner's agent setting, arXiv 2602.23235 §3): the goal, the last K actions as
text, the last N history screenshots (oldest first) and the current screenshot as the **last** image.
History is the ground truth (teacher forcing), as in the published step-level evaluations.

Messages::

    system: Qwen function-calling prompt of the mobile_use / computer_use tool (task intro, tool schema
            with the screen resolution and the actions offered) -- or, for Qwen2-VL, the same in plain text
    user:   ["Previous screenshots, oldest first:", image x N,]  "Current screenshot:", image,
            "Task: <goal>" ["Step instruction: <low-level instruction>"] "Previous actions: ..."

Actions in the history are written as the family writes its answer (tool-argument JSON, points in its
frame: 0-1000 grid or pixels of the current screenshot's canvas), so the model reads and writes one
format. The published prompts each benchmark follows are named in :data:`TaskSpec.source`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

from vlprune.eval.agent.convention import TOOLS, action_arguments, convention_of, frame_description
from vlprune.eval.agent.records import Action, Episode
from vlprune.eval.base import ImageRef, PromptContext
from vlprune.eval.coords import frame_of
from vlprune.eval.tools import tool_system_text
from vlprune.options import choice, integer

_XY, _XY2, _TEXT = ("coordinate", "[x, y]"), ("coordinate2", "[x2, y2]"), ("text", '"..."')
#: action type -> {platform: (tool action name, ((argument, value shown), ...), what it does)}
_FORMS: dict[str, dict[str, tuple[str, tuple, str]]] = {
    "click": {"mobile": ("click", (_XY,), "tap the point (x, y)"),
              "web": ("left_click", (_XY,), "click the point (x, y)")},
    "long_press": {"mobile": ("long_press", (_XY,), "touch and hold the point (x, y)")},
    "hover": {"web": ("mouse_move", (_XY,), "move the pointer over (x, y)")},
    "scroll": {"mobile": ("swipe", (("coordinate", "[x1, y1]"), _XY2), "swipe the finger from (x1, y1) to (x2, y2)"),
               "web": ("scroll", (("direction", '"up" | "down" | "left" | "right"'),), "scroll the page content")},
    "type": {"mobile": ("type", (_TEXT,), "type the text into the focused field"),
             "web": ("type", (_XY, _TEXT), "type the text into the field at (x, y)")},
    "select": {"web": ("select", (_XY, _TEXT), "choose the option of the drop-down list at (x, y)")},
    "open_app": {"mobile": ("open", (("text", '"app name"'),), "launch the app")},
    "enter": {"mobile": ("system_button", (("button", '"Enter"'),), "press Enter"),
              "web": ("key", (("keys", '["Enter"]'), _XY), "press Enter in the element at (x, y)")},
    "back": {"mobile": ("system_button", (("button", '"Back"'),), "press Back"),
             "web": ("back", (), "go back to the previous page")},
    "home": {"mobile": ("system_button", (("button", '"Home"'),), "press Home")},
    "recent": {"mobile": ("system_button", (("button", '"Recent"'),), "open the recent-apps switcher")},
    "wait": {"mobile": ("wait", (), "wait for the screen to change"), "web": ("wait", (), "wait for the page to change")},
    "finish": {p: ("terminate", (("status", '"success"'),), "the task is complete") for p in ("mobile", "web")},
    "impossible": {p: ("terminate", (("status", '"failure"'),), "the task cannot be completed")
                   for p in ("mobile", "web")},
}


def _action_line(kind: str, platform: str) -> str:
    name, args, what = _FORMS[kind][platform]
    shown = "".join(f', "{k}": {v}' for k, v in args)
    return f'{{"action": "{name}"{shown}}}: {what}.'


@dataclass(frozen=True)
class PromptConfig:
    """history_actions: K, the number of previous ground-truth actions written into the prompt;
    history_images: N, the number of previous screenshots given before the current one."""

    history_actions: int = 4
    history_images: int = 0

    def __post_init__(self):
        integer("history_actions", self.history_actions, minimum=0, maximum=1000)
        integer("history_images", self.history_images, minimum=0, maximum=64)


@dataclass(frozen=True)
class TaskSpec:
    """How a benchmark is prompted.

    platform: ``mobile`` (``mobile_use`` tool) or ``web`` (``computer_use`` tool).
    actions:  canonical action types offered to the model (see :mod:`records`).
    intro:    the task sentence opening the system prompt.
    source:   the published agent prompt this one follows (for the docs).
    """

    platform: str
    actions: tuple[str, ...]
    intro: str
    source: str = ""

    def __post_init__(self):
        choice("platform", self.platform, tuple(TOOLS))
        for a in self.actions:
            if self.platform not in _FORMS.get(a, {}):
                raise ValueError(f"action {a!r} has no {self.platform} form")


#: argument name -> JSON-schema property, listed in a tool schema when an offered action uses it
_ARGUMENTS = {
    "coordinate": {"type": "array", "description": "(x, y) of the point to act on."},
    "coordinate2": {"type": "array", "description": "(x, y) where a swipe ends."},
    "text": {"type": "string", "description": "Text to type, option to choose, or app to open."},
    "direction": {"type": "string", "enum": ["up", "down", "left", "right"], "description": "Scroll direction."},
    "button": {"type": "string", "enum": ["Back", "Home", "Enter", "Recent"], "description": "System button."},
    "keys": {"type": "array", "description": "Keys to press."},
    "status": {"type": "string", "enum": ["success", "failure"], "description": "Task status."},
}
_WHAT = {"mobile": "Use a touchscreen to operate a mobile device.",
         "web": "Use a mouse and keyboard to operate a web browser."}


def tool_schema(spec: TaskSpec, resolution: tuple[int, int]) -> dict:
    """The Qwen function schema of the benchmark's tool (``mobile_use`` / ``computer_use``) offering
    ``spec.actions``, its screen ``resolution`` = (W, H) stated as the tool descriptions do."""
    forms = [_FORMS[a][spec.platform] for a in spec.actions]
    used = {k for _, args, _ in forms for k, _ in args}
    w, h = resolution
    lines = "\n".join(f"  {_action_line(a, spec.platform)}" for a in spec.actions)
    return {"type": "function", "function": {
        "name": TOOLS[spec.platform],
        "description": f"{_WHAT[spec.platform]}\n* The screen's resolution is {w}x{h}.\n* Actions:\n{lines}",
        "parameters": {"type": "object", "required": ["action"], "properties": {
            "action": {"type": "string", "enum": list(dict.fromkeys(name for name, _, _ in forms))},
            **{k: v for k, v in _ARGUMENTS.items() if k in used}}},
    }}


def system_prompt(spec: TaskSpec, family: str, canvas=None) -> str:
    """The system text for ``family``: for tool-call families the Qwen function-calling system prompt
    (:func:`vlprune.eval.tools.tool_system_text`) announcing :func:`tool_schema`, whose resolution is the
    canvas (Qwen2.5-VL) or 1000x1000 (0-1000 grid); for Qwen2-VL the task, frame, actions and the JSON
    answer format in plain text."""
    if convention_of(family).wrap:
        resolution = tuple(canvas) if frame_of(family) == "canvas_px" else (1000, 1000)
        return tool_system_text([tool_schema(spec, resolution)], system=spec.intro)
    lines = [_action_line(a, spec.platform) for a in spec.actions]
    return "\n\n".join([spec.intro, frame_description(family, canvas),
                        "Available actions:\n" + "\n".join(lines),
                        "Answer with exactly one of the action objects above, as JSON."])


def history_lines(history: Sequence[Action], spec: TaskSpec, family: str, canvas=None) -> str:
    """Numbered previous actions in the family's argument JSON, or ``None``."""
    if not history:
        return "None"
    return "\n".join(f"{k}. {json.dumps(action_arguments(a, spec.platform, family, canvas), ensure_ascii=False)}"
                     for k, a in enumerate(history, 1))


def build_messages(goal: str, history: Sequence[Action] | str, n_images: int, ctx: PromptContext,
                   spec: TaskSpec, config: PromptConfig = PromptConfig(), instruction: str | None = None) -> list[dict]:
    """Chat messages of one step. ``history`` = previous actions (oldest first; the last
    ``config.history_actions`` are written) or a preformatted history text; ``n_images`` = history
    screenshots + 1 (the current one, last)."""
    if n_images < 1:
        raise ValueError("a step prompt needs at least the current screenshot")
    if len(ctx.canvas) != n_images:
        raise ValueError(f"prompt context describes {len(ctx.canvas)} images, the step has {n_images}")
    canvas = ctx.current_canvas
    if isinstance(history, str):
        past = history.strip() or "None"
    else:
        k = config.history_actions
        past = history_lines(list(history)[-k:] if k else [], spec, ctx.family, canvas)
    content: list[dict] = []
    if n_images > 1:
        content.append({"type": "text", "text": "Previous screenshots, oldest first:"})
        content.extend({"type": "image"} for _ in range(n_images - 1))
    content += [{"type": "text", "text": "Current screenshot:"}, {"type": "image"}]
    text = f"Task: {goal}\n"
    if instruction:
        text += f"Step instruction: {instruction}\n"
    text += f"Previous actions:\n{past}"
    content.append({"type": "text", "text": text})
    return [{"role": "system", "content": [{"type": "text", "text": system_prompt(spec, ctx.family, canvas)}]},
            {"role": "user", "content": content}]


@dataclass
class StepView:
    """What one step's sample needs: its images (history then current) and history actions."""

    images: list[ImageRef]
    history: list[Action] = field(default_factory=list)


def step_views(episode: Episode, config: PromptConfig) -> list[tuple[int, StepView]]:
    """(index, view) for every scored step: the last N earlier screenshots + the current one, and the
    last K earlier actions. Unscored steps still count as history."""
    out = []
    n, k = config.history_images, config.history_actions
    for i, step in enumerate(episode.steps):
        if not step.scored:
            continue
        past = episode.steps[:i]
        images = [s.screenshot for s in (past[-n:] if n else [])] + [step.screenshot]
        out.append((i, StepView(images, [s.action for s in (past[-k:] if k else [])])))
    return out
