#!/usr/bin/env python3
"""ARC-Challenge small-scale replication: does Alice beat original weak-to-strong with
real small models? Settings come from a config file (configs/arc_small.toml); every step is one
of the project's scripts, run as a subprocess, and every step resumes on a rerun.

  1. models: each GGUF (from ../shared/tools/fetch-small-models) becomes a Hugging Face folder;
  2. zero-shot: eval.py on the whole ARC test split for every model (in parallel on one GPU);
  3. selection: weak teacher and strong student = the pair with the largest zero-shot gap (the
     config's min_gap is checked and reported), the three models by accuracy = the cascade ladder,
     the strongest = the summarizer;
  4. experiment.py with that pair: weak, ceiling, zero-shot, W2S-CoT, W2S-QA, Alice, cascade Alice;
  5. results/arc_small/: the report (table, CSV, PNG), selection, evidence (teacher certainty, how
     often the student's proactive answer left the teacher's, label accuracy of each method's
     training data), every manifest, and per-question eval outcomes, so
     `python report.py results/arc_small` rebuilds the table.

  python scripts/arc_small.py                             # everything (a GPU with vLLM)
  python scripts/arc_small.py --only smollm2              # convert + zero-shot one model, then stop
  python scripts/arc_small.py --dry-run                   # print the commands only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alice.errors import AliceError, run_main  # the installed package (bash install.sh: pip install -e .)
from alice.models import gguf_to_folder
from alice.records import atomic_write_json, iter_jsonl, read_json
from alice.tasks import load_task

REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configs" / "arc_small.toml"))
    p.add_argument("--gguf-dir", default=os.environ.get("SMALL_MODELS_DIR", str(Path.home() / ".cache" / "small-models")),
                   help="folder with the GGUF files the config names")
    p.add_argument("--from-hub", action="store_true", help="use each model's official hub id instead of its GGUF")
    p.add_argument("--run-dir", default=str(REPO / "runs" / "arc_small"), help="working folder (models, JSONL)")
    p.add_argument("--results", default=str(REPO / "results" / "arc_small"), help="where the deliverables go")
    p.add_argument("--only", nargs="+", metavar="NAME", help="convert and evaluate zero-shot these models, then stop")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    return p


def load_config(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise AliceError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as err:
        raise AliceError(f"{path}: not valid TOML ({err})") from None
    names = [m.get("name") for m in config.get("models", [])]
    if len(names) < 2 or None in names:
        raise AliceError(f"{path}: needs at least two [[models]] entries, each with a name")
    return config


def run(cmd: list[str], log: Path, dry: bool) -> None:
    """One script as a subprocess; its output goes to the terminal and to ``log``."""
    print("$ " + " ".join(cmd), flush=True)
    if dry:
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            out.write(line)
            out.flush()
            sys.stdout.write(line)
        if proc.wait() != 0:
            raise AliceError(f"{Path(cmd[1]).name} exited with {proc.returncode}; see {log}")


def data_args(config: dict) -> list[str]:
    return ["--data", config["dataset"]] + (["--answer-type", config["answer_type"]] if "answer_type" in config else [])


def model_folder(model: dict, args: argparse.Namespace) -> str:
    if args.from_hub:
        return model["hub"]
    gguf = Path(args.gguf_dir) / model["gguf"]
    if not gguf.is_file():
        raise AliceError(f"{gguf}: not found (fetch it: ../shared/tools/fetch-small-models {model['name']})")
    return str(gguf_to_folder(gguf, name=model["label"]))


def zero_shot(config: dict, models: list[dict], args: argparse.Namespace, run_dir: Path) -> dict[str, dict]:
    """eval.py on the test split for each model, side by side (one process each)."""
    gen = list(config["generation"]["args"]) + list(config.get("zero_shot", {}).get("args", []))
    jobs = []
    for model in models:
        out = run_dir / "zeroshot" / f"{model['name']}.jsonl"
        cmd = [sys.executable, str(REPO / "eval.py"), *data_args(config), "--model", model["folder"],
               *gen, "--output", str(out)]
        jobs.append((model, out, cmd))
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(run, cmd, out.with_suffix(".log"), args.dry_run) for _, out, cmd in jobs]
        for f in futures:
            f.result()
    if args.dry_run:
        return {}
    return {m["name"]: read_json(out.with_name(out.stem + ".summary.json")) for m, out, _ in jobs}


def select(config: dict, models: list[dict], scores: dict[str, dict]) -> dict:
    """The pair with the largest gap (strong minus weak), the ladder and the summarizer."""
    accuracy = {name: scores[name]["accuracy"] for name in scores}
    ladder = sorted(accuracy, key=accuracy.get)
    weak, strong = ladder[0], ladder[-1]  # the largest gap: least accurate -> most accurate
    gap = accuracy[strong] - accuracy[weak]
    by_name = {m["name"]: m for m in models}
    return {
        "zero_shot": {name: {k: scores[name][k] for k in ("n", "accuracy", "accuracy_ci95", "parse_rate")}
                      for name in ladder},
        "teacher": weak, "student": strong, "gap": gap, "min_gap": config["min_gap"],
        "gap_ok": gap >= config["min_gap"],
        "ladder": ladder if len(ladder) >= 3 else None,
        "midlevel": ladder[1] if len(ladder) >= 3 else None,
        "summarizer": strong,
        "labels": {name: by_name[name]["label"] for name in ladder},
        "sources": {name: by_name[name]["source"] for name in ladder},
    }


def label_quality(run_dir: Path, dataset: str, answer_type: str | None = None) -> dict:
    """How often each method's training targets name the right answer (student pool labels are
    known for ARC, though no W2S method sees them), plus Alice's own counts."""
    task = load_task(dataset, answer_type)
    pool = {ex.id: ex for ex in task.examples("student")}

    def accuracy(path: Path, key: str = "response", where=lambda row: True) -> dict | None:
        if not path.is_file():
            return None
        rows = [row for _, row in iter_jsonl(path) if where(row) and row.get(key) is not None]
        scores = [task.score(row[key], pool[str(row["id"])]) for row in rows if str(row["id"]) in pool]
        if not scores:
            return {"rows": 0}
        return {"rows": len(scores), "correct": sum(s.correct for s in scores) / len(scores),
                "parsed": sum(s.parsed for s in scores) / len(scores)}

    evidence = {
        "w2s-cot labels": accuracy(run_dir / "w2s-cot.jsonl"),
        "w2s-qa labels": accuracy(run_dir / "w2s-qa.jsonl"),
        "alice targets (all)": accuracy(run_dir / "alice.jsonl"),
        "alice targets: original (certain teacher)": accuracy(run_dir / "alice.jsonl",
                                                               where=lambda r: r.get("label") == "original"),
        "alice targets: new (student's proactive answer)": accuracy(run_dir / "alice.jsonl",
                                                                     where=lambda r: r.get("label") == "new"),
        "teacher answer where the student wrote a new one": accuracy(run_dir / "alice.jsonl", key="teacher_answer",
                                                                     where=lambda r: r.get("label") == "new"),
        "student zero-shot where it wrote a new one": accuracy(run_dir / "alice.jsonl", key="zero_shot",
                                                               where=lambda r: r.get("label") == "new"),
    }
    probe = run_dir / "uncertainty.manifest.json"  # the counts uncertainty.py recorded
    if probe.is_file():
        counts = read_json(probe)["counts"]
        evidence["uncertainty"] = {**counts, "certain_rate": counts["certain"] / counts["questions"],
                                   "sample_parse_rate": 1 - counts["unparsable_samples"] / counts["samples"]}
    generated = run_dir / "alice.manifest.json"
    if generated.is_file():
        evidence["student_generate"] = read_json(generated)["counts"]
    for stage in sorted(run_dir.glob("cascade/stage*/stage.json")):
        marker = read_json(stage)
        evidence[f"cascade {stage.parent.name}"] = {
            "teacher": marker.get("teacher"), "student": marker.get("student"),
            "uncertainty": marker.get("uncertainty"), "student_generate": marker.get("student_generate"),
            "targets": accuracy(stage.parent / "alice.jsonl")}
    return evidence


