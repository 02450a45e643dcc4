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

from alice.config import build_parser as config_parser
from alice.config import parse
from alice.errors import run_main
from alice.stages.student_generate import StudentGenerateConfig, student_generate


def build_parser():
    return config_parser(StudentGenerateConfig, __doc__)


def main(argv=None, backend=None):
    return student_generate(parse(StudentGenerateConfig, argv, __doc__), backend)


if __name__ == "__main__":
    run_main(main)
