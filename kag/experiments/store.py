"""Content-addressed store of trained models and metric tables.

Layout under ``<KAG_HOME>/store``::

    models/<key>/manifest.json        what the entry is, and the SHA-256 of every file
    models/<key>/weights.safetensors  init, final and checkpoint tensors (no pickle)
    metrics/<key>.json                one metric table, its digest inside
    locks/<name>.lock                 file locks; xdist workers wait here instead of re-training
    training/<name>.json              how far a training that holds lock <name> has come (while it runs)
    resume/<name>-<id>.safetensors    the whole state of a training that holds lock <name>, saved every few
                                      minutes, so a killed training goes on from it (kag.experiments.resume);
                                      removed once its models are in the store

A key is the SHA-256 of everything that determines the result, and every entry records those
inputs, so the key is a function of the entry (:mod:`kag.experiments.keys`). Manifests and metric
tables are sealed JSON (:mod:`kag.experiments.sealed_json`): the digest of every other field is
inside, and the bytes must be exactly the canonical form, so an edit anywhere is caught. Every
load, ``verify`` and import re-checks the seal, recomputes the key, re-hashes the weights and
checks their header against the tensors the recorded architecture implies (names, shapes,
dtype); a mismatch raises :class:`CorruptEntryError` naming the entry and the fix.

Sizes are bounded by what the code computes, never by what a file claims: JSON is parsed with
depth, integer and density limits, weights may be exactly the size of the model the manifest
describes, and an import stops an archive that inflates more than
:data:`kag.experiments.archive.MAX_INFLATION` times.

Writes go to a temporary name that carries its owner (``.tmp-<pid>@<host>@...``) and are renamed
into place, so a reader sees a whole entry or none; :meth:`Store.problems` lists temporaries whose
owner process is gone and :meth:`Store.repair` removes them, never one of a live process. A failed
write (disk full, file-size limit, read-only store) is a :class:`StoreWriteError` naming the path.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from kag import files
from kag.errors import CorruptEntryError, StoreWriteError
from kag.experiments.keys import PREFIX_LENGTH, SCHEMA, canonical_json, metric_key_of, model_key_of, short
from kag.experiments.paths import store_dir
from kag.experiments.sealed_json import SEAL, BadJSON, parse_bounded, read_limited, seal, unseal
from kag.experiments.table import COLUMNS
from kag.experiments.safetensors_file import read_header
from kag.experiments.weights_file import check_tensors

WEIGHTS = "weights.safetensors"
MANIFEST = "manifest.json"
MODEL_FILES = frozenset({MANIFEST, WEIGHTS})
REPAIR_HINT = "`kag cache verify --repair` removes it"
SEAL_HINT = "`kag cache seal` seals the entries of your own store"

# Size limits, from what the code writes (a file over them is rejected before it is parsed).
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is about 2 KB
MAX_METRICS_BYTES = 16 << 20  # the largest table (paper profile, 4-layer MLP, spatial) is about 5 MB
LEGACY_ORPHAN_AGE_S = 600.0  # a temporary without an owner in its name (older kag) is an orphan after this
STALE_TRAINING_S = 900  # a training record of another host not updated for this long is not shown
HOST = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "unknown-host"

KEY = re.compile(r"[0-9a-f]{64}")  # a cache key (and any SHA-256 in lowercase hex)
_OWNED = re.compile(r"\.tmp-(\d+)@([^@]*)@")  # .tmp-<pid>@<host>@<random>
_WRITE_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


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
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ValueError(f"key={key!r} is not a cache key: expected 64 hex digits")
    return key


def temporary_prefix() -> str:
    """The name every temporary of this process starts with: its owner, so repair can tell if it is alive."""
    return f".tmp-{os.getpid()}@{HOST}@"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's live process; a pid beyond the range: be safe
        return True
    return True


def orphan_reason(path: Path) -> str | None:
    """Why temporary ``path`` belongs to no live write, or None when its owner may still be writing it.

    Its name says which process on which host made it: an orphan when that host is this one and the
    process is gone. A temporary of another host is never judged (its process cannot be seen from here);
    one without an owner in its name (an older kag) is an orphan after :data:`LEGACY_ORPHAN_AGE_S`."""
    owner = _OWNED.match(path.name)
    if owner is None:
        try:
            old = time.time() - path.lstat().st_mtime > LEGACY_ORPHAN_AGE_S
        except FileNotFoundError:
            return None
        return "temporary left by an interrupted write" if old else None
    pid, host = int(owner.group(1)), owner.group(2)
    if host != HOST or _process_alive(pid):
        return None
    return f"temporary of process {pid}, which has ended (an interrupted write)"


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failed write under ``path`` (disk full, file-size limit, read-only, no permission) into one
    :class:`StoreWriteError` line that names the file; other errors pass through."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _WRITE_ERRORS:
            raise
        where = exc.filename or path
        raise StoreWriteError(f"cannot write {where}: {exc.strerror or exc} (errno {errno.errorcode.get(exc.errno)}); "
                              "nothing half-written was kept: free space, raise the limit, or point KAG_HOME at a "
                              "writable directory") from None


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` (inside a temporary directory that is renamed later)."""
    with writing(path), open(path, "wb") as f:
        f.write(data)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through an owned temporary in the same directory, renamed into place."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_atomically(path, data, mode=None, prefix=temporary_prefix())


