"""A cross-check of ARC-Challenge accuracy with lm-evaluation-harness, the tool the field trusts for
such numbers: its multiple-choice scoring (the log-likelihood of each option's text after
"Question: ...\\nAnswer:", accuracy and length-normalised accuracy) on the project's own split of
ARC, through a task defined locally (no hub), for any model, trained folder or LoRA adapter.

eval.py asks the model to reason and commit to a letter (generation); lm-evaluation-harness reads
which option the model finds most likely (no generation). The two answer different questions about
a model, so they agree in ranking models more than in the numbers themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

from .answers import OPTION_LINE, parse_options
from .errors import AliceError
from .models import ModelRef
from .records import atomic_write_json, read_json
from .tasks import load_task

TASK_NAME = "alice_arc_challenge"


def arc_documents(split: str = "test", limit: int | None = None, data: str = "arc_challenge") -> list[dict]:
    """The shipped ARC rows as lm-evaluation-harness documents: stem, option texts, gold index."""
    task = load_task(data)
    if task.answer_type != "choice":
        raise AliceError(f"--data {data}: the cross-check is for multiple-choice data (ARC)")
    docs = []
    for ex in task.examples(split, limit=limit):
        options = parse_options(ex.question)
        labels = list(options)
        if ex.gold not in labels:
            raise AliceError(f"{ex.id}: gold {ex.gold} is not among the options {labels}")
        stem = OPTION_LINE.sub("", ex.question).strip()
        docs.append({"id": ex.id, "question": stem, "choices": [options[k] for k in labels],
                     "label": labels.index(ex.gold)})
    return docs


def write_task(folder: Path, documents: list[dict]) -> Path:
    """A local task: the documents as JSON lines, and the YAML that reads them (ARC-Challenge's usual
    zero-shot prompt and multiple-choice metrics)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "arc_test.jsonl"
    data.write_text("".join(json.dumps(doc) + "\n" for doc in documents), encoding="utf-8")
    (folder / f"{TASK_NAME}.yaml").write_text(
        f"task: {TASK_NAME}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(data))}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{label}}"\n'
        "metric_list:\n"
        "  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
        "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n",
        encoding="utf-8")
    return folder


def model_arguments(ref: ModelRef, backend: str) -> tuple[str, dict]:
    """lm-evaluation-harness's model type and arguments for a resolved model (base + adapter)."""
    revision = {"revision": ref.load_revision()} if ref.on_hub else {}
    if backend == "vllm":
        args: dict = {"pretrained": ref.path, "dtype": "auto", **revision}
        if ref.adapter:
            args["lora_local_path"] = ref.adapter
            args["enable_lora"] = True
        return "vllm", args
    import torch

    args = {"pretrained": ref.path, "dtype": "bfloat16" if torch.cuda.is_available() else "float32", **revision}
    if ref.adapter:
        args["peft"] = ref.adapter
    return "hf", args


def run_crosscheck(ref: ModelRef, output: Path, backend: str = "hf", limit: int | None = None,
                   batch_size: int = 8, eval_summary: Path | None = None, data: str = "arc_challenge") -> dict:
    """Run the local ARC task through lm-evaluation-harness; write its accuracy (and eval.py's, when
    given its summary) to ``output``."""
    try:
        from lm_eval import simple_evaluate
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise AliceError('the cross-check needs lm-evaluation-harness: pip install "lm-eval[hf]==0.4.13"') from None
    documents = arc_documents("test", limit, data)
    task_dir = write_task(output.with_name(output.name.removesuffix(".json") + ".task"), documents)
    model, model_args = model_arguments(ref, backend)
    import torch

    results = simple_evaluate(model=model, model_args=model_args, tasks=[TASK_NAME], batch_size=batch_size,
                              device="cuda" if torch.cuda.is_available() else "cpu",
                              task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
                              log_samples=False, bootstrap_iters=1000)
    metrics = results["results"][TASK_NAME]
    report = {
        "task": "ARC-Challenge test (the shipped split), zero-shot, log-likelihood of each option's text",
        "model": ref.describe(), "backend": backend, "n": len(documents),
        "lm_eval": {"acc": metrics["acc,none"], "acc_stderr": metrics.get("acc_stderr,none"),
                    "acc_norm": metrics["acc_norm,none"], "acc_norm_stderr": metrics.get("acc_norm_stderr,none"),
                    "version": _version("lm_eval")},
    }
    if eval_summary is not None:
        summary = read_json(eval_summary)
        report["eval_py"] = {k: summary.get(k) for k in ("n", "accuracy", "accuracy_ci95", "parse_rate")}
        report["eval_py"]["summary"] = str(eval_summary)
    atomic_write_json(output, report)
    return report


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
