"""scripts/device/pieces.py: files cut into fixed-size pieces come back byte for byte, in any
arrival order, each file as soon as its own pieces are in; a corrupted piece is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "device" / "pieces.py"


def pieces(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          check=check)


def test_pack_and_store_in_any_order(tmp_path):
    sizes = {"wheels.tar": 2_500_000, "small.gguf": 700_000, "big.gguf": 3_100_000}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(os.urandom(size))
    done = pieces(tmp_path, "pack", "--prefix", ".pk", "--piece-mib", "1", *sizes)
    count = len(list(tmp_path.glob(".pk*")))
    assert count == -(-sum(sizes.values()) // 2**20) and f"{count} pieces" in done.stdout
    keep = tmp_path / "keep"
    # The first three pieces hold all of wheels.tar: it is assembled before anything else arrives.
    for index in (2, 0, 1):
        out = pieces(tmp_path, "store", f".pk{index}", str(keep)).stdout
    assert "complete" in out and (keep / "files" / "wheels.tar").exists()
    assert not (keep / "files" / "big.gguf").exists()
    for index in reversed(range(3, count)):
        pieces(tmp_path, "store", f".pk{index}", str(keep))
    for name in sizes:
        assert (keep / "files" / name).read_bytes() == (tmp_path / name).read_bytes()


def test_corrupted_piece_is_refused(tmp_path):
    (tmp_path / "a.bin").write_bytes(os.urandom(300_000))
    pieces(tmp_path, "pack", "--prefix", ".pk", "--piece-mib", "0.25", "a.bin")
    piece = tmp_path / ".pk1" / "piece"
    data = bytearray(piece.read_bytes())
    data[10] ^= 0xFF
    piece.write_bytes(bytes(data))
    pieces(tmp_path, "store", ".pk0", str(tmp_path / "keep"))
    done = pieces(tmp_path, "store", ".pk1", str(tmp_path / "keep"), check=False)
    assert done.returncode != 0 and "sha256 mismatch" in done.stderr
    assert not (tmp_path / "keep" / "files" / "a.bin").exists()
