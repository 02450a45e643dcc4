#!/usr/bin/env python3
"""The comparison table: weak, strong ceiling, zero-shot, W2S-QA, W2S-CoT, Alice and cascade Alice,
as accuracy (95% interval), parse rate and PGR = (method - weak) / (ceiling - weak) with a 95%
bootstrap interval over questions. Reads every eval-<method>.summary.json under a run folder (or a
folder of run folders: one table per dataset and model pair); writes report.md, report.csv and
report.png. Missing results are listed, not fatal.

Examples:
  python report.py runs/arc_challenge-smollm2
  python report.py runs/sweep --output-dir runs/sweep
"""

from alice import cli
from alice.errors import run_main
from alice.report import build_report


def build_parser():
    p = cli.parser(__doc__)
    p.add_argument("root", help="a run folder, or a folder holding run folders")
    p.add_argument("--output-dir", default=None, help="where report.md/.csv/.png go (default: root)")
    p.add_argument("--bootstrap-samples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    report = build_report(args.root, args.output_dir, args.bootstrap_samples, args.seed)
    print(report["text"])
    print(f"-> {report['markdown']}, {report['csv']}" + (f", {report['png']}" if report["png"] else ""))
    return report


if __name__ == "__main__":
    run_main(main)
