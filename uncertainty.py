#!/usr/bin/env python3
"""Alice stage 3: probe the trained teacher's uncertainty on the student pool.

K samples per question (one n=K request; --adaptive: in waves, stopping a question early),
clustered by final answer (choice/number tasks) or by meaning (open QA: sentence embeddings, cosine > 0.9); singletons are dropped. One cluster: the
teacher is certain and its answer is a training target. Several: a summarizer model writes a short
first-person statement of what the teacher is unsure about. Rows are keyed by question id.

Examples:
  python uncertainty.py --data arc_challenge --teacher runs/teacher-arc --k 100
  python uncertainty.py --data arc_challenge --teacher runs/teacher-arc \\
      --summarizer meta-llama/Meta-Llama-3-70B-Instruct --summarizer-base-url http://host:8000/v1
  python uncertainty.py --data triviaqa --teacher runs/teacher-tqa --embedder hkunlp/instructor-large
"""

from alice.config import build_parser as config_parser
from alice.config import parse
from alice.errors import run_main
from alice.stages.uncertainty import UncertaintyConfig, uncertainty


def build_parser():
    return config_parser(UncertaintyConfig, __doc__)


def main(argv=None, backend=None, summarizer_backend=None):
    return uncertainty(parse(UncertaintyConfig, argv, __doc__), backend, summarizer_backend)


if __name__ == "__main__":
    run_main(main)
