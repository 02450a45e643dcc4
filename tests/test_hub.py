"""A machine whose DNS does not know the hub runs offline: what the hub would give fails at once, in one line
that says how to give it locally, and a configured proxy or an explicit HF_HUB_OFFLINE is left alone.
``hub.invalid`` (a reserved name that never resolves) stands in for the hub, whatever this machine's network."""

import os
import subprocess
import sys

from conftest import REPO

ENDPOINT = "https://hub.invalid"


def clean_env(**extra: str) -> dict:
    """This process's environment without what importing alice here set (the test session's own hub check)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "ALICE_HUB_UNREACHABLE") and not k.lower().endswith("_proxy")}
    return {**env, "PYTHONPATH": str(REPO), "HF_ENDPOINT": ENDPOINT, **extra}


def offline_after_import(**extra: str) -> str:
    code = "import os, alice; print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('ALICE_HUB_UNREACHABLE'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(**extra),
                          cwd=REPO, check=True)
    return done.stdout.strip()


def test_importing_alice_goes_offline_only_where_the_hub_does_not_resolve():
    assert offline_after_import() == "1 hub.invalid"
    assert offline_after_import(HTTPS_PROXY="http://127.0.0.1:9") == "None None"  # a proxy resolves it instead
    assert offline_after_import(HF_HUB_OFFLINE="0") == "0 None"  # the user's choice stands


def test_a_data_set_or_model_from_an_unreachable_hub_fails_at_once_in_one_line(tmp_path):
    for args in (["--data", "gsm8k", "--model", "smollm2"],
                 ["--data", "gsm_symbolic", "--limit", "2", "--student", "alice-test/not-cached", "--backend", "hf"]):
        done = subprocess.run([sys.executable, str(REPO / "eval.py"), *args, "--output", str(tmp_path / "e.jsonl")],
                              check=False, capture_output=True, text=True, env=clean_env(), cwd=REPO, timeout=300)
        errors = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("loading ")]
        assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]  # beside "loading X with ..."
        assert errors[0].startswith("error: could not load") and "hub.invalid does not resolve here" in errors[0]
        assert "Retrying" not in done.stderr


def test_a_tokenizer_saved_offline_is_still_the_same_tokenizer(tmp_path, small_model):
    """transformers writes "local_files_only": true into a tokenizer saved by an offline process; a model saved
    there can still take another's place in a running engine (alice.models.architecture_key), while a tokenizer
    that tokenizes otherwise cannot."""
    import json
    import shutil

    from alice.models import ModelRef, architecture_key

    def copy(name: str, **config_changes) -> ModelRef:
        folder = tmp_path / name
        shutil.copytree(small_model, folder, ignore=shutil.ignore_patterns("*.safetensors"))
        config = json.loads((folder / "tokenizer_config.json").read_text())
        (folder / "tokenizer_config.json").write_text(json.dumps({**config, **config_changes}, indent=2))
        return ModelRef(str(folder))

    base = architecture_key(ModelRef(small_model))
    assert base is not None
    assert architecture_key(copy("offline", local_files_only=True)) == base
    assert architecture_key(copy("other", model_max_length=17)) != base
