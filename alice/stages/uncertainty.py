"""Alice stage 3 (docs/METHOD.md), behind uncertainty.py: probe the trained teacher on the student pool,
in two resumable phases:
  1. probing: K samples per student-pool question from the trained teacher, ONE request with n=K
     per question (the prompt's prefix is shared), into ``<output>.samples.jsonl``;
  2. clustering + statements: cluster each question's samples (exact answer keys, or sentence
     embeddings computed once for all pending samples), then ask the summarizer for an uncertainty
     statement where the teacher gave several answers; rows go to ``<output>`` keyed by id.
  The samples file is removed when the run completes unless ``--save-samples``, which also copies
  the samples into each output row.

Questions on which the teacher has no answer (every sample unparsable or a singleton after
dropping singletons) are kept in the output with ``status: "no_answer"``, ``teacher_answer: null``
(student_generate gives them no training row).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from ..adaptive import ADAPTIVE_ARGS, AdaptiveRule, adaptive_stage, describe_run, rule_from_args
from ..backends import BACKENDS, VLLM_ENGINE_ONLY, Backend, Sampling
from ..cli import (
    CheckSettings,
    DataSettings,
    GenerationSettings,
    ModelSettings,
    OutputSettings,
    resolve_role,
    result_settings,
    role,
    task_from_args,
)
from ..clustering import THRESHOLD, Embedder, ProbeResult, cluster_by_key, cluster_many_semantic
from ..config import setting
from ..errors import AliceError
from ..hygiene import answer_check, check_statement, structured_from_row
from ..models import ModelRef
from ..prompts import NOT_APPLICABLE, clean_statement, summarizer_messages
from ..records import (
    JsonlAppender,
    Manifest,
    atomic_write_json,
    iter_jsonl,
    manifest_path,
    read_json,
    write_jsonl_atomic,
)
from ..tasks import Example, Task
from .common import Checked, LazyBackend, check_counts, generate_checked, generate_stage, sibling, slug

SUMMARIZER = "summarizer (default: the teacher itself, sharing its backend)"


@dataclass(kw_only=True)
class UncertaintyConfig(OutputSettings, CheckSettings, GenerationSettings, ModelSettings, DataSettings):
    """uncertainty.py."""

    teacher: str | None = role("teacher")
    summarizer: str | None = role("summarizer")
    k: int = setting(100, "samples per question (one request with n=K)", group="probing")
    temperature: float = setting(0.9, "sampling temperature of the K samples", group="probing")
    top_p: float = setting(0.95, "nucleus sampling of the K samples", group="probing")
    save_samples: bool = setting(False, "keep the raw K samples (in each row and in <output>.samples.jsonl)",
                                 group="probing")
    adaptive: bool = setting(False, "draw the K samples in waves and stop a question early when more samples "
                             "cannot change its status or answer (alice/adaptive.py; exact clustering only; "
                             "default: all K, as in the paper)", group="probing")
    min_samples: int = setting(AdaptiveRule.min_samples, "--adaptive: the first wave", group="probing")
    wave_size: int = setting(AdaptiveRule.wave, "--adaptive: samples per later wave", group="probing")
    lead_z: float = setting(AdaptiveRule.z, "--adaptive: stop when the largest cluster leads the runner-up by "
                            "z * sqrt((c1 + c2) * (1 - n/K))", group="probing")
    clustering: str = setting("auto", "auto: exact final answers for choice/number tasks, semantic for text tasks",
                              choices=["auto", "exact", "semantic"], group="clustering")
    embedder: str | None = setting(None, "sentence-transformers model for semantic clustering (default "
                                   "all-MiniLM-L6-v2; hkunlp/instructor-large uses the paper's instruction)",
                                   group="clustering")
    similarity_threshold: float = setting(THRESHOLD, "cosine above which two samples agree", group="clustering")
    embed_batch_size: int = setting(256, "texts per embedder batch", group="clustering")
    keep_singletons: bool = setting(False, "keep clusters of one sample (paper drops them)", group="clustering")
    summarizer_backend: str | None = setting(None, "default: --backend, or openai with --summarizer-base-url",
                                             choices=BACKENDS, group=SUMMARIZER)
    summarizer_base_url: str | None = setting(None, "OpenAI-compatible server running --summarizer",
                                              group=SUMMARIZER)
    summarizer_max_new_tokens: int = setting(256, "tokens per uncertainty statement at most", group=SUMMARIZER)
    summarizer_load_format: str = setting(
        "auto", "vLLM: dummy = random weights of the summarizer's architecture, for measuring speed and memory of "
        "a model whose weights are not at hand (its statements are noise)", choices=["auto", "dummy"],
        group=SUMMARIZER)


def clustering_mode(args: UncertaintyConfig, task: Task) -> str:
    if args.clustering != "auto":
        return args.clustering
    return "semantic" if task.format.kind == "text" else "exact"


def summarizer_setup(args: UncertaintyConfig, teacher: ModelRef) -> tuple[ModelRef | None, argparse.Namespace, bool]:
    """(summarizer model, arguments for its backend, whether it is the teacher's backend)."""
    backend_kind = args.summarizer_backend or ("openai" if args.summarizer_base_url else args.backend)
    if args.summarizer_base_url:
        if not args.summarizer:
            raise AliceError("--summarizer-base-url needs --summarizer (the model name the server serves)")
        ref = None
    elif args.summarizer:
        ref = resolve_role(args, "summarizer")
    else:
        ref = teacher
    shared = ref == teacher and backend_kind == args.backend and not args.summarizer_base_url
    served = backend_kind == "openai" or bool(args.summarizer_base_url)
    summ_args = argparse.Namespace(**{**vars(args), "backend": backend_kind, "base_url": args.summarizer_base_url,
                                      "served_model_name": args.summarizer,
                                      "load_format": getattr(args, "summarizer_load_format", "auto"),
                                      # a served summarizer runs with its server's own engine
                                      **(VLLM_ENGINE_ONLY if served else {})})
    return ref, summ_args, shared


def representative(cluster, samples: list[str], clean=None) -> str:
    """The sample that stands for a cluster: its first member, or with ``clean`` its first member that
    passes the target checks (the teacher's answer becomes a training target), else its first."""
    if clean is not None:
        for member in cluster.members:
            if clean(samples[member]):
                return samples[member]
    return samples[cluster.representative]


def probe_row(ex: Example, samples: list[str], result: ProbeResult, task: Task, clean=None) -> dict:
    clusters = [{"size": c.size, "key": c.key, "representative": representative(c, samples, clean)}
                for c in result.clusters]
    answer = clusters[0]["representative"] if clusters else None
    return {
        "id": ex.id, "question": ex.question, "status": result.status, "certain": result.status == "certain",
        "teacher_answer": answer,
        "teacher_prediction": task.score(answer, ex).prediction if answer is not None else None,
        "clusters": clusters, "n_samples": len(samples), "unparsable": result.unparsable,
        "dropped_singletons": result.dropped_singletons, "statement": None,
    }


def statement_check(text: str) -> str | None:
    """A statement is fine when it keeps the method's rules (alice/hygiene.py); N/A is allowed."""
    statement = clean_statement(text)
    return None if statement == NOT_APPLICABLE else check_statement(statement)


def cluster_pending(task: Task, examples: list[Example], samples: dict[str, list[str]], mode: str,
                    args: argparse.Namespace, timings: dict) -> dict[str, ProbeResult]:
    started = time.time()
    results: dict[str, ProbeResult] = {}
    if mode == "exact":
        for ex in examples:
            results[ex.id] = cluster_by_key([task.cluster_key(s, ex) for s in samples[ex.id]], args.keep_singletons)
    else:
        embedder = Embedder(args.embedder, batch_size=args.embed_batch_size)
        timings["embedder_load_s"] = round(time.time() - started, 3)
        started = time.time()
        # Empty samples are unparsable in semantic mode: they join no cluster.
        kept = {ex.id: [i for i, s in enumerate(samples[ex.id]) if s.strip()] for ex in examples}
        questions = [ex.question for ex in examples]

        def embed(texts: list[str], owner: list[int]):
            return embedder.embed(texts, [questions[q] for q in owner], show_progress=len(texts) > 2000)

        grouped = [[samples[ex.id][i] for i in kept[ex.id]] for ex in examples]
        for ex, result in zip(examples, cluster_many_semantic(grouped, embed, args.similarity_threshold,
                                                               args.keep_singletons)):
            for cluster in result.clusters:  # back to indices into all samples
                cluster.members = [kept[ex.id][m] for m in cluster.members]
            result.unparsable = len(samples[ex.id]) - len(kept[ex.id])
            results[ex.id] = result
    timings["clustering_s"] = round(timings.get("clustering_s", 0) + time.time() - started, 3)
    return results


def uncertainty(args: UncertaintyConfig, backend: Backend | None = None,
                summarizer_backend: Backend | None = None) -> dict:
    """Stage 3: probe the trained teacher on the student pool, cluster, state its uncertainty."""
    if args.k < 1:
        raise AliceError("--k must be at least 1")
    if not 0 < args.similarity_threshold <= 1:
        raise AliceError("--similarity-threshold must be in (0, 1]")
    task = task_from_args(args)
    examples = task.examples("student", args.split_seed, args.limit)
    teacher = resolve_role(args, "teacher")
    summ_ref, summ_args, shared = summarizer_setup(args, teacher)
    mode = clustering_mode(args, task)
    adaptive_rule = rule_from_args(args) if getattr(args, "adaptive", False) else None
    if adaptive_rule and mode != "exact":
        raise AliceError("--adaptive needs exact clustering (a choice or number task, or --clustering exact)")
    output = Path(args.output or f"data/uncertainty-{slug(task.name)}-{slug(teacher.adapter or teacher.path)}.jsonl")
    samples_path = sibling(output, "samples")
    refs = {"teacher": teacher, **({"summarizer": summ_ref} if summ_ref else {})}
    settings = {**result_settings(args, refs), "clustering_mode": mode}
    if not adaptive_rule:  # full K: the fingerprint of runs made before --adaptive existed, so they resume
        settings = {key: value for key, value in settings.items() if key not in ADAPTIVE_ARGS}
    manifest = Manifest(output, "uncertainty", args, settings)
    manifest.claim([output, samples_path], args.overwrite)
    manifest.data["models"] = {"teacher": teacher.describe(),
                               "summarizer": summ_ref.describe() if summ_ref else {"served": args.summarizer,
                                                                                    "base_url": args.summarizer_base_url}}
    manifest.data["clustering"] = {"mode": mode, "threshold": args.similarity_threshold,
                                   "keep_singletons": args.keep_singletons}
    if adaptive_rule:
        manifest.data["adaptive"] = {**adaptive_rule.describe(), "k": args.k}
    manifest.save()
    timings = manifest.data["timings"]

    with JsonlAppender(output) as final:
        pending = [ex for ex in examples if ex.id not in final.done]
    teacher_lazy = LazyBackend(args, teacher, backend)
    summ_lazy = teacher_lazy if shared else LazyBackend(summ_args, summ_ref, summarizer_backend)
    try:
        # Phase 1: K samples per question, one n=K request each.
        probing = Sampling(n=args.k, temperature=args.temperature, top_p=args.top_p,
                           max_tokens=args.max_new_tokens, seed=args.seed)
        if getattr(args, "adaptive", False):  # waves, stopping each question early (alice/adaptive.py)
            sample_rows, stats = adaptive_stage(samples_path, teacher_lazy.get, pending, task.messages,
                                                task.cluster_key, probing, adaptive_rule, args)
        else:
            sample_rows, stats = generate_stage(
                samples_path, teacher_lazy, pending, task.messages,
                lambda ex, outs: {"id": ex.id, "samples": outs}, probing, args, f"probing teacher (K={args.k})")
        timings["probing_s"] = round(timings.get("probing_s", 0) + stats.get("generation_s", 0.0), 3)
        timings["probing_tokens"] = timings.get("probing_tokens", 0) + stats.get("generated_tokens", 0)
        if teacher_lazy.backend is not None:
            manifest.data["backend"] = teacher_lazy.backend.describe()
        if not shared:
            teacher_lazy.close()  # free the teacher before another model loads
        samples = {r["id"]: r["samples"] for r in sample_rows}
        pending = [ex for ex in pending if ex.id in samples]

        # Phase 2: clusters, then statements for the uncertain questions.
        results = cluster_pending(task, pending, samples, mode, args, timings)
        checking = args.max_tries > 0
        plain_check = answer_check(task)
        rows = {ex.id: probe_row(ex, samples[ex.id], results[ex.id], task,
                                 (lambda text, ex=ex: plain_check(ex, text) is None) if checking else None)
                for ex in pending}
        if args.save_samples:
            for ex in pending:
                rows[ex.id]["samples"] = samples[ex.id]
        if adaptive_rule:
            for r in sample_rows:
                if r["id"] in rows:
                    rows[r["id"]]["adaptive_stop"] = r["stop"]
        uncertain = [ex for ex in pending if rows[ex.id]["status"] == "uncertain"]

        def with_statement(ex: Example, outs: list[str]) -> dict:
            return {**rows[ex.id], "statement": clean_statement(outs[0])}

        def structured_row(ex: Example) -> dict:
            """Every summarizer try broke the method's rules: the statement written by rule from the clusters."""
            return {**rows[ex.id], "statement": structured_from_row(rows[ex.id], task, ex)}

        def summarizer_prompt(ex: Example) -> list[dict]:
            row = rows[ex.id]
            return summarizer_messages(ex.question, [c["representative"] for c in row["clusters"]],
                                       [c["size"] for c in row["clusters"]])

        with JsonlAppender(output) as final:
            final.write_many(rows[ex.id] for ex in pending if rows[ex.id]["status"] != "uncertain")
        if uncertain:
            summarizing = Sampling(n=1, temperature=0.0, max_tokens=args.summarizer_max_new_tokens, seed=args.seed)
            if checking:  # a greedy first try; later tries sample at the paper's summarizer temperature
                _, stats = generate_checked(output, summ_lazy, uncertain, summarizer_prompt, with_statement,
                                            summarizing, args, "uncertainty statements",
                                            Checked(lambda ex, text: statement_check(text), args.max_tries,
                                                    structured_row))
            else:
                _, stats = generate_stage(output, summ_lazy, uncertain, summarizer_prompt, with_statement,
                                          summarizing, args, "uncertainty statements")
            timings["summarizing_s"] = round(timings.get("summarizing_s", 0) + stats.get("generation_s", 0.0), 3)
            if summ_lazy.backend is not None and not shared:
                manifest.data["summarizer_backend"] = summ_lazy.backend.describe()
    finally:
        teacher_lazy.close()
        if not shared:
            summ_lazy.close()

    with JsonlAppender(output) as final:
        done = [final.done[ex.id] for ex in examples if ex.id in final.done]
    counts = {
        "questions": len(examples), "written": len(done),
        "certain": sum(r["status"] == "certain" for r in done),
        "uncertain": sum(r["status"] == "uncertain" for r in done),
        "no_answer": sum(r["status"] == "no_answer" for r in done),
        "statements_na": sum(r["status"] == "uncertain" and r["statement"] == NOT_APPLICABLE for r in done),
        "samples": sum(r["n_samples"] for r in done),
        "unparsable_samples": sum(r["unparsable"] for r in done),
    }
    if args.max_tries > 0:
        log = sibling(output, "rejected")
        counts["statement_checks"] = check_counts([r for r in done if r["status"] == "uncertain"],
                                                  [r for _, r in iter_jsonl(log)] if log.is_file() else [],
                                                  counts["uncertain"])
    if adaptive_rule:
        manifest.data["adaptive"] = describe_run(done, args.k, adaptive_rule)
    if len(done) == len(examples) and not args.save_samples and samples_path.exists():
        samples_path.unlink()  # everything it held is summarized in the output
    manifest.complete(counts, output=str(output), dataset=task.name, pool="student")
    print(f"{output}: {counts['written']} questions: {counts['certain']} certain, {counts['uncertain']} uncertain, "
          f"{counts['no_answer']} without an answer")
    return counts


def add_counts(total: dict, more: dict) -> dict:
    """Counts summed key by key (nested counts too, such as the checks' reasons)."""
    for key, value in more.items():
        if isinstance(value, dict):
            add_counts(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
    return total


def merge_parts(parts: list[Path], output: Path) -> dict:
    """The parts' rows as one uncertainty output (pool order), with a manifest that sums their counts
    and names the parts (each part's own manifest holds its command)."""
    rows, counts, manifests = [], {}, []
    for part in parts:
        manifest = read_json(manifest_path(part))
        manifests.append(manifest)
        add_counts(counts, manifest.get("counts", {}))
        rows.extend(row for _, row in iter_jsonl(part))
    write_jsonl_atomic(output, rows)
    merged = {**manifests[0], "counts": counts, "output": str(output), "parts": [str(p) for p in parts],
              "commands": [m.get("command") for m in manifests], "status": "complete",
              "timings": {"probing_s": sum(m.get("timings", {}).get("probing_s", 0) for m in manifests),
                          "summarizing_s": sum(m.get("timings", {}).get("summarizing_s", 0) for m in manifests)}}
    atomic_write_json(manifest_path(output), merged)
    return counts
