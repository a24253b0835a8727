"""Download published cache archives over HTTP(S), resumably, and accept them only by their pinned digest.

The repository pins each published archive (name, SHA-256, size) in a small JSON file
(:func:`read_published`); :func:`pinned_for` finds the pin for a URL, and :func:`download` fetches it.

What :func:`download` guarantees, because archives are large and networks are not reliable:

* only ``http://`` and ``https://`` (redirects included): no local files, no FTP;
* the bytes go to ``<dest>.part``; an interrupted try (a stall, a dropped connection) keeps it, and
  the next call resumes it with a ``Range`` request, or starts over when the server ignores ``Range``;
* a server that stops sending fails after ``timeout_s`` seconds without data, instead of hanging;
* never more than the pinned size is written (64 GiB when the size is unknown);
* ``dest`` appears only when the whole file has the pinned SHA-256; a file with another digest, or
  more bytes than pinned, is deleted, since resuming it could never give the right file.

Standard library only, so that pulling the cache needs nothing beyond what installs kag.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

from kag.errors import KagError
from kag.experiments.sealed_json import parse_bounded
from kag.experiments.archive import MAX_ARCHIVE_BYTES, import_archive
from kag.experiments.store import KEY, ImportReport, Store, file_sha256, write_atomically, writing
from kag.progress import quiet

SCHEMES = ("http", "https")
FORMAT = 1  # the version of the published-archives file that read_published understands
MAX_PUBLISHED_BYTES = 1 << 20  # a list of archives is a few KB; refuse to parse anything larger
MAX_BYTES = MAX_ARCHIVE_BYTES  # what download writes at most when the size is not pinned
UNKNOWN_SIZE = -1  # Published.bytes of an archive pinned only by a digest given by the user
FIELDS = ("name", "sha256", "bytes", "url", "entries", "profile", "study")
_SHA256 = KEY  # a SHA-256 in lowercase hex, as the store's keys are
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)

Progress = Callable[[int, "int | None"], None]


class DownloadError(KagError):
    """A download failed (network, server or a wrong file); the message says whether rerunning resumes it."""


class _Discard(DownloadError):
    """A download that produced the wrong file: its ``.part`` must be deleted, not resumed."""


# ---------------------------------------------------------------------------------------------
# The pinned archives
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """One published archive as the repository pins it."""

    name: str  # file name of the archive, e.g. "kag-paper-mnist-mlp.tar.gz"
    sha256: str  # 64 lowercase hex digits
    bytes: int  # exact size; UNKNOWN_SIZE (-1) when pinned only by a digest the user gave
    url: str | None  # where it is hosted, when known
    entries: int  # number of store entries inside (informational)
    profile: str  # e.g. "paper"
    study: str  # e.g. "mnist-mlp"

    @property
    def size(self) -> int | None:
        """The exact size to pass to :func:`download`, None when unknown."""
        return None if self.bytes == UNKNOWN_SIZE else self.bytes


def _show(value: Any) -> str:
    """A short one-line rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_file_name(value: Any) -> bool:
    """A plain file name: it becomes the name of the downloaded file, so no directories or dot names."""
    return (isinstance(value, str) and 0 < len(value) <= 255 and value not in (".", "..")
            and not any(c in value for c in "/\\\0") and value.isprintable())


def _check_archive(item: Any, where: str) -> Published:
    """The Published in one item of "archives", or ValueError naming ``where`` and the bad field."""
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be an object, not {_show(item)}")
    missing = [f for f in FIELDS if f not in item]
    unknown = sorted(set(item) - set(FIELDS))
    if missing or unknown:
        raise ValueError(f"{where} lacks the field(s) {', '.join(missing)}" if missing
                         else f"{where} has unknown field(s) {', '.join(map(_show, unknown))}")
    checks = {
        "name": (_is_file_name(item["name"]), "a plain file name"),
        "sha256": (isinstance(item["sha256"], str) and _SHA256.fullmatch(item["sha256"]) is not None,
                   "64 lowercase hex digits"),
        "bytes": (_is_int(item["bytes"]) and 0 < item["bytes"] <= MAX_BYTES, f"an integer from 1 to {MAX_BYTES:,}"),
        "url": (item["url"] is None or _allowed_url(item["url"]), "null or an http(s) URL"),
        "entries": (_is_int(item["entries"]) and item["entries"] >= 0, "a non-negative integer"),
        "profile": (isinstance(item["profile"], str) and item["profile"].isprintable(), "a string"),
        "study": (isinstance(item["study"], str) and item["study"].isprintable(), "a string"),
    }
    for field, (ok, expected) in checks.items():
        if not ok:
            raise ValueError(f"{where}.{field} must be {expected}, not {_show(item[field])}")
    return Published(**{f: item[f] for f in FIELDS})


