"""cot_generate_filter.py and eval.py end to end on the small real model."""

import hashlib
import json
from pathlib import Path

import pytest
from conftest import run_script

from alice.errors import AliceError

ARGS = ["--data", "arc_challenge", "--limit", "4", "--max-new-tokens", "48"]


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_eval_outputs(out):
    rows = read_rows(out)
    summary = json.loads(out.with_name(out.stem + ".summary.json").read_text())
    manifest = json.loads(out.with_name(out.stem + ".manifest.json").read_text())
    assert len(rows) == summary["n"] == 4
    assert len({r["id"] for r in rows}) == 4
    # Unparsable answers stay in the denominator.
    assert summary["correct"] == sum(r["correct"] for r in rows)
    assert summary["accuracy"] == summary["correct"] / summary["n"]
    assert summary["parse_rate"] == sum(r["parsed"] for r in rows) / 4
    assert all(r["correct"] <= r["parsed"] for r in rows)
    lo, hi = summary["accuracy_ci95"]
    assert lo <= summary["accuracy"] <= hi
    assert manifest["status"] == "complete" and manifest["counts"]["n"] == 4
    assert manifest["models"]["model"]["folder_hash"]
    return rows, summary


def test_hf_backend_cot_and_eval(tmp_path, small_model, hf_backend, capfd):
    import eval as eval_script

    cot = tmp_path / "cot.jsonl"
    run_script("cot_generate_filter.py", *ARGS, "--teacher", "smollm2", "--backend", "hf", "--output", str(cot))
    rows = read_rows(cot)
    manifest = json.loads((tmp_path / "cot.manifest.json").read_text())
    assert len(rows) == 4 and all(r["id"].startswith("arc_challenge-train-") for r in rows)
    assert manifest["counts"]["kept"] == sum(r["kept"] for r in rows)
    assert manifest["counts"]["unparsable"] == sum(not r["parsed"] for r in rows)
    assert manifest["counts"]["generated"] == 4 and manifest["pool"] == "teacher"

    # eval.py in this process, on the session's model (tests/test_reliability.py and others run it as a script).
    out = tmp_path / "eval.jsonl"
    eval_script.main([*ARGS, "--model", small_model, "--backend", "hf", "--output", str(out)], backend=hf_backend())
    rows, summary = check_eval_outputs(out)
    assert all(r["id"].startswith("arc_challenge-test-") for r in rows)

    # Re-scoring the saved responses without a model gives the same numbers.
    rescored = run_script("eval.py", "--data", "arc_challenge", "--predictions", str(out),
                          "--output", str(tmp_path / "rescored.jsonl"))
    again = json.loads((tmp_path / "rescored.summary.json").read_text())
    assert (again["correct"], again["n"]) == (summary["correct"], summary["n"])
    assert rescored.returncode == 0

    # A rerun is a no-op: nothing duplicated, no model loaded (none given: it would load one).
    capfd.readouterr()
    eval_script.main([*ARGS, "--model", small_model, "--backend", "hf", "--output", str(out)])
    assert "loading" not in capfd.readouterr().err
    assert len(read_rows(out)) == 4


def test_help_on_both_scripts():
    for script in ("cot_generate_filter.py", "eval.py"):
        text = run_script(script, "--help").stdout
        assert "--data" in text and "--backend" in text and "--limit" in text


@pytest.mark.parametrize("args, message", [
    (["--data", "mmlu", "--model", "smollm2"], "unknown dataset"),
    (["--model", "no/such/model/here"], "unknown model"),
    (["--predictions", "/nonexistent/preds.jsonl"], "not found"),
])
def test_bad_input_gives_one_line(args, message):
    done = run_script("eval.py", *args, check=False)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_prompt_longer_than_context_is_caught(tmp_path, small_model, hf_backend):
    from eval import main

    long_q = "Which is right? " + "very " * 9000 + "\\nA. yes\\nB. no"
    data = tmp_path / "long.jsonl"
    data.write_text(f'{{"id": "long1", "question": "{long_q}", "answer": "A. yes", "split": "test"}}\n')
    args = ["--data", str(data), "--answer-type", "choice", "--model", small_model, "--backend", "hf",
            "--output", str(tmp_path / "e.jsonl")]
    with pytest.raises(AliceError, match="exceeds the model's context"):  # the scripts' one-line error (exit 2)
        main(args, backend=hf_backend())
    main([*args, "--skip-long-prompts"], backend=hf_backend())
    summary = json.loads((tmp_path / "e.summary.json").read_text())
    assert summary["skipped_long_prompts"] == 1 and summary["n"] == 1 and summary["accuracy"] == 0


