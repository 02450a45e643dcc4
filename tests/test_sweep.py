"""scripts/sweep.sh: every teacher < student pair once, one run after another or, with GPUS, as many at
once as there are slots, each run seeing only its slot's GPUs; a failed run is named and fails the sweep.
The runs are real experiment.py dry runs (hub ids need no download there)."""

import os
import stat
import subprocess

from conftest import REPO

PAIRS = {"arc_challenge-qwen2.5-t0.5B-s1.5B", "arc_challenge-qwen2.5-t0.5B-s3B", "arc_challenge-qwen2.5-t1.5B-s3B"}


def sweep(tmp_path, *extra, **env):
    # The sweep's python: the project's, after noting which GPUs the run was given (its log's first line).
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "visible GPUs: $CUDA_VISIBLE_DEVICES" >&2\nexec {REPO}/.venv/bin/python "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    settings = {"FAMILY": "qwen2.5", "TEACHERS": "0.5B 1.5B", "STUDENTS": "1.5B 3B", "DATASETS": "arc_challenge",
                "ROOT": str(tmp_path / "root"), "PYTHON": str(python), **env}
    return subprocess.run(["bash", "scripts/sweep.sh", *extra], cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, **settings}, timeout=600)


def test_a_sweep_runs_every_pair_on_its_gpu_slots(tmp_path):
    done = sweep(tmp_path, "--dry-run", GPUS="0,1 2")
    assert done.returncode == 0, done.stdout + done.stderr
    started = [line for line in done.stdout.splitlines() if ": started on GPU " in line]
    assert {line.split()[1].rstrip(":") for line in started} == PAIRS
    assert {line.split("GPU ")[1].split()[0] for line in started} == {"0,1", "2"}
    for pair in PAIRS:
        log = (tmp_path / "root" / pair / "sweep.log").read_text()
        slot = next(line.split("GPU ")[1].split()[0] for line in started if pair in line)
        assert log.startswith(f"visible GPUs: {slot}\n") and "dry run:" in log
        teacher, student = pair.split("-t")[1].split("-s")
        assert f"--model qwen2.5 --output {tmp_path / 'root' / pair}/cot.jsonl --teacher {teacher}\n" in log
        assert f"--student {student} " in log
        assert f"== {pair}: done" in done.stdout


def test_a_failed_run_is_named_and_fails_the_sweep(tmp_path):
    done = sweep(tmp_path, "--dry-run", "--k", "many", GPUS="0", TEACHERS="0.5B", STUDENTS="1.5B")
    assert done.returncode == 1
    assert "== arc_challenge-qwen2.5-t0.5B-s1.5B: failed (its log: " in done.stdout
    log = (tmp_path / "root" / "arc_challenge-qwen2.5-t0.5B-s1.5B" / "sweep.log").read_text()
    assert "--k" in log and "many" in log  # the run's own one-line error is in its log
