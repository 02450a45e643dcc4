"""Chunked, resumable generation into a JSONL output.

Questions already in the output are skipped; the rest are generated a chunk at a time. A chunk's rows
are appended (whole lines, fsynced) in order while it generates, as its questions finish, and all of
them before the next chunk starts, so a kill loses only questions still unfinished (and those finished
in the last `ALICE_WRITE_EVERY_S` seconds, default 2), and a rerun picks up where the file stops.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

from .backends import Backend, Conversation, Sampling, check_prompt_lengths, cuda_available
from .progress import Progress
from .records import JsonlAppender
from .tasks import Example

# Finished rows of a chunk are written (and fsynced) at most this often while it generates.
WRITE_EVERY_S = float(os.environ.get("ALICE_WRITE_EVERY_S", "2"))


def generate_into(
    output: JsonlAppender,
    backend: Backend,
    examples: Sequence[Example],
    conversation: Callable[[Example], Conversation],
    make_row: Callable[[Example, list[str]], dict],
    sampling: Sampling,
    chunk_size: int | None = None,
    skip_long: bool = False,
    desc: str = "generating",
) -> dict:
    """Generate for every example not yet in ``output``; returns counts and timings."""
    pending = [ex for ex in examples if ex.id not in output.done]
    conversations = [conversation(ex) for ex in pending]
    skipped = set(check_prompt_lengths(backend, conversations, [ex.id for ex in pending],
                                       sampling.max_tokens, skip_long))
    work = [(ex, conv) for ex, conv in zip(pending, conversations) if ex.id not in skipped]
    if not chunk_size:
        # CPU: small chunks (a kill loses little). GPU: ~4096 sequences per chunk, so vLLM's batch of up
        # to 512 stays full; 64 questions of one answer each left an H100 decoding 64 sequences at a time.
        chunk_size = max(1, 4096 // max(1, sampling.n)) if cuda_available() else 64
    started = time.time()
    # Backends report questions (and tokens) as they finish, inside a chunk (vLLM per request, transformers
    # per batch, the OpenAI path per reply), so a GPU chunk of thousands of sequences moves steadily.
    progress = Progress(len(work), desc, samples=sampling.n)
    reported = [0]

    def report(questions: int = 0, tokens: int = 0) -> None:
        reported[0] += questions
        progress.update(questions, tokens)

    backend.on_progress = report
    try:
        for start in range(0, len(work), chunk_size):
            chunk = work[start:start + chunk_size]
            reported[0] = 0
            writer = backend.on_result = InOrderWriter(output, chunk, make_row, WRITE_EVERY_S)
            completions = backend.generate([c for _, c in chunk], sampling, [ex.id for ex, _ in chunk])
            writer.finish(completions)
            progress.update(max(0, len(chunk) - reported[0]))  # what the backend did not report itself
    finally:
        backend.on_progress = backend.on_result = None
        progress.close()
    return {"generated_now": len(work), "skipped_long_prompts": len(skipped),
            "skipped_ids": sorted(skipped), "generation_s": round(time.time() - started, 3),
            "generated_tokens": progress.tokens}


class InOrderWriter:
    """Writes a chunk's rows while the chunk is still generating, so a kill loses only what is unfinished
    (a chunk of a 70B summarizer can take an hour). Rows go out in the chunk's order, the finished run of
    questions from its start, at most every ``every_s`` seconds (each write is fsynced): the file is the
    same as when the chunk is written at its end. ``make_row`` may return None: nothing is written for
    that question (a checked stage tries it again). Called from the backend's threads (OpenAI path)."""

    def __init__(self, output: JsonlAppender, chunk: Sequence[tuple[Example, Conversation]],
                 make_row: Callable[[Example, list[str]], dict], every_s: float = 2.0) -> None:
        self.output, self.make_row, self.every_s = output, make_row, every_s
        self.examples = [ex for ex, _ in chunk]
        self.position = {ex.id: i for i, ex in enumerate(self.examples)}
        self.finished: dict[int, list[str]] = {}
        self.next = 0
        self.written_at = 0.0
        self.lock = threading.Lock()

    def __call__(self, qid: str, completions: list[str]) -> None:
        with self.lock:
            i = self.position.get(qid)
            if i is None:
                return
            self.finished[i] = completions
            if time.time() - self.written_at < self.every_s:
                return
            rows = []
            while self.next in self.finished:
                rows.append(self.make_row(self.examples[self.next], self.finished.pop(self.next)))
                self.next += 1
            self.output.write_many(row for row in rows if row is not None)
            self.written_at = time.time()

    def finish(self, completions: Sequence[list[str]]) -> None:
        """The chunk's end: every row not written yet, in order."""
        with self.lock:
            rows = (self.make_row(ex, outs) for ex, outs in zip(self.examples[self.next:], completions[self.next:]))
            self.output.write_many(row for row in rows if row is not None)
            self.next = len(self.examples)
