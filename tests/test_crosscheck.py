"""The lm-evaluation-harness cross-check on the small real model over a slice of the shipped ARC
test split: the local task reads the project's rows, and the report puts the harness's accuracy
beside eval.py's."""

from __future__ import annotations

import json

import pytest
from conftest import run_script

from alice.crosscheck import arc_documents

pytest.importorskip("lm_eval")


def test_documents_are_the_shipped_questions():
    docs = arc_documents("test", limit=20)
    assert len(docs) == 20 and all(0 <= d["label"] < len(d["choices"]) for d in docs)
    first = docs[0]
    assert not any(line.startswith(("A. ", "B. ")) for line in first["question"].splitlines())  # options removed
    assert len(first["choices"]) >= 3 and all(first["choices"])


def test_harness_accuracy_beside_eval_py(tmp_path, small_model):
    summary = tmp_path / "eval.summary.json"
    summary.write_text(json.dumps({"n": 4, "accuracy": 0.25, "accuracy_ci95": [0.05, 0.7], "parse_rate": 1.0}))
    out = tmp_path / "lm-eval.json"
    done = run_script("scripts/lm_eval_arc.py", "--model", small_model, "--limit", "4", "--batch-size", "16",
                      "--eval-summary", str(summary), "--output", str(out))
    report = json.loads(out.read_text())
    assert report["n"] == 4 and report["backend"] == "hf" and report["lm_eval"]["version"] == "0.4.13"
    for key in ("acc", "acc_norm"):
        assert 0 <= report["lm_eval"][key] <= 1 and abs(report["lm_eval"][key] * 4 - round(report["lm_eval"][key] * 4)) < 1e-9
    assert report["eval_py"]["accuracy"] == 0.25 and "lm-evaluation-harness ARC-Challenge" in done.stdout
    assert (tmp_path / "lm-eval.task" / "alice_arc_challenge.yaml").is_file()
