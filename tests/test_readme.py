"""Every example of README.md runs as written, offline, in a folder made by ``vlprune samples`` (the
command the README tells a new user to run first; nothing else is put there).

* every ```python block in a fresh namespace -- unless its first line says ``# continues ...``: then in
  the namespace the blocks before it left, as a reader who ran them would have it;
* every line of a ```bash block that starts with ``vlprune `` through the CLI entry point
  (:func:`vlprune.cli.main`), which must exit 0 -- except the two set-up commands at the top, which
  must stay exactly as they are (they install the package; ``.ci/run`` runs the second).

New examples are picked up automatically.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from vlprune import cli

README = Path(__file__).resolve().parents[1] / "README.md"
SETUP = [
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install . && vlprune demo",
    'python3 -m venv .venv && . .venv/bin/activate && pip install -q torch==2.13.0 && pip install -q -e ".[test]" '
    "&& python -m pytest",
]


def blocks(lang: str) -> list[tuple[int, str]]:
    """(line number, body) of every fenced block of ``lang`` in README.md."""
    text = README.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(rf"^```{lang}[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.S | re.M):
        out.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


@pytest.fixture
def workdir(tmp_path, monkeypatch, capsys):
    assert cli.main(["samples", str(tmp_path / "examples")]) == 0  # what the README says to run first
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "examples")
    return tmp_path / "examples"


def test_setup_commands_come_first_and_unchanged():
    first = [body.strip() for _, body in blocks("bash")[:2]]
    assert first == SETUP
    text = README.read_text(encoding="utf-8")
    assert text.index("```bash") < text.index("```python")


def test_python_examples_run(workdir, capsys):
    found = blocks("python")
    assert len(found) >= 3
    assert not found[0][1].startswith("# continues"), "the first block has nothing to continue"
    namespace: dict = {}
    for line, body in found:
        if not body.startswith("# continues"):  # runs on its own
            namespace = {"__name__": "__readme__"}
        code = compile(body, f"README.md:{line}", "exec")  # tracebacks point at the README line
        exec(code, namespace)
    assert capsys.readouterr().out.strip(), "the examples print their results"


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
