"""scripts/arc_small.py for real, shrunk to CPU size: two entries of the small real model, zero-shot
evaluation of each, the pair selection, the experiment, and the deliverables folder (report,
selection, evidence, manifests, per-question outcomes that report.py reads again)."""

from __future__ import annotations

import json

import pytest
from conftest import run_script
from test_cascade import sums_dataset
from test_experiment import TRAIN_ARGS


@pytest.mark.slow
def test_arc_small_pipeline_on_cpu(tmp_path, small_model):
    data = sums_dataset(tmp_path / "sums.jsonl", train=8, test=3)
    config = tmp_path / "tiny.toml"
    models = "".join(
        f'[[models]]\nname = "{name}"\nlabel = "{name}-label"\ngguf = "none.gguf"\nhub = "{small_model}"\n'
        f'source = "the small model"\n\n' for name in ("first", "second"))
    config.write_text(
        f'dataset = "{data}"\nanswer_type = "number"\nmin_gap = 0.15\n\n{models}'
        '[generation]\nargs = ["--backend", "hf", "--max-new-tokens", "24"]\n\n'
        '[zero_shot]\nargs = ["--limit", "3"]\n\n'
        f'[experiment]\nk = 3\ntrain_args = "{TRAIN_ARGS}"\n'
        'args = ["--limit", "4", "--student-limit", "3", "--eval-limit", "3", "--summarizer-max-new-tokens", "24",'
        ' "--uncertainty-args=--keep-singletons --clustering semantic"]\n')
    run_dir, results = tmp_path / "run", tmp_path / "results"
    done = run_script("scripts/arc_small.py", "--config", str(config), "--from-hub", "--run-dir", str(run_dir),
                      "--results", str(results), timeout=1500)

    selection = json.loads((results / "selection.json").read_text())
    zero = {name: json.loads((run_dir / "zeroshot" / f"{name}.summary.json").read_text())
            for name in ("first", "second")}
    # The same model twice: equal zero-shot accuracy, so no pair reaches min_gap, and it says so.
    assert zero["first"]["n"] == 3 and zero["first"]["accuracy"] == zero["second"]["accuracy"]
    assert selection["gap"] == 0 and selection["gap_ok"] is False and "BELOW min_gap" in done.stdout
    assert {selection["teacher"], selection["student"]} == {"first", "second"}
    assert selection["ladder"] is None and selection["midlevel"] is None  # two models: no cascade
    # Deliverables: the report, and per-question outcomes from which report.py rebuilds the same rows.
    table = (results / "report.csv").read_text().splitlines()
    assert [row.split(",")[4] for row in table[1:]] == ["weak", "ceiling", "zero_shot", "w2s_qa", "w2s_cot", "alice"]
    outcomes = [json.loads(line) for line in (results / "eval-alice.jsonl").read_text().splitlines()]
    assert len(outcomes) == 3 and set(outcomes[0]) == {"id", "prediction", "parsed", "correct"}
    run_script("report.py", str(results), "--output-dir", str(tmp_path / "again"))
    again = (tmp_path / "again" / "report.csv").read_text().splitlines()
    assert [row.split(",")[1:] for row in again[1:]] == [row.split(",")[1:] for row in table[1:]]
    # Evidence: teacher certainty and the label accuracy of each method's training data.
    evidence = json.loads((results / "evidence.json").read_text())
    assert evidence["uncertainty"]["questions"] == 3
    assert evidence["w2s-cot labels"]["rows"] == 3 and 0 <= evidence["w2s-cot labels"]["correct"] <= 1
    assert (results / "manifests" / "experiment" / "alice.manifest.json").exists()
    assert (results / "manifests" / "zeroshot" / "first.manifest.json").exists()
