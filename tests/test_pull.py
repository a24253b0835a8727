"""kag.experiments.pull against a real HTTP server on 127.0.0.1 that misbehaves on demand:
truncated bodies, ignored ranges, stalls, extra bytes, wrong files and errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kag.errors import KagError
from kag.experiments.pull import (
    DownloadError,
    Published,
    download,
    pinned_for,
    progress_printer,
    read_published,
)

PAYLOAD = os.urandom(300_000)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
STALL_TIMEOUT = 0.5


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.payload`` at any path, the way ``server.mode`` says."""

    server: "Server"

    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        srv = self.server
        srv.requests.append(self.headers.get("Range"))
        mode, data = srv.mode, srv.payload
        if mode == "404":
            self.send_error(404, "Not Found")
        elif mode == "redirect-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/archive.tar.gz")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif mode == "silent":  # accept the connection, then say nothing
            srv.release.wait(5)
        elif mode == "stall":  # headers and a first part, then nothing
            self._body_headers(200, len(data))
            self.wfile.write(data[:50_000])
            self.wfile.flush()
            srv.release.wait(5)
        elif mode == "truncate":  # announce everything, send half, hang up
            self._body_headers(200, len(data))
            self.wfile.write(data[: len(data) // 2])
        elif mode == "extra":  # more than the pinned size, announced honestly
            self._body_headers(200, len(data) + 1000)
            self.wfile.write(data + b"x" * 1000)
        elif mode == "extra-unannounced":  # more than the pinned size, no Content-Length
            self._body_headers(200, None)
            self.wfile.write(data + b"x" * 1000)
        elif mode == "no-ranges" and self.headers.get("Range"):
            self.send_error(416, "Range Not Satisfiable")
        elif mode in ("ignore-range", "no-ranges"):
            self._body_headers(200, len(data))
            self.wfile.write(data)
        else:  # "ok": honours Range
            start = self._range_start()
            if start is None:
                self._body_headers(200, len(data))
            else:
                self._body_headers(206, len(data) - start, f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.wfile.write(data[start or 0:])

    def _range_start(self) -> int | None:
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        return int(m.group(1)) if m else None

    def _body_headers(self, status: int, length: int | None, content_range: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/gzip")
        if length is not None:
            self.send_header("Content-Length", str(length))
        if content_range:
            self.send_header("Content-Range", content_range)
        self.end_headers()


class Server(ThreadingHTTPServer):
    block_on_close = False  # a stalling handler must not hold up the teardown
    mode = "ok"
    payload = PAYLOAD

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[str | None] = []  # the Range header of each request (None: none sent)
        self.release = threading.Event()  # ends the stalls

    def handle_error(self, request, client_address) -> None:  # a client that hangs up is expected here
        pass

    def url(self, name: str = "kag-paper-mnist-mlp.tar.gz") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/archives/{name}"


@pytest.fixture
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# ---------------------------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------------------------


def test_full_download_is_verified_and_reports_progress(server, tmp_path):
    calls: list[tuple[int, int | None]] = []
    dest = tmp_path / "a.tar.gz"
    out = download(server.url(), dest, sha256=DIGEST, size=len(PAYLOAD), chunk=64 << 10,
                   progress=lambda done, total: calls.append((done, total)))
    assert out == dest and dest.read_bytes() == PAYLOAD and not _part(dest).exists()
    done = [d for d, _ in calls]
    assert done[0] == 0 and done[1:] == sorted(set(done[1:])) and len(done) > 2
    assert done[-1] == len(PAYLOAD) and {t for _, t in calls} == {len(PAYLOAD)}
    assert server.requests == [None]


def test_size_unknown_is_checked_by_digest_only(server, tmp_path):
    dest = download(server.url(), tmp_path / "a.tar.gz", sha256=DIGEST.upper())
    assert dest.read_bytes() == PAYLOAD


def test_truncated_download_is_kept_and_resumed(server, tmp_path):
    dest, half = tmp_path / "a.tar.gz", len(PAYLOAD) // 2
    server.mode = "truncate"
    with pytest.raises(DownloadError) as exc:
        download(server.url(), dest, sha256=DIGEST, size=len(PAYLOAD))
    assert "resume" in _one_line(exc) and f"{half:,} of {len(PAYLOAD):,}" in str(exc.value)
    assert _part(dest).read_bytes() == PAYLOAD[:half] and not dest.exists()

    server.mode = "ok"
    download(server.url(), dest, sha256=DIGEST, size=len(PAYLOAD))
    assert server.requests[-1] == f"bytes={half}-"
    assert dest.read_bytes() == PAYLOAD and not _part(dest).exists()


def test_server_that_ignores_range_gets_a_fresh_start(server, tmp_path):
    dest = tmp_path / "a.tar.gz"
    _part(dest).write_bytes(b"junk from an earlier try" * 100)  # not even a prefix of the file
    server.mode = "ignore-range"
    download(server.url(), dest, sha256=DIGEST, size=len(PAYLOAD))
    assert server.requests == ["bytes=2400-"]
    assert dest.read_bytes() == PAYLOAD and not _part(dest).exists()


def test_range_the_server_cannot_serve_starts_over(server, tmp_path):
    dest = tmp_path / "a.tar.gz"
    _part(dest).write_bytes(PAYLOAD[:1000])
    server.mode = "no-ranges"  # answers 416 to any Range
    download(server.url(), dest, sha256=DIGEST)
    assert server.requests == ["bytes=1000-", None] and dest.read_bytes() == PAYLOAD


def test_part_as_large_as_the_file_is_not_trusted(server, tmp_path):
    dest = tmp_path / "a.tar.gz"
    _part(dest).write_bytes(b"\0" * len(PAYLOAD))
    download(server.url(), dest, sha256=DIGEST, size=len(PAYLOAD))
    assert server.requests == [None] and dest.read_bytes() == PAYLOAD


def test_existing_dest_with_the_digest_needs_no_network(server, tmp_path):
    dest = tmp_path / "a.tar.gz"
    dest.write_bytes(PAYLOAD)
    assert download(server.url(), dest, sha256=DIGEST, size=len(PAYLOAD)) == dest
    assert server.requests == []


def test_wrong_digest_leaves_nothing_behind(server, tmp_path):
    dest, other = tmp_path / "a.tar.gz", hashlib.sha256(b"another archive").hexdigest()
    with pytest.raises(DownloadError) as exc:
        download(server.url(), dest, sha256=other, size=len(PAYLOAD))
    assert DIGEST[:12] in _one_line(exc) and other[:12] in str(exc.value)
    assert not dest.exists() and not _part(dest).exists()


@pytest.mark.parametrize("mode", ["stall", "silent"])
def test_stalling_server_fails_within_the_timeout(server, tmp_path, mode):
    dest = tmp_path / "a.tar.gz"
    server.mode = mode
    start = time.monotonic()
    with pytest.raises(DownloadError) as exc:
        download(server.url(), dest, sha256=DIGEST, size=len(PAYLOAD), timeout_s=STALL_TIMEOUT)
    elapsed = time.monotonic() - start
    assert elapsed < 5 and "stalled" in _one_line(exc) and "resume" in str(exc.value)
    if mode == "stall":
        assert _part(dest).read_bytes() == PAYLOAD[:50_000]
        assert f"after 50,000 of {len(PAYLOAD):,} bytes" in str(exc.value)


def test_http_error_is_named(server, tmp_path):
    server.mode = "404"
    with pytest.raises(DownloadError) as exc:
        download(server.url(), tmp_path / "a.tar.gz", sha256=DIGEST)
    assert "404" in _one_line(exc) and server.url() in str(exc.value)
    assert isinstance(exc.value, KagError)


def test_connection_refused_is_a_download_error(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.tar.gz"
    with pytest.raises(DownloadError) as exc:
        download(url, tmp_path / "a.tar.gz", sha256=DIGEST, timeout_s=2)
    assert url in _one_line(exc)


def test_redirect_away_from_http_is_refused(server, tmp_path):
    server.mode = "redirect-ftp"
    with pytest.raises(DownloadError) as exc:
        download(server.url(), tmp_path / "a.tar.gz", sha256=DIGEST)
    assert "ftp://" in _one_line(exc)


@pytest.mark.parametrize("url", ["ftp://example.org/a.tar.gz", "file:///etc/passwd", "/etc/passwd", "http://"])
def test_only_http_urls_are_allowed(tmp_path, url):
    with pytest.raises(ValueError, match="only http:// and https://") as exc:
        download(url, tmp_path / "a.tar.gz", sha256=DIGEST)
    _one_line(exc)
    assert not (tmp_path / "a.tar.gz").exists()


def test_malformed_digest_is_refused(server, tmp_path):
    with pytest.raises(ValueError, match="64 hex digits"):
        download(server.url(), tmp_path / "a.tar.gz", sha256="abc")
    assert server.requests == []


@pytest.mark.parametrize("mode", ["extra", "extra-unannounced"])
def test_more_bytes_than_pinned_are_refused(server, tmp_path, mode):
    dest = tmp_path / "a.tar.gz"
    server.mode = mode
    with pytest.raises(DownloadError) as exc:
        download(server.url(), dest, sha256=DIGEST, size=len(PAYLOAD))
    assert f"{len(PAYLOAD):,}" in _one_line(exc)
    assert not dest.exists() and not _part(dest).exists()


def test_progress_printer_prints_the_amount_and_rate():
    out = io.StringIO()
    show = progress_printer("kag-paper.tar.gz", out)
    for done in range(0, 80_500_001, 8_050_000):
        show(done, 80_500_000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1  # the calls came within 2 s: only the final line
    assert re.fullmatch(r"pull kag-paper\.tar\.gz: 80\.5 of 80\.5 MB \(100%\), [\d,]+\.\d MB/s", lines[0])


# ---------------------------------------------------------------------------------------------
# read_published and pinned_for
# ---------------------------------------------------------------------------------------------

ARCHIVE = {"name": "kag-paper-mnist-mlp.tar.gz", "sha256": DIGEST, "bytes": len(PAYLOAD),
           "url": "https://example.org/releases/download/v1/kag-paper-mnist-mlp.tar.gz",
           "entries": 120, "profile": "paper", "study": "mnist-mlp"}


def _write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "published.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def test_read_published_reads_a_good_file(tmp_path):
    other = {**ARCHIVE, "name": "kag-quick.tar.gz", "url": None, "profile": "quick"}
    published = read_published(_write(tmp_path, {"format": 1, "archives": [ARCHIVE, other]}))
    assert published == [Published(**ARCHIVE), Published(**other)]
    assert published[0].size == len(PAYLOAD)


@pytest.mark.parametrize("content, field", [
    ({"format": 1, "archives": [{**ARCHIVE, "sha256": "z" * 64}]}, "sha256"),
    ({"format": 1, "archives": [{**ARCHIVE, "sha256": DIGEST.upper()}]}, "sha256"),
    ({"format": 1, "archives": [{**ARCHIVE, "bytes": True}]}, "bytes"),
    ({"format": 1, "archives": [{**ARCHIVE, "bytes": 0}]}, "bytes"),
    ({"format": 1, "archives": [{**ARCHIVE, "bytes": "300000"}]}, "bytes"),
    ({"format": 1, "archives": [{**ARCHIVE, "bytes": 1.5}]}, "bytes"),
    ({"format": 1, "archives": [{**ARCHIVE, "entries": -1}]}, "entries"),
    ({"format": 1, "archives": [{**ARCHIVE, "url": "file:///etc/passwd"}]}, "url"),
    ({"format": 1, "archives": [{**ARCHIVE, "name": "../evil.tar.gz"}]}, "name"),
    ({"format": 1, "archives": [{k: v for k, v in ARCHIVE.items() if k != "study"}]}, "study"),
    ({"format": 1, "archives": [{**ARCHIVE, "extra": 1}]}, "extra"),
    ({"format": 1, "archives": [ARCHIVE, ARCHIVE]}, "name"),
    ({"format": 1, "archives": ["kag.tar.gz"]}, "archives[0]"),
    ({"format": 1, "archives": {}}, "archives"),
    ({"format": 2, "archives": []}, "format"),
    ({"format": True, "archives": []}, "format"),
    ([ARCHIVE], "format"),
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "UTF-8"),
    (b'{"format": NaN, "archives": []}', "not JSON"),
    (b"[" * 60_000, "nested"),
    (b" " * (1 << 20) + b"{}", "larger than"),
])
def test_read_published_refuses_malformed_files(tmp_path, content, field):
    path = _write(tmp_path, content)
    with pytest.raises(ValueError) as exc:
        read_published(path)
    assert str(path) in _one_line(exc) and field in str(exc.value)


PUBLISHED = [Published(**ARCHIVE), Published(**{**ARCHIVE, "name": "kag-quick.tar.gz", "url": None})]


@pytest.mark.parametrize("url", [
    "https://mirror.example/kag-paper-mnist-mlp.tar.gz",
    "https://mirror.example/x/kag-paper-mnist-mlp.tar.gz?download=1",
    "https://mirror.example/x/kag%2Dpaper-mnist-mlp.tar.gz",
    ARCHIVE["url"],
])
def test_pinned_for_matches_the_file_name_or_the_url(url):
    assert pinned_for(url, PUBLISHED) is PUBLISHED[0]


def test_pinned_for_matches_the_pinned_url_whatever_its_name():
    published = [Published(**{**ARCHIVE, "url": "https://example.org/download?id=7"})]
    assert pinned_for("https://example.org/download?id=7", published) is published[0]


def test_pinned_for_refuses_an_unpinned_url():
    with pytest.raises(ValueError) as exc:
        pinned_for("https://example.org/other.tar.gz", PUBLISHED)
    text = _one_line(exc)
    assert "url=https://example.org/other.tar.gz" in text and "--sha256" in text
    assert "kag-paper-mnist-mlp.tar.gz" in text and "kag-quick.tar.gz" in text


def test_pinned_for_with_a_digest_pins_an_unpinned_archive():
    other = hashlib.sha256(b"other").hexdigest()
    got = pinned_for("https://example.org/x/other.tar.gz", PUBLISHED, sha256=other.upper())
    assert (got.name, got.sha256, got.bytes, got.size, got.url) == (
        "other.tar.gz", other, -1, None, "https://example.org/x/other.tar.gz")
    # an override for a pinned name replaces its digest, and the size is no longer known
    got = pinned_for("https://example.org/kag-quick.tar.gz", PUBLISHED, sha256=other)
    assert (got.sha256, got.size) == (other, None)
    # an override equal to the pinned digest keeps the pinned size
    assert pinned_for("https://example.org/kag-quick.tar.gz", PUBLISHED, sha256=DIGEST) is PUBLISHED[1]
    with pytest.raises(ValueError, match="64 hex digits"):
        pinned_for("https://example.org/x/other.tar.gz", PUBLISHED, sha256="not-a-digest")
    with pytest.raises(ValueError, match="file name"):
        pinned_for("https://example.org/x/", PUBLISHED, sha256=other)


# -- release, pin, pull, import: the whole path a user takes ------------------------------------
def _released(tmp_path: Path, monkeypatch) -> tuple[Path, Path, list[str]]:
    """A store with two models and a table, released as the smoke profile: (archive, pins, keys)."""
    import kag.repro.publish as publish
    from entries import save_metrics, save_model
    from kag.experiments.store import Store
    from kag.repro.profiles import get_profile

    source = Store(tmp_path / "source")
    models = [save_model(source, seed=s) for s in (0, 1)]
    tables = [save_metrics(source, models[0])]
    save_model(source, seed=7)  # in the store, but not read by the profile: not released
    monkeypatch.setattr(publish, "needed_keys", lambda profile: (set(models), set(tables)))
    pins = tmp_path / "published.json"
    pin = publish.release(get_profile("smoke"), tmp_path / "out", store=source, pins=pins)
    archive = tmp_path / "out" / pin.name
    assert pin.entries == 3 and read_published(pins) == [pin]
    again = publish.release(get_profile("smoke"), tmp_path / "again", store=source, pins=pins)
    assert again.sha256 == pin.sha256  # deterministic: the same entries give the same bytes
    return archive, pins, sorted(models + tables)


def test_release_refuses_an_incomplete_profile(tmp_path, monkeypatch):
    import kag.repro.publish as publish
    from kag.experiments.store import Store
    from kag.repro.profiles import get_profile

    monkeypatch.setattr(publish, "needed_keys", lambda profile: ({"a" * 64}, set()))
    with pytest.raises(ValueError, match="not complete.*1 of 1 entries are missing"):
        publish.release(get_profile("smoke"), tmp_path / "out", store=Store(tmp_path / "s"), pins=tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "out").exists()


def test_kag_cache_pull_imports_a_pinned_archive_and_refuses_a_wrong_one(server, tmp_path, monkeypatch, capsys):
    from kag.cli import main
    from kag.experiments.store import Store

    archive, pins, keys = _released(tmp_path, monkeypatch)
    server.payload = archive.read_bytes()
    monkeypatch.setenv("KAG_HOME", str(tmp_path / "home"))
    url = server.url(archive.name)

    server.mode = "truncate"  # the first try is cut off: nothing is imported, a rerun resumes
    assert main(["cache", "pull", url, "--published", str(pins), "--timeout", "2"]) == 1
    assert "resume" in capsys.readouterr().err and Store().keys() == []
    server.mode = "ok"
    assert main(["cache", "pull", url, "--published", str(pins)]) == 0
    out = capsys.readouterr().out
    assert "imported 3 new entries" in out and Store().keys() == keys and Store().problems() == []
    assert server.requests[-1] == f"bytes={len(server.payload) // 2}-"
    assert not list((tmp_path / "home" / "store" / "downloads").iterdir())  # imported, then deleted

    server.payload = server.payload[:-1] + bytes([server.payload[-1] ^ 1])  # one bit off: not the pinned archive
    monkeypatch.setenv("KAG_HOME", str(tmp_path / "other"))
    assert main(["cache", "pull", url, "--published", str(pins)]) == 1
    err = capsys.readouterr().err
    assert "not the pinned archive" in err and len([line for line in err.splitlines() if "error" in line]) == 1
    assert Store().keys() == []
    assert main(["cache", "pull", server.url("unknown.tar.gz"), "--published", str(pins)]) == 2
    assert "names no archive pinned" in capsys.readouterr().err


def test_the_committed_release_matches_its_pin_and_imports_whole(tmp_path):
    """reports/paper/published.json pins the archives; the one committed beside its report is the pinned one."""
    from kag.experiments.archive import import_archive
    from kag.experiments.pull import default_pins
    from kag.experiments.store import Store, file_sha256

    root = Path(__file__).resolve().parents[1]
    pins = read_published(default_pins())
    committed = {p: root / "reports" / "studies" / p.study / p.profile / p.name for p in pins}
    present = {p: f for p, f in committed.items() if f.is_file()}
    assert present, "no pinned archive is committed"
    for pin, file in present.items():
        assert (file_sha256(file), file.stat().st_size) == (pin.sha256, pin.bytes)
        store = Store(tmp_path / pin.name)
        report = import_archive(store, file)
        assert len(report.added) == pin.entries and not report.rejected and store.problems() == []


def test_a_full_disk_during_a_download_is_named_as_such(server, tmp_path, monkeypatch):
    from kag.errors import StoreWriteError

    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):
        if str(path).endswith(".part") and "b" in mode and ("w" in mode or "a" in mode):
            raise OSError(28, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk_open)
    with pytest.raises(StoreWriteError, match=r"cannot write .*kag\.tar\.gz\.part: No space left on device"):
        download(server.url(), tmp_path / "kag.tar.gz", sha256=DIGEST, size=len(PAYLOAD))
