"""GUI-Odyssey: cross-app navigation episodes on Android, step-level AMS and episode SR.

Layout (HF ``hflqf88888/GUIOdyssey``, or ``OpenGVLab/GUI-Odyssey``): ``annotations/<episode>.json``,
``screenshots/<name>.png``, ``splits/{random,task,device,app}_split.json`` (``{"train": [...],
"test": [annotation file names]}``). Options: ``split`` (default ``random``), ``instruction``
(``high``: the episode instruction; ``low``: each step's ``low_level_instruction``, which replaces it as
in the 2025 ``data/format_converter.py``), ``click_rule`` (``sam2`` = 2025 evaluator, ``distance`` =
2024).

Step fields: ``step``, ``screenshot``, ``action`` (CLICK, LONG_PRESS, SCROLL, TEXT / TYPE, COMPLETE,
INCOMPLETE), ``info`` (k-norm ``[[x, y]]``, ``KEY_HOME`` / ``KEY_BACK`` / ``KEY_APPSELECT``, scroll
``[[x1, y1], [x2, y2]]``, typed text), ``sam2_bbox`` (k-norm xyxy), ``low_level_instruction``.

Prompt: instruction, the last 4 ground-truth actions, the last 4 screenshots and the current one
(OdysseyAgent ``src/eval_mm/evaluate_GUIOdyssey.py``, ``his_len`` 4 with image history).
Score: :mod:`vlprune.eval.metrics.odyssey`, averaged as the split's evaluator does. Generation: 128
new tokens (OdysseyAgent's command strings use 30; a tool call with typed text needs more).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vlprune.eval.datasets._agent import AgentDataset, episode_of, read_json
from vlprune.eval.agent.prompt import PromptConfig, TaskSpec
from vlprune.eval.agent.records import OPPOSITE, Action, Episode, RecordError, Step, swipe_direction
from vlprune.eval.base import DatasetError, ImageRef, LoadProblem, register_dataset
from vlprune.eval.metrics import odyssey as M
from vlprune.options import choice

_KEYS = {"KEY_HOME": ("home", "PRESS_HOME"), "KEY_BACK": ("back", "PRESS_BACK"),
         "KEY_APPSELECT": ("recent", "PRESS_RECENT")}


@dataclass(frozen=True)
class OdysseyOptions:
    split: str = "random"
    instruction: str = "high"
    click_rule: str = "sam2"

    def __post_init__(self):
        choice("split", self.split, tuple(M.SPLIT_METRIC))
        choice("instruction", self.instruction, ("high", "low"))
        choice("click_rule", self.click_rule, M.CLICK_RULES)


def _knorm(v, what: str) -> tuple[float, float]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise RecordError(f"{what} must be [x, y], got {v!r}")
    x, y = float(v[0]), float(v[1])
    if not (0 <= x <= 1000 and 0 <= y <= 1000):
        raise RecordError(f"{what} ({x}, {y}) lies outside the 0-1000 grid")
    return x, y


def parse_step(action: str, info) -> tuple[Action, list]:
    """(annotation ``action``, ``info``) -> (canonical action, ground-truth [command, info])."""
    if action in ("CLICK", "LONG_PRESS"):
        if isinstance(info, str) and info in _KEYS:
            kind, cmd = _KEYS[info]
            return Action(kind), [cmd, ""]
        if isinstance(info, list) and info:
            x, y = _knorm(info[0], f"{action} info")
            return Action(action.lower(), (x / 1000, y / 1000)), [action, [x, y]]
        raise RecordError(f"unknown {action} info {info!r}")
    if action == "SCROLL":
        if not isinstance(info, list) or len(info) != 2:
            raise RecordError(f"SCROLL info must be [[x1, y1], [x2, y2]], got {info!r}")
        finger = swipe_direction(_knorm(info[0], "scroll start"), _knorm(info[1], "scroll end"))
        return Action("scroll", direction=OPPOSITE[finger]), ["SCROLL", finger.upper()]
    if action in ("TEXT", "TYPE"):
        return Action("type", text=str(info)), ["TYPE", M.type_info(str(info))]
    if action == "COMPLETE":
        return Action("finish"), ["COMPLETE", ""]
    if action == "INCOMPLETE":
        return Action("impossible"), ["IMPOSSIBLE", ""]
    raise RecordError(f"unknown action {action!r}")


@register_dataset("gui-odyssey")
class GUIOdyssey(AgentDataset):
    """Action matching score and success rate (split-specific averaging)."""

    spec = TaskSpec(
        "mobile", ("click", "long_press", "scroll", "type", "home", "back", "recent", "finish", "impossible"),
        "You are a GUI agent operating an Android phone across apps. From the instruction, your previous "
        "actions and the screenshots, decide the next action.",
        source="OdysseyAgent src/eval_mm/evaluate_GUIOdyssey.py (instruction, previous screenshots and last 4 "
               "previous actions, current screenshot)",
    )
    primary_metric = "action_matching_score"
    default_prompt = PromptConfig(history_actions=4, history_images=4)
    Options = OdysseyOptions
    episode_meta = ("category", "step_length")
    missing_scores = {"correct": 0.0}

    def read_episodes(self, path: Path):
        split_file = path / "splits" / f"{self.options.split}_split.json"
        anno_dir, shot_dir = path / "annotations", path / "screenshots"
        if not split_file.is_file() or not anno_dir.is_dir():
            raise DatasetError(f"gui-odyssey: expected {split_file} and {anno_dir}/ (+ screenshots/) under {path}")
        names = read_json(split_file, "gui-odyssey", dict, '{"train": [...], "test": [annotation files]}').get("test")
        if not isinstance(names, list):
            raise DatasetError(f"gui-odyssey: {split_file}: no 'test' list of annotation files")
        episodes, problems, kept = [], [], 0  # kept: steps of the episodes so far
        for e, name in enumerate(names):
            file = anno_dir / name
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
                ep_id, task = str(data["episode_id"]), data["task_info"]
                meta = {"category": task["category"], "step_length": int(data["step_length"])}
                goal = task["instruction"]
            except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                problems.append(LoadProblem(str(split_file), e, f"annotation {file}: {exc!r}", position=kept))
                continue
            steps = []
            for k, st in enumerate(data.get("steps", [])):
                sid = str(st.get("step", k)) if isinstance(st, dict) else str(k)
                try:
                    shot = shot_dir / st["screenshot"]
                    if not shot.is_file():
                        raise FileNotFoundError(f"screenshot {shot} not found")
                    action, command = parse_step(st["action"], st["info"])
                    low = st.get("low_level_instruction") if self.options.instruction == "low" else None
                    if self.options.instruction == "low" and not low:
                        raise RecordError("no low_level_instruction")
                    steps.append(Step(sid, ImageRef(path=str(shot), origin=str(shot)), action, instruction=low,
                                      meta={"command": command, "sam2_bbox": st.get("sam2_bbox") or []}))
                except (KeyError, TypeError, ValueError, OSError) as exc:
                    problems.append(LoadProblem(str(file), k, f"step {k}: {exc!r}", id=f"{ep_id}:{sid}",
                                                position=kept + len(steps)))
            if steps:
                episodes.append(Episode(ep_id, goal, steps, meta))
                kept += len(steps)
        return episodes, problems

    def question(self, episode, step):
        return step.instruction if self.options.instruction == "low" else episode.goal

    def step_scores(self, pred, sample):
        t = sample.target
        gt = (t["command"][0], tuple(t["command"][1]) if isinstance(t["command"][1], list) else t["command"][1])
        ok = M.actions_match(M.command_of(pred), gt, t["sam2_bbox"], self.options.click_rule)
        return {"correct": float(ok)}

    def zero_scores(self, sample):
        return {"correct": 0.0}

    def metrics(self, rows):
        recs = [((r.get("meta") or {}).get("category"), episode_of(r), (r.get("meta") or {}).get("step_length"),
                 s["correct"]) for r, s in rows]
        out = M.summarize(recs, M.SPLIT_METRIC[self.options.split])
        out["split"], out["instruction"] = self.options.split, self.options.instruction
        return out

    def variants(self):
        rule = ("point in sam2_bbox or within 0.14 (2025 GUIOdyssey_action_matching.py)"
                if self.options.click_rule == "sam2" else "within 0.14 only (2024 GUIOdyssey_action_matching.py)")
        avg = ("mean over categories of per-category AMS / SR ('micro', random split)"
               if M.SPLIT_METRIC[self.options.split] == "micro" else "pooled over steps / episodes ('macro')")
        return {"action_matching_score": f"OpenGVLab/GUI-Odyssey evaluate_GUIOdyssey.py; click: {rule}; {avg}",
                "success_rate": "episodes with every step correct, among those whose evaluated step count equals "
                                f"step_length; {avg}"}
