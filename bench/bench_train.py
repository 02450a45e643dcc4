"""P3 training throughput: train.py (alice.training) on a random-weight ~1.5B Qwen2 model, full
fine-tuning and LoRA, the paper recipe's shape (per-device batch 1 x gradient accumulation 16,
padded) against padding-free batches and best-fit-decreasing packing, in the same run.

The model is Qwen2.5-1.5B's architecture (hidden 1536, 28 layers, 12 heads, 2 KV heads,
intermediate 8960, vocab 151936, tied embeddings) with random weights: no hub needed, and
throughput does not depend on the weights. Rows are real ARC questions (teacher pool, the shipped
split) in the project's prompt, with synthetic responses of CoT-like lengths. The tokenizer is a
given folder (--tokenizer, e.g. the real Qwen2.5 one) or a small BPE trained here with a ChatML
template (the model's 151936-row embedding and LM head are kept either way).

Every variant is a subprocess that calls train.py's main() (the exact code path of a real run:
load_base_model, make_trainer, SFTTrainer, saving) and reports the steady tokens/s (non-padding
tokens, start-up steps excluded), the optimizer step time and the peak GPU memory.

  python bench/bench_train.py --out out/train.json           # on the GPU (H100): writes results.json too
  python bench/bench_train.py merge train.json                # merge a report from the GPU machine
  python bench/bench_train.py --tiny --steps 4                # CPU smoke test, tiny config, writes nothing

Keys written to bench/results.json: P3_train_speedup (best padding-free/packed full fine-tuning
tokens/s over the paper shape), P3_train_lora_speedup, P3_train_<variant> per variant.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

QWEN25_1_5B = {"hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
               "intermediate_size": 8960, "vocab_size": 151936, "max_position_embeddings": 32768,
               "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "hidden_act": "silu"}
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": 4096, "max_position_embeddings": 4096,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "hidden_act": "silu"}
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS_TEXT = ("the a of to and in is that it for on with as was by be this are from at or an have not which we "
         "energy water plant cell heat light force earth moon sun animal rock change mass speed gas liquid "
         "because therefore so first then next finally answer option choice step think reason compare "
         "temperature surface friction gravity weather season layer mineral fossil energy food chain")

# Variants: (name, LoRA?, layout). Layouts: paper = per-device batch 1 x accumulation 16, padded;
# padded16 = per-device 16, padded; padfree = per-device 16 flattened into one row; packed = BFD
# packing into --max-length blocks with about the same tokens per optimizer step.
VARIANTS = {
    "full_paper": (False, "paper"), "full_padfree": (False, "padfree"), "full_packed": (False, "packed"),
    "lora_paper": (True, "paper"), "lora_padfree": (True, "padfree"), "lora_packed": (True, "packed"),
    "full_padded16": (False, "padded16"), "lora_padded16": (True, "padded16"),
}
# Modifiers after a variant's name, joined by "+" (e.g. full_packed+nogc+fused+b8192): what each adds to
# train.py's command line. bN: packing blocks of N tokens; xN: N times the rows per optimizer step.
MODIFIERS = {"nogc": ["--no-gradient-checkpointing"], "fused": ["--optim", "adamw_torch_fused"],
             "liger": ["--use-liger-kernel"], "compile": ["--torch-compile"],
             "varlen": ["--attn-implementation", "varlen"]}
H200_BF16_DENSE_FLOPS = 989e12  # NVIDIA's dense bf16 tensor-core peak for the H100/H200 SXM (no sparsity)
DEFAULT_VARIANTS = "full_paper,full_padfree,full_packed,lora_paper,lora_padfree,lora_packed"


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- inputs


def synthetic_rows(n: int, seed: int, tiny: bool) -> list[dict]:
    """ARC teacher-pool questions with responses of CoT-like length (40-400 words; tiny: 5-40)."""
    from alice.tasks import load_task

    rng = random.Random(seed)
    questions = load_task("arc_challenge").examples("teacher")
    low, high = (5, 40) if tiny else (40, 400)
    words = WORDS_TEXT.split()
    rows = []
    for i in range(n):
        ex = questions[i % len(questions)]
        text = " ".join(rng.choice(words) for _ in range(rng.randint(low, high)))
        rows.append({"id": f"bench-{i:05d}", "question": ex.question,
                     "response": f"{text.capitalize()}. My choice is {ex.gold}."})
    return rows


def train_tokenizer(folder: Path, rows: list[dict], vocab: int) -> None:
    """A byte-level BPE with ChatML special tokens, trained on the bench text (no hub needed)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = [r["question"] for r in rows] + [r["response"] for r in rows]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    fast.save_pretrained(str(folder))


