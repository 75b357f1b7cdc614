"""AITW (Android in the Wild) in SeeClick's step-level split.

Layout (SeeClick ``agent_tasks/readme_agent.md``): ``aitw_data_test.json`` -- ``{category: [episode:
[step, ...], ...]}`` with categories ``general``, ``install``, ``googleapps``, ``single``,
``webshopping`` -- and the screenshot folder, where ``<img_filename>.png`` is each step's image. The
folder is looked for as the data folder itself or its ``aitw_images`` / ``aitw_imgs`` / ``images``
sub-folder (option ``image_dir`` names it explicitly).

Step fields: ``ep_id``, ``img_filename``, ``goal``, ``action_type_id`` (3 TYPE, 4 DUAL_POINT, 5 BACK,
6 HOME, 7 ENTER, 10 COMPLETE, 11 IMPOSSIBLE), ``action_type_text`` (``click`` / ``scroll down`` ...),
``touch`` / ``lift`` ([x, y] normalised), ``type_text``, ``annot_position`` (flat (y, x, h, w) boxes).

Prompt: goal + the last 4 ground-truth actions + current screenshot, as SeeClick ``aitw_test.py`` asks
(no history screenshots by default). Score: :mod:`vlprune.eval.metrics.aitw`. Generation: 128 new tokens (a tool call with typed text; SeeClick
leaves the Qwen-VL chat default). A step whose screenshot
is missing is skipped and left out of the history, as ``aitw_test.py`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vlprune.eval.datasets._agent import AgentDataset, episode_of, find_images, read_json
from vlprune.eval.agent.prompt import PromptConfig, TaskSpec
from vlprune.eval.agent.records import Action, Episode, RecordError, Step
from vlprune.eval.base import ImageRef, LoadProblem, Sample, register_dataset
from vlprune.eval.metrics import aitw as M
from vlprune.options import choice

_SIMPLE = {M.PRESS_BACK: "back", M.PRESS_HOME: "home", M.PRESS_ENTER: "enter",
           M.STATUS_TASK_COMPLETE: "finish", M.STATUS_TASK_IMPOSSIBLE: "impossible"}
_IMAGE_DIRS = ("", "aitw_images", "aitw_imgs", "images")


@dataclass(frozen=True)
class AitwOptions:
    split: str = "test"  # aitw_data_<split>.json
    image_dir: str | None = None

    def __post_init__(self):
        choice("split", self.split, ("train", "val", "test"))


def _xy(v, name: str) -> tuple[float, float]:
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise RecordError(f"{name} must be [x, y], got {v!r}")
    return float(v[0]), float(v[1])


def parse_step(step: dict) -> tuple[Action, M.AitwAction, list[list[float]]]:
    """One SeeClick AITW step -> (canonical action, AITW matching action, (y, x, h, w) boxes).

    The canonical click is the midpoint of touch and lift (SeeClick ``action2step``); matching uses
    touch and lift themselves (``action_2_format``)."""
    kind, text = step["action_type_id"], step.get("action_type_text", "")
    if kind == M.DUAL_POINT:
        if text == "click":
            touch, lift = _xy(step["touch"], "touch"), _xy(step["lift"], "lift")
            mid = ((touch[0] + lift[0]) / 2, (touch[1] + lift[1]) / 2)
            action = Action("click", mid)
            ref = M.AitwAction(M.DUAL_POINT, (touch[1], touch[0]), (lift[1], lift[0]))
        elif text.startswith("scroll "):
            action = Action("scroll", direction=text.split(" ", 1)[1])
            ref = M.from_action(action.to_json())
        else:
            raise RecordError(f"dual-point action_type_text must be click or scroll <dir>, got {text!r}")
    elif kind == M.TYPE:
        action = Action("type", text=str(step.get("type_text", "")))
        ref = M.from_action(action.to_json())
    elif kind in _SIMPLE:
        action = Action(_SIMPLE[kind])
        ref = M.AitwAction(kind)
    else:
        raise RecordError(f"unknown action_type_id {kind!r}")
    flat = step.get("annot_position", [])
    if not isinstance(flat, list) or len(flat) % 4:
        raise RecordError(f"annot_position must be a flat list of 4k numbers, got {str(flat)[:60]}")
    boxes = [[float(v) for v in flat[i:i + 4]] for i in range(0, len(flat), 4)]
    return action, ref, boxes


@register_dataset("aitw")
class AITW(AgentDataset):
    """AITW step accuracy per category and overall (SeeClick split)."""

    spec = TaskSpec(
        "mobile", ("click", "scroll", "type", "back", "home", "enter", "finish", "impossible"),
        "You are a GUI agent operating an Android phone. From the task, your previous actions and the "
        "screenshot, decide the next action.",
        source="SeeClick agent_tasks/aitw_test.py (goal, last 4 previous actions, current screenshot)",
    )
    primary_metric = "step_accuracy"
    default_prompt = PromptConfig(history_actions=4, history_images=0)
    Options = AitwOptions
    episode_meta = ("category",)
    missing_scores = {"correct": 0.0, "type_correct": 0.0}

    def read_episodes(self, path: Path):
        file = path / f"aitw_data_{self.options.split}.json" if path.is_dir() else path
        data = read_json(file, "aitw", dict, f"aitw_data_{self.options.split}.json = {{category: [episode, ...]}}")
        root = file.parent
        images = Path(self.options.image_dir) if self.options.image_dir else None
        episodes, problems, index, kept = [], [], 0, 0  # kept: steps of the episodes so far
        for category, eps in data.items():
            for e, ep_steps in enumerate(eps):
                steps, ep_id, goal = [], None, None
                for k, raw in enumerate(ep_steps):
                    where = f"{category} episode {e} step {k}"
                    try:
                        fname = raw["img_filename"] + ".png"
                        if images is None:
                            images = find_images(root, fname, _IMAGE_DIRS)
                        shot = (images or root) / fname
                        if not shot.is_file():
                            problems.append(LoadProblem(str(file), index, f"{where}: image {shot} not found "
                                                        "(skipped, as aitw_test.py does)", counted=False,
                                                        id=f"{raw.get('ep_id')}:{k}", position=kept + len(steps)))
                            continue
                        action, ref, boxes = parse_step(raw)
                        ep_id, goal = ep_id or str(raw["ep_id"]), goal or raw["goal"]
                        gt = {"action_type": ref.action_type, "touch_yx": list(ref.touch_yx),
                              "lift_yx": list(ref.lift_yx), "typed_text": ref.typed_text, "annot_position": boxes}
                        steps.append(Step(str(k), ImageRef(path=str(shot), origin=f"{file} [record {index}]"),
                                          action, meta=gt))
                    except (KeyError, TypeError, ValueError) as exc:
                        problems.append(LoadProblem(str(file), index, f"{where}: {exc!r}", id=f"{raw.get('ep_id')}:{k}"
                                                    if isinstance(raw, dict) else None, position=kept + len(steps)))
                    finally:
                        index += 1
                if steps:
                    episodes.append(Episode(ep_id, goal, steps, {"category": category}))
                    kept += len(steps)
        return episodes, problems

    @staticmethod
    def _ref(sample: Sample) -> M.AitwAction:
        t = sample.target
        return M.AitwAction(t["action_type"], tuple(t["touch_yx"]), tuple(t["lift_yx"]), t["typed_text"])

    def step_scores(self, pred, sample):
        return M.step_scores(M.from_action(pred), self._ref(sample), sample.target["annot_position"])

    def zero_scores(self, sample):
        return M.zero_scores(self._ref(sample))

    def metrics(self, rows):
        # a counted load problem's stand-in record has no meta: its category is its episode's
        known = {episode_of(r): r["meta"]["category"] for r, _ in rows if (r.get("meta") or {}).get("category")}
        by_cat: dict[str, list] = {}
        uncategorized = 0
        for record, scores in rows:
            cat = (record.get("meta") or {}).get("category") or known.get(episode_of(record))
            if cat is None:
                uncategorized += 1
                continue
            by_cat.setdefault(cat, []).append(scores)
        out = M.summarize(by_cat)
        out["uncategorized"] = uncategorized
        out["empty_annotations"] = sum(1 for _, s in rows if s.get("empty_annotations"))
        return out

    def variants(self):
        return {"step_accuracy": "SeeClick agent_tasks/aitw_test.py + action_matching.py: AITW action matching "
                                 "(boxes x1.4, tap distance 0.14, swipe axis only, type text not compared); "
                                 "overall = unweighted mean of the category step accuracies"}