def check_table(body: Mapping[str, Any]) -> None:
    """ValueError unless a metric entry's table has the schema's columns, one number or null per value
    (no NaN: the parser refuses it), rows of its own width and seed, and accuracies in [0, 1]."""
    table = (body.get("payload") or {}).get("table")
    if not isinstance(table, dict) or tuple(table.get("columns") or ()) != COLUMNS or not isinstance(
            table.get("rows"), list):
        raise ValueError(f"its table does not have the columns {', '.join(COLUMNS)}")
    value = COLUMNS.index("value")
    for i, row in enumerate(table["rows"]):
        if not isinstance(row, list) or len(row) != len(COLUMNS):
            raise ValueError(f"table row {i} does not have {len(COLUMNS)} values")
        x = row[value]
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))):
            raise ValueError(f"table row {i} has value {str(x)[:40]!r}, not a number")
        if row[0] != body.get("width") or row[1] != body.get("seed"):
            raise ValueError(f"table row {i} is of width {row[0]!r} seed {row[1]!r}, the entry of width "
                             f"{body.get('width')!r} seed {body.get('seed')!r}")
        if row[COLUMNS.index("observable")] == "test_accuracy" and x is not None and not 0.0 <= x <= 1.0:
            raise ValueError(f"table row {i} has test accuracy {x!r}, outside [0, 1]")


