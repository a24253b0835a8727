"""Content-addressed store of trained models and metric tables.

Layout under ``<KAG_HOME>/store``::

    models/<key>/manifest.json        what the entry is, and the SHA-256 of every file
    models/<key>/weights.safetensors  init, final and checkpoint tensors (no pickle)
    metrics/<key>.json                one metric table, its digest inside
    locks/<name>.lock                 file locks; xdist workers wait here instead of re-training

A key is the SHA-256 of everything that determines the result, and every entry records those
inputs, so the key is a function of the entry (:mod:`kag.experiments.keys`). Every load, ``verify`` and import
recomputes it, re-checks the recorded digests and parses the safetensors header; a mismatch
raises :class:`CorruptEntryError` naming the entry and the fix. Writes go to a temporary name and
are renamed into place, so a reader sees a whole entry or none; temporaries orphaned by a killed
process are found by :meth:`Store.problems` and removed by :meth:`Store.repair`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import struct
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kag.errors import Busy, CorruptEntryError
from kag.experiments.keys import PREFIX_LENGTH, SCHEMA, canonical_json, make_key, metric_key_of, model_key_of, short
from kag.experiments.paths import store_dir

WEIGHTS = "weights.safetensors"
MANIFEST = "manifest.json"
MODEL_FILES = frozenset({MANIFEST, WEIGHTS})
REPAIR_HINT = "`kag cache verify --repair` removes it"

# Import limits: a member larger than these is rejected before a byte of it is written.
MAX_MANIFEST_BYTES = 1 << 20
MAX_METRICS_BYTES = 256 << 20
MAX_SAFETENSORS_HEADER_BYTES = 100 << 20  # safetensors' own limit
MAX_ARCHIVE_BYTES = 64 << 30  # all accepted members together
ORPHAN_AGE_S = 600.0  # a temporary older than this belongs to no live write (writes take seconds)

_KEY = re.compile(r"^[0-9a-f]{64}$")
_SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                       "BOOL": 1}


def source_digest(*modules: str) -> str:
    """SHA-256 of the source files of ``modules`` (e.g. ``"kag.experiments.model"``): provenance recorded in each
    entry, never part of a key (keys use the algorithms' version constants)."""
    h = hashlib.sha256()
    package_root = Path(__file__).resolve().parents[1]  # the kag package
    for name in sorted(modules):
        path = package_root / (name.split(".", 1)[1].replace(".", "/") + ".py")
        if not path.is_file():  # a package: its __init__
            path = path.with_suffix("") / "__init__.py"
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"key={key!r} is not a cache key: expected 64 hex digits")
    return key


