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

from alice import cli
from alice.adaptive import add_adaptive_args
from alice.alice_stages import uncertainty
from alice.backends import BACKENDS
from alice.clustering import THRESHOLD
from alice.errors import run_main


def build_parser():
    p = cli.parser(__doc__)
    cli.add_data_args(p)
    cli.add_model_args(p, "teacher", "summarizer")
    cli.add_generation_args(p, max_new_tokens=512)
    g = p.add_argument_group("probing")
    g.add_argument("--k", type=int, default=100, help="samples per question (one request with n=K)")
    g.add_argument("--temperature", type=float, default=0.9, help="sampling temperature of the K samples")
    g.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling of the K samples")
    g.add_argument("--save-samples", action="store_true", help="keep the raw K samples (in each row and "
                   "in <output>.samples.jsonl)")
    add_adaptive_args(g)
    g = p.add_argument_group("clustering")
    g.add_argument("--clustering", choices=["auto", "exact", "semantic"], default="auto",
                   help="auto: exact final answers for choice/number tasks, semantic for text tasks")
    g.add_argument("--embedder", default=None, help="sentence-transformers model for semantic clustering "
                   "(default all-MiniLM-L6-v2; hkunlp/instructor-large uses the paper's instruction)")
    g.add_argument("--similarity-threshold", type=float, default=THRESHOLD, help="cosine above which two "
                   "samples agree")
    g.add_argument("--embed-batch-size", type=int, default=256, help="texts per embedder batch")
    g.add_argument("--keep-singletons", action="store_true", help="keep clusters of one sample (paper drops them)")
    g = p.add_argument_group("summarizer (default: the teacher itself, sharing its backend)")
    g.add_argument("--summarizer-backend", choices=BACKENDS, default=None, help="default: --backend, or openai "
                   "with --summarizer-base-url")
    g.add_argument("--summarizer-base-url", help="OpenAI-compatible server running --summarizer")
    g.add_argument("--summarizer-max-new-tokens", type=int, default=256, help="tokens per uncertainty statement at most")
    g.add_argument("--summarizer-load-format", choices=["auto", "dummy"], default="auto",
                   help="vLLM: dummy = random weights of the summarizer's architecture, for measuring speed and "
                        "memory of a model whose weights are not at hand (its statements are noise)")
    cli.add_output_args(p, default=None)
    return p


def main(argv=None, backend=None):
    return uncertainty(build_parser().parse_args(argv), backend)


if __name__ == "__main__":
    run_main(main)
