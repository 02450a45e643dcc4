#!/usr/bin/env python3
"""Greedy evaluation of a model, a trained folder or a LoRA adapter on the task's test split
(ARC, GSM8K: test; HotpotQA, TriviaQA: validation). Unparsable answers count as wrong; the parse
rate is reported beside the accuracy. Writes per-question JSONL and a summary JSON.

Examples:
  python eval.py --data arc_challenge --model qwen2.5 --student 3B
  python eval.py --data arc_challenge --model runs/student --limit 100
  python eval.py --data arc_challenge --predictions data/eval-arc_challenge-model.jsonl
"""

from alice.config import build_parser as config_parser
from alice.config import parse
from alice.errors import run_main
from alice.stages.evaluate import EvalConfig, evaluate


def build_parser():
    return config_parser(EvalConfig, __doc__)


def main(argv=None, backend=None):
    return evaluate(parse(EvalConfig, argv, __doc__), backend)


if __name__ == "__main__":
    run_main(main)
