"""``vlprune`` command line end to end: analyze (json/csv/overlay/plot, folders, failures, usage
errors), list, --help, demo; once through a subprocess (``python -m vlprune``)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vlprune
from vlprune import cli
from vlprune.families import list_families
from vlprune.methods import list_methods
from vlprune.samples import SAMPLE_NAMES

from corpus import CORPUS
from corpus import files as corpus

REPO = Path(__file__).resolve().parents[1]
KEYS = {"path", "family", "method", "tokens", "kept", "grid", "kept_indices", "selector_ms", "retain",
        "duplicate_ratio", "size"}


WEB, DOC, MOBILE = "web/flask_index.png", "doc/gnuplot_p001_title.png", "mobile/git_gittutorial.png"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["analyze", "--no-progress", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> tuple[list[dict], dict]:
    objs = [json.loads(line) for line in out.splitlines()]
    assert "summary" in objs[-1] and all("summary" not in o for o in objs[:-1])
    return objs[:-1], objs[-1]["summary"]


# ------------------------------------------------------------------------------ json
def test_json_lines_match_select_and_summary(capsys):
    paths = corpus(WEB, DOC)
    code, out, err = run(capsys, *paths, "--json")
    assert code == 0, err
    lines, summary = json_lines(out)
    assert [o["path"] for o in lines] == [str(p) for p in paths]
    for o, p in zip(lines, paths):
        assert KEYS <= set(o)
        sel = vlprune.select(p)
        assert o["kept_indices"] == sel.kept.tolist() and o["kept"] == sel.n_kept
        assert o["grid"] == list(sel.grid) and o["tokens"] == sel.n_total
        assert (o["family"], o["method"]) == ("qwen3-vl", "pixelprune")
        assert o["retain"] == o["kept"] / o["tokens"] and 0 <= o["duplicate_ratio"] < 1
    assert summary["retain"] == sum(o["kept"] for o in lines) / sum(o["tokens"] for o in lines)
    assert (summary["images"], summary["failed"]) == (2, 0)


def test_json_options_family_tau_metric_and_baselines(capsys):
    (path,) = corpus(MOBILE)
    code, out, _ = run(capsys, path, "--json", "--family", "qwen2-vl", "--tau", "0.05", "--metric", "mae",
                       "--order", "serpentine")
    assert code == 0
    (o,), summary = json_lines(out)
    want = vlprune.select(path, family="qwen2-vl", tau=0.05, metric="mae", order="serpentine")
    assert o["kept_indices"] == want.kept.tolist() and o["family"] == "qwen2-vl"
    assert summary["options"] == {"order": "serpentine", "metric": "mae", "tau": 0.05, "after_block": None}

    code, out, _ = run(capsys, path, "--json", "--method", "random", "--seed", "3")
    (o,), _ = json_lines(out)
    assert o["kept_indices"] == vlprune.select(path, "random", seed=3).kept.tolist()
    assert o["kept"] == vlprune.select(path).n_kept  # same budget as PixelPrune

    code, out, _ = run(capsys, path, "--json", "--method", "resize")
    (o,), _ = json_lines(out)
    gh, gw = o["kept_grid"]
    assert o["kept"] == gh * gw and o["kept_indices"] == list(range(gh * gw))
    assert o["resized"] == [gh * 32, gw * 32] and o["grid"] != o["kept_grid"]


# ------------------------------------------------------------------------------ files written
def test_csv_overlay_and_plot(capsys, tmp_path):
    paths = corpus(WEB, DOC)
    code, out, err = run(capsys, CORPUS / "web", paths[1], "--json", "--csv", tmp_path / "r.csv",
                         "--overlay", tmp_path / "ov", "--plot", tmp_path / "retain.png")
    assert code == 0, err
    lines, summary = json_lines(out)
    rows = list(csv.DictReader(open(tmp_path / "r.csv", encoding="utf-8")))
    assert [r["path"] for r in rows] == [o["path"] for o in lines] and list(rows[0]) == list(cli.CSV_COLUMNS)
    assert [int(r["kept"]) for r in rows] == [o["kept"] for o in lines]
    names = sorted(p.name for p in (tmp_path / "ov").iterdir())
    assert len(names) == len(lines) and "flask_index.png" in names and "gnuplot_p001_title.png" in names
    o = next(o for o in lines if o["path"] == str(paths[0]))
    overlay = np.asarray(Image.open(o["overlay"]).convert("RGB"))
    image = vlprune.BlockGrid.from_image(paths[0]).image()
    assert overlay.shape == image.shape and overlay.shape[:2] == tuple(o["size"])
    b = 32
    kept = set(o["kept_indices"])
    for k in range(o["tokens"]):
        i, j = divmod(k, o["grid"][1])
        same = np.array_equal(overlay[i * b:(i + 1) * b, j * b:(j + 1) * b], image[i * b:(i + 1) * b, j * b:(j + 1) * b])
        assert same == (k in kept), k
    plot = tmp_path / "retain.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(plot).size[0] > 300
    assert "wrote" in err  # JSON mode keeps notes off stdout


def test_overlay_names_do_not_collide(capsys, tmp_path):
    (path,) = corpus(WEB)
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "same.png").write_bytes(path.read_bytes())
    code, _, _ = run(capsys, tmp_path / "one" / "same.png", tmp_path / "two" / "same.png", "--overlay", tmp_path / "ov")
    assert code == 0 and sorted(p.name for p in (tmp_path / "ov").iterdir()) == ["same-2.png", "same.png"]


# ------------------------------------------------------------------------------ folders, failures
def test_folder_walk_human_table(capsys, tmp_path):
    (path,) = corpus(DOC)
    Image.open(path).convert("L").save(tmp_path / "b.jpg")
    (tmp_path / "sub").mkdir()
    Image.open(path).save(tmp_path / "sub" / "a.PNG")
    (tmp_path / "readme.txt").write_text("skipped: not an image extension")
    code, out, _ = run(capsys, tmp_path)
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith(str(tmp_path))]
    assert [r.split()[0] for r in rows] == [str(tmp_path / "b.jpg"), str(tmp_path / "sub" / "a.PNG")]
    assert out.splitlines()[0].split()[:2] == ["image", "size"]
    assert "summary: 2 images ok, 0 failed" in out and "retain" in out


def test_bad_batch_reports_each_failure_and_exits_1(capsys, tmp_path):
    (path,) = corpus(WEB)
    good = tmp_path / "good.png"
    good.write_bytes(path.read_bytes())
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "truncated.png").write_bytes(path.read_bytes()[:4000])
    (tmp_path / "fake.png").write_text("this is not an image")
    code, out, err = run(capsys, tmp_path, "--json")
    assert code == 1
    objs = [json.loads(line) for line in out.splitlines()]
    ok = [o for o in objs if "kept" in o]
    failed = {Path(o["path"]).name: o["error"] for o in objs if "error" in o}
    assert [Path(o["path"]).name for o in ok] == ["good.png"]
    assert ok[0]["kept_indices"] == vlprune.select(path).kept.tolist()
    assert set(failed) == {"empty.png", "truncated.png", "fake.png"}
    assert "empty" in failed["empty.png"] and "truncated" in failed["truncated.png"]
    assert "not a readable image" in failed["fake.png"]
    assert objs[-1]["summary"]["images"] == 1 and objs[-1]["summary"]["failed"] == 3
    for name in failed:
        assert f"{tmp_path / name}:" in err
    assert "3 input(s) failed" in err


@pytest.mark.parametrize("argv, flag", [
    (["--method", "nope"], "--method"),
    (["--metric", "l2"], "--metric"),
    (["--family", "llava"], "--family"),
    (["--order", "zigzag"], "--order"),
    (["--tau", "-0.1"], "--tau"),
    (["--tau", "nan"], "--tau"),
    (["--tau", "abc"], "--tau"),
    (["--retain", "0.5"], "--retain"),
    (["--max-pixels", "1000"], "--max-pixels"),
    (["--min-pixels", "70000", "--max-pixels", "69999"], "--min-pixels"),
    (["--max-image-pixels", "0"], "--max-image-pixels"),
    (["--seed", "-5", "--method", "random"], "--seed"),
    (["--seed", "1.5", "--method", "random"], "--seed"),
    (["--seed", "3"], "--seed"),  # pixelprune has no seed: refused, as create_method refuses it
    (["--tau", "1e9"], "--tau"),
    (["--tau", "inf"], "--tau"),
    (["--tau", "0.1", "--method", "full"], "--tau"),
    (["--retain", "0", "--method", "random"], "--retain"),
    (["--alpha", "black"], "--alpha"),
    (["--high-bit-depth", "x"], "--high-bit-depth"),
    (["--plot", "."], "--plot"),
    (["--csv", "."], "--csv"),
])
def test_usage_errors_exit_2_naming_the_flag(capsys, tmp_path, argv, flag):
    (tmp_path / "a.png").write_bytes(b"")  # a run that started would report this file
    code = cli.main(["analyze", str(tmp_path), *[str(tmp_path) if a == "." else a for a in argv]])
    out, err = capsys.readouterr()
    assert code == 2 and f"argument {flag}: " in err and "usage:" in err, err
    assert "a.png" not in out + err  # refused before any image was read


@pytest.mark.parametrize("argv, flag", [
    (["--seed", "-5"], "--seed"),
    (["--tau", "1e9"], "--tau"),
    (["--retain", "0.5"], "--retain"),  # pixelprune (the default method) takes no retain
    (["--retain", "0.5", "--method", "pixelprune", "--method", "full"], "--retain"),
    (["--warmup", "-1"], "--warmup"),
    (["--repeats", "0"], "--repeats"),
    (["--decode-tokens", "-2"], "--decode-tokens"),
    (["--threads", "0"], "--threads"),
    (["--layers", "0"], "--layers"),
    (["--max-memory-gb", "nan"], "--max-memory-gb"),
    (["--min-pixels", "70000", "--max-pixels", "69999"], "--min-pixels"),
    (["--max-image-pixels", "-1"], "--max-image-pixels"),
    (["--json", "."], "--json"),
    (["--plot", "."], "--plot"),
    (["--opt", "fastv.retain=2", "--method", "fastv"], "--opt"),
    (["--opt", "retain=0.5"], "--opt"),
    (["--method", "pixelprune+random"], "--method"),
    (["--method", "fastv", "--opt", "fastv.layer=40"], "--method"),  # the 2B LLM has 28 layers
    (["--attn", "sdpa2"], "--attn"),
])
def test_bench_usage_errors_exit_2_naming_the_flag(capsys, tmp_path, argv, flag, monkeypatch):
    import vlprune.bench.run

    monkeypatch.setattr(vlprune.bench.run, "build_model", lambda *a, **k: pytest.fail("the model was built"))
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    code = cli.main(["bench", "--shape", "qwen2-vl-2b", *[str(tmp_path) if a == "." else a for a in argv],
                     str(tmp_path / "a.png")])
    err = capsys.readouterr().err
    assert code == 2 and f"argument {flag}: " in err and "usage:" in err, err


def test_opt_sets_the_analysed_method_s_options_as_the_named_flags_do(capsys):
    (path,) = corpus(MOBILE)
    code, out, err = run(capsys, path, "--json", "--opt", "pixelprune.tau=0.05", "--opt", "pixelprune.metric='mae'")
    assert code == 0, err
    (o,), summary = json_lines(out)
    assert o["kept_indices"] == vlprune.select(path, tau=0.05, metric="mae").kept.tolist()
    assert summary["options"] == {"order": "pred2d", "metric": "mae", "tau": 0.05, "after_block": None}
    code, out, _ = run(capsys, path, "--json", "--method", "random", "--opt", "random.retain=0.3", "--seed", "4")
    (o,), _ = json_lines(out)
    assert o["kept_indices"] == vlprune.select(path, "random", retain=0.3, seed=4).kept.tolist()


@pytest.mark.parametrize("argv, msg", [
    (["--opt", "fastv.retain=0.3"], "argument --opt: fastv.*: method 'fastv' is not the --method analysed (pixelprune)"),
    (["--opt", "pixelprune.tau=2"], "argument --opt: pixelprune.tau: option tau must be in [0, 1], got 2"),
    (["--opt", "pixelprune.bogus=1"], "argument --opt: pixelprune.bogus: option bogus does not apply to method pixelprune"),
    (["--tau", "0.1", "--opt", "pixelprune.tau=0.2"], "argument --opt: pixelprune.tau: also given as --tau"),
    (["--opt", "pixelprune"], "argument --opt: 'pixelprune': expected NAME.OPTION=VALUE"),
])
def test_analyze_opt_errors_exit_2_naming_the_flag_and_option(capsys, tmp_path, argv, msg):
    (tmp_path / "a.png").write_bytes(b"")
    code = cli.main(["analyze", str(tmp_path / "a.png"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and msg in err and "usage:" in err, err


def test_one_flag_parser_for_every_command():
    from vlprune.cli import flags
    from vlprune.eval import config as eval_config

    assert eval_config.parse_assignment is flags.parse_assignment and eval_config.literal is flags.literal
    got = flags.parse_method_options(["fastv.retain=0.3", "guipruner.preset=II", "fastv.layer=3", "x.t=(1, 2)",
                                      "pixelprune.metric='mae'"])
    assert got == {"fastv": {"retain": 0.3, "layer": 3}, "guipruner": {"preset": "II"}, "x": {"t": (1, 2)},
                   "pixelprune": {"metric": "mae"}}
    assert flags.parse_key_values(["split=test", "n=5"], "--dataset-opt") == {"split": "test", "n": 5}
    for items, detail in [(["fastv.retain=0.3", "fastv.retain=0.4"], "'fastv.retain=0.4': fastv.retain is given twice"),
                          (["retain=0.3"], "'retain=0.3': expected NAME.OPTION=VALUE (e.g. fastv.retain=0.3)"),
                          (["fastv.retain"], "'fastv.retain': expected NAME.OPTION=VALUE")]:
        with pytest.raises(flags.FlagError) as exc:
            flags.parse_method_options(items)
        assert exc.value.flag == "--opt" and exc.value.detail == detail and str(exc.value) == f"--opt {detail}"


def test_help_imports_no_model_code():
    """``vlprune --help`` builds every command's parser (eval's too) without loading transformers or the
    runtime: only what the flags' choices need."""
    code = ("import sys; from vlprune.cli import main; assert main(['--help']) == 0; "
            "print(sorted(m for m in ('transformers', 'vlprune.runtime', 'vlprune.eval.runner') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]" and "eval" in proc.stdout


def test_api_refuses_what_the_flags_refuse():
    for name, opts in [("random", dict(seed=-5)), ("pixelprune", dict(tau=1e9)), ("pixelprune", dict(tau=True)),
                       ("conncomp", dict(retain=2))]:
        with pytest.raises(ValueError, match=f"option {next(iter(opts))} must"):
            vlprune.create_method(name, **opts)
        with pytest.raises(ValueError, match=f"option {next(iter(opts))} must"):
            vlprune.select(np.zeros((64, 64, 3), np.uint8), name, **opts)


def test_linked_folder_is_analysed_and_a_loop_is_a_failure(capsys, tmp_path):
    """The reported case: a folder with one image and a link to a folder of images."""
    (path,) = corpus(DOC)
    Image.open(path).crop((0, 0, 400, 300)).save(tmp_path / "one.png")
    (tmp_path / "shots").mkdir()
    for k in range(2):
        Image.open(path).crop((0, 300 * k, 400, 300 * k + 300)).save(tmp_path / "shots" / f"s{k}.png")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "one.png").write_bytes((tmp_path / "one.png").read_bytes())
    (tmp_path / "dir" / "more").symlink_to(tmp_path / "shots", target_is_directory=True)
    code, out, err = run(capsys, tmp_path / "dir")
    assert code == 0 and "summary: 3 images ok, 0 failed" in out, out + err
    (tmp_path / "shots" / "again").symlink_to(tmp_path / "dir", target_is_directory=True)
    code, out, err = run(capsys, tmp_path / "dir")
    assert code == 1 and "summary: 3 images ok, 1 failed" in out
    assert f"{tmp_path / 'dir' / 'more' / 'again'}: symbolic link loop" in err