def check_safetensors(path: Path) -> None:
    """Parse a safetensors header without loading the tensors; ValueError saying what is wrong.

    The file must be 8 bytes of header length, a JSON header of known dtypes and in-bounds,
    contiguous data offsets, and exactly the data they describe: a pickle or a truncated or padded
    file fails here, before any tensor is read."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"not a safetensors file: {size} bytes, shorter than its 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_SAFETENSORS_HEADER_BYTES, size - 8):
            raise ValueError(f"not a safetensors file: header length {n} exceeds the file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file: its header is not a JSON object")
    end = 0
    spans = []
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(t, dict) or t.get("dtype") not in _SAFETENSORS_DTYPES:
            raise ValueError(f"not a safetensors file: tensor {name!r} has no known dtype")
        shape, offsets = t.get("shape"), t.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)):
            raise ValueError(f"not a safetensors file: tensor {name!r} has a malformed shape or offsets")
        count = 1
        for d in shape:
            count *= d
        if offsets[1] - offsets[0] != count * _SAFETENSORS_DTYPES[t["dtype"]] or offsets[0] < 0:
            raise ValueError(f"not a safetensors file: tensor {name!r} has offsets that do not match its shape")
        spans.append(tuple(offsets))
        end = max(end, offsets[1])
    spans.sort()
    if any(a[1] != b[0] for a, b in zip(spans, spans[1:])) or (spans and spans[0][0] != 0):
        raise ValueError("not a safetensors file: its tensors overlap or leave gaps")
    if 8 + n + end != size:
        raise ValueError(f"not a safetensors file: header describes {8 + n + end} bytes, the file has {size}")


def weights_bytes_bound(manifest: Mapping[str, Any]) -> int:
    """The most bytes the weights of the model a manifest describes can take (float32 init and final
    weights, one first-layer snapshot per epoch at most, and the header): a larger file is not that model."""
    from kag.experiments.families import get_family

    family = get_family(manifest.get("family"))
    n = family.check_width(int(manifest["width"]))
    epochs = int(manifest["train_config"]["epochs"])
    shapes = family.param_shapes(n)
    first = sum(math.prod(shapes[name]) for name in family.checkpoint_params())
    return 8 * (2 * family.n_params(n) + (epochs + 1) * first) + (1 << 20)


@dataclass
class Problem:
    """One thing wrong in the store: where, what, and whether ``repair`` removes it."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class ImportReport:
    """What ``import_`` did: entries added, entries already present, and rejected ones with reasons."""

    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (archive member or entry, reason)


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

    def _broken(self, path: Path, reason: str) -> CorruptEntryError:
        return CorruptEntryError(f"broken cache entry {path}: {reason}; {REPAIR_HINT}")

    # -- keys ---------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        """Every key with an entry (model or metrics), sorted."""
        models = [d.name for d in self.models_dir.glob("*") if _KEY.match(d.name)] if self.models_dir.is_dir() else []
        metrics = ([f.stem for f in self.metrics_dir.glob("*.json") if _KEY.match(f.stem)]
                   if self.metrics_dir.is_dir() else [])
        return sorted(set(models) | set(metrics))

    def resolve_key(self, prefix: str) -> str:
        """The one key starting with ``prefix`` (at least :data:`PREFIX_LENGTH` hex digits, or a whole key)."""
        if not isinstance(prefix, str) or not re.fullmatch(r"[0-9a-f]+", prefix) or not (
                PREFIX_LENGTH <= len(prefix) <= 64):
            raise ValueError(f"key={prefix!r} is not a key: give {PREFIX_LENGTH} to 64 hex digits (as `kag cache ls` "
                             "shows them)")
        found = [k for k in self.keys() if k.startswith(prefix)]
        if len(found) > 1:
            raise ValueError(f"key={prefix!r} is ambiguous: it starts {len(found)} entries "
                             f"({', '.join(k[:20] for k in found[:4])}); give more digits")
        if not found:
            raise KeyError(f"no cache entry with key {prefix} in {self.root}")
        return found[0]

    # -- models -------------------------------------------------------------------------------
    def has_model(self, key: str) -> bool:
        return (self.models_dir / _check_key(key) / MANIFEST).is_file()

    def save_model(self, key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
        """Write one model entry atomically (temporary directory, then rename).

        ``meta`` must describe ``key`` (:func:`kag.experiments.keys.model_key_of`). A broken entry already at the
        key (say, its manifest deleted) is replaced; a whole one is kept."""
        final = self.models_dir / _check_key(key)
        tmp = self._tmpdir(self.models_dir)
        try:
            save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp / WEIGHTS))
            manifest = {"key": key, "schema": SCHEMA, "created": time.time(), **meta,
                        "files": {WEIGHTS: file_sha256(tmp / WEIGHTS)}}
            described = _described_key(model_key_of, manifest)
            if described != key:
                raise ValueError(f"the manifest of model {short(key)} describes key {described[:PREFIX_LENGTH]}: "
                                 "refusing to store it under another key")
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
            if final.exists():
                try:
                    self.verify_model(key)
                    shutil.rmtree(tmp)  # someone else finished first: theirs is equally valid
                    return final
                except CorruptEntryError:  # a broken entry (say, a deleted manifest): set it aside, then replace
                    os.replace(final, self._tmpdir(self.models_dir) / "broken")
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._remove_fresh_temporaries(self.models_dir, "broken")
        return final

    def read_manifest(self, key: str) -> dict[str, Any]:
        """The manifest of entry ``key``, checked: it parses, names only the store's files, and describes ``key``."""
        path = self.models_dir / _check_key(key) / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            if path.parent.is_dir():
                raise self._broken(path.parent, "its manifest.json is missing") from None
            raise KeyError(f"no model entry {key} in {self.models_dir}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self._broken(path, f"not JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("key") != key or not isinstance(manifest.get("files"), dict):
            raise self._broken(path, f"it does not describe entry {short(key)}")
        if set(manifest["files"]) != {WEIGHTS}:
            raise self._broken(path, f"it lists files {sorted(manifest['files'])}; a model entry has exactly {WEIGHTS}")
        described = _described_key(model_key_of, manifest)
        if described != key:
            raise self._broken(path, f"its recorded inputs give key {short(described)}, not {short(key)}: the entry "
                                     "was renamed or its manifest edited")
        return manifest

    def verify_model(self, key: str) -> dict[str, Any]:
        """Check an entry: its manifest (see :meth:`read_manifest`), no other files, every digest, and
        the safetensors header. Returns the manifest."""
        manifest = self.read_manifest(key)
        entry = self.models_dir / key
        extra = sorted(p.name for p in entry.iterdir() if p.name not in MODEL_FILES)
        if extra:
            raise self._broken(entry, f"unexpected files {extra}")
        path = entry / WEIGHTS
        if not path.is_file() or path.is_symlink():
            raise self._broken(path, "missing, or not a regular file")
        actual = file_sha256(path)
        if actual != manifest["files"][WEIGHTS]:
            raise self._broken(path, f"sha256 {actual[:12]} != recorded {str(manifest['files'][WEIGHTS])[:12]}")
        try:
            check_safetensors(path)
        except ValueError as exc:
            raise self._broken(path, str(exc)) from None
        return manifest

    def load_model(self, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and manifest of a verified model entry."""
        manifest = self.verify_model(key)
        path = self.models_dir / key / WEIGHTS
        try:
            return load_file(str(path)), manifest
        except (SafetensorError, OSError) as exc:  # pragma: no cover - verify_model catches this first
            raise self._broken(path, str(exc)) from None

    # -- metric tables ------------------------------------------------------------------------
    def metrics_path(self, key: str) -> Path:
        return self.metrics_dir / f"{_check_key(key)}.json"

    def has_metrics(self, key: str) -> bool:
        return self.metrics_path(key).is_file()

    def save_metrics(self, key: str, payload: dict[str, Any], meta: dict[str, Any]) -> Path:
        """Write one metric table atomically; its payload digest is stored beside it. The entry must
        describe ``key`` (:func:`kag.experiments.keys.metric_key_of`)."""
        final = self.metrics_path(key)
        body = {"key": key, "schema": SCHEMA, "created": time.time(), **meta, "payload": payload}
        described = _described_key(metric_key_of, body)
        if described != key:
            raise ValueError(f"the metric entry {short(key)} describes key {short(described)}: refusing to store it "
                             "under another key")
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
            raise self._broken(path, f"not JSON ({exc})") from None
        if not isinstance(body, dict) or "payload" not in body:
            raise self._broken(path, "no payload")
        digest = hashlib.sha256(canonical_json(body["payload"]).encode()).hexdigest()
        if digest != body.get("payload_sha256"):
            raise self._broken(path, "payload digest mismatch")
        if body.get("key") != key:
            raise self._broken(path, f"it says it is entry {str(body.get('key'))[:PREFIX_LENGTH]}, not {short(key)}")
        described = _described_key(metric_key_of, body)
        if described != key:
            raise self._broken(path, f"its recorded inputs give key {short(described)}, not {short(key)}: the entry "
                                     "was renamed or edited")
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
        """One summary row per entry (kind, key, size, and what it holds); a broken one has ``error``."""
        rows = []
        for d in sorted(self.models_dir.glob("[0-9a-f]*")) if self.models_dir.is_dir() else []:
            if not _KEY.match(d.name):
                continue
            try:
                m = self.read_manifest(d.name)
                rows.append({"kind": "model", "key": d.name, "bytes": sum(f.stat().st_size for f in d.iterdir()),
                             "family": m.get("family") or "mlp2",
                             **{k: m.get(k) for k in ("width", "seed", "regime", "epochs", "test_accuracy", "test_r2",
                                                     "data_sha256", "device", "versions", "source_sha256")}})
            except (CorruptEntryError, KeyError, ValueError) as exc:
                rows.append({"kind": "model", "key": d.name, "error": _message(exc)})
        for f in sorted(self.metrics_dir.glob("[0-9a-f]*.json")) if self.metrics_dir.is_dir() else []:
            if not _KEY.match(f.stem):
                continue
            try:
                body = json.loads(f.read_text())
                config = body.get("metric_config") or {}
                meta = (body.get("payload") or {}).get("meta") or {}
                rows.append({"kind": "metrics", "key": f.stem, "bytes": f.stat().st_size,
                             "family": body.get("family") or "mlp2",
                             # the test images it was measured on (standard models: always clean, see metric_key_of)
                             "eval_images": config.get("eval_images", "clean") if body.get("regime") == "augmented"
                             else "clean", "spatial": meta.get("spatial"),
                             **{k: body.get(k) for k in ("width", "seed", "regime", "profile", "versions",
                                                         "source_sha256")}})
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
                rows.append({"kind": "metrics", "key": f.stem, "error": f"broken cache entry {f}: not JSON ({exc})"})
        return rows

    def problems(self) -> list[Problem]:
        """Everything wrong in the store, all of it: broken entries (every file re-hashed, every key
        recomputed), stray files, and temporaries orphaned by a killed process."""
        found: list[Problem] = []
        for parent, is_entry in ((self.models_dir, lambda p: p.is_dir() and _KEY.match(p.name)),
                                 (self.metrics_dir, lambda p: p.is_file() and p.suffix == ".json"
                                  and _KEY.match(p.stem))):
            if not parent.is_dir():
                continue
            for path in sorted(parent.iterdir()):
                if path.name.startswith(".tmp-"):
                    if time.time() - path.stat().st_mtime > ORPHAN_AGE_S:
                        found.append(Problem(path, "temporary left by an interrupted write"))
                    continue
                if not is_entry(path):
                    found.append(Problem(path, "not a cache entry (unexpected name)"))
                    continue
                try:
                    self.verify_model(path.name) if parent == self.models_dir else self.load_metrics(path.stem)
                except (CorruptEntryError, KeyError) as exc:
                    found.append(Problem(path, _message(exc)))
        return found

    def repair(self) -> list[Problem]:
        """Remove what :meth:`problems` finds; returns what was removed."""
        removed = self.problems()
        for p in removed:
            if p.path.is_dir() and not p.path.is_symlink():
                shutil.rmtree(p.path, ignore_errors=True)
            else:
                p.path.unlink(missing_ok=True)
        return removed

    def _remove_fresh_temporaries(self, parent: Path, name: str) -> None:
        """Delete the set-aside broken entries (``.tmp-*/<name>``) this process just moved."""
        for tmp in parent.glob(f".tmp-*/{name}"):
            shutil.rmtree(tmp.parent, ignore_errors=True)

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

    # -- sharing ------------------------------------------------------------------------------
    def export(self, file: str | Path) -> int:
        """Write every verified entry to a ``.tar.gz`` (a temporary file renamed at the end, so a failed
        export leaves nothing behind); returns the number of entries."""
        file = Path(file)
        if file.is_dir():
            raise ValueError(f"file={str(file)!r} is a directory: give the path of the archive to write")
        count = 0
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".tar.gz", dir=file.parent if str(file.parent) else ".")
        os.close(fd)
        try:
            with tarfile.open(tmp, "w:gz") as tar:
                for key in self.keys():
                    if (self.models_dir / key).is_dir():
                        self.verify_model(key)
                        for name in sorted(MODEL_FILES):
                            tar.add(self.models_dir / key / name, arcname=f"models/{key}/{name}")
                        count += 1
                    if self.has_metrics(key):
                        self.load_metrics(key)
                        tar.add(self.metrics_path(key), arcname=f"metrics/{key}.json")
                        count += 1
            os.replace(tmp, file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return count

    def import_(self, file: str | Path, max_bytes: int | None = None) -> ImportReport:
        """Add the entries of an exported archive, entry by entry.

        Only the store's own layout is read: ``models/<key>/manifest.json``, ``models/<key>/weights.safetensors``
        and ``metrics/<key>.json``, regular files within size limits (``max_bytes`` in all, default
        :data:`MAX_ARCHIVE_BYTES`). Each entry is checked exactly as a load checks it (digests, key
        recomputed from its recorded inputs, safetensors header) before it is renamed into the store;
        anything else is rejected with its reason and nothing of it is kept."""
        file = Path(file)
        if not file.is_file():
            raise ValueError(f"file={str(file)!r} does not exist: give a file written by `kag cache export`")
        budget = MAX_ARCHIVE_BYTES if max_bytes is None else max_bytes
        report = ImportReport()
        staging = Store(self._tmpdir(self.root))
        try:
            try:
                with tarfile.open(file, "r:gz") as tar:
                    members = tar.getmembers()
                    entries = _archive_entries(members, report)
                    for name, parts in entries.items():
                        reason = _extract_entry(tar, parts, staging.root, budget)
                        if isinstance(reason, str):
                            report.rejected.append((name, reason))
                            _discard(staging.root, name)
                            continue
                        budget -= reason
                        self._adopt(staging, name, report)
            except (tarfile.TarError, OSError, EOFError, struct.error) as exc:
                raise CorruptEntryError(f"unreadable cache archive {file}: {exc}") from None
        finally:
            shutil.rmtree(staging.root, ignore_errors=True)
        return report

    def _adopt(self, staging: "Store", name: str, report: ImportReport) -> None:
        """Verify one staged entry (``models/<key>`` or ``metrics/<key>.json``) and rename it into the store."""
        kind, key = name.split("/")[0], Path(name).name.removesuffix(".json")
        try:
            if kind == "models":
                staging.verify_model(key)
            else:
                staging.load_metrics(key)
        except (CorruptEntryError, KeyError) as exc:
            report.rejected.append((name, _message(exc).replace(str(staging.root), "<archive>").replace(
                f"; {REPAIR_HINT}", "")))
            return
        present = self.has_model(key) if kind == "models" else self.has_metrics(key)
        if present:
            report.present.append(name)
            return
        target = self.models_dir / key if kind == "models" else self.metrics_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging.root / name, target)
        report.added.append(name)


def _described_key(recipe: Callable[[Mapping[str, Any]], str], record: Mapping[str, Any]) -> str:
    """The key an entry's recorded inputs give; ``"unreadable"`` when a recorded input is missing."""
    try:
        return recipe(record)
    except (KeyError, TypeError, AttributeError, ValueError):
        return "unreadable (a recorded input is missing or malformed)"


def _message(exc: BaseException) -> str:
    return exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)


_MEMBER = re.compile(r"^(models/([0-9a-f]{64})/(manifest\.json|weights\.safetensors)|metrics/([0-9a-f]{64})\.json)$")
_DIRECTORY = re.compile(r"^(models|metrics|models/[0-9a-f]{64})/?$")


def _archive_entries(members: Iterable[tarfile.TarInfo], report: ImportReport) -> dict[str, list[tarfile.TarInfo]]:
    """Group an archive's members by entry (``models/<key>`` or ``metrics/<key>.json``); every member
    outside the store's layout rejects its entry (or itself, when it belongs to none)."""
    entries: dict[str, list[tarfile.TarInfo]] = {}
    bad: dict[str, str] = {}
    for m in members:
        name = m.name.removeprefix("./")
        match = _MEMBER.match(name)
        if m.isdir() and _DIRECTORY.match(name):
            continue
        entry = None
        if name.startswith("models/") and len(name.split("/")) >= 2 and _KEY.match(name.split("/")[1]):
            entry = "/".join(name.split("/")[:2])
        elif match and match.group(4):
            entry = name
        if not match or not m.isfile():
            what = ("a link" if m.issym() or m.islnk() else "not a regular file" if not m.isfile()
                    else "not part of the store's layout")
            reason = f"member {m.name!r} is {what}"
            if entry is None:
                report.rejected.append((m.name, reason))
            else:
                bad.setdefault(entry, reason)
            continue
        entries.setdefault(entry, []).append(m)
    for entry, reason in bad.items():
        entries.pop(entry, None)
        report.rejected.append((entry, reason))
    return entries


def _member_limit(name: str) -> int:
    return MAX_MANIFEST_BYTES if name.endswith(MANIFEST) else MAX_METRICS_BYTES


def _extract_entry(tar: tarfile.TarFile, parts: list[tarfile.TarInfo], root: Path, budget: int) -> int | str:
    """Copy one entry's members under ``root``, size-checked before a byte is written; the bytes
    written, or the reason for rejecting the entry."""
    by_name = {m.name.removeprefix("./"): m for m in parts}
    manifests = [n for n in by_name if n.endswith(MANIFEST)]
    if manifests:  # a model: its weights may not exceed what the model it describes can take
        if set(Path(n).name for n in by_name) != MODEL_FILES:
            return f"a model entry has exactly {sorted(MODEL_FILES)}; this one has {sorted(Path(n).name for n in by_name)}"
    total = 0
    order = sorted(by_name, key=lambda n: not n.endswith(MANIFEST))  # the manifest first: it bounds the weights
    limit_of: dict[str, int] = {}
    for name in order:
        m = by_name[name]
        limit = limit_of.get(name, _member_limit(name))
        if m.size > limit or total + m.size > budget:
            return (f"member {name} has {m.size} bytes, over the limit of "
                    f"{min(limit, budget - total)} bytes for it")
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(m)
        if source is None:
            return f"member {name} cannot be read as a file"
        with source, open(target, "wb") as out:
            copied = 0
            while block := source.read(1 << 20):
                copied += len(block)
                if copied > m.size:
                    return f"member {name} holds more bytes than its header says"
                out.write(block)
        total += m.size
        if name.endswith(MANIFEST):
            try:
                bound = weights_bytes_bound(json.loads(target.read_text()))
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
                return f"member {name} is not the manifest of a model (no width or epochs recorded)"
            limit_of[str(Path(name).parent / WEIGHTS)] = bound
    return total


def _discard(root: Path, name: str) -> None:
    path = root / name
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
