#!/usr/bin/env python3
"""Greedy evaluation of a model, a trained folder or a LoRA adapter on the task's test split
(ARC, GSM8K: test; HotpotQA, TriviaQA: validation). Unparsable answers count as wrong; the parse
rate is reported beside the accuracy. Writes per-question JSONL and a summary JSON.

Examples:
  python eval.py --data arc_challenge --model qwen2.5 --student 3B
  python eval.py --data arc_challenge --model runs/student --limit 100
  python eval.py --data arc_challenge --predictions data/eval-arc_challenge-model.jsonl
"""

from alice import cli
from alice.errors import run_main
from alice.stages import evaluate


def build_parser():
    p = cli.parser(__doc__)
    cli.add_data_args(p, split_seed=False, pool_part=False)  # the test split: never shuffled or split
    cli.add_model_args(p, "teacher", "student")
    cli.add_generation_args(p, max_new_tokens=512)
    p.add_argument("--split", default=None, help="split to evaluate (default: the task's test split)")
    p.add_argument("--predictions", help="re-score a JSONL of saved responses (id, response); loads no model")
    cli.add_output_args(p, default=None)
    return p


def main(argv=None, backend=None):
    return evaluate(build_parser().parse_args(argv), backend)


if __name__ == "__main__":
    run_main(main)
