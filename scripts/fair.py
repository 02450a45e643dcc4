#!/usr/bin/env python3
"""The fair weak-to-strong test (results/fair/): every arm with training seeds, two controls
(self-training, Alice without the uncertainty statement), a validity gate, a noise floor and paired
statistics, from one config (configs/fair.toml). See alice/fair.py for the arms and the run folder.

Steps run as the project's own scripts (each step's manifest holds the command that reruns it), as
many at once as the GPUs hold; a rerun resumes, running only what is still missing.

  python scripts/fair.py                                   # everything, on every visible GPU
  python scripts/fair.py --gpus 0 --run-dir runs/fair      # one GPU
  python scripts/fair.py --dry-run                         # every step's command and settings
  python scripts/fair.py --targets gate 'data *'           # only what those steps need (a first part)
  python scripts/fair.py report results/fair               # rebuild the report from the deliverables
  python scripts/fair.py convert FILE.gguf LABEL           # (a step) GGUF -> Hugging Face folder
  python scripts/fair.py evaluate --config C --run-dir R alice-seed0 ...   # (a step) several evaluations, one engine
  python scripts/fair.py restore results/fair runs/fair    # a run folder from its deliverables (resume elsewhere)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from alice.errors import AliceError, run_main
from alice.fair import FairTest, fair_report, load_config, restore, run_fair
from alice.models import gguf_to_folder
from alice.stages.evaluate import evaluate_many


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "configs" / "fair.toml"))
    p.add_argument("--gguf-dir", default=os.environ.get("SMALL_MODELS_DIR", str(Path.home() / ".cache" / "small-models")),
                   help="folder with the GGUF files the config names")
    p.add_argument("--from-hub", action="store_true", help="use each model's official hub id instead of its GGUF")
    p.add_argument("--run-dir", default=str(REPO / "runs" / "fair"), help="working folder (models, JSONL, logs)")
    p.add_argument("--results", default=str(REPO / "results" / "fair"), help="where the deliverables go")
    p.add_argument("--gpus", default=None, help="comma-separated GPU indices (default: every visible GPU; none: CPU)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the steps still to run (command and full settings), run nothing")
    p.add_argument("--override-gate", action="store_true",
                   help="run the student arms even when the gate fails (gate.json and the report say so)")
    p.add_argument("--targets", nargs="+", default=None, metavar="STEP",
                   help="run only what these steps need (names or shell patterns, e.g. gate 'data *'; default: "
                        "every evaluation, the gate and the noise floor); the report covers what exists")
    return p


def convert(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="fair.py convert")
    p.add_argument("gguf")
    p.add_argument("label")
    p.add_argument("--wait", type=float, default=1800, help="seconds to wait for the file to arrive")
    args = p.parse_args(argv)
    gguf, deadline = Path(args.gguf), time.time() + args.wait
    while not gguf.is_file():  # an offline machine may still be receiving it
        if time.time() > deadline:
            raise AliceError(f"{gguf}: not found (fetch it: ../shared/tools/fetch-small-models)")
        time.sleep(5)
    print(gguf_to_folder(gguf, name=args.label))


def visible_gpus() -> list[str]:
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no torch CUDA: CPU
        return []


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["convert"]:
        convert(argv[1:])
        return {}
    if argv[:1] == ["evaluate"]:  # (a step) evaluations of trained models in one process, one engine
        p = argparse.ArgumentParser(prog="fair.py evaluate")
        p.add_argument("--config", required=True)
        p.add_argument("--run-dir", required=True)
        p.add_argument("--gguf-dir", default=None)
        p.add_argument("--from-hub", action="store_true")
        p.add_argument("names", nargs="+", help="<arm>-seed<N> of trained models in the table")
        args = p.parse_args(argv[1:])
        test = FairTest(load_config(args.config), Path(args.run_dir), args.gguf_dir, args.from_hub)
        record = Path(args.run_dir) / "engines" / f"{'+'.join(args.names)}.json"
        evaluate_many([config for name in args.names for config in test.eval_configs(name)], record)
        return {}
    if argv[:1] == ["restore"]:
        if len(argv) != 3:
            raise AliceError("usage: scripts/fair.py restore RESULTS RUN_DIR")
        print(f"{restore(Path(argv[1]), Path(argv[2]))} files restored into {argv[2]}")
        return {}
    if argv[:1] == ["report"]:
        if len(argv) != 2:
            raise AliceError("usage: scripts/fair.py report FOLDER (a run folder or its deliverables)")
        print(fair_report(Path(argv[1]))["text"])
        return {}
    args = build_parser().parse_args(argv)
    gpus = visible_gpus() if args.gpus is None else [g for g in args.gpus.split(",") if g.strip()]
    # Every step runs from the repository's root: paths inside it are written relative to it (manifests and
    # commands then hold runs/fair/..., valid on any machine with a checkout), paths outside it in full.
    config, run, gguf_dir = in_repo(args.config), in_repo(args.run_dir), args.gguf_dir and in_repo(args.gguf_dir)
    results = in_repo(args.results) if args.results else None
    os.chdir(REPO)
    return run_fair(str(config), run, results, gguf_dir and str(gguf_dir), args.from_hub, gpus, dry_run=args.dry_run,
                    override_gate=args.override_gate, targets=args.targets)


def in_repo(path: str) -> Path:
    """``path`` relative to the repository's root when it lies inside it, else absolute."""
    full = Path(path).resolve()
    return full.relative_to(REPO) if full.is_relative_to(REPO) else full


if __name__ == "__main__":
    run_main(main)
