"""Content-addressed store of trained models and metric tables.

Layout under ``<KAG_HOME>/store``::

    models/<key>/manifest.json        what the entry is, and the SHA-256 of every file
    models/<key>/weights.safetensors  init, final and checkpoint tensors (no pickle)
    metrics/<key>.json                one metric table, its digest inside
    locks/<name>.lock                 file locks; xdist workers wait here instead of re-training

A key is the SHA-256 of everything that determines the result (see :func:`make_key`). Writes go
to a temporary name and are renamed into place, so a reader sees a whole entry or none. Every
load re-checks the recorded digests; a corrupt or truncated file raises :class:`CorruptEntryError`
naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kag.errors import Busy, CorruptEntryError
from kag.paths import store_dir

SCHEMA = 1
WEIGHTS = "weights.safetensors"
MANIFEST = "manifest.json"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def make_key(kind: str, **parts: Any) -> str:
    """SHA-256 over ``kind``, the schema version and ``parts`` (JSON-serialisable, order-free)."""
    return hashlib.sha256(canonical_json({"kind": kind, "schema": SCHEMA, **parts}).encode()).hexdigest()


def source_digest(*modules: str) -> str:
    """SHA-256 of the source files of ``modules`` (e.g. ``"kag.model"``): provenance recorded in each
    entry, never part of a key (keys use the algorithms' version constants)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in sorted(modules):
        path = here / (name.split(".", 1)[1].replace(".", "/") + ".py")
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_key(key: str) -> str:
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise ValueError(f"key={key!r} is not a cache key: expected 64 hex digits")
    return key


class Store:
    """The cache. ``root`` defaults to ``<KAG_HOME>/store``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else store_dir()

    # -- locations ----------------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    def lock(self, name: str, timeout: float = -1) -> FileLock:
        """A cross-process lock; ``with store.lock("train-...")`` serialises work on one thing."""
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / "locks" / f"{name}.lock"), timeout=timeout)

    def _tmpdir(self, parent: Path) -> Path:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))

    # -- models -------------------------------------------------------------------------------
    def has_model(self, key: str) -> bool:
        return (self.models_dir / _check_key(key) / MANIFEST).is_file()

    def save_model(self, key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
        """Write one model entry atomically (temporary directory, then rename)."""
        final = self.models_dir / _check_key(key)
        tmp = self._tmpdir(self.models_dir)
        try:
            save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp / WEIGHTS))
            manifest = {"key": key, "schema": SCHEMA, "created": time.time(), **meta, "files": {WEIGHTS: file_sha256(tmp / WEIGHTS)}}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
            if final.exists():  # someone else finished first: theirs is equally valid
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def read_manifest(self, key: str) -> dict[str, Any]:
        path = self.models_dir / _check_key(key) / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            raise KeyError(f"no model entry {key} in {self.models_dir}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptEntryError(f"corrupt cache file {path}: {exc}; delete the entry (kag cache rm {key})") from None
        if manifest.get("key") != key or not isinstance(manifest.get("files"), dict):
            raise CorruptEntryError(f"corrupt cache file {path}: it does not describe entry {key}; delete the entry (kag cache rm {key})")
        return manifest

    def verify_model(self, key: str) -> dict[str, Any]:
        """Check every file of an entry against its recorded digest; return the manifest."""
        manifest = self.read_manifest(key)
        for name, digest in manifest["files"].items():
            path = self.models_dir / key / name
            actual = file_sha256(path) if path.is_file() else "missing"
            if actual != digest:
                raise CorruptEntryError(
                    f"corrupt cache file {path}: sha256 {actual[:12]} != recorded {digest[:12]}; delete the entry (kag cache rm {key})"
                )
        return manifest

    def load_model(self, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and manifest of a verified model entry."""
        manifest = self.verify_model(key)
        path = self.models_dir / key / WEIGHTS
        try:
            return load_file(str(path)), manifest
        except (SafetensorError, OSError) as exc:  # pragma: no cover - the digest check catches this first
            raise CorruptEntryError(f"corrupt cache file {path}: {exc}") from None

    # -- metric tables ------------------------------------------------------------------------
    def metrics_path(self, key: str) -> Path:
        return self.metrics_dir / f"{_check_key(key)}.json"

    def has_metrics(self, key: str) -> bool:
        return self.metrics_path(key).is_file()

    def save_metrics(self, key: str, payload: dict[str, Any], meta: dict[str, Any]) -> Path:
        """Write one metric table atomically; its payload digest is stored beside it."""
        final = self.metrics_path(key)
        body = {"key": key, "schema": SCHEMA, "created": time.time(), **meta, "payload": payload}
        body["payload_sha256"] = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=final.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(body, f, sort_keys=True, default=str)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final

    def load_metrics(self, key: str) -> dict[str, Any]:
        """The whole verified metric entry (``entry["payload"]`` is the table)."""
        path = self.metrics_path(key)
        try:
            body = json.loads(path.read_text())
        except FileNotFoundError:
            raise KeyError(f"no metric entry {key} in {self.metrics_dir}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptEntryError(f"corrupt cache file {path}: {exc}; delete it (kag cache rm {key})") from None
        if not isinstance(body, dict) or "payload" not in body:
            raise CorruptEntryError(f"corrupt cache file {path}: no payload; delete it (kag cache rm {key})")
        digest = hashlib.sha256(canonical_json(body["payload"]).encode()).hexdigest()
        if digest != body.get("payload_sha256"):
            raise CorruptEntryError(f"corrupt cache file {path}: payload digest mismatch; delete it (kag cache rm {key})")
        return body

    # -- event log ----------------------------------------------------------------------------
    def log_event(self, kind: str, **info: Any) -> None:
        """Append one line to ``events.jsonl`` (what was trained or computed, when, by which process)."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": time.time(), "pid": os.getpid(), "kind": kind, **info}, default=str) + "\n"
        with open(self.root / "events.jsonl", "a") as f:  # one short O_APPEND write: atomic between processes
            f.write(line)

    def events(self) -> list[dict[str, Any]]:
        path = self.root / "events.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # -- housekeeping -------------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """One summary row per entry (kind, key, size, and what it holds)."""
        rows = []
        for d in sorted(self.models_dir.glob("[0-9a-f]*")):
            try:
                m = self.read_manifest(d.name)
                rows.append({"kind": "model", "key": d.name, "bytes": sum(f.stat().st_size for f in d.iterdir()),
                             **{k: m.get(k) for k in ("width", "seed", "regime", "epochs", "test_accuracy", "device", "versions",
                                                     "source_sha256")}})
            except (CorruptEntryError, KeyError, ValueError) as exc:
                rows.append({"kind": "model", "key": d.name, "error": str(exc)})
        for f in sorted(self.metrics_dir.glob("[0-9a-f]*.json")):
            try:
                body = json.loads(f.read_text())
                rows.append({"kind": "metrics", "key": f.stem, "bytes": f.stat().st_size,
                             **{k: body.get(k) for k in ("width", "seed", "regime", "profile", "versions", "source_sha256")}})
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                rows.append({"kind": "metrics", "key": f.stem, "error": f"corrupt: {exc}"})
        return rows

    def remove(self, key: str) -> bool:
        """Delete an entry (model or metrics); True if something was removed."""
        removed = False
        model = self.models_dir / _check_key(key)
        if model.exists():
            shutil.rmtree(model)
            removed = True
        if self.metrics_path(key).exists():
            self.metrics_path(key).unlink()
            removed = True
        return removed

    def export(self, file: str | Path) -> int:
        """Write every verified entry to a ``.tar.gz``; returns the number of entries."""
        count = 0
        with tarfile.open(file, "w:gz") as tar:
            for d in sorted(self.models_dir.glob("[0-9a-f]*")):
                self.verify_model(d.name)
                tar.add(d, arcname=f"models/{d.name}")
                count += 1
            for f in sorted(self.metrics_dir.glob("[0-9a-f]*.json")):
                self.load_metrics(f.stem)
                tar.add(f, arcname=f"metrics/{f.name}")
                count += 1
        return count

    def import_(self, file: str | Path) -> int:
        """Add the entries of an exported archive (verified first; existing entries kept)."""
        if not Path(file).is_file():
            raise ValueError(f"file={str(file)!r} does not exist: give a file written by `kag cache export`")
        staging = Store(self._tmpdir(self.root))
        added = 0
        try:
            try:
                with tarfile.open(file, "r:gz") as tar:
                    tar.extractall(staging.root, filter="data")
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise CorruptEntryError(f"corrupt cache archive {file}: {exc}") from None
            for d in sorted(staging.models_dir.glob("[0-9a-f]*")):
                staging.verify_model(d.name)
                if not self.has_model(d.name):
                    self.models_dir.mkdir(parents=True, exist_ok=True)
                    os.replace(d, self.models_dir / d.name)
                    added += 1
            for f in sorted(staging.metrics_dir.glob("[0-9a-f]*.json")):
                staging.load_metrics(f.stem)
                if not self.has_metrics(f.stem):
                    self.metrics_dir.mkdir(parents=True, exist_ok=True)
                    os.replace(f, self.metrics_path(f.stem))
                    added += 1
        finally:
            shutil.rmtree(staging.root, ignore_errors=True)
        return added
