"""What a careless user does to the other commands: empty paths, outputs that are inputs, a bad recorded
episode, a method ``select`` cannot run, a preset with its own ``lam``; ``vlprune samples`` (the README's
inputs); the dtype ``vlprune bench`` picks per CPU; the selector benchmark without the image corpus.

Expected values are worked out by hand in the comments; no model is built.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vlprune
from vlprune import cli

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def no_model(monkeypatch):
    import vlprune.bench.run

    monkeypatch.setattr(vlprune.bench.run, "build_model", lambda *a, **k: pytest.fail("the model was built"))


# ---------------------------------------------------------------------------------------------- empty paths
@pytest.mark.parametrize("argv, flag", [
    (["analyze", ""], "PATH"),
    (["analyze", "a.png", "--csv", ""], "--csv"),
    (["analyze", "a.png", "--overlay", ""], "--overlay"),
    (["analyze", "a.png", "--plot", ""], "--plot"),
    (["bench", ""], "IMAGE"),
    (["bench", "a.png", "--json", ""], "--json"),
    (["demo", "--no-generate", "--out", ""], "--out"),
    (["demo", "--agent", "--episode", ""], "--episode"),
    (["samples", ""], "DIR"),
    (["eval", "suite", "pixelprune-docs", "--data-root", "", "--model", "m", "--out", "o"], "--data-root"),
])
def test_an_empty_path_is_a_usage_error_and_nothing_is_written(tmp_path, monkeypatch, capsys, argv, flag, no_model):
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert f"argument {flag}: empty path" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


# ---------------------------------------------------------------------------------------------- outputs = inputs
def test_outputs_that_would_replace_inputs_are_refused(tmp_path, capsys, no_model):
    shots = tmp_path / "shots"
    shots.mkdir()
    for k in range(2):
        Image.new("RGB", (64, 64), (10 * k, 0, 0)).save(shots / f"s{k}.png")
    before = snapshot(shots)
    assert cli.main(["analyze", str(shots), "--overlay", str(shots), "--no-progress"]) == 2
    assert f"argument --overlay: {str(shots)!r} holds the input" in capsys.readouterr().err
    assert cli.main(["analyze", str(shots / "s0.png"), "--plot", str(shots / "s0.png")]) == 2
    assert "argument --plot: " in (err := capsys.readouterr().err) and "is also an input" in err
    assert cli.main(["analyze", str(shots), "--csv", str(shots / "s1.png")]) == 2
    assert "argument --csv: " in capsys.readouterr().err
    assert cli.main(["bench", "--shape", "qwen2-vl-2b", "--dtype", "fp32", str(shots / "s0.png"), "--json",
                     str(shots / "s0.png")]) == 2
    assert "argument --json: " in (err := capsys.readouterr().err) and "is also an input" in err
    assert snapshot(shots) == before
    assert cli.main(["analyze", str(shots), "--overlay", str(tmp_path / "ov"), "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == ["s0.png", "s1.png"]


# ---------------------------------------------------------------------------------------------- select, presets
@pytest.mark.parametrize("method, stage", [("fastv", "llm"), ("divprune", "post_vit"), ("tar", "input")])
def test_select_says_it_takes_pre_vit_methods(method, stage):
    with pytest.raises(TypeError) as exc:
        vlprune.select(np.zeros((64, 64, 3), np.uint8), method)
    msg = str(exc.value)
    assert f"select runs a pre-ViT method on one image: {method!r} works at stage {stage!r}" in msg
    assert f"vlprune.apply(model, {method!r})" in msg and "Pre-ViT methods: " in msg and "pixelprune" in msg
    assert "not callable" not in msg


def test_guipruner_preset_and_lam_together_are_refused():
    from vlprune.methods import create_method

    with pytest.raises(ValueError, match=r"option lam=0.3 conflicts with preset='II', which sets lam=0.2"):
        create_method("guipruner", preset="II", lam=0.3)
    # each alone sets the history budget: lam 0.3; preset II -> 0.2; neither -> preset I's 0.4
    assert [create_method("guipruner", **kw).components()[0].lam for kw in ({"lam": 0.3}, {"preset": "II"}, {})] \
        == [0.3, 0.2, 0.4]


def test_decompression_bomb_message_names_where_the_limit_can_be_raised():
    from vlprune.images import ImageError, load_image

    with pytest.raises(ImageError) as exc:
        load_image(Image.new("RGB", (10, 10)), max_image_pixels=50)
    msg = str(exc.value)
    assert "10x10 = 100 pixels exceeds the limit of 50" in msg
    assert "max_image_pixels in Python, or --max-image-pixels of vlprune analyze / bench" in msg


# ---------------------------------------------------------------------------------------------- samples
def test_samples_writes_the_readme_inputs_once(tmp_path, capsys):
    from vlprune.eval import create_dataset
    from vlprune.eval.agent import load_trajectory

    out = tmp_path / "ex"
    assert cli.main(["samples", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["page.png", "shot.png", "screenshots", "episode", "docvqa", "predictions.jsonl"])
    assert Image.open(out / "page.png").size == (816, 1056) and Image.open(out / "shot.png").size == (1280, 800)
    assert sorted(p.name for p in (out / "screenshots").iterdir()) == ["document.png", "gui.png", "texture.png"]
    ep = load_trajectory(out / "episode")
    assert len(ep.steps) == 5 and ep.meta["size"] == [1280, 800]
    # step 0 clicks the toolbar's "Open" button at pixel (133, 58) of the 1280x800 screen
    assert ep.steps[0].action.type == "click" and ep.steps[0].action.point == (133 / 1280, 58 / 800)
    assert (ep.steps[2].action.type, ep.steps[2].action.text) == ("type", "settings")
    assert [s.action.type for s in ep.steps][-1] == "finish"
    loaded = create_dataset("docvqa").load(out / "docvqa")
    assert [s.id for s in loaded.samples] == ["9001", "9002", "9003"] and not loaded.problems
    assert loaded.samples[0].target == {"answers": ["Redundancy in Visual Tokens"]}
    capsys.readouterr()
    before = snapshot(out)
    assert cli.main(["samples", str(out)]) == 2  # nothing is replaced
    assert "already holds page.png, shot.png, screenshots, episode, docvqa, predictions.jsonl" in capsys.readouterr().err
    assert snapshot(out) == before


def test_sample_predictions_score_the_hand_computed_anls(tmp_path):
    """ANLS (lmms-eval: 1 - edit distance of the lower-cased strings / the longer raw length, 0 below 0.5):
    "Visual Tokens" vs "Redundancy in Visual Tokens": 1 - 14/27 < 0.5 -> 0; "Page 7" vs "page 7": 1;
    "notes.md" vs "notes.txt": 1 - 3/9 = 2/3. Mean 5/9."""
    from vlprune.eval.cli import main

    assert cli.main(["samples", str(tmp_path / "ex")]) == 0
    ex = tmp_path / "ex"
    assert main(["score", "--dataset", "docvqa", "--data", str(ex / "docvqa"), "--predictions",
                 str(ex / "predictions.jsonl"), "--out", str(tmp_path / "scored")]) == 0
    recs = [json.loads(x) for x in (tmp_path / "scored" / "predictions.jsonl").read_text().splitlines()]
    assert [r["scores"]["anls"] for r in recs] == pytest.approx([0.0, 1.0, 2 / 3])
    assert json.loads((tmp_path / "scored" / "summary.json").read_text())["metrics"]["anls"] == pytest.approx(5 / 9)


# ---------------------------------------------------------------------------------------------- episodes
def _episode(folder: Path, **changes) -> Path:
    folder.mkdir()
    steps = []
    for k in range(2):
        Image.new("RGB", (40, 30), (k, k, k)).save(folder / f"step_{k:02d}.png")
        steps.append({"step": k, "screenshot": f"step_{k:02d}.png", "action": {"type": "click", "x": 20, "y": 10}})
    ep = {"episode_id": "e", "goal": "g", "width": 40, "height": 30, "steps": steps}
    for key, value in changes.items():
        if key.startswith("step1_"):
            field = key[len("step1_"):]
            if value is KeyError:
                del steps[1][field]
            else:
                steps[1][field] = value
        else:
            ep[key] = value
    (folder / "episode.json").write_text(json.dumps(ep), encoding="utf-8")
    return folder


@pytest.mark.parametrize("changes, message", [
    ({"step1_action": "click"}, "step 1: 'action' must be an object such as"),
    ({"step1_action": None}, "step 1: 'action' must be an object such as"),
    ({"step1_action": KeyError}, "step 1: missing field 'action'"),
    ({"step1_screenshot": KeyError}, "step 1: missing field 'screenshot'"),
    ({"step1_action": {"type": "tap"}}, "step 1: unknown action type 'tap'"),
    ({"step1_action": {"type": "click", "x": 50, "y": 10}}, "step 1: point (50.0, 10.0) lies outside the 40x30"),
    ({"step1_action": {"type": "scroll", "direction": "sideways"}}, "step 1: scroll direction must be one of"),
    ({"steps": 5}, "episode: field 'steps' must be list, got int 5"),
    ({"steps": []}, "episode: 'steps' is empty"),
    ({"width": "wide"}, "episode: field 'width' must be int, got str 'wide'"),
    ({"platform": "desktop"}, "field 'platform' must be one of web, mobile, got 'desktop'"),
])
def test_a_bad_episode_names_the_step_and_field(tmp_path, capsys, changes, message):
    from vlprune.eval import DatasetError
    from vlprune.eval.agent import load_trajectory

    folder = _episode(tmp_path / "ep", **changes)
    with pytest.raises(DatasetError) as exc:
        load_trajectory(folder)
    assert str(exc.value).startswith(f"{folder / 'episode.json'}: ") and message in str(exc.value)
    assert cli.main(["demo", "--agent", "--episode", str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "argument --episode: " in err and message in err and "Traceback" not in err


def test_an_episode_file_that_is_not_utf8_is_named(tmp_path):
    from vlprune.eval import DatasetError
    from vlprune.eval.agent import load_trajectory

    folder = _episode(tmp_path / "ep")
    (folder / "episode.json").write_bytes((folder / "episode.json").read_bytes().replace(b'"g"', b'"caf\xe9"'))
    with pytest.raises(DatasetError, match="episode.json: not UTF-8 text"):
        load_trajectory(folder)


# ---------------------------------------------------------------------------------------------- bench dtype
X86_FLAGS = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"


@pytest.mark.parametrize("cpuinfo, machine, has", [
    (X86_FLAGS, "x86_64", False),                                      # AVX-512 without its BF16 part
    (X86_FLAGS.replace("avx512_vnni", "avx512_vnni avx512_bf16"), "x86_64", True),
    (X86_FLAGS.replace("avx2", "avx2 amx_bf16 amx_tile"), "x86_64", True),
    ("processor\t: 0\nFeatures\t: fp asimd sve i8mm bf16\n", "aarch64", True),
    ("processor\t: 0\nFeatures\t: fp asimd crc32\n", "aarch64", False),
    ("processor\t: 0\n", "x86_64", None),                              # no flags line: cannot tell
    (X86_FLAGS, "riscv64", None),
])
def test_bf16_matrix_units_are_read_from_cpuinfo(cpuinfo, machine, has):
    from vlprune.bench.dtype import cpu_bf16_units, default_dtype

    assert cpu_bf16_units(cpuinfo, machine)[0] is has
    assert default_dtype("cpu", cpuinfo, machine)[0] == ("bf16" if has else "fp32")


def test_bench_picks_fp32_without_bf16_units_and_says_so_and_dtype_wins(tmp_path, capsys, monkeypatch):
    import vlprune.bench
    import vlprune.bench.dtype
    from vlprune.bench import BenchError

    seen = []

    def fake_run(config):
        seen.append(config.dtype)
        raise BenchError("stopped before the run")

    monkeypatch.setattr(vlprune.bench, "run_bench", fake_run)
    monkeypatch.setattr(vlprune.bench.dtype, "_cpuinfo", lambda: X86_FLAGS)
    monkeypatch.setattr(vlprune.bench.dtype.platform, "machine", lambda: "x86_64")
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    base = ["bench", "--shape", "qwen2-vl-2b", str(tmp_path / "a.png")]
    cli.main(base)
    out = capsys.readouterr().out
    assert "dtype fp32 (default on this CPU: no bf16 matrix units" in out and "--dtype bf16 forces bf16" in out
    cli.main([*base, "--dtype", "bf16"])
    assert "default on this CPU" not in capsys.readouterr().out
    monkeypatch.setattr(vlprune.bench.dtype, "_cpuinfo", lambda: X86_FLAGS + "flags\t\t: amx_bf16\n")
    cli.main(base)
    assert "dtype bf16 (default on this CPU: it has bf16 matrix units, amx_bf16" in capsys.readouterr().out
    assert seen == ["fp32", "bf16", "bf16"]


# ---------------------------------------------------------------------------------------------- selector benchmark
def _selector_script():
    spec = importlib.util.spec_from_file_location("selector_bench", REPO / "benchmarks" / "selector.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_selector_benchmark_without_the_corpus(tmp_path, capsys):
    mod = _selector_script()
    with pytest.raises(SystemExit) as exc:
        mod.main(["--corpus", str(tmp_path / "none")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --corpus: " in err and "the corpus lacks web/py311_library_itertools.png" in err
    sizes = [(label, im.size) for label, im, _ in mod.sample_images()]
    assert sizes == [("720p screenshot", (1280, 720)), ("1080p screenshot", (1920, 1080)),
                     ("1440p screenshot", (2560, 1440)), ("4K screenshot", (3840, 2160)),
                     ("A4 page, 150 dpi", (1240, 1754)), ("A4 page, 300 dpi", (2480, 3508))]


def test_a_file_that_cannot_be_written_is_named_without_a_traceback(tmp_path, capsys, monkeypatch):
    import vlprune.bench

    def full_disk(config):
        raise OSError(28, "No space left on device", str(tmp_path / "r.json"))

    monkeypatch.setattr(vlprune.bench, "run_bench", full_disk)
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    assert cli.main(["bench", "--shape", "qwen2-vl-2b", "--dtype", "fp32", str(tmp_path / "a.png")]) == 2
    assert capsys.readouterr().err.strip() == f"vlprune: error: {tmp_path / 'r.json'}: No space left on device"
