"""The claims suite end to end on the smoke profile: cold run, report, cache reuse, export/import,
-k selection, and `kag report` from the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "KAG_HOME": str(home), "KAG_QUIET": "0", **env}
    environment.pop("PYTEST_XDIST_WORKER", None)
    environment.pop("PYTEST_XDIST_WORKER_COUNT", None)
    return subprocess.run(args, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)


def _pytest_claims(home: Path, report: Path, *extra: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "pytest", "claims", "--kag-profile", "smoke", "-p", "no:cacheprovider",
                 "--kag-report-dir", str(report), "-q", *extra], home)


def test_smoke_claims_cold_then_warm_then_imported(tmp_path):
    home, report = tmp_path / "home", tmp_path / "report"
    cold = _pytest_claims(home, report, "-n", "2")
    assert cold.returncode in (0, 1), cold.stdout[-3000:] + cold.stderr[-3000:]  # smoke verdicts may fail
    assert "error" not in cold.stdout.splitlines()[-1], cold.stdout[-3000:]

    # every model trained exactly once across the two workers: 2 widths x 2 regimes x 3 seeds
    models = list((home / "store" / "models").glob("[0-9a-f]*"))
    assert len(models) == 12
    events = [json.loads(line) for line in (home / "store" / "events.jsonl").read_text().splitlines()]
    trained = sorted((e["width"], e["regime"]) for e in events if e["kind"] == "train")
    assert trained == sorted({(w, r) for w in (8, 16) for r in ("standard", "augmented")})  # each group once
    computed = [(e["width"], e["regime"], e["seed"], e["eval_images"]) for e in events if e["kind"] == "metrics"]
    assert len(computed) == len(set(computed)) == 15  # 12 clean tables + 3 augmented-on-shifted (largest width)
    assert len({e["pid"] for e in events}) == 2  # both workers did work

    data = json.loads((report / "results.json").read_text())
    ids = {c["id"] for c in data["criteria"]}
    assert {"C1-PR", "C1-KL", "C1-RR", "N1", "C11"} <= ids and {f"C{i}" for i in range(2, 12)} <= ids
    by_id = {c["id"]: c for c in data["criteria"]}
    assert by_id["C9"]["status"] == "not run"  # judged under the paper profile only
    assert all(row["supported"] is not None for row in by_id["N1"]["cells"])
    assert data["provenance"]["profile"] == "smoke" and data["provenance"]["cache"]["models"]
    assert (report / "index.html").is_file() and (report / "README.md").is_file()

    warm = _pytest_claims(home, report, "-n", "0")
    assert warm.returncode in (0, 1)
    assert len((home / "store" / "events.jsonl").read_text().splitlines()) == len(events)  # all from the store

    # -k with '=' selects exactly the named cells
    selected = _pytest_claims(home, tmp_path / "report_k", "-k", "C5 and n=16", "--collect-only")
    lines = [line for line in selected.stdout.splitlines() if "::" in line]
    assert lines and all("test_C5_" in line and "n=16" in line for line in lines)

    # export, import elsewhere: judging needs no training and no metric computation
    archive = tmp_path / "cache.tar.gz"
    assert _run([sys.executable, "-m", "kag", "cache", "export", str(archive)], home).returncode == 0
    other = tmp_path / "other"
    assert _run([sys.executable, "-m", "kag", "cache", "import", str(archive)], other).returncode == 0
    imported = _pytest_claims(other, tmp_path / "report2", "-n", "0")
    assert imported.returncode in (0, 1)
    assert not (other / "store" / "events.jsonl").exists()  # nothing trained, nothing computed
    assert len(list((other / "store" / "models").glob("[0-9a-f]*"))) == 12

    # `kag report` re-renders from the cache with the same verdicts
    rerender = _run([sys.executable, "-m", "kag", "report", "--profile", "smoke", "--out", str(tmp_path / "report3")], other)
    assert rerender.returncode == 0, rerender.stderr
    again = json.loads((tmp_path / "report3" / "results.json").read_text())
    assert [c["status"] for c in again["criteria"]] == [c["status"] for c in data["criteria"]]
