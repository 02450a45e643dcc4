#!/usr/bin/env python3
"""The main job: the paper's whole comparison for one dataset and model pair, ending with the
PGR report (report.md, report.csv, report.png in the run folder).

Steps: teacher CoT generation + filtering; teachers trained on CoT, on ground truth (= weak) and
on answers only; the strong ceiling; Alice (uncertainty -> student proactive answers -> training);
original W2S with both teachers; zero-shot; cascade Alice (teacher -> mid -> student); greedy
evaluation of each; the report. A rerun resumes every step.

With no arguments it runs the embedded default on CPU in minutes (--preset demo): a slice of
ARC-Challenge with the small real model SmolLM2-135M-Instruct as teacher, mid model, student and
(through the trained teacher) summarizer; one small model, so the run checks the pipeline, not
weak-to-strong gains; K=4, two full fine-tuning steps per model. Any other model selects --preset
paper: every question, K=100, the paper's training recipe.

  python experiment.py                                                  # CPU demo
  python experiment.py --model qwen2.5 --teacher 1.5B --student 3B      # paper's setting, GPU
  python experiment.py --model qwen2.5 --teacher 1.5B --midlevel 3B --student 7B \\
      --summarizer meta-llama/Meta-Llama-3-70B-Instruct --uncertainty-args "--summarizer-base-url http://host:8000/v1"
  python experiment.py --config configs/fair.yaml --gpus 0 --kv-cache-gb 6 --eval-batches --probe-parts 4 \\
      --results results/fair-rerun                  # the fair test packed onto one GPU, deliverables kept
  python experiment.py --config configs/fair.yaml --gpus 0 --kv-cache-gb 6 --targets gate \\
      --restore-from results/fair-rerun --results results/fair-rerun   # a run in parts, each resuming the last
"""

import signal
import sys

from alice.config import build_parser as config_parser
from alice.config import parse
from alice.errors import run_main
from alice.stages.experiment import ExperimentConfig, run_experiment


def build_parser():
    return config_parser(ExperimentConfig, __doc__)


def main(argv=None):
    # SIGTERM unwinds like Ctrl-C, so the vLLM engine's worker processes are shut down too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return run_experiment(parse(ExperimentConfig, argv, __doc__))


if __name__ == "__main__":
    run_main(main)
