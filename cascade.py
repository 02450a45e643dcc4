#!/usr/bin/env python3
"""Cascade Alice (stage 7): weak teacher -> mid model(s) -> strong student.

The student pool is split into disjoint parts, one per stage (contiguous; --split-seed shuffles
the pool first). Stage i probes its teacher's uncertainty on part i, lets the next model of the
ladder write its own answers, and trains that model on them; the trained model is the next stage's
teacher. Each stage lives in <output-dir>/stage<i>/ (uncertainty.jsonl, alice.jsonl, model/,
stage.json when finished). A rerun skips finished stages and resumes the interrupted one.

The first rung is used as given: pass the trained teacher (train.py's output folder).

Examples:
  python cascade.py --data arc_challenge --model qwen2.5 --teacher runs/teacher-1.5B --midlevel 3B --student 7B
  python cascade.py --data arc_challenge --ladder runs/teacher smollm2 smollm2 --k 8 --limit 16 \\
      --train-args "--lora --max-steps 4"
"""

from alice import cli
from alice.cascade import Engines, add_passthrough_args, run_cascade
from alice.errors import run_main


def build_parser():
    p = cli.parser(__doc__)
    cli.add_data_args(p, pool_part=False)  # the cascade splits the student pool itself, one part per stage
    cli.add_model_args(p, "teacher", "midlevel", "student", "summarizer")
    p.add_argument("--ladder", nargs="+", metavar="MODEL",
                   help="the whole ladder, trained teacher first (sizes with --model, or ids/folders)")
    cli.add_generation_args(p, max_new_tokens=512)
    p.add_argument("--k", type=int, default=100, help="teacher samples per question (uncertainty probing)")
    add_passthrough_args(p)
    p.add_argument("--share-engine", action="store_true",
                   help="vLLM: serve LoRA adapters on their base model's one engine (use with --train-args --lora)")
    p.add_argument("--output-dir", default=None, help="default: runs/cascade-<data>-<ladder>")
    p.add_argument("--overwrite", action="store_true",
                   help="start every stage over (each replaces its own outputs; other files in the folder stay)")
    return p


def main(argv=None, engines=None):
    args = build_parser().parse_args(argv)
    if engines is None and args.share_engine:
        engines = Engines(args, share_adapters=True)
        try:
            return run_cascade(args, engines)
        finally:
            engines.close()
    return run_cascade(args, engines)


if __name__ == "__main__":
    run_main(main)