def read_published(path: Path) -> list[Published]:
    """The archives pinned in ``path``: JSON ``{"format": 1, "archives": [{name, sha256, bytes, url,
    entries, profile, study}, ...]}``. Anything else is a one-line ValueError naming the file and the
    bad field, since a pin that is slightly wrong would make every pull fail or, worse, accept a wrong file."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(MAX_PUBLISHED_BYTES + 1)
    if len(raw) > MAX_PUBLISHED_BYTES:
        raise ValueError(f"{path}: larger than {MAX_PUBLISHED_BYTES:,} bytes, not a list of published archives")
    data = parse_bounded(raw, path)  # BadJSON is a ValueError naming the file
    if not isinstance(data, dict) or set(data) != {"format", "archives"}:
        raise ValueError(f"{path}: must be an object with exactly the fields format and archives")
    if not _is_int(data["format"]) or data["format"] != FORMAT:
        raise ValueError(f"{path}: format must be {FORMAT}, not {_show(data['format'])}")
    if not isinstance(data["archives"], list):
        raise ValueError(f"{path}: archives must be a list, not {_show(data['archives'])}")
    archives = [_check_archive(item, f"{path}: archives[{i}]") for i, item in enumerate(data["archives"])]
    names = [a.name for a in archives]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: archives[].name must be unique, {_show(duplicates[0])} appears more than once")
    return archives


def _url_file_name(url: str) -> str:
    """The last component of the URL's path, percent-decoded ("" when the path ends with a slash)."""
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


def pinned_for(url: str, published: list[Published], sha256: str | None = None) -> Published:
    """The pinned archive that ``url`` names (by its file name, or by its pinned url).

    ``sha256`` is the user's override for an archive the repository does not pin: the result then
    has that digest and ``bytes=-1`` (size unknown, so only the digest is checked), unless a pinned
    archive matches the URL with that very digest, whose known size is then checked as well."""
    name = _url_file_name(url)
    match = next((p for p in published if p.name == name or (p.url is not None and p.url == url)), None)
    if sha256 is None:
        if match is None:
            pinned = ", ".join(p.name for p in published) or "(nothing)"
            raise ValueError(f"url={url} names no archive pinned in {pinned}: "
                             "pass --sha256 to pull an unpinned archive")
        return match
    digest = _checked_sha256(sha256)
    if match is not None and match.sha256 == digest:
        return match
    if not _is_file_name(name):
        raise ValueError(f"url={url} does not end with a file name to save the archive as")
    return Published(name=name, sha256=digest, bytes=UNKNOWN_SIZE, url=url, entries=0, profile="", study="")


# ---------------------------------------------------------------------------------------------
# Checks shared by the download
# ---------------------------------------------------------------------------------------------


def _allowed_url(url: Any) -> bool:
    if not isinstance(url, str) or not url.isprintable():
        return False
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower() in SCHEMES and bool(parts.hostname)


def _check_url(url: str) -> None:
    if not _allowed_url(url):
        raise ValueError(f"url={_show(url)} is not allowed: only http:// and https:// URLs with a host can be pulled")


def _checked_sha256(sha256: str) -> str:
    digest = sha256.strip().lower() if isinstance(sha256, str) else sha256
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise ValueError(f"sha256={_show(sha256)} is not allowed: it must be 64 hex digits")
    return digest


