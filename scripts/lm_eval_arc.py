#!/usr/bin/env python3
"""Cross-check ARC-Challenge accuracy with lm-evaluation-harness: its standard multiple-choice
scoring (log-likelihood of each option) on the shipped test split through a local task definition
(no hub), for any model, trained folder or LoRA adapter, with transformers or vLLM. Writes the
harness's accuracy, and eval.py's beside it when given its summary.

Needs the optional extra: pip install "lm-eval[hf]==0.4.13"

  python scripts/lm_eval_arc.py --model runs/student-alice --eval-summary data/eval-arc.summary.json
  python scripts/lm_eval_arc.py --model Qwen/Qwen2.5-1.5B-Instruct --backend vllm
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alice.cli import add_revision_arg, with_revision
from alice.crosscheck import run_crosscheck
from alice.errors import run_main
from alice.models import resolve_model
from alice.stages.common import slug


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="hub id, local folder, LoRA adapter folder or .gguf")
    add_revision_arg(p)
    p.add_argument("--data", default="arc_challenge", help="arc_challenge or a saved ARC folder")
    p.add_argument("--backend", choices=["hf", "vllm"], default="hf", help="lm-evaluation-harness's model type")
    p.add_argument("--limit", type=int, default=None, help="only the first N test questions")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--eval-summary", type=Path, default=None,
                   help="eval.py's summary of the same model, written beside the harness's accuracy")
    p.add_argument("--output", type=Path, default=None, help="JSON report (default data/lm-eval-arc-<model>.json)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    ref = with_revision(resolve_model(args.model), args)
    output = args.output or Path("data") / f"lm-eval-arc-{slug(ref.adapter or ref.path)}.json"
    report = run_crosscheck(ref, output, args.backend, args.limit, args.batch_size, args.eval_summary, args.data)
    line = f"lm-evaluation-harness ARC-Challenge: acc {report['lm_eval']['acc']:.3f}, acc_norm " \
           f"{report['lm_eval']['acc_norm']:.3f} on n={report['n']}"
    if "eval_py" in report:
        line += f"; eval.py accuracy {report['eval_py']['accuracy']:.3f}"
    print(f"{line} -> {output}")
    return report


if __name__ == "__main__":
    run_main(main)
