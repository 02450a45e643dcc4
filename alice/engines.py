"""Generation engines shared by the steps of a run (experiment.py, cascade.py): ``Engines`` hands out a
backend per model and starts an engine only when a step generates. With vLLM and LoRA-trained models
every adapter of a base model is served on that base's one engine (``LoRARequest``), so a CPU run
starts one engine in all. Otherwise one engine lives at a time (GPU memory); a vLLM engine whose model
has the architecture and tokenizer of the next one takes that model's weights in place instead of
being restarted (``VLLMBackend.load_weights``); a model that cannot share it (another architecture,
an adapter, a hub id) gets a new engine, and the run's record says why."""

from __future__ import annotations

import copy
import sys
import time

from .backends import Backend, VLLMBackend, cuda_available, vllm_available
from .cli import GenerationSettings, backend_from_args
from .models import ModelRef, architecture_key

# The settings an engine is built from (``backend_from_args``). The steps of a run share the run's engines:
# a step whose config sets some of them otherwise (experiment.py's --eval.batch-invariant) gets an engine
# built with its own; the stages whose settings pass through the cascade refuse them (--uncertainty-args), but
# for the probing's model runner (cascade.PROBE_ENGINE_SETTINGS).
ENGINE_SETTINGS = frozenset({"backend", "base_url", "tensor_parallel_size", "max_model_len", "gpu_memory_utilization",
                             "kv_cache_gb", "enforce_eager", "disable_custom_all_reduce", "batch_invariant",
                             "vllm_runner", "batch_size", "concurrency"})
SHARED_ENGINE = ("a setting of the generation engine, which this stage shares with the run's other steps; give it "
                 "to the whole run ({flags}) instead")
# The summarizer's engine is handed out by the run too, built from the same settings.
SUMMARIZER_ENGINE = {name: "a setting of the summarizer's engine, which the run starts from its own engine settings; "
                     "for a summarizer served elsewhere give --uncertainty.summarizer-base-url"
                     for name in ("summarizer_backend", "summarizer_load_format")}


class EngineHandle(Backend):
    """A backend for one model that starts (or reuses) an engine only when asked to generate."""

    def __init__(self, engines: Engines, ref: ModelRef, own: tuple = ()):
        self.engines, self.ref, self.own = engines, ref, own

    def _ready(self) -> Backend:
        return self.engines.ready(self.ref, self.own)

    @property
    def max_context(self) -> int | None:  # type: ignore[override]
        return self._ready().max_context

    def prompt_tokens(self, conversation):
        return self._ready().prompt_tokens(conversation)

    def generate(self, conversations, sampling, ids):
        return self.generate_through(self._ready(), conversations, sampling, ids)

    def describe(self) -> dict:
        return self.engines.describe(self.ref, self.own)

    def close(self) -> None:  # the engine belongs to Engines
        pass


class _AdapterView(Backend):
    """One adapter (or the base) on a shared vLLM engine: the engine's LoRA request is swapped
    for the duration of each call."""

    def __init__(self, engine: VLLMBackend, request):
        self.engine, self.request = engine, request
        self.max_context = engine.max_context

    def prompt_tokens(self, conversation):
        return self.engine.prompt_tokens(conversation)

    def generate(self, conversations, sampling, ids):
        saved, self.engine.lora = self.engine.lora, self.request
        try:
            return self.generate_through(self.engine, conversations, sampling, ids)
        finally:
            self.engine.lora = saved


