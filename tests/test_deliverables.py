"""What a run in parts rests on: the gate on seed means, probing parts merged, evaluations sharing one
engine, and a run folder's deliverables (alice/deliverables.py) collected and restored on real files.
The whole packed table end to end: test_experiment.py (slow); the executor: test_steps.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alice.config import parse
from alice.errors import AliceError
from alice.gate import check_gate
from alice.metrics import summarize_scores
from alice.stages.uncertainty import merge_parts


def write_eval(run: Path, name: str, correct: int, n: int = 100) -> None:
    """An evaluation as eval.py writes it: per-question rows (4 questions per template) and the summary."""
    rows = [{"id": f"q{i:03d}", "cluster": f"template {i // 4}", "correct": (i * 37) % n < correct, "parsed": True}
            for i in range(n)]  # right answers spread over the templates
    (run / f"eval-{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = summarize_scores([r["correct"] for r in rows], [True] * n)
    (run / f"eval-{name}.summary.json").write_text(json.dumps(summary))


def gate_result(run: Path, seeds: list[int]) -> dict:
    """The fair recipe's gate (configs/fair.yaml: no guessing floor, a 15-point gap, intervals apart)."""
    return check_gate(run, [f"weak-seed{s}" for s in seeds], [f"ceiling-seed{s}" for s in seeds], "zero_shot",
                      chance=0.0, min_gap=0.15, intervals_apart=True)


def test_gate_reads_seed_means_and_names_what_fails(tmp_path):
    for seed, (weak, ceiling) in enumerate([(58, 84), (60, 85), (62, 86)]):
        write_eval(tmp_path, f"weak-seed{seed}", weak)
        write_eval(tmp_path, f"ceiling-seed{seed}", ceiling)
    write_eval(tmp_path, "zero_shot", 50)
    gate = gate_result(tmp_path, [0, 1, 2])
    assert gate["passed"] and abs(gate["gap"] - 0.25) < 1e-9 and gate["zero_shot"]["accuracy"] == 0.5
    assert gate["weak"]["seeds"] == [0.58, 0.6, 0.62] and abs(gate["ceiling"]["accuracy"] - 0.85) < 1e-9
    # Intervals resample the 25 templates and the seeds.
    low, high = gate["weak"]["accuracy_ci95"]
    assert gate["weak"]["units"] == 25 and low < 0.6 < high
    # Seed 0 alone would pass (80 against 58); the means decide: a gap of 14.7 points, under 15.
    for seed, ceiling in enumerate([80, 74, 70]):
        write_eval(tmp_path, f"ceiling-seed{seed}", ceiling)
    gate = gate_result(tmp_path, [0, 1, 2])
    assert not gate["checks"]["gap_at_least_min"] and abs(gate["gap"] - (0.7466666 - 0.6)) < 1e-6
    # Memorising templates: the ceiling falls below the untrained student.
    write_eval(tmp_path, "zero_shot", 90)
    gate = gate_result(tmp_path, [0, 1, 2])
    assert not gate["passed"] and not gate["checks"]["ceiling_not_below_zero_shot"]
    # A weak model at chance with a ceiling too close: three checks fail.
    for seed in (0, 1, 2):
        write_eval(tmp_path, f"weak-seed{seed}", 0)
        write_eval(tmp_path, f"ceiling-seed{seed}", 2)
    checks = gate_result(tmp_path, [0, 1, 2])["checks"]
    assert not checks["weak_above_chance"] and not checks["gap_at_least_min"] and not checks["intervals_apart"]
    with pytest.raises(AliceError, match="missing"):
        gate_result(tmp_path, [3])


