#!/usr/bin/env python3
"""Stage 1: the base teacher answers its half of train step by step (in the task's
final-answer format); responses whose answer matches the ground truth are kept for teacher SFT.
GSM8K uses its shipped rationales instead of generating.

Example:
  python cot_generate_filter.py --data arc_challenge --model qwen2.5 --teacher 1.5B
  python cot_generate_filter.py --data arc_challenge --teacher smollm2 --limit 20 --backend hf
"""

from alice import cli
from alice.errors import run_main
from alice.stages import cot_generate_filter


def build_parser():
    p = cli.parser(__doc__)
    cli.add_data_args(p, pool_part=False)  # the teacher's half: no student pool here
    cli.add_model_args(p, "teacher")
    cli.add_generation_args(p, max_new_tokens=512)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    cli.add_output_args(p, default=None)
    return p


def main(argv=None, backend=None):
    return cot_generate_filter(build_parser().parse_args(argv), backend)


if __name__ == "__main__":
    run_main(main)
