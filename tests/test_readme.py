"""Every example of README.md runs as written, offline.

* every ```python block, in README order, in one namespace (a later block may use what an earlier
  one defined, as a reader would), with the working directory a temp folder;
* every line of a ```bash block that starts with ``vlprune `` through the CLI entry point
  (:func:`vlprune.cli.main`), which must exit 0 -- except the two set-up commands at the top, which
  must stay exactly as they are (they install the package; ``.ci/run`` runs the second).

New examples are picked up automatically. The temp folder holds the sample files the examples name
(:data:`SAMPLE_FILES`, made from :mod:`vlprune.samples`), a recorded agent episode (``episode/``), a
DocVQA folder in its published layout (``docvqa/``) and predictions for it (``predictions.jsonl``); an example that needs another input adds it there.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from vlprune import cli
from vlprune.samples import make_samples

README = Path(__file__).resolve().parents[1] / "README.md"
SETUP = [
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install . && vlprune demo",
    'python3 -m venv .venv && . .venv/bin/activate && pip install -q torch==2.13.0 && pip install -q -e ".[test]" '
    "&& python -m pytest",
]
#: file name in the examples' working folder -> built-in sample it is made from
SAMPLE_FILES = {
    "page.png": "document",
    "shot.png": "gui",
    "screenshots/gui.png": "gui",
    "screenshots/document.png": "document",
    "screenshots/texture.png": "texture",
}


def blocks(lang: str) -> list[tuple[int, str]]:
    """(line number, body) of every fenced block of ``lang`` in README.md."""
    text = README.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(rf"^```{lang}[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.S | re.M):
        out.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


def write_episode(folder: Path, samples: dict) -> None:
    """A recorded agent episode in the corpus format (episode.json + step_NN.png), from the samples."""
    folder.mkdir(parents=True, exist_ok=True)
    steps = []
    for k in range(5):
        img = samples["gui" if k % 2 == 0 else "document"]
        img.save(folder / f"step_{k:02d}.png")
        action = {"type": "click", "x": 100 + 10 * k, "y": 200} if k % 2 == 0 else {"type": "scroll", "direction": "down"}
        steps.append({"step": k, "screenshot": f"step_{k:02d}.png", "action": action})
    episode = {"episode_id": "readme", "goal": "Open the settings", "platform": "web", "width": 1280,
               "height": 800, "steps": steps}
    (folder / "episode.json").write_text(json.dumps(episode), encoding="utf-8")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    samples = make_samples()
    for name, sample in SAMPLE_FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        samples[sample].save(tmp_path / name)
    write_episode(tmp_path / "episode", samples)  # vlprune demo --agent --episode episode/
    from eval_fixtures_docs import DOCVQA_RECORDS, write_docvqa

    (tmp_path / "docvqa").mkdir()
    write_docvqa(tmp_path / "docvqa")  # vlprune eval ... --data docvqa/
    with open(tmp_path / "predictions.jsonl", "w", encoding="utf-8") as f:  # made elsewhere: eval score
        for rec in DOCVQA_RECORDS:
            f.write(json.dumps({"id": str(rec["questionId"]), "prediction": rec["answers"][0]}) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_setup_commands_come_first_and_unchanged():
    first = [body.strip() for _, body in blocks("bash")[:2]]
    assert first == SETUP
    text = README.read_text(encoding="utf-8")
    assert text.index("```bash") < text.index("```python")


def test_python_examples_run(workdir, capsys):
    found = blocks("python")
    assert len(found) >= 3
    namespace: dict = {"__name__": "__readme__"}
    for line, body in found:
        code = compile(body, f"README.md:{line}", "exec")  # tracebacks point at the README line
        exec(code, namespace)
    out = capsys.readouterr().out
    assert out.strip(), "the examples print their results"


def command_lines() -> list[tuple[int, str]]:
    lines = []
    for start, body in blocks("bash")[2:]:
        for k, line in enumerate(body.splitlines()):
            if line.startswith("vlprune "):
                lines.append((start + 1 + k, line))
    return lines


@pytest.mark.parametrize("line", [pytest.param(cmd, id=f"README.md:{n}") for n, cmd in command_lines()])
def test_command_examples_run(workdir, capsys, line):
    argv = shlex.split(line)[1:]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, f"{line}\n{out}\n{err}"
    assert out.strip()


def test_every_command_line_is_collected():
    assert {shlex.split(c)[1] for _, c in command_lines()} >= {"analyze", "list", "bench"}
