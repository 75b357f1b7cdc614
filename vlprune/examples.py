"""The example inputs the README's examples read, written by ``vlprune samples DIR`` (nothing downloaded).

Made from the built-in sample images (:mod:`vlprune.samples`):

* ``page.png`` -- a document page (816x1056), ``shot.png`` -- a desktop screenshot (1280x800);
* ``screenshots/`` -- the three built-in samples (``gui.png``, ``document.png``, ``texture.png``);
* ``episode/`` -- a 5-step GUI-agent episode in the ``episode.json`` format (``docs/episodes.md``);
* ``docvqa/`` -- a 3-question DocVQA validation folder in the RRC layout (``val_v1.0.json`` +
  ``documents/``), with the answers the pages show;
* ``predictions.jsonl`` -- predictions for those questions as another harness would write them
  (``{"id", "prediction"}`` per line): one right up to case, one near miss, one wrong (ANLS 5/9).

Nothing that exists is replaced: :func:`write_examples` refuses a folder that already holds any of them.
"""

from __future__ import annotations

import json
from pathlib import Path

from vlprune.samples import document_page, gui_screenshot, make_samples

#: what :func:`write_examples` writes into its folder (files and folders)
EXAMPLE_ENTRIES = ("page.png", "shot.png", "screenshots", "episode", "docvqa", "predictions.jsonl")

#: (questionId, document, question, answers): the answers are printed on the built-in pages
DOCVQA_QUESTIONS = (
    (9001, "documents/page_1.png", "What is the title of section 3?", ["Redundancy in Visual Tokens"]),
    (9002, "documents/page_1.png", "Which page of the document is this?", ["7", "page 7"]),
    (9003, "documents/window_1.png", "What is the name of the open file?", ["notes.txt"]),
)
#: predictions made elsewhere for :data:`DOCVQA_QUESTIONS`, by questionId
PREDICTIONS = {9001: "Visual Tokens", 9002: "Page 7", 9003: "notes.md"}

#: the episode's steps: (action, target); screenshots are the built-in window with other editor text
EPISODE_STEPS = (
    ({"type": "click", "x": 133, "y": 58}, "Open"),
    ({"type": "scroll", "direction": "down"}, None),
    ({"type": "type", "x": 1130, "y": 58, "text": "settings", "submit": True}, "Search"),
    ({"type": "click", "x": 1150, "y": 647}, "Apply"),
    ({"type": "finish"}, None),
)


class ExamplesError(ValueError):
    """The folder cannot take the examples (it holds some already, or it is a file)."""


def write_episode(folder: Path) -> Path:
    """``folder/episode.json`` + ``step_00.png`` .. ``step_04.png`` (1280x800 screenshots)."""
    folder.mkdir(parents=True)
    steps = []
    for k, (action, target) in enumerate(EPISODE_STEPS):
        name = f"step_{k:02d}.png"
        gui_screenshot(seed=k).save(folder / name)
        steps.append({"step": k, "screenshot": name, "action": action, "target": target})
    episode = {"episode_id": "sample_editor_settings", "goal": "Open the editor settings and apply them",
               "platform": "web", "width": 1280, "height": 800, "source": "vlprune built-in sample screenshots",
               "steps": steps}
    (folder / "episode.json").write_text(json.dumps(episode, indent=1) + "\n", encoding="utf-8")
    return folder


def write_docvqa(folder: Path) -> Path:
    """A DocVQA validation folder: ``val_v1.0.json`` (``data`` records) + ``documents/*.png``."""
    (folder / "documents").mkdir(parents=True)
    document_page().save(folder / "documents" / "page_1.png")
    gui_screenshot().save(folder / "documents" / "window_1.png")
    data = [{"questionId": qid, "question": q, "image": image, "answers": answers, "question_types": ["others"],
             "docId": 1 + k, "data_split": "val"}
            for k, (qid, image, q, answers) in enumerate(DOCVQA_QUESTIONS)]
    record = {"dataset_name": "docvqa", "dataset_version": "1.0", "dataset_split": "val", "data": data}
    (folder / "val_v1.0.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return folder


def write_examples(folder: str | Path) -> list[Path]:
    """Write :data:`EXAMPLE_ENTRIES` into ``folder`` (made if needed); returns the paths written.

    Raises :class:`ExamplesError` before writing anything if ``folder`` is a file or holds any entry.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExamplesError(f"{folder}: is a file, not a folder")
    there = [name for name in EXAMPLE_ENTRIES if (folder / name).exists() or (folder / name).is_symlink()]
    if there:
        raise ExamplesError(f"{folder}: already holds {', '.join(there)}; nothing was written (give a new or "
                            f"empty folder)")
    folder.mkdir(parents=True, exist_ok=True)
    samples = make_samples()
    samples["document"].save(folder / "page.png")
    samples["gui"].save(folder / "shot.png")
    (folder / "screenshots").mkdir()
    for name, image in samples.items():
        image.save(folder / "screenshots" / f"{name}.png")
    write_episode(folder / "episode")
    write_docvqa(folder / "docvqa")
    with open(folder / "predictions.jsonl", "w", encoding="utf-8") as f:
        for qid, *_ in DOCVQA_QUESTIONS:
            f.write(json.dumps({"id": str(qid), "prediction": PREDICTIONS[qid]}) + "\n")
    return [folder / name for name in EXAMPLE_ENTRIES]
