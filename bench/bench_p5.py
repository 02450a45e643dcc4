"""P5 measured: one Alice stage end to end on one GPU, timed part by part.

The stage is what one weak-to-strong step costs once the teacher exists: probing the student pool
with the teacher (K samples per question) and summarizing its uncertainty (uncertainty.py), the
student's zero-shot and proactive answers (student_generate.py), and training the student on them
(train.py). Each part runs as its own script, exactly as a user runs it; the parts' wall times
(engine starts included) and the scripts' own timings come from their manifests.

Modes, run one after the other on the same GPU and data:
- ``adaptive``: uncertainty.py --adaptive (the stage as this project recommends it);
- ``full``: full-K probing (the paper's), probing part only: the later parts do the same work in
  both modes, so the full-K stage is its probing plus the adaptive run's later parts (stated).

Setup, timed but not part of the stage: converting models (done beforehand), and with
--train-teacher the teacher's own training on its half's ground truth (as the fair test does).

  python bench/bench_p5.py --teacher TEACHER_DIR --student STUDENT_DIR --data gsm_symbolic --out out/p5
  python bench/bench_p5.py merge out/p5/p5.json        # here: adds P5_alice_measured_s to results.json

The probing runs in --probe-parts concurrent processes on the one GPU (vLLM's host work for many
short sequences limits one engine; results/fair does the same), merged into one output.

--serve-student PORT: the student, which also writes the statements, runs behind ``vllm serve`` on the
same GPU, started with the stage: its start overlaps the probing, and summarizing and the student's
answers reach it over HTTP (uncertainty.py --summarizer-base-url, student_generate.py --backend openai),
so the stage starts two engines (the teacher's, the student's) at once instead of three one after
another. A probing part that summarized before the server was up is run again once it is (it resumes:
only the statements are written).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench_common import env_for, log, merge_report, read_manifest, run_at_once, tail, wait_for_servers

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GOAL_S = 300.0


def run_parts(commands: list[list[str]], logs: list[Path], timeout: float) -> tuple[float, list[int]]:
    """Runs the commands at once; wall seconds and exit codes."""
    return run_at_once([(command, env_for(), log_file) for command, log_file in zip(commands, logs)], timeout)


def start_server(args: argparse.Namespace, folder: Path) -> tuple[subprocess.Popen, str]:
    """``vllm serve`` of the student on this GPU, on the loopback interface only; its URL."""
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", args.student, "--host",
               "127.0.0.1", "--port", str(args.serve_student), "--max-model-len", "4096",
               # A KV cache of fixed size, as the project's own engines take it (--kv-cache-gb): vLLM's free-memory
               # profiling, with the probing engines starting on the same GPU at that moment, counted their memory
               # as the server's and found a negative KV cache ("Available KV cache memory: -6.78 GiB").
               "--kv-cache-memory-bytes", str(int(args.server_kv_cache_gb * 2**30)), "--gpu-memory-utilization", "0.05",
               *args.server_args.split()]
    server = subprocess.Popen(command, cwd=REPO, env=env_for(), stdout=(folder / "server.log").open("w"),
                              stderr=subprocess.STDOUT)
    return server, f"http://127.0.0.1:{args.serve_student}/v1"


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()


def stage(args: argparse.Namespace, mode: str, teacher: str, out: Path, report: dict) -> None:
    folder = out / mode
    folder.mkdir(parents=True, exist_ok=True)
    server, url = start_server(args, folder) if args.serve_student else (None, None)
    try:
        stage_parts(args, mode, teacher, folder, report, server, url)
    finally:
        if server is not None:
            stop_server(server)


def stage_parts(args: argparse.Namespace, mode: str, teacher: str, folder: Path, report: dict,
                server: subprocess.Popen | None, url: str | None) -> None:
    py = sys.executable
    data = ["--data", args.data] + (["--limit", str(args.limit)] if args.limit else [])
    gen = ["--backend", "vllm", "--max-new-tokens", str(args.max_new_tokens)] + args.gen_args.split()
    parts = args.probe_parts
    outputs = [folder / f"uncertainty-p{i}.jsonl" for i in range(1, parts + 1)]
    served = ["--summarizer-base-url", url] if url else []
    probe = [[py, "uncertainty.py", *data, "--teacher", teacher, "--summarizer", args.student, *served, *gen,
              "--k", str(args.k), "--kv-cache-gb", str(args.kv_cache_gb), "--pool-part", f"{i}/{parts}",
              *(["--adaptive"] if mode == "adaptive" else []), *args.probe_args.split(), "--output", str(o),
              "--overwrite"]
             for i, o in enumerate(outputs, start=1)]
    result: dict = {"parts": {}, "served_student": bool(url)}
    report["modes"][mode] = result
    wall, codes = run_parts(probe, [o.with_suffix(".log") for o in outputs], args.part_timeout)
    if server is not None:
        waiting = time.time()
        ready = wait_for_servers([url], [server], args.part_timeout)
        waited = round(time.time() - waiting, 1)  # part of the stage: nothing else runs meanwhile
        result["server_waited_after_probing_s"] = waited
        wall = round(wall + waited, 1)
        if not ready:
            result["error"] = "the student's server did not start: " + tail(folder / "server.log")
            return
        failed = [i for i, code in enumerate(codes) if code]
        if failed:  # summarized before the server was up: again, resuming (no --overwrite)
            log(f"{mode}: parts {[i + 1 for i in failed]} again, the server now up")
            again, again_codes = run_parts([[a for a in probe[i] if a != "--overwrite"] for i in failed],
                                           [outputs[i].with_suffix(".again.log") for i in failed], args.part_timeout)
            for i, code in zip(failed, again_codes):
                codes[i] = code
            wall = round(wall + again, 1)
            result["parts_run_again"] = [i + 1 for i in failed]
    manifests = [read_manifest(o) for o in outputs]
    result["parts"]["probe_and_summarize"] = {
        "wall_s": wall, "exit": codes,
        "probing_s": [m.get("timings", {}).get("probing_s") for m in manifests],
        "summarizing_s": [m.get("timings", {}).get("summarizing_s") for m in manifests],
        "counts": [m.get("counts") for m in manifests], "adaptive": [m.get("adaptive") for m in manifests],
        "command": " ".join(probe[0])}
    log(f"{mode}: probing + summarizing {wall} s, exit {codes}")
    if any(codes):
        result["error"] = tail(outputs[codes.index(next(c for c in codes if c))].with_suffix(".log"))
        return
    from alice.stages.uncertainty import merge_parts

    uncertainty = folder / "uncertainty.jsonl"
    result["counts"] = merge_parts(outputs, uncertainty)
    if mode != "adaptive" and not args.full_stage:
        return
    alice_data = folder / "alice.jsonl"
    engine = (["--backend", "openai", "--base-url", url, "--concurrency", "256", "--max-new-tokens",
               str(args.max_new_tokens), *args.gen_args.split()] if url
              else [*gen, "--kv-cache-gb", str(args.kv_cache_gb)])
    command = [py, "student_generate.py", *data, "--student", args.student, "--uncertainty", str(uncertainty),
               *engine, "--output", str(alice_data), "--overwrite"]
    wall, codes = run_parts([command], [folder / "student_generate.log"], args.part_timeout)
    m = read_manifest(alice_data)
    result["parts"]["student_generate"] = {"wall_s": wall, "exit": codes, "timings": m.get("timings"),
                                           "counts": m.get("counts"), "command": " ".join(command)}
    log(f"{mode}: student generation {wall} s, exit {codes}")
    if any(codes):
        result["error"] = tail(folder / "student_generate.log")
        return
    if server is not None:  # the training gets the GPU to itself, as in the in-process stage
        stop_server(server)
    model = folder / "student"
    command = [py, "train.py", *data, "--student", args.student, "--train-file", str(alice_data),
               *args.train_args.split(), "--output-dir", str(model), "--overwrite"]
    wall, codes = run_parts([command], [folder / "train.log"], args.part_timeout)
    m = read_manifest(model)
    result["parts"]["train"] = {"wall_s": wall, "exit": codes, "timings": m.get("timings"),
                                "counts": m.get("counts"), "training": m.get("training"),
                                "command": " ".join(command)}
    log(f"{mode}: training {wall} s, exit {codes}")
    if any(codes):
        result["error"] = tail(folder / "train.log")
        return
    for weights in model.glob("*.safetensors"):  # the disk is small; the manifest stays
        weights.unlink()
    result["stage_s"] = round(sum(p["wall_s"] for p in result["parts"].values()), 1)


def measure(args: argparse.Namespace) -> dict:
    import torch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M %Z"),
                             "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                             "command": "python " + " ".join(sys.argv), "teacher": args.teacher,
                             "student": args.student, "data": args.data, "k": args.k,
                             "probe_parts": args.probe_parts, "goal_s": GOAL_S},
                    "modes": {}}
    save = out / "p5.json"
    teacher = args.teacher
    if args.train_teacher:
        teacher_dir = out / "teacher"
        command = [sys.executable, "train.py", "--data", args.data, "--teacher", args.teacher, "--ground-truth",
                   "--pool", "teacher", *args.train_args.split(), "--output-dir", str(teacher_dir), "--overwrite"]
        wall, codes = run_parts([command], [out / "train_teacher.log"], args.part_timeout)
        report["setup"] = {"train_teacher_s": wall, "exit": codes, "command": " ".join(command)}
        log(f"teacher trained in {wall} s, exit {codes}")
        if any(codes):
            report["setup"]["error"] = tail(out / "train_teacher.log")
            save.write_text(json.dumps(report, indent=2))
            return report
        teacher = str(teacher_dir)
    for mode in args.modes.split(","):
        stage(args, mode, teacher, out, report)
        summarize(report)
        save.write_text(json.dumps(report, indent=2))
    return report


def summarize(report: dict) -> dict:
    modes = report["modes"]
    adaptive, full = modes.get("adaptive", {}), modes.get("full", {})
    keys = {}
    if adaptive.get("stage_s"):
        later = sum(p["wall_s"] for name, p in adaptive["parts"].items() if name != "probe_and_summarize")
        keys["P5_alice_measured_s"] = {
            "value": adaptive["stage_s"], "goal_s": GOAL_S, "meets_goal": adaptive["stage_s"] <= GOAL_S,
            "parts_s": {name: p["wall_s"] for name, p in adaptive["parts"].items()},
            "note": "uncertainty.py --adaptive, student_generate.py, train.py, each a separate script run (engine "
                    "starts and model loads included); the teacher's training and model conversion excluded"
                    + ("; the student (also the summarizer) behind vllm serve, started with the stage"
                       if adaptive.get("served_student") else "")}
        probe_full = full.get("parts", {}).get("probe_and_summarize", {}).get("wall_s")
        if probe_full and not full.get("error"):
            stage_full = full.get("stage_s") or round(probe_full + later, 1)
            keys["P5_alice_measured_full_k_s"] = {
                "value": stage_full, "probing_s": probe_full,
                "note": "full-K probing measured; later parts "
                        + ("measured" if full.get("stage_s") else "taken from the adaptive run (same work)")}
    report["keys"] = keys
    return keys


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("phase", nargs="?", default="run", choices=["run", "merge"])
    p.add_argument("files", nargs="*", help="merge: the p5.json written by a run")
    p.add_argument("--teacher", help="teacher model folder or hub id (untrained with --train-teacher)")
    p.add_argument("--student", help="student model folder or hub id (also the summarizer)")
    p.add_argument("--data", default="gsm_symbolic")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--probe-parts", type=int, default=2, help="concurrent probing processes on the GPU")
    p.add_argument("--kv-cache-gb", type=float, default=12)
    p.add_argument("--gen-args", default="", help="more generation flags for every generating script")
    p.add_argument("--probe-args", default="", help="more flags for the probing parts only (uncertainty.py), e.g. "
                   "\"--vllm-runner v2\"")
    p.add_argument("--train-args", default="--per-device-batch-size 16 --padding-free --no-gradient-checkpointing",
                   help="train.py flags beyond the paper recipe's defaults (the fair test's)")
    p.add_argument("--train-teacher", action="store_true", help="train the teacher first (setup, not timed in)")
    p.add_argument("--modes", default="adaptive,full")
    p.add_argument("--full-stage", action="store_true", help="run the later parts in full-K mode too")
    p.add_argument("--part-timeout", type=float, default=900)
    p.add_argument("--serve-student", type=int, metavar="PORT", help="the student behind vllm serve on this port, "
                   "started with the stage (module docstring)")
    p.add_argument("--server-kv-cache-gb", type=float, default=12, help="the server's KV cache in GiB (a fixed size: "
                   "free-memory profiling fails while other engines start on the GPU)")
    p.add_argument("--server-args", default="", help="more vllm serve flags (e.g. --enforce-eager)")
    p.add_argument("--out", default="out/p5")
    args = p.parse_args()
    if args.phase == "merge":
        merge_report(args.files[0], summarize)
        return
    if not (args.teacher and args.student):
        p.error("give --teacher and --student")
    report = measure(args)
    print(json.dumps(report.get("keys", {}), indent=2))


if __name__ == "__main__":
    main()