def build_inputs(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """The model folder (random weights, tokenizer inside) and the training JSONL."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    from alice.records import write_jsonl_atomic

    model_dir, data = work / ("tiny-qwen2" if args.tiny else "qwen2.5-1.5b-random"), work / "rows.jsonl"
    rows = synthetic_rows(args.rows, args.seed, args.tiny)
    write_jsonl_atomic(data, rows)
    if (model_dir / "config.json").exists():
        return model_dir, data
    tmp = work / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if args.tokenizer:
        AutoTokenizer.from_pretrained(args.tokenizer).save_pretrained(str(tmp))
    else:
        train_tokenizer(tmp, rows, vocab=1000 if args.tiny else 16000)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp))
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML
        tokenizer.save_pretrained(str(tmp))
    shape = dict(TINY if args.tiny else QWEN25_1_5B)
    shape["vocab_size"] = max(shape["vocab_size"], len(tokenizer))
    config = Qwen2Config(**shape, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(tmp))
    log(f"built {model_dir.name}: {sum(p.numel() for p in model.parameters()) / 1e9:.3f}B parameters, "
        f"tokenizer vocab {len(tokenizer)}")
    tmp.rename(model_dir)
    return model_dir, data


def mean_row_tokens(model_dir: Path, data: Path) -> float:
    """Mean tokens of a templated training row (first 200 rows)."""
    from alice.backends import load_tokenizer
    from alice.models import resolve_model
    from alice.records import read_jsonl
    from alice.tasks import load_task
    from alice.training import sft_records

    tokenizer = load_tokenizer(resolve_model(str(model_dir)))
    records = sft_records(load_task("arc_challenge"), read_jsonl(data)[:200])
    lengths = [len(tokenizer(tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False),
                             add_special_tokens=False)["input_ids"]) for r in records]
    return sum(lengths) / len(lengths)


# ----------------------------------------------------------------------------- one variant


def variant_argv(name: str, model_dir: Path, data: Path, out: Path, args: argparse.Namespace,
                 mean_tokens: float) -> list[str]:
    base, *modifiers = name.split("+")
    lora, layout = VARIANTS[base]
    total = args.total_batch_size
    max_length = args.max_length
    extra: list[str] = []
    for modifier in modifiers:
        if modifier in MODIFIERS:
            extra += MODIFIERS[modifier]
        elif modifier[:1] == "b" and modifier[1:].isdigit():
            max_length = int(modifier[1:])
        elif modifier[:1] == "x" and modifier[1:].isdigit():
            total *= int(modifier[1:])
        else:
            raise SystemExit(f"unknown modifier {modifier!r} in {name!r} (known: {', '.join(MODIFIERS)}, bN, xN)")
    argv = ["--data", "arc_challenge", "--model", str(model_dir), "--train-file", str(data),
            "--output-dir", str(out), "--max-steps", str(args.steps), "--logging-steps", "1",
            "--save-steps", str(10 ** 6), "--max-length", str(max_length), "--warmup-steps", "0",
            "--lr", "1e-5", "--overwrite"]
    if layout == "paper":
        argv += ["--total-batch-size", str(total), "--per-device-batch-size", "1"]
    elif layout in ("padded16", "padfree"):
        argv += ["--total-batch-size", str(total), "--per-device-batch-size", str(total)]
        if layout == "padfree":
            argv.append("--padding-free")
    elif layout == "packed":
        # About the paper's tokens per optimizer step: blocks of --max-length tokens.
        blocks = max(1, round(total * mean_tokens / max_length))
        argv += ["--packing", "--total-batch-size", str(blocks), "--per-device-batch-size", str(blocks)]
    if lora:
        argv.append("--lora")
    if args.attn:
        argv += ["--attn-implementation", args.attn]
    if not args.gradient_checkpointing and "nogc" not in modifiers:
        argv.append("--no-gradient-checkpointing")
    return argv + extra


def profiler_callback(report: Path, first_step: int = 3, steps: int = 2):
    """Profiles optimizer steps first_step .. first_step+steps-1 (torch.profiler, CPU and CUDA) and
    writes the top operators by self CUDA and self CPU time, and how busy the GPU was."""
    import torch
    from transformers import TrainerCallback

    class Profile(TrainerCallback):
        def __init__(self) -> None:
            self.profiler, self.started = None, 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == first_step - 1 and self.profiler is None:
                activities = [torch.profiler.ProfilerActivity.CPU]
                if torch.cuda.is_available():
                    activities.append(torch.profiler.ProfilerActivity.CUDA)
                self.profiler = torch.profiler.profile(activities=activities)
                self.profiler.__enter__()
                self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if self.profiler is None or state.global_step != first_step - 1 + steps:
                return
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            wall = time.perf_counter() - self.started
            self.profiler.__exit__(None, None, None)
            events = self.profiler.key_averages()
            kernel_us = sum(getattr(e, "self_device_time_total", 0) for e in events)
            lines = [(f"profiled steps {first_step}..{first_step + steps - 1}: wall {wall:.3f} s, "
                      f"GPU kernels {kernel_us / 1e6:.3f} s ({kernel_us / 1e6 / wall:.1%} busy)")]
            for key in ("self_cuda_time_total", "self_cpu_time_total"):
                try:
                    lines.append(events.table(sort_by=key, row_limit=25, max_name_column_width=70))
                except (KeyError, AttributeError, RuntimeError) as err:  # a sort key this torch build lacks
                    lines.append(f"(no table by {key}: {err})")
            report.write_text("\n".join(lines))
            log(lines[0])
            self.profiler = None

    return Profile()


def run_variant(argv: list[str], result_file: Path, profile: Path | None = None) -> None:
    """In the child process: train.py's main(), then the numbers of its manifest and the GPU."""
    import torch

    import alice.training
    import train

    make_trainer = alice.training.make_trainer
    counted: dict = {}

    def make_counted_trainer(*a, **kw):
        trainer = make_trainer(*a, **kw)
        # Parameters the model's matmuls use (tied embeddings once), and those the optimizer updates.
        unique = {id(p): p for p in trainer.model.parameters()}.values()
        counted["total_params"] = sum(p.numel() for p in unique)
        counted["trainable_params"] = sum(p.numel() for p in unique if p.requires_grad)
        if profile:
            trainer.add_callback(profiler_callback(profile))
        return trainer

    alice.training.make_trainer = make_counted_trainer

    started = time.time()
    manifest = train.main(argv)
    training = manifest["training"]
    logs = [e for e in manifest["log_history"] if "loss" in e]
    step_times = [b["train_runtime"] - a["train_runtime"] for a, b in itertools.pairwise(logs) if b["step"] > 2]
    result = {
        "tokens_per_s": training["steady_tokens_per_s"] or training["tokens_per_s"],
        "tokens_per_s_with_startup": training["tokens_per_s"],
        "tokens_per_step": round(training["tokens_seen"] / max(training["steps"], 1)),
        "s_per_step": round(sum(step_times) / len(step_times), 4) if step_times else None,
        "peak_memory_gb": training["peak_gpu_memory_gb"],
        "peak_reserved_gb": round(torch.cuda.max_memory_reserved() / 2**30, 3) if torch.cuda.is_available() else None,
        "steps": training["steps"], "final_loss": training["final_loss"],
        "losses": [round(e["loss"], 4) for e in logs[:8]],
        "accumulation": manifest["recipe"]["gradient_accumulation_steps"],
        "per_device_batch": manifest["recipe"]["per_device_batch_size"],
        "wall_s": round(time.time() - started, 1),
    }
    result.update(model_flops_utilisation(result["tokens_per_s"], **counted))
    result_file.write_text(json.dumps(result))


def model_flops_utilisation(tokens_per_s: float, total_params: int = 0, trainable_params: int = 0) -> dict:
    """Model FLOPs utilisation against one H200's dense bf16 peak. Model FLOPs per token: forward 2N,
    backward 2N for the activations of every layer and 2N for the weights that train (so 6N for full
    fine-tuning, about 4N for LoRA); gradient checkpointing's recomputation and attention's own FLOPs
    are not counted (a conservative figure)."""
    if not total_params or not tokens_per_s:
        return {}
    frozen = total_params - trainable_params
    flops_per_token = 6 * trainable_params + 4 * frozen
    return {"total_params": total_params, "trainable_params": trainable_params,
            "model_flops_per_token": flops_per_token,
            "mfu": round(flops_per_token * tokens_per_s / H200_BF16_DENSE_FLOPS, 4),
            "mfu_peak_flops": H200_BF16_DENSE_FLOPS}


def raw_step_times(model_dir: Path, tokens: int, repeats: int = 10) -> dict:
    """The floor under the trainer: forward+backward of one row of ``tokens`` tokens on the bare
    model (no Trainer, no optimizer), fp32 weights with bf16 autocast (full fine-tuning's layout)
    and bf16 weights, with and without gradient checkpointing; milliseconds per row."""
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = {}
    for weights in ("fp32+autocast", "bf16"):
        dtype = torch.float32 if weights.startswith("fp32") else torch.bfloat16
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype).to(device)
        model.config.use_cache = False
        ids = torch.randint(0, model.config.vocab_size, (1, tokens), device=device)
        for checkpointing in (True, False):
            if checkpointing:
                model.gradient_checkpointing_enable()
            else:
                model.gradient_checkpointing_disable()
            times = []
            for i in range(repeats + 2):
                if device == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
                with torch.autocast(device, dtype=torch.bfloat16, enabled=weights.startswith("fp32")):
                    loss = model(input_ids=ids, labels=ids).loss
                loss.backward()
                if device == "cuda":
                    torch.cuda.synchronize()
                if i >= 2:
                    times.append(time.perf_counter() - started)
                model.zero_grad(set_to_none=True)
            key = f"{weights}{'_checkpointing' if checkpointing else ''}"
            out[key] = round(1000 * sum(times) / len(times), 2)
            log(f"raw forward+backward, {tokens} tokens, {key}: {out[key]} ms")
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    return {"tokens": tokens, "ms_per_row": out}


