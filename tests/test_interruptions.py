"""SIGKILL in the middle of the probing, student and W2S-label stages, then the same command
again: the result equals an uninterrupted run (same ids, none twice, no torn line, same counts).
The killed run is the script; the uninterrupted run and the resume are its main in this process, on the
session's model (a process of their own would each spend ~10 s importing and loading it).
(eval/cot: test_reliability.py; train: test_train.py; cascade: test_cascade.py.)"""

import importlib
import json
import subprocess
import sys

from conftest import REPO, kill_when, lines

from alice.tasks import load_task

BATCH = 4
FAST = ["--data", "arc_challenge", "--limit", "3", "--max-new-tokens", "16", "--backend", "hf",
        "--chunk-size", "1", "--batch-size", str(BATCH)]


def interrupted_equals_clean(tmp_path, script, args, watched_suffix, backend):
    """Run once cleanly, once killed after the first checkpointed chunk of ``watched_suffix`` and
    resumed; compare the outputs and the manifests' counts. ``backend``: the session's model at the
    script's --batch-size (a sampled batch is seeded from its questions: it draws what the script draws)."""
    main = importlib.import_module(script.removesuffix(".py")).main
    clean = tmp_path / "clean.jsonl"
    main([*args, "--output", str(clean)], backend=backend)
    out = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, script, *args, "--output", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when(proc, tmp_path / f"killed{watched_suffix}", 1)
    main([*args, "--output", str(out)], backend=backend)
    resumed, expected = [json.loads(x) for x in lines(out)], [json.loads(x) for x in lines(clean)]
    assert len({r["id"] for r in resumed}) == len(resumed)
    assert sorted(resumed, key=lambda r: r["id"]) == sorted(expected, key=lambda r: r["id"])
    logs = [tmp_path / f"{name}.rejected.jsonl" for name in ("killed", "clean")]
    if logs[1].exists():  # checked: the same rejected tries, each logged once, none twice
        rejected = [sorted((json.loads(x) for x in lines(log)), key=lambda r: (r["id"], r["try"] or 0)) for log in logs]
        assert rejected[0] == rejected[1] and rejected[1]
    counts = [json.loads((tmp_path / f"{name}.manifest.json").read_text())["counts"] for name in ("killed", "clean")]
    assert counts[0] == counts[1]
    return resumed


def test_uncertainty_killed_while_sampling(tmp_path, small_model, hf_backend):
    rows = interrupted_equals_clean(tmp_path, "uncertainty.py",
                                    [*FAST, "--teacher", small_model, "--k", "3", "--keep-singletons"],
                                    ".samples.jsonl", hf_backend(BATCH))
    assert {r["id"] for r in rows} == {e.id for e in load_task("arc_challenge").examples("student", limit=3)}


def test_w2s_labels_killed_mid_generation(tmp_path, small_model, hf_backend):
    rows = interrupted_equals_clean(tmp_path, "w2s_labels.py", [*FAST, "--teacher", small_model, "--max-tries", "0"],
                                    ".jsonl", hf_backend(BATCH))
    assert len(rows) == 3


def test_checked_labels_killed_between_tries(tmp_path, small_model, hf_backend):
    """Killed once the first malformed labels are logged (16 tokens cut every reply short): the rerun resumes
    each question at its next try, with that try's seed, so it draws, logs and drops exactly what an
    uninterrupted run does."""
    interrupted_equals_clean(tmp_path, "w2s_labels.py", [*FAST, "--teacher", small_model, "--max-tries", "2"],
                             ".rejected.jsonl", hf_backend(BATCH))
    counts = json.loads((tmp_path / "killed.manifest.json").read_text())["counts"]["checks"]
    assert counts["questions"] == 3 and counts["dropped"] + counts["clean_first_try"] + counts["clean_after_retry"] == 3


def test_student_generate_killed_between_zero_shot_and_proactive(tmp_path, small_model, hf_backend):
    pool = load_task("arc_challenge").examples("student", limit=3)
    unc = tmp_path / "unc.jsonl"
    unc.write_text("".join(json.dumps({"id": e.id, "status": "uncertain", "teacher_answer": "My choice is A.",
                                       "statement": "I am unsure which option fits."}) + "\n" for e in pool))
    rows = interrupted_equals_clean(tmp_path, "student_generate.py",
                                    [*FAST, "--student", small_model, "--uncertainty", str(unc), "--max-tries", "0"],
                                    ".zeroshot.jsonl", hf_backend(BATCH))
    assert {r["id"] for r in rows} == {e.id for e in pool} and all(r["label"] == "new" for r in rows)
