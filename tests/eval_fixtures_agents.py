"""Fixture writers for the GUI-agent benchmarks: a handful of records in each published layout.

Each writer takes an empty folder, writes the files there and returns the ``--data`` path::

    from eval_fixtures_agents import AGENT_FIXTURES
    data = AGENT_FIXTURES["aitw"](tmp_path)
    create_dataset("aitw").load(data)

Screenshots are small pieces cut from the real corpus (``tests/corpus.py``), or flat synthetic images
when the corpus is absent. Every number a test asserts is written here by hand; the ``EXPECTED_*``
tables spell out what a loader must read back.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

from PIL import Image

from corpus import CORPUS
from vlprune.eval.agent.tfrecord import encode_example, encode_message, write_records

PHONE = (90, 200)  # (w, h) of the phone screenshots written here
WEB = (160, 90)


def _screens(n: int, size: tuple[int, int], kind: str) -> list[Image.Image]:
    """``n`` distinct small RGB screenshots: crops of corpus trajectory screenshots, else flat colours."""
    return [im.copy() for im in _cached_screens(n, size, kind, CORPUS)]


@functools.lru_cache(maxsize=None)
def _cached_screens(n: int, size: tuple[int, int], kind: str, corpus: Path) -> tuple[Image.Image, ...]:
    folder = corpus / "trajectories"
    prefix = "mob_" if kind == "mobile" else "web_"
    shots = sorted(folder.glob(f"{prefix}*/step_*.png")) if folder.is_dir() else []
    out = []
    for k in range(n):
        if shots:
            with Image.open(shots[k % len(shots)]) as im:
                w, h = im.size
                cw, ch = min(w, size[0] * 4), min(h, size[1] * 4)  # a region 4x the target, shrunk
                top = (k * 97) % max(1, h - ch)
                out.append(im.convert("RGB").crop((0, top, cw, top + ch)).resize(size))
        else:
            out.append(Image.new("RGB", size, ((40 * k) % 256, (90 + 25 * k) % 256, 160)))
    return tuple(out)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- AITW
def write_aitw(folder: Path) -> Path:
    """SeeClick AITW test split: 3 categories, 3 episodes, 6 steps, one screenshot missing.

    general / ep 101: click (touch 0.50,0.30; box y=0.28 x=0.40 h=0.04 w=0.20), scroll down, type "wifi"
    install / ep 202: press home, [image missing], status complete
    single  / ep 303: click with an empty annot_position
    """
    folder = Path(folder)
    imgs = _screens(6, PHONE, "mobile")

    def step(ep, k, kind, text, **kw):
        base = {"ep_id": ep, "img_filename": f"{kw.pop('cat')}/{ep}_{k}", "goal": kw.pop("goal"),
                "action_type_id": kind, "action_type_text": text, "touch": [-1.0, -1.0], "lift": [-1.0, -1.0],
                "type_text": "", "annot_position": [0.1, 0.1, 0.05, 0.3]}
        return base | kw

    g, i, s = "turn on wifi", "install the maps app", "open settings"
    data = {
        "general": [[
            step("101", 0, 4, "click", cat="general", goal=g, touch=[0.50, 0.30], lift=[0.50, 0.30],
                 annot_position=[0.28, 0.40, 0.04, 0.20, 0.80, 0.10, 0.06, 0.30]),
            step("101", 1, 4, "scroll down", cat="general", goal=g, touch=[0.5, 0.7], lift=[0.5, 0.3]),
            step("101", 2, 3, "type", cat="general", goal=g, type_text="wifi"),
        ]],
        "install": [[
            step("202", 0, 6, "press home", cat="install", goal=i),
            step("202", 1, 5, "press back", cat="install", goal=i),
            step("202", 2, 10, "status task complete", cat="install", goal=i),
        ]],
        "single": [[
            step("303", 0, 4, "click", cat="single", goal=s, touch=[0.2, 0.9], lift=[0.2, 0.9], annot_position=[]),
        ]],
    }
    (folder / "aitw_data_test.json").write_text(json.dumps(data), encoding="utf-8")
    written = [("general", "101", 0), ("general", "101", 1), ("general", "101", 2), ("install", "202", 0),
               ("install", "202", 2), ("single", "303", 0)]  # 202_1 is left missing
    for img, (cat, ep, k) in zip(imgs, written):
        path = folder / "aitw_images" / cat / f"{ep}_{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
    return folder


# ---------------------------------------------------------------------------------------------- Mind2Web
def write_mind2web(folder: Path, split: str = "task") -> Path:
    """SeeClick Mind2Web test file (160x90 screenshots):

    ep "a1": u1 CLICK box (16, 9, 32, 18) -> norm (0.1, 0.1, 0.3, 0.3); u2 TYPE "Boston" box (80, 45, 40, 9)
             -> (0.5, 0.5, 0.75, 0.6); u3 SELECT "2 Adults" box (0, 0, 80, 45) -> (0, 0, 0.5, 0.5)
    ep "b2": v1 HOVER box (120, 60, 16, 18) -> (0.75, 0.667, 0.85, 0.867); v2 without bbox;
             v3 TYPE 'say "hi"' (unparseable, history only); v4 ENTER box (0, 72, 160, 18) -> (0, 0.8, 1, 1)
    """
    folder = Path(folder)
    imgs = iter(_screens(6, WEB, "web"))

    def act(uid, op, value, bbox):
        out = {"action_uid": uid, "operation": {"original_op": op, "op": op, "value": value},
               "pos_candidates": [], "neg_candidates": []}
        if bbox is not None:
            out["bbox"] = dict(zip(("x", "y", "width", "height"), bbox))
        return out

    eps = [
        {"annotation_id": "a1", "confirmed_task": "Find flights to Boston for 2 adults", "website": "united",
         "domain": "Travel", "subdomain": "Airlines", "action_reprs": [],
         "actions": [act("u1", "CLICK", "", (16, 9, 32, 18)), act("u2", "TYPE", "Boston", (80, 45, 40, 9)),
                     act("u3", "SELECT", "2 Adults", (0, 0, 80, 45))]},
        {"annotation_id": "b2", "confirmed_task": "Browse the sale shoes", "website": "nike", "domain": "Shopping",
         "subdomain": "Fashion", "action_reprs": [],
         "actions": [act("v1", "HOVER", "", (120, 60, 16, 18)), act("v2", "CLICK", "", None),
                     act("v3", "TYPE", 'say "hi"', (10, 10, 20, 10)), act("v4", "ENTER", "", (0, 72, 160, 18))]},
    ]
    (folder / f"mind2web_data_test_{split}.json").write_text(json.dumps(eps), encoding="utf-8")
    out = folder / "mind2web_images"
    out.mkdir(parents=True, exist_ok=True)
    for ann, uid in [("a1", "u1"), ("a1", "u2"), ("a1", "u3"), ("b2", "v1"), ("b2", "v3"), ("b2", "v4")]:
        next(imgs).save(out / f"{ann}-{uid}.jpg", quality=90)
    return folder


# ---------------------------------------------------------------------------------------------- GUI-Odyssey
def write_gui_odyssey(folder: Path) -> Path:
    """GUI-Odyssey layout with the 4 split files (same test list):

    ep "e1" (General_Tool, step_length 4): CLICK [[512, 880]] sam2 [430, 850, 600, 910]; SCROLL
        [[500, 800], [500, 200]] (finger UP); TEXT "hello"; COMPLETE
    ep "e2" (Web_Shopping, step_length 3): CLICK KEY_HOME; LONG_PRESS [[100, 100]] sam2 [50, 50, 150, 150];
        INCOMPLETE
    """
    folder = Path(folder)
    imgs = iter(_screens(7, PHONE, "mobile"))

    def st(ep, k, action, info, low, sam2=()):
        return {"step": k, "screenshot": f"{ep}_{k}.png", "action": action, "info": info, "ps": "",
                "description": "", "intention": "", "context": "", "low_level_instruction": low,
                "sam2_bbox": list(sam2)}

    eps = {
        "e1": {"category": "General_Tool", "instruction": "Search for hello in the notes app", "steps": [
            st("e1", 0, "CLICK", [[512, 880]], "Tap Search", (430, 850, 600, 910)),
            st("e1", 1, "SCROLL", [[500, 800], [500, 200]], "Scroll down the list"),
            st("e1", 2, "TEXT", "hello", "Type hello"),
            st("e1", 3, "COMPLETE", "", "Finish")]},
        "e2": {"category": "Web_Shopping", "instruction": "Check the cart in the shop app", "steps": [
            st("e2", 0, "CLICK", "KEY_HOME", "Go home"),
            st("e2", 1, "LONG_PRESS", [[100, 100]], "Hold the shop icon", (50, 50, 150, 150)),
            st("e2", 2, "INCOMPLETE", "", "Give up")]},
    }
    for sub in ("annotations", "screenshots", "splits"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for ep, d in eps.items():
        anno = {"episode_id": ep, "device_info": {"product": "x", "release_version": "13", "sdk_version": "33",
                                                  "h": 2400, "w": 1080, "device_name": "Pixel"},
                "task_info": {"category": d["category"], "app": ["Notes"], "meta_task": "", "task": "",
                              "instruction": d["instruction"]},
                "step_length": len(d["steps"]), "steps": d["steps"]}
        (folder / "annotations" / f"{ep}.json").write_text(json.dumps(anno), encoding="utf-8")
        for s in d["steps"]:
            next(imgs).save(folder / "screenshots" / s["screenshot"])
    for name in ("random", "task", "device", "app"):
        split = {"train": [], "test": ["e1.json", "e2.json"]}
        (folder / "splits" / f"{name}_split.json").write_text(json.dumps(split), encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------------------------- AndroidControl
def a11y_forest(rects: list[tuple[int, int, int, int]]) -> bytes:
    """A serialized ``AndroidAccessibilityForest`` with one window whose nodes have these
    (left, top, right, bottom) bounds (android_env field numbers)."""
    nodes = [(1, [(1, i + 1), (2, [(1, l), (2, t), (3, r), (4, b)])]) for i, (l, t, r, b) in enumerate(rects)]
    return encode_message([(1, [(3, 1), (11, nodes)])])


def write_androidcontrol(folder: Path) -> Path:
    """Two GZIP TFRecord shards + splits.json + test_subsplits.json (90x200 screenshots):

    episode 7 (test, IDD): click (45, 100) [a11y boxes (30, 90)-(60, 110) and (0, 0)-(90, 20)];
        input_text "pizza"; scroll down -- step instructions "open search", "type pizza", "scroll"
    episode 8 (test, app_unseen): open_app "Clock"; navigate_back
    episode 9 (train): wait (not loaded)
    """
    folder = Path(folder)
    shots = iter(_screens(10, PHONE, "mobile"))

    def episode(ep_id, goal, actions, instr, trees):
        n = len(actions) + 1
        return encode_example({
            "episode_id": [ep_id], "goal": [goal],
            "screenshots": [_png(next(shots)) for _ in range(n)],
            "screenshot_widths": [PHONE[0]] * n, "screenshot_heights": [PHONE[1]] * n,
            "accessibility_trees": trees + [a11y_forest([])] * (n - len(trees)),
            "actions": [json.dumps(a) for a in actions], "step_instructions": instr,
        })

    ep7 = episode(7, "Search for pizza places", [
        {"action_type": "click", "x": 45, "y": 100}, {"action_type": "input_text", "text": "pizza"},
        {"action_type": "scroll", "direction": "down"}], ["open search", "type pizza", "scroll"],
        [a11y_forest([(30, 90, 60, 110), (0, 0, 90, 20)])])
    ep8 = episode(8, "Open the clock app and go back", [
        {"action_type": "open_app", "app_name": "Clock"}, {"action_type": "navigate_back"}],
        ["open the clock", "go back"], [])
    ep9 = episode(9, "Wait for the page", [{"action_type": "wait"}], ["wait"], [])
    write_records(folder / "android_control-00000-of-00002", [ep7, ep9])
    write_records(folder / "android_control-00001-of-00002", [ep8])
    (folder / "splits.json").write_text(json.dumps({"train": [9], "validation": [], "test": [7, 8]}))
    (folder / "test_subsplits.json").write_text(json.dumps(
        {"IDD": [7], "app_unseen": [8], "task_unseen": [], "category_unseen": []}))
    return folder


def write_androidcontrol_curated(folder: Path) -> Path:
    """AndroidControl-Curated files (``android_control_high_bbox.json``, ``..._high_point.json``) + images:

    r0: click, gt_bbox [20, 40, 60, 80] px of a 90x200 screenshot; r1: type "pizza"; r2: scroll "down"
    (point file: r0 gt_bbox [40, 60])
    """
    folder = Path(folder)
    imgs = _screens(3, PHONE, "mobile")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for k, img in enumerate(imgs):
        img.save(folder / "images" / f"ac_{k}.png")
    base = [
        {"image": "images/ac_0.png", "instruction": "Search for pizza places", "history": "",
         "gt_action": "click", "gt_input_text": "no input text", "gt_bbox": [20, 40, 60, 80]},
        {"image": "images/ac_1.png", "instruction": "Search for pizza places", "history": "Step 1: click",
         "gt_action": "type", "gt_input_text": "pizza", "gt_bbox": []},
        {"image": "images/ac_2.png", "instruction": "Search for pizza places", "history": "Step 1: click; Step 2: type",
         "gt_action": "scroll", "gt_input_text": "down", "gt_bbox": []},
    ]
    (folder / "android_control_high_bbox.json").write_text(json.dumps(base))
    point = [dict(base[0], gt_bbox=[40, 60])] + base[1:]
    (folder / "android_control_high_point.json").write_text(json.dumps(point))
    return folder


AGENT_FIXTURES = {
    "aitw": write_aitw,
    "mind2web": write_mind2web,
    "gui-odyssey": write_gui_odyssey,
    "androidcontrol": write_androidcontrol,
}
