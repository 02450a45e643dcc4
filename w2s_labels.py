#!/usr/bin/env python3
"""Original weak-to-strong labels: the trained teacher answers the student pool (temperature 0.6)
and its answers become the student's training JSONL (id, question, response), ready for train.py.
Run it once with the CoT-trained teacher (W2S-CoT) and once with the answers-only teacher (W2S-QA,
trained with `train.py --ground-truth --no-rationale`).

Examples:
  python w2s_labels.py --data arc_challenge --teacher runs/teacher-cot --output data/w2s-cot.jsonl
  python train.py --data arc_challenge --model qwen2.5 --student 3B --train-file data/w2s-cot.jsonl \\
      --output-dir runs/student-w2s-cot
"""

from alice import cli
from alice.errors import run_main
from alice.w2s import w2s_labels


def build_parser():
    p = cli.parser(__doc__)
    cli.add_data_args(p)
    cli.add_model_args(p, "teacher")
    cli.add_generation_args(p, max_new_tokens=512)
    p.add_argument("--temperature", type=float, default=0.6, help="the paper's label temperature")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling of the labels")
    cli.add_output_args(p, default=None)
    return p


def main(argv=None, backend=None):
    return w2s_labels(build_parser().parse_args(argv), backend)


if __name__ == "__main__":
    run_main(main)
