"""alice.costs: a run's GPU time per kind of step, split by the stages' own timings, over every part
of a resumed run (the status file's earlier runs)."""

import json

from alice.costs import gpu_time, step_outputs


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_gpu_time_splits_each_step_by_its_manifest_and_sums_every_part(tmp_path):
    run = tmp_path / "run"
    where = "/elsewhere/run"  # the run happened in another folder (another machine)
    write(run / "models" / "a-seed0" / "manifest.json",
          {"timings": {"wall_s": 100, "load_s": 2, "train_s": 80, "save_s": 5}})
    write(run / "eval-a-seed0.manifest.json", {"timings": {"wall_s": 40, "generation_s": 10}})
    write(run / "held_out_templates" / "eval-a-seed0.manifest.json", {"timings": {"wall_s": 20, "generation_s": 4}})
    train = {"status": "done", "wall_s": 110, "gpu": "0", "command":
             f"python train.py --data x --output-dir {where}/models/a-seed0 --resume"}
    batch = {"status": "done", "wall_s": 70, "gpu": "0", "command":
             f"python scripts/fair.py evaluate --config c.toml --run-dir {where} --gguf-dir /g a-seed0"}
    failed = {"status": "failed", "wall_s": 9, "gpu": "0", "command": "python train.py --output-dir /x"}
    write(run / "steps.json", {"started": "later", "wall_s": 75, "steps": {"eval seed0 arms": batch},
                               "earlier_runs": [{"started": "first", "wall_s": 130,
                                                 "steps": {"train a-seed0": train, "train b-seed0": failed}}]})
    assert step_outputs(batch["command"], run, where) == [
        run / "eval-a-seed0.manifest.json", run / "held_out_templates" / "eval-a-seed0.manifest.json"]
    cost = gpu_time(run, moved_from=where)
    assert cost["gpu_held_s"] == 205 and [p["started"] for p in cost["parts"]] == ["first", "later"]
    assert cost["by_kind"]["train"] == {"steps": 1, "wall_s": 110, "work_s": 80, "load_s": 2, "save_s": 5,
                                        "other_s": 23}
    assert cost["by_kind"]["eval"] == {"steps": 1, "wall_s": 70, "work_s": 14, "load_s": 0, "save_s": 0,
                                       "other_s": 56}
    assert gpu_time(run) == cost  # where it ran, found from the recorded paths' tails under the run folder
    assert gpu_time(tmp_path / "no-run") is None


def test_gpu_time_reads_the_runners_batch_listings_and_manifests_whose_rows_were_left_out(tmp_path):
    """A run copied back as its deliverables: an evaluation batch's listing as experiment.py --eval-batches
    writes it ({"evaluations": [...], "wait_for": [...]}), and a probing part whose rows were not copied
    (only its manifest): both steps are still split by their manifests' timings."""
    run, where = tmp_path / "run", "/gpu-host/run"
    write(run / "eval-a-seed0.manifest.json", {"timings": {"wall_s": 40, "generation_s": 10}})
    write(run / "uncertainty-p1.manifest.json", {"timings": {"wall_s": 200, "probing_s": 140, "summarizing_s": 5}})
    write(run / "logs" / "eval_seed0_arms.json", {"evaluations": [{"output": f"{where}/eval-a-seed0.jsonl"}],
                                                  "wait_for": [f"{where}/student-a-seed0"]})
    steps = {"eval seed0 arms": {"status": "done", "wall_s": 60, "gpu": "0",
                                 "command": f"python3 -m alice.stages.evaluate {where}/logs/eval_seed0_arms.json"},
             "uncertainty 1/4": {"status": "done", "wall_s": 220, "gpu": "0",
                                 "command": f"python3 uncertainty.py --pool-part 1/4 --output {where}/uncertainty-p1.jsonl"}}
    write(run / "steps.json", {"started": "t", "wall_s": 300, "steps": steps})
    cost = gpu_time(run)
    assert cost["by_kind"]["eval"] == {"steps": 1, "wall_s": 60, "work_s": 10, "load_s": 0, "save_s": 0, "other_s": 50}
    assert cost["by_kind"]["uncertainty"] == {"steps": 1, "wall_s": 220, "work_s": 145, "load_s": 0, "save_s": 0,
                                              "other_s": 75}


def test_an_evaluation_manifest_counts_the_tokens_it_generated(tmp_path, small_model):
    """The manifest's generated tokens are the responses' own token counts (the tokens/s a run reports
    and the probing benchmarks read)."""
    from transformers import AutoTokenizer

    from alice.config import parse
    from alice.stages.evaluate import EvalConfig, evaluate

    output = tmp_path / "eval.jsonl"
    evaluate(parse(EvalConfig, ["--data", "gsm_symbolic", "--limit", "3", "--max-new-tokens", "12", "--backend", "hf",
                                "--student", small_model, "--output", str(output)]))
    timings = json.loads((tmp_path / "eval.manifest.json").read_text())["timings"]
    tokenizer = AutoTokenizer.from_pretrained(small_model)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    counted = sum(len(tokenizer(r["response"], add_special_tokens=False)["input_ids"]) for r in rows)
    assert len(rows) == 3 and timings["generation_s"] > 0
    # Generated tokens include each end token and what strip() removed: a few more than the text re-encodes.
    assert counted <= timings["generated_tokens"] <= 3 * 12
