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
"""

import signal
import sys

from alice import cli
from alice.cascade import add_passthrough_args
from alice.errors import run_main
from alice.experiment import run_experiment


def build_parser():
    p = cli.parser(__doc__)
    # The experiment compares methods on the whole student pool (the cascade splits it itself):
    # --student-limit makes it smaller, --pool-part is not taken.
    cli.add_data_args(p, pool_part=False)
    cli.add_model_args(p, "teacher", "midlevel", "student", "summarizer")  # no models at all: smollm2
    cli.add_generation_args(p, max_new_tokens=None)
    p.set_defaults(backend=None)  # the preset chooses (transformers for the CPU demo, else vLLM)
    g = p.add_argument_group("experiment (unset values come from the preset)")
    g.add_argument("--preset", choices=["auto", "demo", "paper"], default="auto",
                   help="auto: demo for the embedded small model, paper for any other")
    g.add_argument("--student-limit", type=int, default=None, help="student-pool questions (0 = all); "
                   "--limit is the teacher's half")
    g.add_argument("--eval-limit", type=int, default=None, help="test questions to evaluate (0 = all)")
    g.add_argument("--k", type=int, default=None, help="teacher samples per question (uncertainty)")
    g.add_argument("--summarizer-max-new-tokens", type=int, default=None, help="tokens per uncertainty statement at most")
    g.add_argument("--no-cascade", dest="cascade", action="store_false", help="skip cascade Alice")
    g.add_argument("--parallel-cascade", action="store_true",
                   help="run cascade Alice in a second process beside the other steps once the CoT teacher is "
                        "trained (one GPU with room for two jobs; pair with --kv-cache-gb)")
    add_passthrough_args(p)
    p.set_defaults(train_args=None, uncertainty_args=None)
    p.add_argument("--run-dir", default=None, help="folder for this run (default: runs/<settings>)")
    p.add_argument("--overwrite", action="store_true",
                   help="start every step over (each replaces its own outputs; other files in the run folder stay)")
    p.add_argument("--dry-run", action="store_true",
                   help="print every step's command and full settings; run nothing, write nothing")
    return p


def main(argv=None):
    # SIGTERM unwinds like Ctrl-C, so the vLLM engine's worker processes are shut down too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return run_experiment(build_parser().parse_args(argv))


if __name__ == "__main__":
    run_main(main)