def test_image_flags_reach_the_image_route(capsys, tmp_path):
    """A JPEG stored 320 x 192 with EXIF orientation 6 (rotate 90°): transformers applies it, so the
    default grid is 10 x 6 blocks; --no-exif analyses the stored 6 x 10."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (320, 192), (20, 40, 60)).save(tmp_path / "rot.jpg", exif=exif)
    grids = {}
    for flag in ([], ["--no-exif"]):
        code, out, _ = run(capsys, tmp_path / "rot.jpg", "--json", "--min-pixels", "1024", *flag)
        (o,), _ = json_lines(out)
        grids[tuple(flag)] = o["grid"]
    assert grids == {(): [10, 6], ("--no-exif",): [6, 10]}
    rgba = np.full((64, 64, 4), (10, 20, 30, 255), np.uint8)
    rgba[:, :32, 3] = 0  # one colour; the left half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    kept = {}
    for flag in ([], ["--alpha", "drop"], ["--alpha", "white"]):
        code, out, _ = run(capsys, tmp_path / "a.png", "--json", "--min-pixels", "1024", *flag)
        kept[tuple(flag)] = json_lines(out)[0][0]["kept_indices"]
    # a file's alpha band is dropped (one flat colour: the anchor only); white: two colours
    assert kept == {(): [0], ("--alpha", "drop"): [0], ("--alpha", "white"): [0, 1]}


def test_demo_out_that_is_a_file_exits_2(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    assert cli.main(["demo", "--no-generate", "--out", str(tmp_path / "f")]) == 2
    assert "argument --out: " in capsys.readouterr().err


# ------------------------------------------------------------------------------ help, list, demo
def test_help_version_and_list(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in ("analyze", "demo", "list", "bench", "eval"))
    assert cli.main(["eval", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in ("run", "score", "suite"))
    assert cli.main(["eval"]) == 2 and "run" in capsys.readouterr().out  # no sub-command: its help
    assert cli.main(["analyze", "--help"]) == 0 and "--overlay" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0 and vlprune.__version__ in capsys.readouterr().out
    assert cli.main([]) == 2
    capsys.readouterr()
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(m in out for m in list_methods()) and all(f in out for f in list_families())


def test_demo_writes_overlays_and_calls_the_generation_step(capsys, tmp_path, monkeypatch):
    import vlprune.demo

    calls = []
    monkeypatch.setattr(vlprune.demo, "demo_generation",
                        lambda samples, out_dir: calls.append({"samples": samples, "out_dir": out_dir}))
    assert cli.main(["demo", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    written = sorted(p.name for p in (tmp_path / "d" / "overlay").iterdir())
    assert written == sorted(f"{s}_{f}.png" for s in SAMPLE_NAMES for f in list_families())
    assert all(f in out for f in list_families()) and "->" in out and str(tmp_path / "d" / "overlay") in out
    assert len(calls) == 1 and set(calls[0]["samples"]) == set(SAMPLE_NAMES) and calls[0]["out_dir"] == tmp_path / "d"


def test_subprocess_python_m_vlprune(tmp_path):
    (path,) = corpus(WEB)
    proc = subprocess.run(
        [sys.executable, "-m", "vlprune", "analyze", str(path), "--json", "--family", "qwen2.5-vl"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines, summary = json_lines(proc.stdout)
    assert lines[0]["kept_indices"] == vlprune.select(path, family="qwen2.5-vl").kept.tolist()
    assert summary["retain"] == lines[0]["kept"] / lines[0]["tokens"]


# ------------------------------------------------------------------------------ demo --agent
EPISODE = CORPUS / "trajectories" / "web_pg15_select"


@pytest.mark.skipif(not (EPISODE / "episode.json").is_file(), reason=f"episode not found at {EPISODE}")
def test_demo_agent_prints_the_stage_table_of_the_run_and_writes_the_overlay(capsys, tmp_path, monkeypatch):
    """One family (qwen2-vl): the printed per-stage token table is what ``run_agent_demo`` returned, the
    overlay has the current screenshot's size after the demo's processor resize (max_pixels 512 * 512)."""
    import vlprune.agent
    from vlprune.grid import smart_resize

    returned = []
    real = vlprune.agent.run_agent_demo
    monkeypatch.setattr(vlprune.agent, "run_agent_demo", lambda *a, **k: returned.extend(real(*a, **k)) or returned)
    code = cli.main(["demo", "--agent", "--episode", str(EPISODE), "--family", "qwen2-vl", "--preset", "II",
                     "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    (rec,) = returned
    assert rec["family"] == "qwen2-vl" and rec["layer"] == 2
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] in (["history"], ["current"], ["all"]):
            label = " ".join(parts[:-4])
            rows[label] = dict(zip(("raw", "input", "pre_vit", "llm"), map(int, parts[-4:])))
    want = {f"history -{4 - k}": t for k, t in enumerate(rec["per_image"][:4])}
    want.update({"current": rec["per_image"][4], "all": rec["tokens"]})
    assert rows == want
    assert rows["all"]["input"] < rows["all"]["raw"]  # preset II: TAR shrank the history
    assert rows["current"]["input"] == rows["current"]["raw"]  # the current screenshot is never resized
    overlay = Path(rec["overlay"])
    assert overlay == tmp_path / "agent" / "ssp_qwen2-vl.png" and overlay.is_file()
    shot = Image.open(EPISODE / "step_04.png")  # the current screenshot of the default step (4 history frames)
    block = 28
    h, w = smart_resize(shot.height, shot.width, block, block * block, 512 * 512)
    assert Image.open(overlay).size == (w, h) and rows["current"]["raw"] == (h // block) * (w // block)


def test_demo_agent_flags_are_checked_before_any_model(capsys, tmp_path):
    assert cli.main(["demo", "--agent", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "argument --episode: --agent needs a recorded episode folder" in err and "episode.json" in err
    assert cli.main(["demo", "--episode", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "argument --episode: only with --agent" in capsys.readouterr().err
    assert cli.main(["demo", "--agent", "--episode", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert f"argument --episode: {tmp_path}: no episode.json" in capsys.readouterr().err
    assert cli.main(["demo", "--agent", "--episode", str(tmp_path), "--preset", "IV"]) == 2
    assert "argument --preset: invalid choice" in capsys.readouterr().err
