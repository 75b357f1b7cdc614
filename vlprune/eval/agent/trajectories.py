"""Read recorded browsing episodes (``<episode>/episode.json`` + ``step_NN.png``) into :class:`Episode`.

``episode.json``::

    {"episode_id": "web_pg15_select", "goal": "...", "platform": "web" | "mobile",
     "width": 1920, "height": 1080, "source": "...",
     "steps": [{"step": 0, "screenshot": "step_00.png",
                "action": {"type": "click", "x": 818, "y": 816}, "target": "link text", ...}, ...]}

Actions: ``click`` (x, y pixels), ``type`` (text, x / y of the field, ``submit``), ``scroll`` (direction of
the page content), ``back``, ``finish``. Pixel points are normalised by ``width`` x ``height``.
"""

from __future__ import annotations

import json
from pathlib import Path

from vlprune.eval.agent.prompt import TaskSpec
from vlprune.eval.agent.records import Action, Episode, RecordError, Step
from vlprune.eval.base import DatasetError, ImageRef

#: platform -> how recorded episodes are prompted (the actions the recordings use)
TRAJECTORY_SPECS = {
    "web": TaskSpec("web", ("click", "scroll", "type", "back", "finish"),
                    "You are a GUI agent operating a web browser. From the task, your previous actions and the "
                    "screenshots, decide the next action.", source="vlprune recorded browsing episodes"),
    "mobile": TaskSpec("mobile", ("click", "scroll", "type", "back", "finish"),
                       "You are a GUI agent operating a web browser on a phone. From the task, your previous "
                       "actions and the screenshots, decide the next action.", source="vlprune recorded browsing episodes"),
}
_SIMPLE = {"back": "back", "finish": "finish", "home": "home", "enter": "enter", "wait": "wait"}
#: step fields kept in Step.meta
_STEP_META = ("target", "url", "scroll_y_css")


def _pixel_point(a: dict, size: tuple[int, int], where: str) -> tuple[float, float]:
    try:
        x, y = float(a["x"]), float(a["y"])
    except (KeyError, TypeError, ValueError):
        raise RecordError(f"{where}: action needs numeric x and y, got {a!r}") from None
    w, h = size
    if not (0 <= x <= w and 0 <= y <= h):
        raise RecordError(f"{where}: point ({x}, {y}) lies outside the {w}x{h} screenshot")
    return (x / w, y / h)


def _action(a: dict, size: tuple[int, int], where: str) -> Action:
    kind = a.get("type") if isinstance(a, dict) else None
    if kind == "click":
        return Action("click", _pixel_point(a, size, where))
    if kind == "type":
        point = _pixel_point(a, size, where) if "x" in a else None
        return Action("type", point, text=a.get("text"))
    if kind == "scroll":
        return Action("scroll", direction=a.get("direction"))
    if kind in _SIMPLE:
        return Action(_SIMPLE[kind])
    raise RecordError(f"{where}: unknown action {a!r}")


def load_trajectory(folder: str | Path) -> Episode:
    """One episode folder -> :class:`Episode` (raises DatasetError naming the file and step)."""
    folder = Path(folder)
    path = folder / "episode.json"
    if not path.is_file():
        raise DatasetError(f"{folder}: no episode.json (expected <episode>/episode.json + step_NN.png)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        size = (int(data["width"]), int(data["height"]))
        steps = []
        for k, s in enumerate(data["steps"]):
            where = f"step {k}"
            shot = folder / s["screenshot"]
            if not shot.is_file():
                raise RecordError(f"{where}: screenshot {shot} not found")
            meta = {key: s[key] for key in _STEP_META if s.get(key) is not None}
            if s["action"].get("submit"):
                meta["submit"] = True
            steps.append(Step(str(s.get("step", k)), ImageRef(path=str(shot), origin=str(shot)),
                              _action(s["action"], size, where), meta=meta))
        meta = {k: data[k] for k in ("platform", "source") if k in data}
        meta["size"] = list(size)
        return Episode(str(data["episode_id"]), data["goal"], steps, meta)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: {exc}") from None


def trajectory_spec(episode: Episode) -> TaskSpec:
    """The prompt spec of a recorded episode, by its ``platform`` (``web`` unless it says ``mobile``)."""
    platform = episode.meta.get("platform", "web")
    if platform not in TRAJECTORY_SPECS:
        raise ValueError(f"episode {episode.id!r}: platform must be one of {', '.join(TRAJECTORY_SPECS)}, "
                         f"got {platform!r}")
    return TRAJECTORY_SPECS[platform]


def load_trajectories(root: str | Path) -> list[Episode]:
    """Every ``<root>/<episode>/episode.json`` in name order."""
    root = Path(root)
    folders = sorted(p.parent for p in root.glob("*/episode.json"))
    if not folders:
        raise DatasetError(f"{root}: no <episode>/episode.json folders found")
    return [load_trajectory(f) for f in folders]