def test_scoring_rule_is_recorded_and_part_of_the_fingerprint(tmp_path, small_model, hf_backend):
    """An open-answer eval records its scoring rule; a rerun under the other rule does not reuse its rows."""
    from eval import main

    data = tmp_path / "qa.jsonl"
    data.write_text('{"id": "q1", "question": "What is the capital of France?", "answer": "Paris", "split": "test"}\n'
                    '{"id": "q2", "question": "What is the capital of Italy?", "answer": "Rome", "split": "test"}\n')
    out = tmp_path / "eval.jsonl"
    common = ["--data", str(data), "--answer-type", "text", "--model", small_model, "--backend", "hf",
              "--max-new-tokens", "12", "--output", str(out)]
    main(common, backend=hf_backend())
    manifest = json.loads((tmp_path / "eval.manifest.json").read_text())
    summary = json.loads((tmp_path / "eval.summary.json").read_text())
    assert manifest["scoring"] == "paper" and summary["scoring"] == "paper"
    assert set(summary["accuracy_by_rule"]) == {"paper", "strict"}
    assert all(set(r["correct_by_rule"]) == {"paper", "strict"} for r in read_rows(out))
    refused = run_script("eval.py", *common, "--scoring", "strict", check=False)
    assert refused.returncode == 2 and "different run's results" in refused.stderr
    assert "scoring" in refused.stderr
    main([*common, "--scoring", "strict", "--overwrite"], backend=hf_backend())
    manifest = json.loads((tmp_path / "eval.manifest.json").read_text())
    assert manifest["timings"]["generated_tokens"] > 0  # generated again, not reused
    assert manifest["scoring"] == "strict"
    assert json.loads((tmp_path / "eval.summary.json").read_text())["scoring"] == "strict"


def hub_cache_with(model_folder: str, cache: Path, repo_id: str) -> str:
    """A local hub cache (the layout huggingface_hub writes) holding ``model_folder`` as ``repo_id`` at main;
    returns the commit sha."""
    sha = hashlib.sha1(repo_id.encode()).hexdigest()
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    for file in Path(model_folder).iterdir():
        (snapshot / file.name).symlink_to(file)
    return sha


def test_manifest_records_hub_revision_offline_and_folders(tmp_path, small_model):
    """A hub id run offline: the commit comes from the local hub cache, the model loads at that commit and the
    manifest records it; a local folder records none; an id that is nowhere records null and why, and
    --revision reaches the loader."""
    cache = tmp_path / "hub"
    sha = hub_cache_with(small_model, cache, "alice-test/SmolLM2-135M")
    offline = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    out = tmp_path / "eval.jsonl"
    run_script("eval.py", *ARGS[:2], "--limit", "2", "--max-new-tokens", "8", "--model", "alice-test/SmolLM2-135M",
               "--backend", "hf", "--output", str(out), env=offline)
    model = json.loads((tmp_path / "eval.manifest.json").read_text())["models"]["model"]
    assert (model["revision"], model["revision_source"], model["revision_requested"]) == \
        (sha, "local hub cache", "main")
    assert len(read_rows(out)) == 2

    local = tmp_path / "local.jsonl"
    run_script("eval.py", *ARGS[:2], "--limit", "1", "--max-new-tokens", "4", "--model", small_model,
               "--backend", "hf", "--revision", "v1.0", "--output", str(local))
    model = json.loads((tmp_path / "local.manifest.json").read_text())["models"]["model"]
    assert model["revision"] is None and model["revision_source"].startswith("local folder")

    # Not cached and offline: the manifest says why; --revision reaches from_pretrained (a revision that is
    # not in the cache cannot load, and the error names the model).
    missing = run_script("eval.py", *ARGS[:2], "--limit", "1", "--model", "alice-test/SmolLM2-135M",
                         "--revision", "no-such-branch", "--backend", "hf", "--output",
                         str(tmp_path / "missing.jsonl"), env=offline, check=False)
    assert missing.returncode == 2 and "alice-test/SmolLM2-135M" in missing.stderr
    model = json.loads((tmp_path / "missing.manifest.json").read_text())["models"]["model"]
    assert model["revision"] is None and model["revision_requested"] == "no-such-branch"
    assert "offline" in model["revision_source"] and "not in the local hub cache" in model["revision_source"]
