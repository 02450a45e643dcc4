"""Interruption, reproducibility and secrets for the generation stages (cot_generate_filter, eval)."""

import json
import os
import subprocess
import sys

from conftest import REPO, kill_when, lines, run_script

FAST = ["--data", "arc_challenge", "--max-new-tokens", "24", "--backend", "hf", "--batch-size", "2"]


def test_eval_killed_mid_chunk_keeps_finished_rows_and_resumes_to_the_same_result(tmp_path, small_model, hf_backend):
    import eval as eval_script

    # One chunk of 6 questions, 3 batches: rows are written as batches finish, not when the chunk ends. The
    # uninterrupted run and the resume run in this process, on the session's model; the killed one is a script.
    args = [*FAST, "--model", small_model, "--limit", "6", "--chunk-size", "6"]
    clean = tmp_path / "clean.jsonl"
    eval_script.main([*args, "--output", str(clean)], backend=hf_backend(2))

    out = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "eval.py", *args, "--output", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "ALICE_WRITE_EVERY_S": "0"})
    kill_when(proc, out, 2)
    partial = len(lines(out))
    assert 2 <= partial < 6
    with open(out, "a") as handle:  # and as if the kill had landed in the middle of a write
        handle.write('{"id": "arc_challenge-test-0000')
    eval_script.main([*args, "--output", str(out)], backend=hf_backend(2))

    resumed, expected = [json.loads(x) for x in lines(out)], [json.loads(x) for x in lines(clean)]
    assert [r["id"] for r in resumed] == [r["id"] for r in expected]  # same ids, none twice, none torn
    assert resumed == expected  # greedy: identical rows
    summary = json.loads((tmp_path / "killed.summary.json").read_text())
    assert summary == {**json.loads((tmp_path / "clean.summary.json").read_text()), "model": summary["model"]}
    manifest = json.loads((tmp_path / "killed.manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["attempts"] == 2 and manifest["counts"]["n"] == 6


def test_sampling_is_reproducible_with_the_same_seed(tmp_path, small_model, hf_backend):
    import cot_generate_filter

    # The same seed in this process and in a new one (the script): the same samples; another seed: others.
    args = [*FAST, "--teacher", small_model, "--limit", "3", "--temperature", "0.9", "--seed", "7"]
    cot_generate_filter.main([*args, "--output", str(tmp_path / "a.jsonl")], backend=hf_backend(2))
    run_script("cot_generate_filter.py", *args, "--output", str(tmp_path / "b.jsonl"))
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    cot_generate_filter.main([*args[:-1], "8", "--output", str(tmp_path / "c.jsonl")], backend=hf_backend(2))
    assert (tmp_path / "a.jsonl").read_text() != (tmp_path / "c.jsonl").read_text()


def test_tokens_from_the_environment_never_reach_outputs(tmp_path, small_model):
    secret = "hf_DoNotLeakThisToken123"
    env = {"HF_TOKEN": secret, "HUGGING_FACE_HUB_TOKEN": secret, "OPENAI_API_KEY": secret}
    out = tmp_path / "e.jsonl"
    done = run_script("eval.py", *FAST, "--model", small_model, "--limit", "1", "--output", str(out), env=env)
    written = [p.read_text() for p in tmp_path.iterdir() if p.is_file()]
    assert written and not any(secret in text for text in written)
    assert secret not in done.stdout + done.stderr
    assert os.environ.get("HF_TOKEN") != secret  # the test did not leak it into this process either


def test_transformers_samples_are_drawn_again_on_a_rerun(hf_backend):
    from alice.backends import Sampling
    from alice.tasks import load_task

    task = load_task("arc_challenge")
    examples = task.examples("student", limit=4)
    conversations, ids = [task.messages(ex) for ex in examples], [ex.id for ex in examples]
    backend = hf_backend(4)
    sampling = Sampling(n=2, temperature=0.9, top_p=0.95, max_tokens=12, seed=3)
    first = backend.generate(conversations, sampling, ids)
    # Same questions, same batches: the same samples (batches are seeded from their questions' ids).
    assert backend.generate(conversations, sampling, ids) == first
    assert len({s for pair in first for s in pair}) > 1  # sampled, not greedy