# ----------------------------------------------------------------------------- report


def device_line() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), no GPU"


def attention_choice(requested: str | None) -> str | None:
    if requested:
        return requested
    try:
        import flash_attn  # noqa: F401
        import torch

        return "flash_attention_2" if torch.cuda.is_available() else None
    except ImportError:
        return None  # transformers' default (sdpa); padding-free rows get a block-diagonal mask


def summarize(results: dict, meta: dict) -> dict:
    keys: dict = {}
    for name, r in results.items():
        if "error" not in r:
            keys[f"P3_train_{name}"] = {**r, **meta}
    for kind, key in (("full", "P3_train_speedup"), ("lora", "P3_train_lora_speedup")):
        base = results.get(f"{kind}_paper", {}).get("tokens_per_s")
        others = {n: r["tokens_per_s"] for n, r in results.items()
                  if n.startswith(kind) and n != f"{kind}_paper" and r.get("tokens_per_s")}
        if base and others:
            best = max(others, key=others.get)
            keys[key] = {"value": round(others[best] / base, 3), "best_variant": best,
                         "best_tokens_per_s": others[best], "paper_shape_tokens_per_s": base,
                         "all": {n: round(v / base, 3) for n, v in others.items()},
                         "note": "steady non-padding tokens/s vs the paper recipe's shape (per-device batch 1 x "
                                 "accumulation 16, padded); same model, rows and steps", **meta}
    for kind, key in (("full", "P3_train_mfu"), ("lora", "P3_train_lora_mfu")):
        mfus = {n: r["mfu"] for n, r in results.items() if n.startswith(kind) and r.get("mfu")}
        if mfus:
            best = max(mfus, key=mfus.get)
            keys[key] = {"value": mfus[best], "best_variant": best, "all": mfus,
                         "tokens_per_s": results[best]["tokens_per_s"],
                         "loss_first_steps": {n: results[n].get("losses") for n in mfus},
                         "note": "model FLOPs (6N full, 4N frozen + 6N trained for LoRA; no recomputation, no "
                                 "attention FLOPs) x steady tokens/s / 989 TFLOP/s (dense bf16 peak)", **meta}
    return keys


