"""Read recorded browsing episodes (``<episode>/episode.json`` + ``step_NN.png``) into :class:`Episode`.

``episode.json``::

    {"episode_id": "web_pg15_select", "goal": "...", "platform": "web" | "mobile",
     "width": 1920, "height": 1080, "source": "...",
     "steps": [{"step": 0, "screenshot": "step_00.png",
                "action": {"type": "click", "x": 818, "y": 816}, "target": "link text", ...}, ...]}

Actions: ``click`` (x, y pixels), ``type`` (text, x / y of the field, ``submit``), ``scroll`` (direction of
the page content), ``back``, ``finish``. Pixel points are normalised by ``width`` x ``height``. The format
and its checks: ``docs/episodes.md``.
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


def _pixel_point(a: dict, size: tuple[int, int]) -> tuple[float, float]:
    try:
        x, y = float(a["x"]), float(a["y"])
    except (KeyError, TypeError, ValueError):
        raise RecordError(f"action needs numeric x and y, got {a!r}") from None
    w, h = size
    if not (0 <= x <= w and 0 <= y <= h):
        raise RecordError(f"point ({x}, {y}) lies outside the {w}x{h} screenshot")
    return (x / w, y / h)


def _build_action(a, size: tuple[int, int]) -> Action:
    if not isinstance(a, dict):
        raise RecordError(f"'action' must be an object such as {{\"type\": \"click\", \"x\": 10, \"y\": 20}}, "
                          f"got {type(a).__name__} {a!r:.60}")
    kind = a.get("type")
    if kind == "click":
        return Action("click", _pixel_point(a, size))
    if kind == "type":
        return Action("type", _pixel_point(a, size) if "x" in a else None, text=a.get("text"))
    if kind == "scroll":
        return Action("scroll", direction=a.get("direction"))
    if kind in _SIMPLE:
        return Action(_SIMPLE[kind])
    raise RecordError(f"unknown action type {kind!r} in {a!r:.80}; expected one of: click, type, scroll, "
                      f"{', '.join(_SIMPLE)}")


def _action(a, size: tuple[int, int], where: str) -> Action:
    """A step's ``action`` object -> :class:`Action` (a RecordError naming ``where`` and what is wrong)."""
    try:
        return _build_action(a, size)
    except RecordError as exc:
        raise RecordError(f"{where}: {exc}") from None


def _field(obj: dict, key: str, types, where: str):
    """``obj[key]`` checked against ``types`` (a RecordError naming the field and ``where``)."""
    if key not in obj or obj[key] is None:
        raise RecordError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, types) or isinstance(value, bool):
        names = "/".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise RecordError(f"{where}: field {key!r} must be {names}, got {type(value).__name__} {value!r:.60}")
    return value


def _step(folder: Path, s, k: int, size: tuple[int, int]) -> Step:
    where = f"step {k}"
    if not isinstance(s, dict):
        raise RecordError(f"{where}: expected an object with screenshot and action, got {type(s).__name__}")
    shot = folder / _field(s, "screenshot", str, where)
    if not shot.is_file():
        raise RecordError(f"{where}: screenshot {shot} not found")
    if "action" not in s:
        raise RecordError(f"{where}: missing field 'action'")
    action = _action(s["action"], size, where)  # refuses anything but an action object
    meta = {key: s[key] for key in _STEP_META if s.get(key) is not None}
    if s["action"].get("submit"):
        meta["submit"] = True
    return Step(str(s.get("step", k)), ImageRef(path=str(shot), origin=str(shot)), action, meta=meta)


def load_trajectory(folder: str | Path) -> Episode:
    """One episode folder -> :class:`Episode` (raises DatasetError naming the file, the step and the field;
    the format: ``docs/episodes.md``)."""
    folder = Path(folder)
    path = folder / "episode.json"
    if not path.is_file():
        raise DatasetError(f"{folder}: no episode.json (expected <episode>/episode.json + step_NN.png)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        if not isinstance(data, dict):
            raise RecordError(f"expected a JSON object (episode_id, goal, width, height, steps), got {type(data).__name__}")
        size = (_field(data, "width", int, "episode"), _field(data, "height", int, "episode"))
        if min(size) < 1:
            raise RecordError(f"episode: width and height must be >= 1, got {size[0]}x{size[1]}")
        raw_steps = _field(data, "steps", list, "episode")
        if not raw_steps:
            raise RecordError("episode: 'steps' is empty")
        steps = [_step(folder, s, k, size) for k, s in enumerate(raw_steps)]
        if data.get("platform", "web") not in TRAJECTORY_SPECS:
            raise RecordError(f"episode: field 'platform' must be one of {', '.join(TRAJECTORY_SPECS)}, "
                              f"got {data['platform']!r}")
        meta = {k: data[k] for k in ("platform", "source") if k in data}
        meta["size"] = list(size)
        return Episode(str(_field(data, "episode_id", (str, int), "episode")), _field(data, "goal", str, "episode"),
                       steps, meta)
    except (KeyError, TypeError, ValueError) as exc:  # RecordError, and Action's own checks
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