class Engines:
    """Generation backends for every model of a run; see the module docstring."""

    def __init__(self, args: GenerationSettings, share_adapters: bool, max_lora_rank: int = 64):
        self.args = args
        kind = args.backend
        if kind == "auto":
            kind = "openai" if args.base_url else ("vllm" if vllm_available() else "hf")
        self.share = share_adapters and kind == "vllm"
        self.max_lora_rank = max_lora_rank
        self.current: tuple[tuple, Backend] | None = None  # (key, backend): one engine at a time
        self.lora_ids: dict[str, int] = {}
        self.starts: list[dict] = []

    def handle(self, ref: ModelRef, config: object | None = None) -> EngineHandle:
        """A backend for ``ref``; ``config``: the step's, whose engine settings that differ from the run's
        are that step's own (its engine is built with them)."""
        return EngineHandle(self, ref, self.own_settings(config))

    def own_settings(self, config: object | None) -> tuple:
        if config is None:
            return ()
        return tuple(sorted((name, getattr(config, name)) for name in ENGINE_SETTINGS
                            if hasattr(config, name) and getattr(config, name) != getattr(self.args, name, None)))

    def _key(self, ref: ModelRef, own: tuple = ()) -> tuple:
        return ((ref.path,) if self.share else (ref.path, ref.adapter)) + (own,)

    def _settings(self, own: tuple) -> GenerationSettings:
        if not own:
            return self.args
        settings = copy.copy(self.args)
        for name, value in own:
            setattr(settings, name, value)
        return settings

    def swap(self, ref: ModelRef, own: tuple = ()) -> str:
        """The weights of ``ref`` into the current vLLM engine, when it can take them: "" when done, else why
        a new engine is needed."""
        if self.current is None:
            return "no engine running"
        if self.share:
            return "another base model"
        if self.current[0][-1] != own:
            given = ", ".join(f"{k}={v}" for k, v in own) or "the run's own"
            return f"other engine settings ({given})"
        if not isinstance(self.current[1], VLLMBackend):
            return f"the {self.current[1].name} backend loads each model itself"
        engine = self.current[1]
        new, old = architecture_key(ref), architecture_key(engine.ref)
        if new is None or new != old:
            return "an adapter or a hub id" if new is None or old is None else "another architecture or tokenizer"
        seconds = engine.load_weights(ref)
        self.starts.append({"model": ref.path, "weights_loaded_into_running_engine_s": round(seconds, 2)})
        print(f"engine: {ref.path} loaded into the running engine in {seconds:.1f} s", file=sys.stderr, flush=True)
        self.current = (self._key(ref, own), engine)
        return ""

    def ready(self, ref: ModelRef, own: tuple = ()) -> Backend:
        key = self._key(ref, own)
        if self.current is None or self.current[0] != key:
            why = self.swap(ref, own)
            if why:
                self.start(ref, own, key, why)
        backend = self.current[1]
        if not self.share:
            return backend
        request = None
        if ref.adapter:
            from vllm.lora.request import LoRARequest

            lora_id = self.lora_ids.setdefault(ref.adapter, len(self.lora_ids) + 1)
            request = LoRARequest(f"adapter{lora_id}", lora_id, ref.adapter)
        return _AdapterView(backend, request)

    def start(self, ref: ModelRef, own: tuple, key: tuple, why: str) -> None:
        """A new engine for ``ref`` (the running one is closed first); its log line and record say why."""
        model = ref.adapter or ref.path
        print(f"engine: starting one for {model} ({why})", file=sys.stderr, flush=True)
        self.close()
        started = time.time()
        if self.share:  # the base model's engine, serving every adapter trained on it
            backend = backend_from_args(self._settings(own), ModelRef(ref.path, source=ref.path),
                                        enable_lora=True, max_lora_rank=self.max_lora_rank)
        else:
            backend = backend_from_args(self._settings(own), ref)
        self.starts.append({"model": model, "load_s": round(time.time() - started, 1), "new_engine_because": why,
                            **({"own_settings": dict(own)} if own else {})})
        self.current = (key, backend)

    def describe(self, ref: ModelRef, own: tuple = ()) -> dict:
        info = {"backend": "vllm" if self.share else self.args.backend, "model": ref.adapter or ref.path,
                "shared_engine": self.share}
        if self.current is not None and self.current[0] == self._key(ref, own):
            info.update(self.current[1].describe())
        return info

    def before_training(self) -> None:
        """Training needs the GPU's memory: close the engine there (on CPU it stays loaded)."""
        if cuda_available():
            self.close()

    def close(self) -> None:
        if self.current is not None:
            self.current[1].close()
            self.current = None
