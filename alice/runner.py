"""Chunked, resumable generation into a JSONL output.

Questions already in the output are skipped; the rest are generated a chunk at a time and each
chunk is appended (whole lines, flushed) before the next starts, so a kill loses at most one
chunk and a rerun picks up where the file stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .backends import Backend, Conversation, Sampling, check_prompt_lengths, cuda_available
from .progress import Progress
from .records import JsonlAppender
from .tasks import Example


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
            completions = backend.generate([c for _, c in chunk], sampling, [ex.id for ex, _ in chunk])
            output.write_many(make_row(ex, outs) for (ex, _), outs in zip(chunk, completions))
            progress.update(max(0, len(chunk) - reported[0]))  # what the backend did not report itself
    finally:
        backend.on_progress = None
        progress.close()
    return {"generated_now": len(work), "skipped_long_prompts": len(skipped),
            "skipped_ids": sorted(skipped), "generation_s": round(time.time() - started, 3)}
