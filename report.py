#!/usr/bin/env python3
"""The comparison table: weak, strong ceiling, zero-shot, W2S-QA, W2S-CoT, Alice, the controls
(self-training, Alice without statement, Alice with a structured statement) and cascade Alice, as
accuracy (mean over training seeds, each seed, sd, 95% interval), parse rate and PGR = (method - weak) /
(ceiling - weak); then paired comparisons on the same questions over every seed of both sides (delta,
interval, a test over templates or questions, McNemar p per seed pair). Intervals resample templates
(where questions come in templates) and training seeds.
Reads every eval-<method>[-seed<N>].summary.json (and the .jsonl beside it) under a run folder (or a
folder of run folders: one table per dataset and model pair), plus experiment.json, gate.json and
noise_floor.json where present; writes report.md, report.csv, report.json and report.png. Missing
results are listed, not fatal. alice/report.py describes the run-folder contract and report.json.

Examples:
  python report.py runs/arc_challenge-smollm2
  python report.py runs/sweep --output-dir runs/sweep
"""

import argparse

from alice.config import HelpFormatter
from alice.errors import run_main
from alice.report import build_report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("root", help="a run folder, or a folder holding run folders")
    p.add_argument("--output-dir", default=None, help="where report.md/.csv/.json/.png go (default: root)")
    p.add_argument("--bootstrap-samples", type=int, default=2000, help="bootstrap resamples per interval")
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    report = build_report(args.root, args.output_dir, args.bootstrap_samples, args.seed)
    print(report["text"])
    written = [report[k] for k in ("markdown", "csv", "json", "png") if report[k]]
    print("-> " + ", ".join(written))
    return report


if __name__ == "__main__":
    run_main(main)
