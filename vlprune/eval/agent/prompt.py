"""Step prompts for GUI agents in the Qwen-VL chat format, and episode -> per-step samples.

A step prompt holds (GUIPruner's agent setting, arXiv 2602.23235 §3): the goal, the last K actions as
text, the last N history screenshots (oldest first) and the current screenshot as the **last** image.
History is the ground truth (teacher forcing), as in the published step-level evaluations.

Messages::

    system: <task intro>  <coordinate frame>  <available actions>  <answer format>
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
from vlprune.methods.options import choice, integer

#: (mobile form, web form) of each action's argument object in the prompt's action list
_ACTION_HELP = {
    "click": ('{"action": "click", "coordinate": [x, y]}: tap the point (x, y).',
              '{"action": "left_click", "coordinate": [x, y]}: click the point (x, y).'),
    "long_press": ('{"action": "long_press", "coordinate": [x, y]}: touch and hold the point (x, y).', None),
    "hover": (None, '{"action": "mouse_move", "coordinate": [x, y]}: move the pointer over (x, y).'),
    "scroll": ('{"action": "swipe", "coordinate": [x1, y1], "coordinate2": [x2, y2]}: swipe the finger '
               'from (x1, y1) to (x2, y2).',
               '{"action": "scroll", "direction": "up" | "down" | "left" | "right"}: scroll the page content.'),
    "type": ('{"action": "type", "text": "..."}: type the text into the focused field.',
             '{"action": "type", "coordinate": [x, y], "text": "..."}: type the text into the field at (x, y).'),
    "select": (None, '{"action": "select", "coordinate": [x, y], "text": "..."}: choose the option "..." '
                     'of the drop-down list at (x, y).'),
    "open_app": ('{"action": "open", "text": "app name"}: launch the app.', None),
    "enter": ('{"action": "system_button", "button": "Enter"}: press Enter.',
              '{"action": "key", "keys": ["Enter"], "coordinate": [x, y]}: press Enter in the element at (x, y).'),
    "back": ('{"action": "system_button", "button": "Back"}: press Back.',
             '{"action": "back"}: go back to the previous page.'),
    "home": ('{"action": "system_button", "button": "Home"}: press Home.', None),
    "recent": ('{"action": "system_button", "button": "Recent"}: open the recent-apps switcher.', None),
    "wait": ('{"action": "wait"}: wait for the screen to change.', '{"action": "wait"}: wait for the page to change.'),
    "finish": ('{"action": "terminate", "status": "success"}: the task is complete.',) * 2,
    "impossible": ('{"action": "terminate", "status": "failure"}: the task cannot be completed.',) * 2,
}


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
            if a not in _ACTION_HELP or _ACTION_HELP[a][self.platform == "web"] is None:
                raise ValueError(f"action {a!r} has no {self.platform} form")


def system_prompt(spec: TaskSpec, family: str, canvas=None) -> str:
    """Task intro, coordinate frame, action list and answer format for ``family``."""
    lines = [_ACTION_HELP[a][spec.platform == "web"] for a in spec.actions]
    tool = TOOLS[spec.platform]
    if convention_of(family).wrap:
        answer = ('Answer with exactly one tool call:\n<tool_call>\n{"name": "%s", "arguments": '
                  "<one of the action objects above>}\n</tool_call>" % tool)
    else:
        answer = "Answer with exactly one of the action objects above, as JSON."
    return "\n\n".join([spec.intro, frame_description(family, canvas),
                        "Available actions:\n" + "\n".join(lines), answer])


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
