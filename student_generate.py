#!/usr/bin/env python3
"""Alice stages 4-5: the student's zero-shot answers, then its proactive answers.

For each question where the teacher was uncertain, the student answers on its own (temperature
0.9), then sees its answer, the teacher's answer and the teacher's uncertainty statement and writes
its own final answer (label "new"). Questions where the teacher was certain keep the teacher's
answer (label "original"). Output: the student's training JSONL (id, question, response, label),
joined with uncertainty.py's rows by id, ready for train.py.

Examples:
  python student_generate.py --data arc_challenge --model qwen2.5 --student 7B \\
      --uncertainty data/uncertainty-arc_challenge-teacher-arc.jsonl
"""

from alice import cli
from alice.alice_stages import student_generate
from alice.errors import run_main


def build_parser():
    p = cli.parser(__doc__)
    cli.add_data_args(p)
    cli.add_model_args(p, "student")
    cli.add_generation_args(p, max_new_tokens=512)
    p.add_argument("--uncertainty", required=True, help="uncertainty.py output (JSONL keyed by id)")
    p.add_argument("--temperature", type=float, default=0.9, help="zero-shot sampling temperature")
    p.add_argument("--proactive-temperature", type=float, default=0.9, help="proactive answer sampling temperature")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling of both answers")
    p.add_argument("--no-statement", action="store_true",
                   help="control: the proactive prompt shows the teacher's answer but not its uncertainty statement")
    cli.add_output_args(p, default=None)
    return p


def main(argv=None, backend=None):
    return student_generate(build_parser().parse_args(argv), backend)


if __name__ == "__main__":
    run_main(main)
