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

from alice.config import build_parser as config_parser
from alice.config import parse
from alice.errors import run_main
from alice.stages.w2s_labels import W2SLabelsConfig, w2s_labels


def build_parser():
    return config_parser(W2SLabelsConfig, __doc__)


def main(argv=None, backend=None):
    return w2s_labels(parse(W2SLabelsConfig, argv, __doc__), backend)


if __name__ == "__main__":
    run_main(main)
