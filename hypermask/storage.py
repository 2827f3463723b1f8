"""Atomic file writes (temporary file in the same folder, fsync, rename) and safe loads."""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path
from typing import Any


class StorageError(RuntimeError):
    """A write that failed (disk full, read-only, quota); names the path, old file untouched."""


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    try:
        _atomic_write(path, data)
    except OSError as e:
        raise StorageError(f"{path}: write failed ({e.strerror or e}); the previous file, if any, is untouched") from e


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the usual mode, under the umask
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def safe_torch_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """torch.load restricted to tensors and plain containers: a file cannot run code."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)