def merge(report: dict, write_md: bool = True) -> dict:
    from alice.records import atomic_write_json

    keys = summarize(report["results"], report["meta"])
    path = BENCH / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(keys)
    atomic_write_json(path, data)
    if write_md:
        meta, lines = report["meta"], []
        lines.append(f"- model: {meta['model']}; attention: {meta['attention']}; rows: {meta['rows']} "
                     f"(mean {meta['mean_row_tokens']:.0f} tokens); {meta['steps']} steps; gradient checkpointing "
                     f"{meta['gradient_checkpointing']}")
        lines.append("")
        lines.append("| variant | tokens/s | s/step | tokens/step | peak GB | per-device x accumulation |")
        lines.append("|---|---|---|---|---|---|")
        for name, r in report["results"].items():
            if "error" in r:
                lines.append(f"| {name} | failed: {r['error'][:80]} | | | | |")
                continue
            lines.append(f"| {name} | {r['tokens_per_s']:.0f} | {r['s_per_step']} | {r['tokens_per_step']} | "
                         f"{r['peak_memory_gb']} | {r['per_device_batch']} x {r['accumulation']} |")
        for key in ("P3_train_speedup", "P3_train_lora_speedup"):
            if key in keys:
                lines.append(f"\n{key}: {keys[key]['value']} ({keys[key]['best_variant']})")
        text = f"\n## P3 training throughput (bench/bench_train.py)\n\n- date: {meta['date']}\n" \
               f"- device: {meta['device']}\n- command: `{meta['command']}`\n" + "\n".join(lines) + "\n"
        md = BENCH / "RESULTS.md"
        with open(md, "a", encoding="utf-8") as handle:
            handle.write(("" if md.exists() and md.stat().st_size else "# Benchmark results\n") + text)
    return keys


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", nargs="?", default="run", choices=["run", "merge"])
    p.add_argument("files", nargs="*", help="merge: the report JSON files written on the GPU machine "
                                             "(several: variants run side by side on different GPUs)")
    p.add_argument("--tiny", action="store_true", help="tiny config on CPU: a smoke test, writes nothing")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per variant")
    p.add_argument("--rows", type=int, default=1024)
    p.add_argument("--total-batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=4096, help="packing block length and row cut-off")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, from {', '.join(VARIANTS)}")
    p.add_argument("--tokenizer", help="a tokenizer folder (e.g. the real Qwen2.5 one); default: train one")
    p.add_argument("--attn", help="attention implementation (default: flash_attention_2 if installed, else sdpa)")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--work", default="/tmp/bench-train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="also write the full report JSON here (e.g. out/train.json)")
    p.add_argument("--no-write", action="store_true", help="leave bench/results.json and RESULTS.md alone")
    p.add_argument("--profile", default="", help="comma-separated variants to profile (steps 3-4, "
                                                  "tables in <work>/<variant>.profile.txt)")
    p.add_argument("--raw", action="store_true",
                   help="also time a bare forward+backward of one row (no trainer) as a floor")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-argv", help=argparse.SUPPRESS)
    p.add_argument("--child-profile", help=argparse.SUPPRESS)
    return p


