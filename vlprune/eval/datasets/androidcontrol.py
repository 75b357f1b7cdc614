"""AndroidControl (google-research ``android_control``) and its AndroidControl-Curated re-annotation.

``variant="original"`` -- the release of ``gs://gresearch/android_control/``: GZIP TFRecord shards
``android_control-000NN-of-00020`` of ``tf.train.Example`` (one per episode: ``episode_id``, ``goal``,
``screenshots`` PNG bytes, ``screenshot_widths`` / ``screenshot_heights``, ``accessibility_trees``,
``actions`` JSON strings, ``step_instructions``), ``splits.json`` and ``test_subsplits.json`` in the same
folder. Read without TensorFlow (:mod:`vlprune.eval.agent.tfrecord`). Options: ``split`` (``test``),
``subsplit`` (``IDD``, ``app_unseen``, ``task_unseen``, ``category_unseen``), ``mode`` (``high``: goal
only; ``low``: goal + the step's instruction), ``click_rule`` (``distance`` default, ``element`` from the
accessibility trees), ``verify_crc``.

``variant="curated"`` -- AndroidControl-Curated (batechworks/AndroidControl_Curated, HF
``batwBMW/AndroidControl_Curated``): ``android_control_{high,low}_{bbox,point}.json`` (in the data folder
or its ``benchmark_resource/``), records ``{"image", "instruction", "history", "gt_action",
"gt_input_text", "gt_bbox"}`` with ``image`` relative to ``image_dir`` (default: the data folder). The
``bbox`` files are scored with the element box (``click_rule="box"``, the default), the ``point`` files
with the 0.14 distance (``click_rule="distance"``); ``improved=True`` reads
``android_control_high_task-improved.json`` (revised task / history and alternative ground truths).
The records hold one screenshot and a text history; with ``history_images=N`` the previous screenshots
are the episode's earlier frames on disk, the convention of public multi-step GUI-agent evaluations: a
screenshot ``<episode folder>/step_<k>.<ext>`` has as history the existing ``step_<j>.<ext>`` files of
its folder with j < k, the last N of them (oldest first).

Prompt (both): Qwen2.5-VL / Qwen3-VL ``mobile_use`` agent prompt: system tool description, then the
goal (and step instruction in low mode) and the last 4 actions. Score:
:mod:`vlprune.eval.metrics.androidcontrol`. Generation: 128 new tokens (a tool call with typed text).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from vlprune.eval.datasets._agent import AgentDataset, read_json
from vlprune.eval.agent.prompt import PromptConfig, TaskSpec
from vlprune.eval.agent.records import Action, Episode, RecordError, Step
from vlprune.eval.agent.tfrecord import (
    TFRecordError,
    parse_example,
    read_records,
    signed64,
    submessages,
    wire_fields,
)
from vlprune.eval.base import DatasetError, ImageRef, LoadProblem, LoadResult, Sample, register_dataset
from vlprune.eval.metrics import androidcontrol as M
from vlprune.options import choice

SUBSPLITS = ("IDD", "app_unseen", "task_unseen", "category_unseen")
_SIMPLE = {"navigate_home": "home", "navigate_back": "back", "wait": "wait"}
#: AndroidControl-Curated ``gt_action`` names -> canonical types
_CURATED_TYPES = {"click": "click", "tap": "click", "long_press": "long_press", "scroll": "scroll",
                  "type": "type", "input_text": "type", "open_app": "open_app", "open": "open_app",
                  "navigate_back": "back", "press_back": "back", "back": "back", "navigate_home": "home",
                  "press_home": "home", "home": "home", "wait": "wait"}
_NO_TEXT = "no input text"


@dataclass(frozen=True)
class AndroidControlOptions:
    variant: str = "original"
    mode: str = "high"
    split: str = "test"
    subsplit: str | None = None
    click_rule: str | None = None  # original: distance | element; curated: box | distance
    verify_crc: bool = False
    image_dir: str | None = None
    improved: bool = False

    def __post_init__(self):
        choice("variant", self.variant, ("original", "curated"))
        for name in ("verify_crc", "improved"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"option {name} must be true or false, got {getattr(self, name)!r}")
        choice("mode", self.mode, ("high", "low"))
        if self.subsplit is not None:
            choice("subsplit", self.subsplit, SUBSPLITS)
        rules = ("distance", "element") if self.variant == "original" else ("box", "distance")
        if self.click_rule is None:
            object.__setattr__(self, "click_rule", rules[0])
        choice("click_rule", self.click_rule, rules)
        if self.improved and (self.variant != "curated" or self.mode != "high" or self.click_rule != "box"):
            raise ValueError("option improved applies to variant=curated, mode=high, click_rule=box only")


# ---------------------------------------------------------------------------------------------- original
def parse_action(raw: str, size: tuple[int, int]) -> Action:
    """An AndroidControl action JSON string -> canonical action (pixels normalised by ``size``)."""
    a = json.loads(raw)
    kind = a.get("action_type") if isinstance(a, dict) else None
    if kind in ("click", "long_press"):
        w, h = size
        x, y = float(a["x"]), float(a["y"])
        if not (0 <= x <= w and 0 <= y <= h):
            raise RecordError(f"{kind} at ({x}, {y}) lies outside the {w}x{h} screenshot")
        return Action(kind, (x / w, y / h))
    if kind == "scroll":
        return Action("scroll", direction=a.get("direction"))
    if kind == "input_text":
        return Action("type", text=a.get("text"))
    if kind == "open_app":
        return Action("open_app", app=a.get("app_name"))
    if kind in _SIMPLE:
        return Action(_SIMPLE[kind])
    raise RecordError(f"unknown action {raw[:80]!r}")


def element_boxes(forest: bytes, size: tuple[int, int]) -> list[list[float]]:
    """Normalised (y, x, h, w) boxes of every node with positive area in a serialized
    ``AndroidAccessibilityForest`` (android_env ``proto/a11y``: windows = 1, window.tree = 11,
    tree.nodes = 1, node.bounds_in_screen = 2, rect left / top / right / bottom = 1..4)."""
    w, h = size
    boxes = []
    for window in submessages(forest, 1):
        for tree in submessages(window, 11):
            for node in submessages(tree, 1):
                for rect in submessages(node, 2):
                    r = {k: signed64(v) for k, _, v in wire_fields(rect) if isinstance(v, int)}
                    left, top, right, bottom = (r.get(i, 0) for i in (1, 2, 3, 4))
                    if right > left and bottom > top:
                        boxes.append([top / h, left / w, (bottom - top) / h, (right - left) / w])
    return boxes


# ---------------------------------------------------------------------------------------------- curated
def curated_action(gt_action: str, text: str | None, point) -> Action:
    """A Curated ground truth (``gt_action``, ``gt_input_text`` or None, normalised point or None)."""
    kind = _CURATED_TYPES.get(str(gt_action).strip().lower())
    if kind is None:
        raise RecordError(f"unknown gt_action {gt_action!r}")
    if kind in ("click", "long_press"):
        return Action(kind, point)
    if kind == "scroll":
        return Action("scroll", direction=(text or "").strip().lower())
    if kind == "type":
        return Action("type", text=text or "")
    if kind == "open_app":
        return Action("open_app", app=text or "")
    return Action(kind)


def _curated_split(entry: str) -> tuple[str, str | None]:
    """``"type:hello"`` -> ("type", "hello"); ``"click"`` -> ("click", None)."""
    name, _, arg = str(entry).partition(":")
    return name, (arg if arg else None)


@register_dataset("androidcontrol")
class AndroidControl(AgentDataset):
    """Type, grounding and step accuracy (high or low mode; original or Curated test set)."""

    spec = TaskSpec(
        "mobile", ("click", "long_press", "scroll", "type", "open_app", "back", "home", "wait"),
        "You are a GUI agent operating an Android phone. From the user's goal, your previous actions and "
        "the screenshot, decide the next action.",
        source="Qwen2.5-VL / Qwen3-VL mobile_use agent prompt (goal [+ step instruction], previous actions, "
               "current screenshot)",
    )
    primary_metric = "step_accuracy"
    default_prompt = PromptConfig(history_actions=4, history_images=0)
    Options = AndroidControlOptions
    missing_scores = {"type_match": 0.0, "step_match": 0.0}


    # ------------------------------------------------------------------------------------------ original
    def _episode_ids(self, path: Path) -> list[int]:
        o = self.options
        name = "test_subsplits.json" if o.subsplit else "splits.json"
        file, key = path / name, o.subsplit or o.split
        ids = read_json(file, "androidcontrol", dict, "{split name: [episode ids]}").get(key)
        if not isinstance(ids, list):
            raise DatasetError(f"androidcontrol: {file}: no list of episode ids under {key!r}")
        return [int(i) for i in ids]

    def read_episodes(self, path: Path):
        if not path.is_dir():
            raise DatasetError(f"androidcontrol: {path} must be the folder of the TFRecord shards and splits.json")
        shards = sorted(path.glob("android_control*-of-*"))
        if not shards:
            raise DatasetError(f"androidcontrol: no android_control-000NN-of-000MM shards in {path}")
        wanted = set(self._episode_ids(path))
        episodes, problems, found = [], [], set()
        kept = 0  # steps of the episodes so far
        for shard in shards:
            try:
                for index, rec in enumerate(read_records(shard, "GZIP", self.options.verify_crc)):
                    try:
                        ex = parse_example(rec)
                        ep_id = int(ex["episode_id"][0])
                    except (TFRecordError, KeyError, IndexError) as exc:
                        problems.append(LoadProblem(str(shard), index, f"unreadable Example ({exc!r})",
                                                    position=kept))
                        continue
                    if ep_id not in wanted:
                        continue
                    found.add(ep_id)
                    ep = self._episode(ex, ep_id, shard, index, problems, kept)
                    if ep is not None:
                        episodes.append(ep)
                        kept += len(ep.steps)
            except TFRecordError as exc:
                problems.append(LoadProblem(str(shard), None, f"shard unreadable from here on: {exc}", position=kept))
        for ep_id in sorted(wanted - found):
            problems.append(LoadProblem(str(path / "splits.json"), None, f"episode {ep_id} not found in any shard",
                                        id=str(ep_id)))
        return episodes, problems

    def _episode(self, ex: dict, ep_id: int, shard: Path, index: int, problems: list, kept: int) -> Episode | None:
        """Episode ``ep_id`` of one Example, or None; problems go to ``problems`` at their place
        (``kept``: steps read before this episode)."""
        where = f"{shard.name} [record {index}] episode {ep_id}"
        try:
            goal = ex["goal"][0].decode("utf-8")
            shots, widths, heights = ex["screenshots"], ex["screenshot_widths"], ex["screenshot_heights"]
            actions = [a.decode("utf-8") for a in ex["actions"]]
            instr = [s.decode("utf-8") for s in ex.get("step_instructions", [])]
            trees = ex.get("accessibility_trees", [])
            if not (len(shots) == len(widths) == len(heights) == len(actions) + 1):
                raise RecordError(f"{len(shots)} screenshots, {len(widths)}x{len(heights)} sizes for "
                                  f"{len(actions)} actions (expected actions + 1 of each)")
            if self.options.mode == "low" and len(instr) != len(actions):
                raise RecordError(f"{len(instr)} step_instructions for {len(actions)} actions")
        except (KeyError, IndexError, UnicodeDecodeError, RecordError) as exc:
            problems.append(LoadProblem(str(shard), index, f"episode {ep_id}: {exc!r}", id=str(ep_id), position=kept))
            return None
        steps = []
        for i, raw in enumerate(actions):
            size = (int(widths[i]), int(heights[i]))
            try:
                action = parse_action(raw, size)
                meta = {}
                if self.options.click_rule == "element" and action.type in M.POINT_TYPES:
                    if i >= len(trees):
                        raise RecordError("no accessibility tree for the element rule")
                    meta["elements"] = element_boxes(trees[i], size)
            except (ValueError, KeyError, TFRecordError) as exc:
                problems.append(LoadProblem(str(shard), index, f"episode {ep_id} step {i}: {exc!r}",
                                            id=f"{ep_id}:{i}", position=kept + len(steps)))
                continue
            ref = ImageRef(data=shots[i], origin=f"{where} screenshot {i}")
            steps.append(Step(str(i), ref, action, instruction=instr[i] if i < len(instr) else None, meta=meta))
        return Episode(str(ep_id), goal, steps) if steps else None

    def sample_meta(self, episode, step):
        meta = super().sample_meta(episode, step)
        if self.options.mode == "low":
            meta["instruction"] = step.instruction
        return meta

    # ------------------------------------------------------------------------------------------ curated
    def _curated_file(self, path: Path) -> Path:
        o = self.options
        name = ("android_control_high_task-improved.json" if o.improved else
                f"android_control_{o.mode}_{'bbox' if o.click_rule == 'box' else 'point'}.json")
        if path.is_file():
            return path
        for cand in (path / name, path / "benchmark_resource" / name):
            if cand.is_file():
                return cand
        raise DatasetError(f"androidcontrol: {name} not found in {path} or {path / 'benchmark_resource'}")

    def _curated_gt(self, entry: str, text, bounds, size) -> tuple[Action, list | None]:
        """(action, box xyxy normalised or None) of one Curated ground truth."""
        w, h = size
        text = None if text in (None, _NO_TEXT) else str(text)
        name = str(entry).strip().lower()
        box, point = None, None
        if _CURATED_TYPES.get(name) in M.POINT_TYPES:
            if not isinstance(bounds, (list, tuple)) or len(bounds) not in (2, 4):
                raise RecordError(f"{name} needs gt_bbox [x1, y1, x2, y2] or [x, y], got {bounds!r}")
            b = [float(v) for v in bounds]
            if len(b) == 4:
                box = [b[0] / w, b[1] / h, b[2] / w, b[3] / h]
                point = ((b[0] + b[2]) / 2 / w, (b[1] + b[3]) / 2 / h)
            else:
                point = (b[0] / w, b[1] / h)
            point = tuple(min(max(c, 0.0), 1.0) for c in point)
        return curated_action(name, text, point), box

    def _curated_history(self, shot: Path, origin: str) -> list[ImageRef]:
        """The last ``history_images`` earlier frames of a Curated screenshot's episode (module docstring)."""
        n = self.prompt.history_images
        if not n:
            return []
        m = re.fullmatch(r"step_(\d+)(\.[^.]+)", shot.name)
        if m is None:
            raise ValueError(f"history_images={n} needs screenshots named <episode folder>/step_<k>.<ext> to find "
                             f"the episode's earlier frames; got {shot}")
        earlier = [shot.with_name(f"step_{j}{m.group(2)}") for j in range(int(m.group(1)))]
        return [ImageRef(path=str(p), origin=f"{origin} history {p.name}") for p in earlier if p.is_file()][-n:]

    def _load_curated(self, path: Path) -> LoadResult:
        file = self._curated_file(path)
        records = read_json(file, "androidcontrol", list, "a list of AndroidControl-Curated records")
        root = Path(self.options.image_dir) if self.options.image_dir else (path if path.is_dir() else file.parent)
        samples, problems = [], []
        for k, r in enumerate(records):
            sid = (f"{r['episode_id']}:{r['step_id']}" if isinstance(r, dict) and "episode_id" in r and "step_id" in r
                   else f"{file.stem}:{k}")
            try:
                shot = root / r["image"]
                if not shot.is_file():
                    raise FileNotFoundError(f"image {shot} not found")
                ref = ImageRef(path=str(shot), origin=f"{file} [record {k}]")
                history_refs = self._curated_history(shot, f"{file} [record {k}]")
                size = ref.size()
                bounds = r["gt_bbox"] if "gt_bbox" in r else r.get("gt_max_bbox")
                action, box = self._curated_gt(r["gt_action"], r.get("gt_input_text"), bounds, size)
                alts = []
                for c in r.get("candidate_actions") or []:
                    name, arg = _curated_split(c.get("action_type", ""))
                    alt, alt_box = self._curated_gt(name, arg, c.get("action_bounds"), size)
                    alts.append({"action": alt.to_json(), "box": alt_box})
                task = r.get("revised_task", r["instruction"]) if self.options.improved else r["instruction"]
                history = r.get("revised_memory", r.get("history", "")) if self.options.improved else r.get("history", "")
            except (KeyError, TypeError, ValueError, OSError) as exc:
                problems.append(LoadProblem(str(file), k, repr(exc), id=sid, position=len(samples)))
                continue
            target = {"action": action.to_json(), "box": box, "alternatives": alts}
            samples.append(Sample(sid, [*history_refs, ref], str(task), target, {"history_text": str(history or "")}))
        if not samples and not problems:
            raise DatasetError(f"androidcontrol: {file} holds no records")
        return LoadResult(samples, problems)

    def load(self, path) -> LoadResult:
        if self.options.variant == "curated":
            path = Path(path)
            if not path.exists():
                raise DatasetError(f"androidcontrol: {path} does not exist")
            return self._load_curated(path)
        return super().load(path)

    # ------------------------------------------------------------------------------------------ scoring
    def _one(self, pred: dict, gt: dict, box, elements) -> dict[str, float]:
        curated = self.options.variant == "curated"
        return M.step_scores(pred, gt, self.options.click_rule, boxes_yxhw=elements, box_xyxy=box,
                             text_rule=M.curated_text_match if curated else M.text_match,
                             type_includes_argument=curated)

    def step_scores(self, pred, sample):
        t = sample.target
        out = self._one(pred, t["action"], t.get("box"), t.get("elements"))
        for alt in t.get("alternatives", []):  # Curated: any acceptable answer counts, per metric
            s = self._one(pred, alt["action"], alt["box"], None)
            for key in ("type_match", "step_match"):
                out[key] = max(out[key], s[key])
            if "grounding_match" in out and "grounding_match" in s:
                out["grounding_match"] = max(out["grounding_match"], s["grounding_match"])
        return out

    def zero_scores(self, sample):
        return M.zero_scores(sample.target["action"]["type"])

    def metrics(self, rows):
        out = M.summarize([s for _, s in rows])
        out["mode"], out["variant"] = self.options.mode, self.options.variant
        return out

    def variants(self):
        rule = {"distance": "click within 0.14 of the ground truth (UI-TARS / OS-Atlas)",
                "element": "click in one of the 5 nearest accessibility boxes enlarged 1.2x, else within 0.04 "
                           "(AgentCPM-GUI port of the Qwen2.5-VL rule)",
                "box": "click inside the ground-truth element box (AndroidControl-Curated E_bbox)"}[self.options.click_rule]
        text = ("text by containment or token F1 >= 0.5; type check includes text / direction (AndroidControl-Curated)"
                if self.options.variant == "curated" else "text by lowercase containment (AgentCPM-GUI / Qwen2.5-VL)")
        return {"type_accuracy": f"action type equal; {text}",
                "grounding_accuracy": f"ground-truth click / long_press steps, predicted point alone: {rule}",
                "step_accuracy": f"type and argument match; {rule}; {text}"}
