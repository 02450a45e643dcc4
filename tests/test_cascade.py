"""cascade.py for real: a three-stage ladder over the small real model on a handful of questions
(transformers backend, K=3, one LoRA step per stage), killed with SIGKILL mid-run and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, run_script

from alice.models import resolve_model
from alice.tasks import load_task

TRAIN_ARGS = ("--lora --max-steps 1 --total-batch-size 1 --warmup-steps 0 --lr 1e-4 "
              "--no-gradient-checkpointing --max-length 256 --logging-steps 1")


def sums_dataset(path: Path, train: int = 12, test: int = 2) -> Path:
    """Tiny arithmetic questions the small model answers with a number in a few tokens."""
    rows = []
    for i in range(train + test):
        a, b = i % 7 + 1, i % 5 + 2
        rows.append({"id": f"sum-{i:02d}", "question": f"What is {a} + {b}?", "answer": str(a + b),
                     "rationale": f"{a} + {b} = {a + b}.\n#### {a + b}", "split": "train" if i < train else "test"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cascade_args(data: Path, out: Path, small_model: str) -> list[str]:
    return ["--data", str(data), "--answer-type", "number", "--split-seed", "3",
            "--ladder", small_model, small_model, small_model, small_model,
            "--backend", "hf", "--k", "3", "--max-new-tokens", "24", "--batch-size", "16", "--max-tries", "0",
            # Semantic clusters with singletons kept: every question gets a teacher answer, even when
            # the small model's numbers are unparsable.
            "--uncertainty-args", "--keep-singletons --clustering semantic --summarizer-max-new-tokens 24",
            "--train-args", TRAIN_ARGS, "--output-dir", str(out)]


def read_ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_three_stage_cascade_killed_and_resumed(tmp_path, small_model):
    data = sums_dataset(tmp_path / "sums.jsonl")
    out = tmp_path / "cascade"
    args = cascade_args(data, out, small_model)

    # First run: SIGKILL as soon as stage 1 is finished (stage 2 is then under way).
    log = open(tmp_path / "first-run.log", "w")  # noqa: SIM115 - kept open for the child
    proc = subprocess.Popen([sys.executable, str(REPO / "cascade.py"), *args], cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    marker1 = out / "stage1" / "stage.json"
    deadline = time.time() + 600
    while not marker1.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert marker1.exists(), "stage 1 did not finish:\n" + (tmp_path / "first-run.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()
    assert not (out / "stage3" / "stage.json").exists()
    stage1_before = marker1.read_text()
    model1_manifest = (out / "stage1" / "model" / "manifest.json").read_text()

    # Rerun: stage 1 is skipped untouched, the rest resumes and finishes.
    done = run_script("cascade.py", *args)
    assert "cascade stage 1/3" in done.stdout and "finished earlier, skipped" in done.stdout
    assert marker1.read_text() == stage1_before
    assert (out / "stage1" / "model" / "manifest.json").read_text() == model1_manifest

    markers = [json.loads((out / f"stage{i}" / "stage.json").read_text()) for i in (1, 2, 3)]
    assert [m["status"] for m in markers] == ["complete"] * 3
    assert [m["pool_part"] for m in markers] == ["1/3", "2/3", "3/3"]

    # Disjoint parts of the (seed-shuffled) student pool, exactly the task's parts, rows keyed by id.
    task = load_task(str(data), "number")
    pool = [ex.id for ex in task.examples("student", split_seed=3)]
    parts = [read_ids(out / f"stage{i}" / "uncertainty.jsonl") for i in (1, 2, 3)]
    assert sorted(i for ids in parts for i in ids) == sorted(pool)  # disjoint and covering
    for i, ids in enumerate(parts, start=1):
        task.student_part = (i, 3)
        assert sorted(ids) == sorted(ex.id for ex in task.examples("student", split_seed=3))
        alice_ids = read_ids(out / f"stage{i}" / "alice.jsonl")
        assert set(alice_ids) <= set(ids) and len(alice_ids) == len(set(alice_ids))

    # The trained model of stage i is the teacher of stage i+1 (as the manifests record it).
    assert markers[0]["teacher"] == resolve_model("smollm2").path
    for i in (2, 3):
        previous_model = str(out / f"stage{i - 1}" / "model")
        assert markers[i - 1]["teacher"] == previous_model
        probe = json.loads((out / f"stage{i}" / "uncertainty.manifest.json").read_text())
        assert probe["models"]["teacher"]["adapter"] == previous_model
        assert probe["status"] == "complete"
    trained = json.loads((out / "stage3" / "model" / "manifest.json").read_text())
    assert trained["status"] == "complete" and trained["data"]["source"] == str(out / "stage3" / "alice.jsonl")

    # A third run has nothing left to do.
    again = run_script("cascade.py", *args)
    assert again.stdout.count("finished earlier, skipped") == 3 and "loading" not in again.stderr


def test_cascade_argument_errors(tmp_path, small_model):
    done = run_script("cascade.py", "--ladder", small_model, check=False)
    assert done.returncode == 2 and "at least two models" in done.stderr
    done = run_script("cascade.py", "--teacher", small_model, check=False)
    assert done.returncode == 2 and "--ladder" in done.stderr
    done = run_script("cascade.py", "--ladder", small_model, small_model, "--pool-part", "3/2", check=False)
    assert done.returncode == 2 and "pool-part" in done.stderr


def test_overwrite_starts_the_stages_over_and_keeps_other_files(tmp_path, small_model):
    data = sums_dataset(tmp_path / "sums.jsonl", train=4, test=1)
    out = tmp_path / "cascade"
    args = ["--data", str(data), "--answer-type", "number", "--ladder", small_model, small_model,
            "--backend", "hf", "--k", "2", "--max-new-tokens", "8", "--max-tries", "0",
            "--uncertainty-args", "--keep-singletons --clustering semantic --summarizer-max-new-tokens 8",
            "--train-args", TRAIN_ARGS, "--output-dir", str(out)]
    run_script("cascade.py", *args)
    model_manifest = out / "stage1" / "model" / "manifest.json"
    first = model_manifest.stat().st_mtime_ns
    (out / "notes.txt").write_text("kept")  # not the cascade's: --overwrite leaves it alone

    done = run_script("cascade.py", *args, "--overwrite")
    assert "finished earlier" not in done.stdout and model_manifest.stat().st_mtime_ns > first
    assert (out / "notes.txt").read_text() == "kept"
    assert json.loads((out / "stage1" / "stage.json").read_text())["status"] == "complete"
    probe = json.loads((out / "stage1" / "uncertainty.manifest.json").read_text())
    assert probe["status"] == "complete" and "attempts" not in probe  # started over, not resumed


def test_stage_settings_reach_every_stage_as_mappings(tmp_path, small_model, capsys):
    from alice.config import parse
    from alice.stages.cascade import CascadeConfig, run_cascade
    from alice.steps import Executor

    out = tmp_path / "cascade"
    args = parse(CascadeConfig, ["--ladder", str(tmp_path / "teacher"), small_model, small_model, "--backend", "hf",
                                 "--train-args", "--lora --max-steps 4", "--train.lr", "3e-5", "--train.max-steps", "2",
                                 "--uncertainty.keep-singletons", "--generate.statement", "none",
                                 "--output-dir", str(out)])
    assert args.train_args == {"lora": True, "max_steps": 2, "lr": 3e-5}  # key by key, the later flag wins
    executor = Executor(dry_run=True)
    run_cascade(args, executor=executor)
    capsys.readouterr()
    by_script: dict[str, list[dict]] = {}
    for step in executor.planned:
        by_script.setdefault(step["script"], []).append(step["settings"])
    assert len(by_script["train.py"]) == 2 and all(
        (t["lora"], t["max_steps"], t["lr"]) == (True, 2, 3e-5) for t in by_script["train.py"])
    assert [u["keep_singletons"] for u in by_script["uncertainty.py"]] == [True, True]
    assert [g["statement"] for g in by_script["student_generate.py"]] == ["none", "none"]
    assert not out.exists()  # a dry run writes nothing
