"""Data-parallel ``eval run``: two gloo processes under torchrun (CPU) give the same files as one process;
shards left by an interrupted multi-process run are merged by a later run; duplicates are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import eval_toy
from vlprune.eval.cli import main
from vlprune.eval.config import EvalConfig
from vlprune.eval.distributed import DistContext
from vlprune.eval.runner import Runner

MODEL = "random:qwen2-vl-tiny"


def config(data: Path, out: Path) -> EvalConfig:
    return EvalConfig("toy-vqa", str(data), MODEL, str(out), methods=("pixelprune",), max_pixels=12544,
                      device="cpu", progress=False)


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_shard_takes_every_nth_pending_item():
    items = list(range(7))
    assert DistContext(0, 3).shard(items) == [0, 3, 6]
    assert DistContext(1, 3).shard(items) == [1, 4]
    assert DistContext(2, 3).shard(items) == [2, 5]
    assert DistContext().shard(items) == items


def test_torchrun_two_processes_equal_one_process(tmp_path):
    """The same ``eval run`` command, once in this process and once under ``torchrun --nproc-per-node 2``
    (gloo on CPU), on the ScreenSpot-v2 fixture with one screenshot missing."""
    docs = pytest.importorskip("eval_fixtures_docs", reason="document/grounding fixture writers not written yet")
    (tmp_path / "data").mkdir()
    data = docs.DOC_FIXTURES["screenspot-v2"](tmp_path / "data")
    sorted(Path(data).rglob("*.png"))[0].unlink()
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["run", "--dataset", "screenspot-v2", "--data", str(data), "--model", MODEL, "--method", "pixelprune",
            "--max-pixels", "12544", "--max-new-tokens", "3", "--no-progress"]
    rc = main([*args, "--out", str(one)])
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "vlprune.eval.cli", *args, "--out", str(two)],
                          capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert rc == 1 and proc.returncode == 1, proc.stderr[-3000:]  # the missing screenshot fails in both
    for name in ("full", "pixelprune"):
        a, b = records(one / name / "predictions.jsonl"), records(two / name / "predictions.jsonl")
        assert len(a) == 4 and [r["id"] for r in b] == [r["id"] for r in a]
        for key in ("index", "prediction", "answer", "scores", "failed", "tokens", "canvas", "flops"):
            assert [r[key] for r in b] == [r[key] for r in a], (name, key)
        sa, sb = (json.loads((o / name / "summary.json").read_text()) for o in (one, two))
        assert sb["metrics"] == sa["metrics"] and (sb["n"], sb["n_failed"]) == (sa["n"], sa["n_failed"])
        assert sa["n"] == 4 and sa["n_failed"] >= 1
        assert sb["efficiency"]["retain"] == sa["efficiency"]["retain"]
        assert sb["run"]["world_size"] == 2 and sa["run"]["world_size"] == 1
        assert not (two / name / "shards").exists()
    ca, cb = (json.loads((o / "comparison.json").read_text()) for o in (one, two))
    assert [r["metrics"] for r in cb["rows"]] == [r["metrics"] for r in ca["rows"]]


def test_leftover_shards_are_merged_by_a_later_run(tmp_path):
    data = eval_toy.write_toy_vqa(tmp_path / "data", 4)
    ref, out = tmp_path / "ref", tmp_path / "out"
    Runner(config(data, ref)).run()
    # an interrupted two-process run: rank 0 wrote q0, rank 1 wrote q1 (its last line cut), nothing merged
    (out / "full" / "shards").mkdir(parents=True)
    shutil.copy(ref / "full" / "run.json", out / "full" / "run.json")
    rows = (ref / "full" / "predictions.jsonl").read_text().splitlines()
    (out / "full" / "shards" / "rank0.jsonl").write_text(rows[0] + "\n")
    (out / "full" / "shards" / "rank1.jsonl").write_text(rows[1] + "\n" + rows[2][:25])
    result = Runner(config(data, out)).run()
    assert [m.ran for m in result.methods] == [2, 4]  # q2 (cut) and q3; pixelprune from scratch
    assert [r["prediction"] for r in records(out / "full" / "predictions.jsonl")] == \
        [r["prediction"] for r in records(ref / "full" / "predictions.jsonl")]
    assert not (out / "full" / "shards").exists()


def test_a_duplicate_across_shards_is_refused(tmp_path):
    from vlprune.eval.records import RecordError

    data = eval_toy.write_toy_vqa(tmp_path / "data", 2)
    ref, out = tmp_path / "ref", tmp_path / "out"
    Runner(config(data, ref)).run()
    row = (ref / "full" / "predictions.jsonl").read_text().splitlines()[0]
    (out / "full" / "shards").mkdir(parents=True)
    shutil.copy(ref / "full" / "run.json", out / "full" / "run.json")
    (out / "full" / "predictions.jsonl").write_text(row + "\n")
    (out / "full" / "shards" / "rank1.jsonl").write_text(row + "\n")
    with pytest.raises(RecordError, match=r"rank1.jsonl, line 1: duplicate id 'q0' \(first at .*predictions.jsonl, line 1\)"):
        Runner(config(data, out)).run()