@dataclass
class Problem:
    """One thing wrong in the store: where, what, and whether ``repair`` removes it."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class ImportReport:
    """What ``import_`` did: entries added, entries already present, broken entries it replaced, and
    rejected ones with reasons."""

    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (archive member or entry, reason)
    replaced: list[str] = field(default_factory=list)  # added over a broken entry of the same key


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

    @property
    def resume_dir(self) -> Path:
        return self.root / "resume"

    def resume_path(self, name: str, identity: str) -> Path:
        """Where the training that holds lock ``name`` saves its state (``identity``: which training)."""
        return self.resume_dir / f"{name}-{identity[:16]}.safetensors"

    def saved_trainings(self) -> list[Path]:
        """The saved states of trainings that run now or were killed (:meth:`resume_path`)."""
        return sorted(self.resume_dir.glob("[!.]*.safetensors")) if self.resume_dir.is_dir() else []

    def save_resume(self, path: Path, data: bytes) -> None:
        """Write a training state (:meth:`resume_path`) whole or not at all, through an owned temporary."""
        write_atomically(path, data)

    def lock(self, name: str, timeout: float = -1) -> FileLock:
        """A cross-process lock; ``with store.lock("train-...")`` serialises work on one thing."""
        with writing(self.root / "locks"):
            (self.root / "locks").mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / "locks" / f"{name}.lock"), timeout=timeout)

    def tmpdir(self, parent: Path) -> Path:
        """A new temporary directory under ``parent`` whose name carries this process as its owner."""
        with writing(parent):
            parent.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix=temporary_prefix(), dir=parent))

    def _broken(self, path: Path, reason: str) -> CorruptEntryError:
        return CorruptEntryError(f"broken cache entry {path}: {reason}; {REPAIR_HINT}")

    def _read_sealed(self, path: Path, limit: int) -> dict[str, Any]:
        """A sealed record (manifest or metric entry), or CorruptEntryError naming the file and the fault."""
        try:
            return unseal(read_limited(path, limit), path)
        except BadJSON as exc:
            hint = f"; {SEAL_HINT}" if exc.reason.startswith("not sealed") else ""
            raise self._broken(path, exc.reason + hint) from None

    # -- keys ---------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        """Every key with an entry (model or metrics), sorted."""
        models = ([d.name for d in self.models_dir.glob("*") if KEY.fullmatch(d.name)]
                  if self.models_dir.is_dir() else [])
        metrics = ([f.stem for f in self.metrics_dir.glob("*.json") if KEY.fullmatch(f.stem)]
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
        tmp = self.tmpdir(self.models_dir)
        try:
            with writing(tmp):
                write_file(tmp / WEIGHTS, save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}))
                manifest = {"key": key, "schema": SCHEMA, "created": time.time(), **_jsonable(meta),
                            "files": {WEIGHTS: file_sha256(tmp / WEIGHTS)}}
                described = _described_key(model_key_of, manifest)
                if described != key:
                    raise ValueError(f"the manifest of model {short(key)} describes key "
                                     f"{described[:PREFIX_LENGTH]}: refusing to store it under another key")
                write_file(tmp / MANIFEST, seal(manifest))
                self._put_model(tmp, key)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def _put_model(self, staged: Path, key: str) -> bool:
        """Rename the model directory ``staged`` to entry ``key``: over a broken entry (set aside first), not
        over a whole one (``staged`` is then deleted). True when ``staged`` became the entry."""
        final = self.models_dir / key
        if final.exists():
            try:
                self.verify_model(key)
                shutil.rmtree(staged)  # someone else finished first: theirs is equally valid
                return False
            except CorruptEntryError:  # a broken entry (say, a deleted manifest): set it aside, then replace
                aside = self.tmpdir(self.models_dir)
                os.replace(final, aside / "broken")
                os.replace(staged, final)
                shutil.rmtree(aside, ignore_errors=True)
                return True
        os.replace(staged, final)
        return True

    def read_manifest(self, key: str) -> dict[str, Any]:
        """The manifest of entry ``key``, checked: sealed, names only the store's files, and describes ``key``."""
        path = self.models_dir / _check_key(key) / MANIFEST
        if not path.is_file():
            if path.parent.is_dir():
                raise self._broken(path.parent, "its manifest.json is missing")
            raise KeyError(f"no model entry {key} in {self.models_dir}")
        manifest = self._read_sealed(path, MAX_MANIFEST_BYTES)
        if manifest.get("key") != key or not isinstance(manifest.get("files"), dict):
            raise self._broken(path, f"it does not describe entry {short(key)}")
        if set(manifest["files"]) != {WEIGHTS}:
            raise self._broken(path, f"it lists files {sorted(manifest['files'])}; a model entry has exactly {WEIGHTS}")
        described = _described_key(model_key_of, manifest)
        if described != key:
            raise self._broken(path, f"its recorded inputs give key {short(described)}, not {short(key)}: the entry "
                                     "was renamed or its manifest edited")
        return manifest

    def verify_model(self, key: str) -> dict[str, Any]:
        """Check an entry: its manifest (see :meth:`read_manifest`), no other files, every digest, and the
        safetensors header against the tensors the recorded architecture implies. Returns the manifest."""
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
            check_tensors(read_header(path), manifest)
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
        """Write one sealed metric table atomically. The entry must describe ``key``
        (:func:`kag.experiments.keys.metric_key_of`)."""
        final = self.metrics_path(key)
        body = _jsonable({"key": key, "schema": SCHEMA, "created": time.time(), **meta, "payload": payload})
        described = _described_key(metric_key_of, body)
        if described != key:
            raise ValueError(f"the metric entry {short(key)} describes key {short(described)}: refusing to store it "
                             "under another key")
        write_atomically(final, seal(body))
        return final

    def load_metrics(self, key: str) -> dict[str, Any]:
        """The whole verified metric entry (``entry["payload"]`` is the table)."""
        path = self.metrics_path(key)
        if not path.is_file():
            raise KeyError(f"no metric entry {key} in {self.metrics_dir}")
        body = self._read_sealed(path, MAX_METRICS_BYTES)
        if not isinstance(body.get("payload"), dict):
            raise self._broken(path, "no payload")
        if body.get("key") != key:
            raise self._broken(path, f"it says it is entry {str(body.get('key'))[:PREFIX_LENGTH]}, not {short(key)}")
        described = _described_key(metric_key_of, body)
        if described != key:
            raise self._broken(path, f"its recorded inputs give key {short(described)}, not {short(key)}: the entry "
                                     "was renamed or edited")
        try:
            check_table(body)
        except ValueError as exc:
            raise self._broken(path, str(exc)) from None
        return body

    # -- event log ----------------------------------------------------------------------------
    def log_event(self, kind: str, **info: Any) -> None:
        """Append one line to ``events.jsonl`` (what was trained or computed, when, by which process)."""
        line = json.dumps({"time": time.time(), "pid": os.getpid(), "kind": kind, **info}, default=str) + "\n"
        with writing(self.root / "events.jsonl"):
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / "events.jsonl", "a") as f:  # one short O_APPEND write: atomic between processes
                f.write(line)

    def events(self) -> list[dict[str, Any]]:
        """The event log; a line that is not a JSON object within the limits is skipped."""
        path = self.root / "events.jsonl"
        if not path.is_file():
            return []
        found = []
        for line in path.read_bytes().splitlines():
            try:
                event = parse_bounded(line, path)
            except BadJSON:
                continue
            if isinstance(event, dict) and isinstance(event.get("time"), (int, float)):
                found.append(event)
        return found

    # -- trainings in progress ----------------------------------------------------------------
    def report_training(self, name: str, info: Mapping[str, Any]) -> None:
        """Record how far the training holding lock ``name`` has come (``training/<name>.json``,
        replaced atomically; ``info`` e.g. width, regime, seeds, epoch, epochs, seconds), for a process
        that waits on the store (:class:`kag.progress.WorkMonitor`). Best effort: a failed write is
        ignored, since the training itself must not fail for it."""
        body = {**info, "pid": os.getpid(), "host": HOST, "updated": time.time()}
        try:
            write_atomically(self.root / "training" / f"{name}.json", json.dumps(body).encode())
        except (OSError, StoreWriteError):
            pass

    def training_done(self, name: str) -> None:
        """The training holding lock ``name`` has ended (trained or failed): forget its progress."""
        try:
            (self.root / "training" / f"{name}.json").unlink(missing_ok=True)
        except OSError:
            pass

    def trainings(self) -> list[dict[str, Any]]:
        """The trainings running now, as :meth:`report_training` recorded them (oldest first); a record
        whose process has ended on this host, one of another host not updated for
        :data:`STALE_TRAINING_S`, or one that does not parse is left out."""
        found = [body for _, body, why_not in self._training_records() if why_not is None]
        return sorted(found, key=lambda b: b["updated"] - float(b.get("seconds") or 0.0))

    def _training_records(self) -> list[tuple[Path, dict[str, Any] | None, str | None]]:
        """``(path, record, why it is not of a running training or None)`` for every record in ``training/``."""
        folder = self.root / "training"
        out = []
        for path in sorted(folder.glob("[!.]*.json")) if folder.is_dir() else []:
            try:
                body = parse_bounded(read_limited(path, 1 << 16), path)
            except (OSError, BadJSON):
                out.append((path, None, "a training record that does not parse"))
                continue
            if not isinstance(body, dict) or not isinstance(body.get("updated"), (int, float)):
                out.append((path, None, "a training record without the time it was updated"))
                continue
            pid, host = body.get("pid"), body.get("host")
            if host == HOST and isinstance(pid, int) and not _process_alive(pid):
                out.append((path, body, f"the record of a training by process {pid}, which has ended"))
            elif host != HOST and time.time() - body["updated"] > STALE_TRAINING_S:
                out.append((path, body, f"the record of a training on {host} not updated for over "
                                        f"{STALE_TRAINING_S // 60} min"))
            else:
                out.append((path, body, None))
        return out

    # -- housekeeping -------------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """One summary row per entry (kind, key, size, and what it holds); a broken one has ``error``."""
        rows = []
        for d in sorted(self.models_dir.glob("[0-9a-f]*")) if self.models_dir.is_dir() else []:
            if not KEY.fullmatch(d.name):
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
            if not KEY.fullmatch(f.stem):
                continue
            try:
                body = self.load_metrics(f.stem)
            except (CorruptEntryError, KeyError) as exc:
                rows.append({"kind": "metrics", "key": f.stem, "error": _message(exc)})
                continue
            config = body.get("metric_config") or {}
            meta = body["payload"].get("meta") or {}
            rows.append({"kind": "metrics", "key": f.stem, "bytes": f.stat().st_size,
                         "family": body.get("family") or "mlp2",
                         # the test images it was measured on (standard models: always clean, see metric_key_of)
                         "eval_images": config.get("eval_images", "clean") if body.get("regime") == "augmented"
                         else "clean", "spatial": meta.get("spatial"),
                         **{k: body.get(k) for k in ("width", "seed", "regime", "profile", "versions",
                                                     "source_sha256")}})
        return rows

    def temporaries(self) -> list[Path]:
        """Every temporary in the store: of entries, training records and training states being written,
        and an import's staging directory."""
        found = []
        for parent in (self.root, self.models_dir, self.metrics_dir, self.root / "training", self.resume_dir):
            if parent.is_dir():
                found.extend(sorted(p for p in parent.iterdir() if p.name.startswith(".tmp-")))
        return found

    def problems(self) -> list[Problem]:
        """Everything wrong in the store, all of it: broken entries (every file re-hashed, every key
        recomputed), stray files, temporaries whose owner process is gone (see :func:`orphan_reason`) and
        records of trainings that no longer run (:meth:`trainings`)."""
        found = [Problem(path, reason) for path in self.temporaries() if (reason := orphan_reason(path))]
        found += [Problem(path, why) for path, _, why in self._training_records() if why is not None]
        for parent, is_entry in ((self.models_dir, lambda p: p.is_dir() and KEY.fullmatch(p.name)),
                                 (self.metrics_dir, lambda p: p.is_file() and p.suffix == ".json"
                                  and KEY.fullmatch(p.stem))):
            if not parent.is_dir():
                continue
            for path in sorted(parent.iterdir()):
                if path.name.startswith(".tmp-"):
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

    def seal_unsealed(self) -> list[Path]:
        """Seal the manifests and tables an older kag wrote without a seal, after checking all else (a
        table's payload digest; then, as any load does, file digests, the key recomputed from the recorded
        inputs and the tensor shapes). For your own store only: a seal vouches for every field. Returns
        the files sealed; one that fails a check is left as it is, for ``verify --repair``."""
        sealed = []
        for key in self.keys():
            for path, limit in ((self.models_dir / key / MANIFEST, MAX_MANIFEST_BYTES),
                                (self.metrics_path(key), MAX_METRICS_BYTES)):
                try:
                    record = parse_bounded(read_limited(path, limit), path)
                except (FileNotFoundError, BadJSON):
                    continue
                if not isinstance(record, dict) or SEAL in record:
                    continue
                if path.name != MANIFEST:  # an unsealed table carries the digest of its payload
                    digest = hashlib.sha256(canonical_json(record.get("payload")).encode()).hexdigest()
                    if record.pop("payload_sha256", None) != digest:
                        continue
                original = path.read_bytes()
                write_atomically(path, seal(record))
                try:
                    self.verify_model(key) if path.name == MANIFEST else self.load_metrics(key)
                except CorruptEntryError:
                    write_atomically(path, original)  # broken beyond the seal: left for `verify --repair`
                    continue
                sealed.append(path)
        return sealed

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

    # -- sharing (kag.experiments.archive reads and writes archives) -----------------------
    def adopt(self, staging: "Store", name: str, report: ImportReport) -> None:
        """Verify one staged entry (``models/<key>`` or ``metrics/<key>.json``) and rename it into the
        store, replacing a broken entry of the same key; a whole one is kept."""
        kind, key = name.split("/")[0], Path(name).name.removesuffix(".json")
        try:
            if kind == "models":
                staging.verify_model(key)
            else:
                staging.load_metrics(key)
        except (CorruptEntryError, KeyError) as exc:
            report.rejected.append((name, _message(exc).replace(str(staging.root), "<archive>").replace(
                f"; {REPAIR_HINT}", "").replace(f"; {SEAL_HINT}", "")))
            return
        target = self.models_dir / key if kind == "models" else self.metrics_path(key)
        broken = False
        if target.exists():
            try:
                self.verify_model(key) if kind == "models" else self.load_metrics(key)
                report.present.append(name)
                return
            except (CorruptEntryError, KeyError):
                broken = True
        with writing(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            if kind == "models":
                if not self._put_model(staging.root / name, key):  # pragma: no cover - a whole one appeared meanwhile
                    report.present.append(name)
                    return
            else:
                os.replace(staging.root / name, target)
        (report.replaced if broken else report.added).append(name)


def _jsonable(record: Any) -> Any:
    """``record`` as JSON holds it: tuples as lists, non-finite floats as None, other objects as text."""
    if isinstance(record, dict):
        return {str(k): _jsonable(v) for k, v in record.items()}
    if isinstance(record, (list, tuple)):
        return [_jsonable(v) for v in record]
    if isinstance(record, float) and not math.isfinite(record):
        return None
    if record is None or isinstance(record, (bool, int, float, str)):
        return record
    return str(record)


def _described_key(recipe: Callable[[Mapping[str, Any]], str], record: Mapping[str, Any]) -> str:
    """The key an entry's recorded inputs give; ``"unreadable"`` when a recorded input is missing."""
    try:
        return recipe(record)
    except (KeyError, TypeError, AttributeError, ValueError):
        return "unreadable (a recorded input is missing or malformed)"


def _message(exc: BaseException) -> str:
    return exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