def collect(run_dir: Path, results: Path, selection: dict, config_path: str, config: dict) -> None:
    """Copy the deliverables (no model weights) into ``results``."""
    exp = run_dir / "experiment"
    results.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "report.csv", "report.png", "experiment.json"):
        if (exp / name).exists():
            shutil.copyfile(exp / name, results / name)
    shutil.copyfile(config_path, results / "config.toml")
    atomic_write_json(results / "selection.json", selection)
    atomic_write_json(results / "evidence.json", label_quality(exp, config["dataset"], config.get("answer_type")))
    manifests = results / "manifests"
    for path in sorted(list(run_dir.rglob("*manifest.json")) + list(run_dir.rglob("stage.json"))):
        if "checkpoint-" in str(path):
            continue
        target = manifests / path.relative_to(run_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    # Per-question outcomes beside each summary: report.py recomputes intervals and PGR from them.
    for summary in list(exp.glob("eval-*.summary.json")) + list((run_dir / "zeroshot").glob("*.summary.json")):
        folder = results if summary.parent == exp else results / "zeroshot"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(summary, folder / summary.name)
        rows = summary.with_name(summary.name.removesuffix(".summary.json") + ".jsonl")
        if rows.is_file():
            with open(folder / rows.name, "w") as out:
                out.writelines(json.dumps({k: row.get(k) for k in ("id", "prediction", "parsed", "correct")}) + "\n" for _, row in iter_jsonl(rows))
    print(f"deliverables in {results}")


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    started = time.time()
    config = load_config(args.config)
    run_dir, results = Path(args.run_dir), Path(args.results)
    models = config["models"]
    if args.only:
        unknown = set(args.only) - {m["name"] for m in models}
        if unknown:
            raise AliceError(f"--only: unknown model(s) {', '.join(sorted(unknown))} (config has "
                             f"{', '.join(m['name'] for m in models)})")
        models = [m for m in models if m["name"] in args.only]
    for model in models:
        model["folder"] = model_folder(model, args) if not args.dry_run else model["gguf"]
    scores = zero_shot(config, models, args, run_dir)
    if args.only or args.dry_run:
        if args.dry_run:
            print("(dry run: the experiment's command depends on the zero-shot results)")
        return {"zero_shot": scores}
    selection = select(config, models, scores)
    atomic_write_json(run_dir / "selection.json", selection)
    folders = {m["name"]: m["folder"] for m in models}
    print(f"selection: teacher {selection['teacher']}, student {selection['student']}, gap "
          f"{selection['gap']:.3f} ({'meets' if selection['gap_ok'] else 'BELOW'} min_gap {config['min_gap']}), "
          f"ladder {selection['ladder']}", flush=True)
    exp = config["experiment"]
    cmd = [sys.executable, str(REPO / "experiment.py"), *data_args(config), "--preset", "paper",
           "--teacher", folders[selection["teacher"]], "--student", folders[selection["student"]],
           "--summarizer", folders[selection["summarizer"]], "--k", str(exp["k"]),
           *config["generation"]["args"], *exp.get("args", []),
           f"--train-args={exp.get('train_args', '')}", "--run-dir", str(run_dir / "experiment")]
    if selection["midlevel"]:
        cmd += ["--midlevel", folders[selection["midlevel"]]]
    else:
        cmd += ["--no-cascade"]
    run(cmd, run_dir / "experiment.log", args.dry_run)
    selection["wall_s"] = round(time.time() - started, 1)
    collect(run_dir, results, selection, args.config, config)
    return selection


if __name__ == "__main__":
    run_main(main)
