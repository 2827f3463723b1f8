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
        raise StorageError(
            f"{path}: write failed ({e.strerror or e}); the previous file, if any, is untouched"
        ) from e


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


class UnreadableFile(StorageError):
    """A file that cannot be read as what it should be (truncated, damaged, another format);
    names the file and what to do."""


CHECKPOINT_KEYS = ("learner", "completed_tasks", "config")


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The one reader of a task checkpoint (resume, rebuild, post-hoc evaluation, the benches):
    safe_torch_load, then the keys every checkpoint holds; UnreadableFile naming the file
    otherwise (a truncated write, a file of another kind, a pickle that would run code)."""
    try:
        state = safe_torch_load(path, map_location)
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: no such checkpoint") from None
    except Exception as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UnreadableFile(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {why}); it is truncated, "
            "damaged or not a hypermask checkpoint"
        ) from None
    if not isinstance(state, dict) or any(k not in state for k in CHECKPOINT_KEYS):
        raise UnreadableFile(f"{path}: not a hypermask checkpoint (it lacks {', '.join(CHECKPOINT_KEYS)})")
    return state


class FileSet:
    """Files written together and replaced together (a suite's csv, md, tex and figures):
    each is staged beside its target (fsynced), then a journal listing the renames is written
    atomically, then the renames run, then the journal goes. A kill before the journal leaves
    the old set whole (the staged files are removed by the next writer); after it, the next
    reader or writer completes the renames (complete_pending), so the set is never read mixed.

        files = FileSet(tables / ".SUITE.set.json")
        files.add(tables / "SUITE.csv", data) ...
        files.commit()
    """

    def __init__(self, journal: str | Path):
        self.journal = Path(journal)
        self.staged: list[tuple[Path, Path]] = []
        complete_pending(self.journal)

    def add(self, path: str | Path, data: bytes | str) -> None:
        path = Path(path)
        data = data.encode() if isinstance(data, str) else data
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for stale in path.parent.glob(
                f".{path.name}.*.set.tmp"
            ):  # staged by a writer killed before its journal
                stale.unlink(missing_ok=True)
            tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.set.tmp"
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            self.abort()
            raise StorageError(
                f"{path}: write failed ({e.strerror or e}); the previous files are untouched"
            ) from e
        self.staged.append((tmp, path))

    def abort(self) -> None:
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
        self.staged = []

    def commit(self) -> None:
        entries = [[str(tmp), str(path)] for tmp, path in self.staged]
        try:
            atomic_write_json(self.journal, {"renames": entries})
        except StorageError:
            self.abort()
            raise
        complete_pending(self.journal)
        self.staged = []


def complete_pending(journal: str | Path) -> None:
    """Finish a set whose journal was written (its renames, then the journal); a staged file
    already renamed is skipped. No journal: nothing was committed, nothing to do."""
    journal = Path(journal)
    try:
        entries = json.loads(journal.read_text())["renames"]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError):  # a journal cut mid-write is never renamed into place
        journal.unlink(missing_ok=True)
        return
    for tmp, final in entries:
        if Path(tmp).exists():
            os.replace(tmp, final)
    journal.unlink(missing_ok=True)
