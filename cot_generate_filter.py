#!/usr/bin/env python3
"""Stage 1: the base teacher answers its half of train step by step (in the task's
final-answer format); responses whose answer matches the ground truth are kept for teacher SFT.
GSM8K uses its shipped rationales instead of generating.

Example:
  python cot_generate_filter.py --data arc_challenge --model qwen2.5 --teacher 1.5B
  python cot_generate_filter.py --data arc_challenge --teacher smollm2 --limit 20 --backend hf
"""

from alice.config import build_parser as config_parser
from alice.config import parse
from alice.errors import run_main
from alice.stages.cot_generate_filter import CotConfig, cot_generate_filter


def build_parser():
    return config_parser(CotConfig, __doc__)


def main(argv=None, backend=None):
    return cot_generate_filter(parse(CotConfig, argv, __doc__), backend)


if __name__ == "__main__":
    run_main(main)
