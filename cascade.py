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

from alice.config import build_parser as config_parser
from alice.config import parse
from alice.engines import Engines
from alice.errors import run_main
from alice.stages.cascade import CascadeConfig, run_cascade


def build_parser():
    return config_parser(CascadeConfig, __doc__)


def main(argv=None, engines=None):
    args = parse(CascadeConfig, argv, __doc__)
    if engines is None and args.share_engine:
        engines = Engines(args, share_adapters=True)
        try:
            return run_cascade(args, engines)
        finally:
            engines.close()
    return run_cascade(args, engines)


if __name__ == "__main__":
    run_main(main)