def part_path(dest: Path) -> Path:
    """Where :func:`download` keeps the bytes of ``dest`` until they are whole and verified."""
    return dest.with_name(dest.name + ".part")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s): urllib would otherwise follow one to ftp://."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if not _allowed_url(newurl):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a URL that is not http(s): {newurl[:200]}",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _open(url: str, offset: int, timeout_s: float) -> http.client.HTTPResponse | None:
    """The server's response for ``url`` from byte ``offset`` (a Range request when ``offset > 0``);
    None when the server cannot serve that range (416), so the caller starts over."""
    headers = {"User-Agent": "kag-pull", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return _OPENER.open(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None
        raise DownloadError(f"download of {url} failed: the server answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _stalled(url, offset, None, timeout_s) from None
        raise DownloadError(f"download of {url} failed: {exc.reason}") from None
    except TimeoutError:
        raise _stalled(url, offset, None, timeout_s) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"download of {url} failed: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _range_start(response: http.client.HTTPResponse) -> int | None:
    """The first byte a 206 response carries, from its Content-Range (None when absent or unreadable)."""
    m = _CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
    return int(m.group(1)) if m else None


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = (response.headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def _stalled(url: str, done: int, total: int | None, timeout_s: float) -> DownloadError:
    of = f" of {total:,}" if total is not None else ""
    return DownloadError(f"download of {url} stalled: no data for {timeout_s:g} s after {done:,}{of} bytes; "
                         "run the same command again to resume")


# ---------------------------------------------------------------------------------------------
# The download
# ---------------------------------------------------------------------------------------------


def _resumable(part: Path, size: int | None) -> int:
    """How many bytes of ``part`` to keep: all of an earlier try, unless it cannot be a prefix of the file."""
    try:
        have = part.stat().st_size
    except FileNotFoundError:
        return 0
    if size is not None and have >= size:  # a whole file would have been verified and renamed: distrust it
        part.unlink()
        return 0
    return have


def _start(url: str, part: Path, size: int | None, timeout_s: float) -> tuple[http.client.HTTPResponse, int]:
    """Open the download and decide where writing starts: the response and the offset in ``part``
    (the size of ``part`` when the server resumes it, 0 when it sends the whole file)."""
    for _ in range(2):
        offset = _resumable(part, size)
        response = _open(url, offset, timeout_s)
        if response is None:  # 416: the server cannot resume this .part
            part.unlink(missing_ok=True)
            continue
        if response.status != 206:
            return response, 0
        if _range_start(response) == offset:
            return response, offset
        response.close()  # a range we did not ask for: start over without Range
        part.unlink(missing_ok=True)
    raise DownloadError(f"download of {url} failed: the server answers with ranges that do not match the request")


def _expected(url: str, response: http.client.HTTPResponse, offset: int, size: int | None) -> int | None:
    """The size the finished file will have, when known; a _Discard when the server's announced length
    contradicts the pinned size (it is serving another file)."""
    length = _content_length(response)
    announced = None if length is None else offset + length
    if size is not None and announced is not None and announced != size:
        raise _Discard(f"download of {url} failed: the server sends a file of {announced:,} bytes, the pinned "
                       f"size is {size:,}: not the pinned archive")
    if size is None and announced is not None and announced > MAX_BYTES:
        raise _Discard(f"download of {url} failed: the server sends {announced:,} bytes, more than the limit "
                       f"of {MAX_BYTES:,}")
    return size if size is not None else announced


def _copy(url: str, response: http.client.HTTPResponse, out: IO[bytes], done: int, total: int | None,
          limit: int, timeout_s: float, chunk: int, progress: Progress | None) -> int:
    """Append the body to ``out`` until it ends; the number of bytes the file then has.
    Raises DownloadError on a stall or a broken connection (resumable) and _Discard past ``limit``."""
    if progress:
        progress(done, total)
    while True:
        try:
            data = response.read1(min(chunk, limit - done + 1))  # one byte past the limit reveals an overrun
        except TimeoutError:
            raise _stalled(url, done, total, timeout_s) from None
        except (OSError, http.client.HTTPException) as exc:
            of = f" of {total:,}" if total is not None else ""
            raise DownloadError(f"download of {url} broke off after {done:,}{of} bytes ({_one_line(exc)}); "
                                "run the same command again to resume") from None
        if not data:
            return done
        if done + len(data) > limit:
            raise _Discard(f"download of {url} failed: the server sends more than the {limit:,} bytes expected")
        out.write(data)
        done += len(data)
        if progress:
            progress(done, total)


def _fetch(url: str, part: Path, size: int | None, timeout_s: float, chunk: int, progress: Progress | None) -> None:
    """Bring ``part`` to the whole file (resuming it when possible), or raise DownloadError."""
    response, offset = _start(url, part, size, timeout_s)
    with response:
        total = _expected(url, response, offset, size)
        with writing(part), open(part, "ab" if offset else "wb") as out:  # a full disk is not the server's fault
            done = _copy(url, response, out, offset, total, size if size is not None else MAX_BYTES,
                         timeout_s, chunk, progress)
            out.flush()
            os.fsync(out.fileno())
    if total is not None and done < total:
        raise DownloadError(f"download of {url} was cut short: {done:,} of {total:,} bytes arrived; "
                            "run the same command again to resume")


def _verify(url: str, part: Path, sha256: str) -> None:
    actual = file_sha256(part)
    if actual != sha256:
        raise _Discard(f"download of {url} is not the pinned archive: its sha256 is {actual[:12]}..., "
                       f"expected {sha256[:12]}...; the file was deleted")


def download(url: str, dest: Path, *, sha256: str, size: int | None = None, timeout_s: float = 30.0,
             progress: Progress | None = None, chunk: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``, once the whole file has SHA-256 ``sha256`` (and
    ``size`` bytes, when given). See the module docstring for resuming, stalls and limits.

    ``progress(done, total)`` is called when the body starts and after every chunk (``total`` None when
    unknown). A ``dest`` that already has the digest is returned without touching the network. Bad
    arguments (a scheme other than http(s), a malformed digest) are a ValueError; everything that goes
    wrong on the way is a one-line :class:`DownloadError`."""
    _check_url(url)
    sha256 = _checked_sha256(sha256)
    if size is not None and not (_is_int(size) and 0 < size <= MAX_BYTES):
        raise ValueError(f"size={_show(size)} is not allowed: it must be an integer from 1 to {MAX_BYTES:,}, or None")
    if not timeout_s > 0 or not chunk > 0:
        raise ValueError(f"timeout_s={timeout_s!r} and chunk={chunk!r} must both be positive")
    dest = Path(dest)
    if dest.is_file() and file_sha256(dest) == sha256:
        return dest
    part = part_path(dest)
    try:
        _fetch(url, part, size, timeout_s, chunk, progress)
        _verify(url, part, sha256)
    except _Discard as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(str(exc)) from None
    os.replace(part, dest)
    return dest


def progress_printer(label: str, stream: IO[str] | None = None, every_s: float = 2.0) -> Progress:
    """A ``progress`` for :func:`download` that prints ``pull <label>: 12.0 of 80.5 MB (15%), 3.1 MB/s``
    to ``stream`` (default: ``sys.stderr`` at the time of printing) at most every ``every_s`` seconds, and
    once more when the download is complete. The rate counts only the bytes of this run, not those of a
    resumed ``.part`` (the first call gives the starting point)."""
    state: dict[str, float] = {}

    def show(done: int, total: int | None) -> None:
        now = time.monotonic()
        if not state:
            state.update(start=now, base=done, last=now)
        finished = total is not None and done >= total
        if not finished and now - state["last"] < every_s:
            return
        state["last"] = now
        rate = (done - state["base"]) / max(now - state["start"], 1e-6)
        amount = f"{done / 1e6:,.1f} of {_mb(total)} ({100 * done // max(total, 1)}%)" if total else _mb(done)
        print(f"pull {label}: {amount}, {rate / 1e6:,.1f} MB/s", file=stream or sys.stderr, flush=True)

    return show


# ---------------------------------------------------------------------------------------------
# Pinning and pulling
# ---------------------------------------------------------------------------------------------


def write_published(path: Path, archive: Published) -> None:
    """Add ``archive`` to the pins in ``path`` (replacing a pin of the same name), written atomically."""
    path = Path(path)
    pins = [a for a in (read_published(path) if path.is_file() else []) if a.name != archive.name]
    pins = sorted([*pins, archive], key=lambda a: a.name)
    text = json.dumps({"format": FORMAT, "archives": [dataclasses.asdict(a) for a in pins]}, indent=1) + "\n"
    write_atomically(path, text.encode())


def default_pins() -> Path:
    """The repository's pins of the published archives (``reports/paper/published.json`` in a checkout)."""
    return Path(__file__).resolve().parents[2] / "reports" / "paper" / "published.json"


def pull_archive(url: str, store: Store, *, pins: Path | None = None, sha256: str | None = None,
                 timeout_s: float = 30.0, keep: bool = False) -> ImportReport:
    """Download the archive at ``url`` (resumably, with progress), accept it only with the digest the
    repository pins for it (or ``sha256``, given by the user), and import it into ``store`` with every
    check of :func:`kag.experiments.archive.import_archive`. The download lives in ``<store>/downloads``
    until the import is done (kept with ``keep``, and after a failed import so a retry needs no network)."""
    pins = Path(pins) if pins is not None else default_pins()
    if sha256 is None and not pins.is_file():
        raise ValueError(f"no pins at {pins}: give --published FILE, or --sha256 for an archive you trust")
    archive = pinned_for(url, read_published(pins) if pins.is_file() else [], sha256)
    dest = store.root / "downloads" / (_url_file_name(url) or archive.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    download(url, dest, sha256=archive.sha256, size=archive.size, timeout_s=timeout_s,
             progress=None if quiet() else progress_printer(dest.name))
    report = import_archive(store, dest)
    if not keep and not report.rejected:
        dest.unlink(missing_ok=True)
    return report