def main() -> None:
    args = build_parser().parse_args()
    if args.child:  # one variant, in its own process
        run_variant(json.loads(args.child_argv), Path(args.child),
                    Path(args.child_profile) if args.child_profile else None)
        return
    if args.phase == "merge":
        if not args.files:
            raise SystemExit("merge needs the report file")
        reports = [json.loads(Path(f).read_text()) for f in args.files]
        combined = {"meta": reports[0]["meta"], "results": {}}
        for report in reports:
            combined["results"].update(report["results"])
            if report.get("raw"):
                combined["meta"]["raw_forward_backward"] = report["raw"]
        print(json.dumps(merge(combined), indent=2))
        return
    import torch

    from alice.models import folder_hash

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model_dir, data = build_inputs(work, args)
    mean_tokens = mean_row_tokens(model_dir, data)
    attention = attention_choice(args.attn)
    args.attn = attention
    meta = {"device": device_line(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "model": ("tiny Qwen2 config" if args.tiny else "Qwen2.5-1.5B config") + ", random weights",
            "model_folder_hash": folder_hash(model_dir), "tokenizer": args.tokenizer or "BPE trained by the bench",
            "attention": attention or "train.py's default (varlen for padding-free and packed rows on a GPU, else sdpa)", "rows": args.rows,
            "mean_row_tokens": round(mean_tokens, 1), "steps": args.steps,
            "gradient_checkpointing": args.gradient_checkpointing, "torch": torch.__version__,
            "command": "python " + " ".join(sys.argv)}
    log(f"device {meta['device']}; rows of ~{mean_tokens:.0f} tokens; attention {meta['attention']}")
    results: dict = {}
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        if name.split("+")[0] not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")
        argv = variant_argv(name, model_dir, data, work / "runs" / name, args, mean_tokens)
        result_file = work / f"{name}.json"
        result_file.unlink(missing_ok=True)
        log(f"{name}: train.py {' '.join(argv)}")
        command = [sys.executable, __file__, "--child", str(result_file), "--child-argv", json.dumps(argv)]
        if name in args.profile.split(","):
            command += ["--child-profile", str(work / f"{name}.profile.txt")]
        done = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0 or not result_file.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            results[name] = {"error": " | ".join(tail)}
            log(f"{name}: FAILED: {results[name]['error']}")
            continue
        results[name] = json.loads(result_file.read_text())
        r = results[name]
        log(f"{name}: {r['tokens_per_s']:.0f} tokens/s, {r['s_per_step']} s/step, "
            f"{r['tokens_per_step']} tokens/step, peak {r['peak_memory_gb']} GB")
    report = {"meta": meta, "results": results}
    if args.raw:
        report["raw"] = raw_step_times(model_dir, round(mean_tokens))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    keys = summarize(results, meta)
    for key in ("P3_train_speedup", "P3_train_lora_speedup"):
        if key in keys:
            print(f"{key}: {keys[key]['value']} (best {keys[key]['best_variant']}: "
                  f"{keys[key]['best_tokens_per_s']:.0f} vs paper shape {keys[key]['paper_shape_tokens_per_s']:.0f} "
                  "tokens/s)")
    print(json.dumps(results, indent=2))
    if not (args.tiny or args.no_write):
        merge(report)


if __name__ == "__main__":
    main()
