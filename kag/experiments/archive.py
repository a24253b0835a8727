"""Archives of the store: ``kag cache export`` writes one, ``kag cache import`` reads one as a hostile file.

An archive is a ``.tar.gz`` holding the store's own layout and nothing else:
``models/<key>/manifest.json``, ``models/<key>/weights.safetensors`` and ``metrics/<key>.json``.
Export is deterministic (sorted members, zero times and owners, no gzip timestamp), so the same
entries always give the same bytes and a published archive can be pinned by its SHA-256.

Import trusts nothing in the file. Before a byte is written, the members' sizes from their
headers must add up to at most :data:`MAX_INFLATION` times the archive's size (plus
:data:`INFLATION_ALLOWANCE`): trained weights barely compress, so more is a decompression bomb.
Each member is bounded by what the code writes (a manifest 1 MiB, a table 16 MiB, weights exactly
the size of the model its sealed manifest describes), and the archive is read in one pass (a model's
manifest and weights side by side, the manifest first, as export writes them), so nothing is ever
inflated twice. Each entry is staged, checked as a load checks it, and renamed into the store,
replacing a broken entry of the same key. A failed write
is a :class:`kag.errors.StoreWriteError` naming the path, never blamed on the archive.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import struct
import tarfile
import tempfile
from pathlib import Path

from kag.errors import CorruptEntryError
from kag.experiments.sealed_json import BadJSON, unseal
from kag.experiments.store import (KEY, MANIFEST, MAX_MANIFEST_BYTES, MAX_METRICS_BYTES, MODEL_FILES, WEIGHTS,
                                   ImportReport, Store, temporary_prefix, writing)
from kag.experiments.weights_file import expected_tensors, weights_bytes

MAX_ARCHIVE_BYTES = 64 << 30  # all accepted members together
MAX_INFLATION = 64  # trained weights barely compress and tables about 3x: an archive inflating more is a bomb
INFLATION_ALLOWANCE = 64 << 20  # bytes any archive may inflate to, whatever its size
MAX_MEMBERS = 100_000  # three per model and table: far beyond any store

_MEMBER = re.compile(r"models/([0-9a-f]{64})/(manifest\.json|weights\.safetensors)|metrics/([0-9a-f]{64})\.json")
_DIRECTORY = re.compile(r"(models|metrics|models/[0-9a-f]{64})/?")


def export_archive(store: Store, file: Path, keys: list[str] | None = None) -> int:
    """Write every verified entry of ``store`` (or only those of ``keys``) to the ``.tar.gz`` ``file``,
    deterministically; a temporary renamed at the end, so a failed export leaves nothing. Returns the
    number of entries."""
    if file.is_dir():
        raise ValueError(f"file={str(file)!r} is a directory: give the path of the archive to write")
    chosen = store.keys() if keys is None else sorted(set(keys))
    count = 0
    with writing(file):
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(), suffix=".tar.gz", dir=file.parent)
    try:
        with writing(file), os.fdopen(fd, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for key in chosen:
                members = []
                if (store.models_dir / key).is_dir():
                    store.verify_model(key)
                    members += [(store.models_dir / key / name, f"models/{key}/{name}")
                                for name in sorted(MODEL_FILES, key=lambda n: n != MANIFEST)]
                if store.has_metrics(key):
                    store.load_metrics(key)
                    members.append((store.metrics_path(key), f"metrics/{key}.json"))
                if not members and keys is not None:
                    raise KeyError(f"no cache entry with key {key} in {store.root}")
                for path, arcname in members:
                    info = tarfile.TarInfo(arcname)
                    info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                count += (len(members) + 1) // 2  # a model is two members, a table one
        with writing(file):
            os.chmod(tmp, 0o644)  # mkstemp makes it private; an archive is for sharing
            os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def import_archive(store: Store, file: Path, max_bytes: int | None = None) -> ImportReport:
    """Add the entries of the archive ``file`` to ``store``, entry by entry (see the module's docstring);
    ``max_bytes`` bounds all accepted members together (default :data:`MAX_ARCHIVE_BYTES`)."""
    if not file.is_file():
        raise ValueError(f"file={str(file)!r} does not exist: give a file written by `kag cache export`")
    budget = MAX_ARCHIVE_BYTES if max_bytes is None else max_bytes
    inflation_bound = MAX_INFLATION * file.stat().st_size + INFLATION_ALLOWANCE
    report = ImportReport()
    staging = Store(store.tmpdir(store.root))
    try:
        try:
            tar = tarfile.open(file, "r:gz")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise CorruptEntryError(f"unreadable cache archive {file}: {exc}") from None
        with tar:
            try:
                members = _members(tar, file, inflation_bound)
            except (tarfile.TarError, OSError, EOFError, struct.error, UnicodeError) as exc:
                raise CorruptEntryError(f"unreadable cache archive {file}: {exc}") from None
            for name, parts in _entries(members, report).items():
                try:
                    outcome = _extract_entry(tar, parts, staging.root, budget)
                except (tarfile.TarError, EOFError, struct.error, gzip.BadGzipFile, UnicodeError) as exc:
                    raise CorruptEntryError(f"unreadable cache archive {file}: {exc}") from None
                if isinstance(outcome, str):
                    report.rejected.append((name, outcome))
                    _discard(staging.root, name)
                    continue
                budget -= outcome
                store.adopt(staging, name, report)
    finally:
        shutil.rmtree(staging.root, ignore_errors=True)
    return report


def _members(tar: tarfile.TarFile, file: Path, inflation_bound: int) -> list[tarfile.TarInfo]:
    """The archive's member headers, read one at a time; the archive is refused as soon as its members
    claim more bytes than it can honestly inflate to, before their data is read."""
    members = []
    while (member := tar.next()) is not None:
        members.append(member)
        if len(members) > MAX_MEMBERS:
            raise CorruptEntryError(f"cache archive {file} has more than {MAX_MEMBERS:,} members: not an export")
        if member.offset_data + member.size > inflation_bound:
            raise CorruptEntryError(
                f"cache archive {file} inflates to more than {inflation_bound:,} bytes, {MAX_INFLATION} times its "
                f"size of {file.stat().st_size:,} (a member of {member.size:,} bytes): trained weights do not "
                "compress that much, so it is not an export; nothing was imported")
    return members


def _entries(members: list[tarfile.TarInfo], report: ImportReport) -> dict[str, list[tarfile.TarInfo]]:
    """Group an archive's members by entry (``models/<key>`` or ``metrics/<key>.json``); every member
    outside the store's layout rejects its entry (or itself, when it belongs to none)."""
    entries: dict[str, list[tarfile.TarInfo]] = {}
    bad: dict[str, str] = {}
    for m in members:
        name = m.name.removeprefix("./")
        match = _MEMBER.fullmatch(name)
        if m.isdir() and _DIRECTORY.fullmatch(name):
            continue
        parts = name.split("/")
        entry = None
        if parts[0] == "models" and len(parts) >= 2 and KEY.fullmatch(parts[1]):
            entry = "/".join(parts[:2])
        elif match and match.group(3):
            entry = name
        if not match or not m.isfile():
            what = ("a link" if m.issym() or m.islnk() else "not a regular file" if not m.isfile()
                    else "not part of the store's layout")
            reason = f"member {m.name!r} is {what}"
            if entry is None:
                report.rejected.append((repr(m.name)[1:-1], reason))
            else:
                bad.setdefault(entry, reason)
            continue
        if name in {p.name.removeprefix("./") for p in entries.get(entry, [])}:
            bad.setdefault(entry, f"member {name} appears twice")
            continue
        entries.setdefault(entry, []).append(m)
    # One pass over a compressed stream: an entry read out of order would rewind and re-inflate the
    # archive from its start, so a hostile archive of interleaved entries could cost hours.
    position = {id(m): i for i, m in enumerate(m for m in members if not m.isdir())}
    for entry, parts in entries.items():
        spots = [position[id(m)] for m in parts]
        if spots != list(range(spots[0], spots[0] + len(spots))) or not parts[0].name.endswith(
                (MANIFEST, ".json")):
            bad.setdefault(entry, "its members are not its manifest followed by its weights, side by side, as "
                                  "`kag cache export` writes them")
    for entry, reason in bad.items():
        entries.pop(entry, None)
        report.rejected.append((entry, reason))
    return entries


def _extract_entry(tar: tarfile.TarFile, parts: list[tarfile.TarInfo], root: Path, budget: int) -> int | str:
    """Copy one entry's members under ``root``, each size-checked before a byte of it is written; the
    bytes written, or the reason for rejecting the entry."""
    by_name = {m.name.removeprefix("./"): m for m in parts}
    if any(n.startswith("models/") for n in by_name) and {Path(n).name for n in by_name} != MODEL_FILES:
        return f"a model entry has exactly {sorted(MODEL_FILES)}; this one has {sorted(Path(n).name for n in by_name)}"
    total = 0
    limit_of: dict[str, int] = {}
    for name in sorted(by_name, key=lambda n: not n.endswith(MANIFEST)):  # the manifest first: it bounds the weights
        m = by_name[name]
        limit = limit_of.get(name, MAX_MANIFEST_BYTES if name.endswith(MANIFEST) else MAX_METRICS_BYTES)
        if m.size > limit or total + m.size > budget:
            return f"member {name} has {m.size:,} bytes, over the limit of {min(limit, budget - total):,} bytes for it"
        target = root / name
        source = tar.extractfile(m)
        if source is None:  # pragma: no cover - only regular files get here
            return f"member {name} cannot be read as a file"
        with writing(target), source:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
        total += m.size
        if name.endswith(MANIFEST):
            try:
                tensors = expected_tensors(unseal(target.read_bytes(), f"member {name}"))
            except BadJSON as exc:
                return str(exc)
            except ValueError as exc:
                return f"member {name} does not describe a model this kag can train: {exc}"
            limit_of[str(Path(name).parent / WEIGHTS)] = weights_bytes(tensors)
    return total


def _discard(root: Path, name: str) -> None:
    path = root / name
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
