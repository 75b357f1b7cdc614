"""Mind2Web, screenshot version (SeeClick / ShowUI): cross-task, cross-website and cross-domain tests.

Layout (SeeClick ``agent_tasks/readme_agent.md``): ``mind2web_data_test_{task,website,domain}.json``
(option ``split``, default ``task``) and the screenshots ``<annotation_id>-<action_uid>.jpg`` in the
data folder or its ``mind2web_images`` / ``mind2web_imgs`` / ``images`` sub-folder (or ``image_dir``).

Episode fields: ``annotation_id``, ``confirmed_task``, ``website``, ``domain``, ``subdomain``,
``actions``: ``action_uid``, ``operation`` {``original_op`` CLICK / TYPE / SELECT / HOVER / ENTER,
``value``}, ``bbox`` {x, y, width, height} in screenshot pixels.

Skipped, uncounted and reported as in SeeClick ``agent_tasks/mind2web_test.py``: a step without
``bbox`` or without its screenshot (also left out of the history), and a step whose ground-truth
action string does not parse (a value with ``"``: kept in the history, not scored).

Prompt: task + the last 4 ground-truth actions + current screenshot (SeeClick ``mind2web_test.py``).
Score: :mod:`vlprune.eval.metrics.mind2web`. Generation: 128 new tokens (a tool call with a typed value).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from vlprune.eval.datasets._agent import AgentDataset, episode_of, find_images, read_json
from vlprune.eval.agent.prompt import PromptConfig, TaskSpec
from vlprune.eval.agent.records import Action, Episode, Step
from vlprune.eval.base import ImageRef, LoadProblem, register_dataset
from vlprune.eval.metrics import mind2web as M
from vlprune.options import choice

SPLITS = ("task", "website", "domain")
_IMAGE_DIRS = ("", "mind2web_images", "mind2web_imgs", "images")
_ACTION_OF_OP = {"CLICK": "click", "HOVER": "hover", "ENTER": "enter", "SELECT": "select", "TYPE": "type"}


@dataclass(frozen=True)
class Mind2WebOptions:
    split: str = "task"
    image_dir: str | None = None

    def __post_init__(self):
        choice("split", self.split, SPLITS)


def _value_parses(value: str) -> str | None:
    """The value as the reference reads it back from its quoted action string, or None when that fails."""
    try:
        out = ast.literal_eval('"' + value + '"')
    except (SyntaxError, ValueError):
        return None
    return out if isinstance(out, str) else None


@register_dataset("mind2web")
class Mind2Web(AgentDataset):
    """Element accuracy, operation F1 and step success rate, micro and per-episode macro."""

    spec = TaskSpec(
        "web", ("click", "hover", "type", "select", "enter"),
        "You are a GUI agent operating a web browser. From the task, your previous actions and the "
        "screenshot of the page, decide the next action on a page element.",
        source="SeeClick agent_tasks/mind2web_test.py (task, last 4 previous actions, current screenshot)",
    )
    primary_metric = "step_success_rate"
    default_prompt = PromptConfig(history_actions=4, history_images=0)
    Options = Mind2WebOptions
    episode_meta = ("website", "domain", "subdomain")
    missing_scores = {"element_match": 0.0, "op_f1": 0.0, "step_success": 0.0, "op_match": 0.0}

    def read_episodes(self, path: Path):
        name = f"mind2web_data_test_{self.options.split}.json"
        file = path / name if path.is_dir() else path
        data = read_json(file, "mind2web", list, f"{name} = [episode, ...] + <annotation_id>-<action_uid>.jpg")
        images = Path(self.options.image_dir) if self.options.image_dir else None
        episodes, problems, kept = [], [], 0  # kept: steps of the episodes so far
        for e, ep in enumerate(data):
            try:
                ann, goal = str(ep["annotation_id"]), ep["confirmed_task"]
                raw_steps = ep["actions"]
            except (KeyError, TypeError) as exc:
                problems.append(LoadProblem(str(file), e, f"episode without {exc}", position=kept))
                continue
            steps = []
            for k, st in enumerate(raw_steps):
                sid = f"{ann}:{st.get('action_uid')}" if isinstance(st, dict) else None

                def skip(reason, counted=False):
                    problems.append(LoadProblem(str(file), e, f"step {k}: {reason}", counted=counted, id=sid,
                                                position=kept + len(steps)))

                try:
                    uid, op = str(st["action_uid"]), st["operation"]["original_op"]
                    if "bbox" not in st:
                        skip("no bbox (skipped, as mind2web_test.py does)")
                        continue
                    fname = f"{ann}-{uid}.jpg"
                    if images is None:
                        images = find_images(file.parent, fname, _IMAGE_DIRS)
                    shot = (images or file.parent) / fname
                    if not shot.is_file():
                        skip(f"image {shot} not found (skipped, as mind2web_test.py does)")
                        continue
                    if op not in M.OP_IDS:
                        skip(f"unknown operation {op!r}", counted=True)
                        continue
                    ref = ImageRef(path=str(shot), origin=str(shot))
                    box = M.norm_box(st["bbox"], ref.size())
                    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                    raw_value = str(st["operation"].get("value") or "")
                    value = _value_parses(raw_value) if op in ("TYPE", "SELECT") else ""
                    kind = _ACTION_OF_OP[op]
                    text = (value if value is not None else raw_value) if kind in ("type", "select") else None
                    action = Action(kind, tuple(min(max(c, 0.0), 1.0) for c in centre), text=text)
                    scored = value is not None
                    if not scored:
                        skip(f"value {raw_value[:40]!r} breaks the reference's action string (kept as history, "
                             "not scored, as mind2web_test.py does)")
                    steps.append(Step(uid, ref, action, scored=scored,
                                      meta={"op": M.OP_IDS[op], "value": value, "box": list(box)}))
                except (KeyError, TypeError, ValueError, OSError) as exc:
                    skip(f"{exc!r}", counted=True)
            if steps:
                episodes.append(Episode(ann, goal, steps, {k: ep.get(k) for k in self.episode_meta}))
                kept += len(steps)
        return episodes, problems

    def sample_meta(self, episode, step):
        return super().sample_meta(episode, step) | {"op": step.meta["op"]}

    def step_scores(self, pred, sample):
        t = sample.target
        return M.step_scores(M.ACTION_OP_IDS.get(pred["type"]), pred.get("text"), pred.get("point"),
                             t["op"], t["value"], t["box"])

    def zero_scores(self, sample):
        return dict(self.missing_scores)

    def metrics(self, rows):
        return M.summarize([(episode_of(r), (r.get("meta") or {}).get("op"), s) for r, s in rows])

    def variants(self):
        return {
            "element_accuracy": "macro (mean over episodes); SeeClick agent_tasks/mind2web_test.py: point inside "
                                "the 3-decimal normalised box; element_accuracy_micro pooled over steps",
            "operation_f1": "macro (mean over episodes); SeeClick: token-set F1 of '<op id> <value>'; "
                            "operation_f1_micro = mean over CLICK/SELECT/TYPE of their mean F1 (types present)",
            "step_success_rate": "macro (mean over episodes); SeeClick: op F1 == 1 and element match; "
                                 "step_success_rate_micro pooled over steps",
        }