def test_probe_parts_merge_into_one_output_with_summed_counts(tmp_path):
    parts = []
    for i, ids in enumerate((["q1", "q2"], ["q3"]), start=1):
        part = tmp_path / f"uncertainty-p{i}.jsonl"
        part.write_text("".join(json.dumps({"id": q, "status": "certain"}) + "\n" for q in ids))
        manifest = {"status": "complete", "command": f"uncertainty.py --pool-part {i}/2",
                    "counts": {"questions": len(ids), "certain": len(ids)}, "timings": {"probing_s": 1.5}}
        (tmp_path / f"uncertainty-p{i}.manifest.json").write_text(json.dumps(manifest))
        parts.append(part)
    merged = tmp_path / "uncertainty.jsonl"
    assert merge_parts(parts, merged) == {"questions": 3, "certain": 3}
    assert [json.loads(line)["id"] for line in merged.read_text().splitlines()] == ["q1", "q2", "q3"]
    manifest = json.loads((tmp_path / "uncertainty.manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["timings"]["probing_s"] == 3.0
    assert manifest["commands"] == ["uncertainty.py --pool-part 1/2", "uncertainty.py --pool-part 2/2"]


def test_several_evaluations_share_one_process(tmp_path, small_model, other_small_model):
    """evaluate_many (experiment.py's batch step): each evaluation writes its own output and manifest,
    whose rerun is its eval.py command; the same model on its second test set is not loaded again."""
    from alice.stages.evaluate import evaluate_many

    def argv(model: str, name: str, extra: str = "") -> list[str]:
        return ["--data", "gsm_symbolic" + extra, "--limit", "2", "--max-new-tokens", "8", "--backend", "hf",
                "--student", model, "--output", str(tmp_path / f"{name}.jsonl")]

    from alice.stages.evaluate import EvalConfig

    record = tmp_path / "logs" / "eval_seed0_arms.engines.json"
    starts = evaluate_many([parse(EvalConfig, argv(small_model, "a")),
                            parse(EvalConfig, argv(small_model, "a-again", ":seed=0")),
                            parse(EvalConfig, argv(other_small_model, "b"))], record)
    assert [s["model"] for s in starts if "load_s" in s] == [small_model, other_small_model]
    # The batch's record: its outputs and engine starts, and its wall time against their generation time.
    assert json.loads(record.read_text())["engines"] == starts
    from alice.costs import eval_batch_costs

    (batch,) = eval_batch_costs(tmp_path)
    assert batch["batch"] == "eval_seed0_arms" and batch["evaluations"] == 3
    assert batch["wall_s"] >= batch["generation_s"] > 0 and batch["wall_over_generation"] >= 1
    for name, model in (("a", small_model), ("a-again", small_model), ("b", other_small_model)):
        summary = json.loads((tmp_path / f"{name}.summary.json").read_text())
        manifest = json.loads((tmp_path / f"{name}.manifest.json").read_text())
        assert summary["n"] == 2 and manifest["status"] == "complete"
        assert manifest["rerun"].startswith("python eval.py") and model in manifest["rerun"]




def test_deliverables_keep_what_the_report_reads_and_restore_a_run_that_resumes(tmp_path):
    """collect: report files, summaries, manifests, every JSONL compressed (an evaluation's rows reduced to what
    the report and a reader need), batch records; no weights, logs, checkpoints, probing samples or merged
    parts. restore: the run folder back, JSONL as it was; a trained model comes back without its weights, so
    experiment.py's finished check asks for it again when a step still needs it."""
    from alice.config import settings_dict
    from alice.deliverables import collect, restore
    from alice.models import drop_weights, has_weights
    from alice.records import scrub
    from alice.stages.experiment import finished_as_configured
    from alice.stages.train import TrainConfig
    from alice.steps import Step

    run, results, again = tmp_path / "run", tmp_path / "results", tmp_path / "again"
    run.mkdir()
    write_eval(run, "alice-seed0", 60)
    (run / "held_out_templates").mkdir()
    write_eval(run / "held_out_templates", "alice-seed0", 40)
    rows = [json.loads(line) for line in (run / "eval-alice-seed0.jsonl").read_text().splitlines()]
    (run / "eval-alice-seed0.jsonl").write_text("".join(json.dumps({**r, "prompt": "long", "response": "r"}) + "\n"
                                                        for r in rows))
    train = parse(TrainConfig, ["--train-file", str(run / "alice.jsonl"), "--output-dir", str(run / "student-alice-seed0"),
                                "--seed", "0"])
    model = run / "student-alice-seed0"
    model.mkdir()
    for name, text in (("model.safetensors", "weights"), ("config.json", "{}")):
        (model / name).write_text(text)
    (model / "manifest.json").write_text(json.dumps({"status": "complete", "args": scrub(settings_dict(train))},
                                                    default=str))
    (model / "checkpoint-2").mkdir()
    (model / "checkpoint-2" / "manifest.json").write_text("{}")
    (run / "alice.jsonl").write_text(json.dumps({"id": "q1", "prompt": "p", "response": "r #### 3"}) + "\n")
    (run / "alice.manifest.json").write_text(json.dumps({"status": "complete"}))
    for name in ("uncertainty-p1.jsonl", "uncertainty.samples.jsonl"):
        (run / name).write_text('{"id": "q1"}\n')
    (run / "logs").mkdir()
    for name, text in (("train.log", "loss 1.0"), ("eval_seed0_arms.json", "[]"),
                       ("eval_seed0_arms.engines.json", '{"outputs": []}')):
        (run / "logs" / name).write_text(text)
    for name in ("report.json", "gate.json", "experiment.json", "steps.json"):
        (run / name).write_text('{"x": 1}')
    recipe = tmp_path / "fair.yaml"
    recipe.write_text("seeds: [0]\n")

    collect(run, results, recipe)
    kept = sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file())
    assert kept == ["alice.jsonl.xz", "eval-alice-seed0.jsonl.xz", "eval-alice-seed0.summary.json",
                    "experiment.json", "fair.yaml", "gate.json", "held_out_templates/eval-alice-seed0.jsonl.xz",
                    "held_out_templates/eval-alice-seed0.summary.json", "logs/eval_seed0_arms.engines.json",
                    "logs/eval_seed0_arms.json", "manifests/alice.manifest.json",
                    "manifests/student-alice-seed0/manifest.json", "report.json", "steps.json"]
    import lzma

    with lzma.open(results / "eval-alice-seed0.jsonl.xz", "rt") as kept_file:
        kept_rows = [json.loads(line) for line in kept_file]
    assert set(kept_rows[0]) == {"id", "cluster", "correct", "parsed", "response"}  # no prompt
    assert restore(results, again) == 13  # everything but the recipe
    assert (again / "alice.jsonl").read_text() == (run / "alice.jsonl").read_text()
    assert (again / "student-alice-seed0" / "manifest.json").read_text() == (model / "manifest.json").read_text()
    assert has_weights(model) and not has_weights(again / "student-alice-seed0")
    step = Step("train student-alice-seed0", "train", train)
    assert finished_as_configured(step)
    drop_weights(model)  # as --drop-weights does once it is evaluated, and as a restored run has it
    assert not finished_as_configured(step)  # manifest complete, weights gone: trained again if a step needs it
    (again / "report.json").write_text('{"kept": true}')
    assert restore(results, again) == 0 and json.loads((again / "report.json").read_text()) == {"kept": True}
    with pytest.raises(AliceError, match="no manifests/"):
        restore(run, again)


def test_a_gguf_copied_again_converts_to_the_same_folder_and_another_file_to_another(tmp_path):
    """A run in parts copies its GGUF models to the GPU machine again for each part: the copy has a new
    modification time (and may sit elsewhere), yet must name the same converted folder, because the
    stages' fingerprints name it (a training restored without its weights is trained again only when its
    fingerprint matches; with the old key a re-copied GGUF refused it as "a different run's results")."""
    import os
    import shutil

    from alice.models import gguf_content_key

    first = tmp_path / "a" / "model.gguf"
    first.parent.mkdir()
    first.write_bytes(b"GGUF" + bytes(range(256)) * 20_000)
    again = tmp_path / "b" / "model.gguf"
    again.parent.mkdir()
    shutil.copyfile(first, again)
    os.utime(again, (1_000_000_000, 1_000_000_000))
    assert gguf_content_key(again) == gguf_content_key(first)

    changed = bytearray(first.read_bytes())
    changed[5] ^= 1  # the header: another model's metadata
    (tmp_path / "c.gguf").write_bytes(changed)
    longer = tmp_path / "d.gguf"
    longer.write_bytes(first.read_bytes() + b"\0")
    assert len({gguf_content_key(p) for p in (first, tmp_path / "c.gguf", longer)}) == 3
