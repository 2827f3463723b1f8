"""Prepared sources: a verified, uncompressed .npz per source that training loads in a blink.

`hypermask prepare EXPERIMENT` reads the raw data once (IDX files, CIFAR-100 pickles,
110,000 TinyImageNet JPEGs), checks it, and writes DIR/SOURCE.npz with a SHA-256 sidecar
DIR/SOURCE.json. Training uses the prepared file when it is there and its checksum holds;
a file that does not match its checksum is refused by path, never used.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from hypermask.config import ConfigError, DataConfig
from hypermask.data.sources import RawData, check_raw, load_source
from hypermask.records.storage import atomic_write_bytes, atomic_write_json

FIELDS = ("x_train", "y_train", "x_test", "y_test")


def prepared_path(cache_dir: str | Path, source: str) -> Path:
    return Path(cache_dir) / f"{source}.npz"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def prepare(cfg: DataConfig, cache_dir: str | Path) -> Path:
    raw = load_source(cfg)
    out = prepared_path(cache_dir, cfg.source)
    buf = io.BytesIO()
    np.savez(buf, **{f: getattr(raw, f) for f in FIELDS})
    atomic_write_bytes(out, buf.getvalue())
    atomic_write_json(
        out.with_suffix(".json"),
        {
            "source": cfg.source,
            "root": cfg.root,
            "sha256": _sha256(out),
            "train": list(raw.x_train.shape),
            "test": list(raw.x_test.shape),
        },
    )
    return out


def load_prepared(cfg: DataConfig, cache_dir: str | Path | None) -> RawData | None:
    """The prepared source, or None when there is none; a corrupt one stops with its path."""
    if cache_dir is None:
        return None
    path = prepared_path(cache_dir, cfg.source)
    meta_path = path.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):  # valid JSON, but not the object prepare() writes
            raise ValueError(meta)
    except (OSError, ValueError):
        raise ConfigError(
            f"{meta_path}: missing or unreadable checksum file; run `hypermask prepare` again"
        ) from None
    if meta.get("root") != cfg.root:
        raise ConfigError(
            f"{path}: prepared from data.root {meta.get('root')!r}, but the experiment reads {cfg.root!r}; "
            "run `hypermask prepare` for it (or use another pipeline.data_cache)"
        )
    if _sha256(path) != meta.get("sha256"):
        raise ConfigError(
            f"{path}: checksum mismatch (truncated or altered); delete it and run `hypermask prepare` again"
        )
    with np.load(path, allow_pickle=False) as z:
        raw = RawData(*(z[f] for f in FIELDS))
    check_raw(raw, cfg, path)
    return raw
