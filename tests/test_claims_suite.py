"""The claims suite end to end on the smoke profile, one test per scenario: a cold run with two
xdist workers, its report, a warm rerun, -k selection, export/import, and `kag report`.

One cold run (module fixture) serves every scenario; the tests share an xdist group so that it
runs once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.xdist_group("claims-suite"), pytest.mark.slow]  # real pytest runs of the claims


def _run(args: list[str], home: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    environment = {**os.environ, "KAG_HOME": str(home), "KAG_QUIET": "0"}
    environment.pop("PYTEST_XDIST_WORKER", None)
    environment.pop("PYTEST_XDIST_WORKER_COUNT", None)
    return subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)


def _pytest_claims(home: Path, report: Path, *extra: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "pytest", str(ROOT / "claims"), "--kag-profile", "smoke", "-p",
                 "no:cacheprovider", "--kag-report-dir", str(report), "-q", *extra], home)


def _events(home: Path) -> list[dict]:
    path = home / "store" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """A cold smoke run with two workers: (home, report directory, completed process)."""
    base = tmp_path_factory.mktemp("suite")
    home, report = base / "home", base / "report"
    proc = _pytest_claims(home, report, "-n", "2")
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]  # smoke verdicts may fail
    assert "error" not in proc.stdout.splitlines()[-1], proc.stdout[-3000:]
    return home, report, proc


def test_cold_run_trains_and_measures_every_model_exactly_once_across_workers(cold):
    home, _, _ = cold
    models = list((home / "store" / "models").glob("[0-9a-f]*"))
    assert len(models) == 12  # 2 widths x 2 regimes x 3 seeds
    events = _events(home)
    trained = sorted((e["width"], e["regime"]) for e in events if e["kind"] == "train")
    assert trained == sorted({(w, r) for w in (8, 16) for r in ("standard", "augmented")})  # each group once
    computed = [(e["width"], e["regime"], e["seed"], e["eval_images"]) for e in events if e["kind"] == "metrics"]
    assert len(computed) == len(set(computed)) == 15  # 12 clean tables + 3 augmented-on-shifted (largest width)
    assert len({e["pid"] for e in events}) == 2  # both workers did work


def test_cold_run_shows_progress_while_it_computes(cold):
    _, _, proc = cold
    out = proc.stdout
    assert re.search(r"^\[kag\] smoke profile, \d+ cells of \d+ claims: 12 models to train and 15 metric tables to "
                     r"compute \(the rest is in .*\); progress below$", out, re.M), out[:3000]
    assert re.search(r"^\[kag\] progress: models trained \d+/12( \(training [^)]*\))?, metric tables computed \d+/15, ",
                     out, re.M)
    assert re.search(r"^\[kag\] progress: done: models trained 12/12, metric tables computed 15/15 in ", out, re.M)
    assert out.index("progress: done") < out.index("FAILURES" if "FAILURES" in out else "passed")


def test_cold_run_ends_with_the_headline_and_the_report_path(cold):
    _, report, proc = cold
    lines = proc.stdout.rstrip().splitlines()
    stats = max(i for i, line in enumerate(lines) if re.search(r"\d+ (passed|failed).* in [\d.]+s", line))
    tail = lines[stats + 1:]
    assert re.match(r"^=+ kag: reproduction of arXiv 2511\.21626, smoke profile =+$", tail[0]), tail[:2]
    assert re.match(r"^Outcome (\[Re\]|\[¬Re\]|partial|not run): ", tail[1]), tail[1]
    assert tail[2].split() == ["claim", "status", "robustness", "key", "number"]
    from kag.repro.claims import CLAIMS

    assert [line.split()[0] for line in tail[3:3 + len(CLAIMS)]] == [c.id for c in CLAIMS]
    assert tail[-2].startswith("[kag] this run: trained 12 models")
    assert tail[-1] == (f"[kag] reproduction report (smoke profile): {report / 'index.html'} "
                        f"(also README.md, results.json and table.csv in {report})")


def test_each_failing_cell_says_what_was_expected_and_what_was_measured(cold):
    _, report, proc = cold
    data = json.loads((report / "results.json").read_text())
    failed = [(c["id"], r) for c in data["criteria"] for r in c["cells"] if r["outcome"] == "failed"]
    assert failed
    for cid, row in failed:
        head = f"{cid} [{row['cell']}] {row['verdict']}"
        line = next(line for line in proc.stdout.splitlines() if line.startswith(head))
        assert ": expected " in line and "; measured " in line, line


def test_cold_run_writes_a_report_of_every_registered_claim(cold):
    from kag.repro.claims import CLAIMS
    from kag.repro.report.assemble import STATUSES
    from kag.repro.rules import VERDICTS

    _, report, proc = cold
    data = json.loads((report / "results.json").read_text())
    assert [c["id"] for c in data["criteria"]] == [c.id for c in CLAIMS]
    by_id = {c["id"]: c for c in data["criteria"]}
    assert by_id["C9"]["status"] == "not run"  # judged under the paper profiles only
    assert by_id["C2-depth"]["status"] == "not run"  # smoke is mnist-mlp: two hidden layers, C2-depth needs 3+
    assert by_id["FM1"]["status"] == "not run"  # registered for the xor3d study only
    judged = [c for c in data["criteria"] if c["id"] not in ("C9", "C2-depth", "FM1")]
    assert all(row["verdict"] in VERDICTS for c in judged for row in c["cells"])
    assert all(s["status"] in STATUSES and sum(s["counts"].values()) == s["n_cells"] for s in data["summary"])
    for c in data["criteria"]:  # a failure names the cell and starts with its verdict word
        for row in c["cells"]:
            assert (row["outcome"] == "failed") is (row["as_expected"] is False), (c["id"], row["cell"])
            if row["outcome"] == "failed":
                assert f"{c['id']} [{row['cell']}] {row['verdict']}" in proc.stdout, (c["id"], row["cell"])
    assert all(row["outcome"] != "not run" for c in judged for row in c["cells"])
    assert data["provenance"]["profile"] == "smoke" and data["provenance"]["cache"]["models"]
    assert data["table"]["rows"] > 0 and (report / "table.csv").is_file()
    assert (report / "index.html").is_file() and (report / "README.md").is_file()
    assert "[kag] this run: trained 12 models" in proc.stdout


def test_warm_run_trains_and_computes_nothing_and_xfails_what_is_not_supported(cold, tmp_path):
    home, _, _ = cold
    before = len(_events(home))
    warm = _pytest_claims(home, tmp_path / "report", "-n", "0", "--kag-not-reproduced=xfail")
    assert warm.returncode in (0, 1), warm.stdout[-3000:]
    assert len(_events(home)) == before  # everything from the store
    assert "trained 0 models" in warm.stdout
    assert re.search(r"^\[kag\] smoke profile, \d+ cells of \d+ claims: every model and metric table is in .*; "
                     r"judging only$", warm.stdout, re.M)
    assert "[kag] progress:" not in warm.stdout
    data = json.loads((tmp_path / "report" / "results.json").read_text())
    for c in data["criteria"]:
        for row in c["cells"]:
            if row["verdict"] is None:
                continue
            if c["control"]:  # never xfailed: a control that shows KAG or is invalid fails
                assert row["outcome"] == ("passed" if row["as_expected"] else "failed"), row["cell"]
            else:
                assert row["outcome"] == ("passed" if row["verdict"] == "supported" else "xfailed"), row["cell"]
    control_ok = all(row["as_expected"] for c in data["criteria"] if c["control"] for row in c["cells"])
    assert warm.returncode == (0 if control_ok else 1), warm.stdout[-3000:]


def test_a_warm_run_with_n_auto_starts_no_workers_and_says_so(cold, tmp_path):
    home, _, _ = cold
    warm = _pytest_claims(home, tmp_path / "report", "-n", "auto", "--kag-not-reproduced=xfail")
    assert warm.returncode in (0, 1), warm.stdout[-3000:]
    assert re.search(r"judging only, in this process \(-n auto starts no workers for that\)$", warm.stdout, re.M)
    assert not re.search(r"^(created: )?\d+/?\d* workers", warm.stdout, re.M), warm.stdout[:2000]
    assert (tmp_path / "report" / "results.json").is_file()


def test_k_with_equals_selects_exactly_the_named_cells(cold, tmp_path):
    home, _, _ = cold
    selected = _pytest_claims(home, tmp_path / "report", "-k", "C5 and n=16", "--collect-only")
    lines = [line for line in selected.stdout.splitlines() if "::" in line]
    assert lines and all("test_claim[C5-" in line and "n=16" in line for line in lines)


def test_an_exported_cache_is_judged_elsewhere_without_any_work(cold, tmp_path):
    home, _, _ = cold
    archive = tmp_path / "cache.tar.gz"
    assert _run([sys.executable, "-m", "kag", "cache", "export", str(archive)], home).returncode == 0
    other = tmp_path / "other"
    assert _run([sys.executable, "-m", "kag", "cache", "import", str(archive)], other).returncode == 0
    imported = _pytest_claims(other, tmp_path / "report", "-n", "0")
    assert imported.returncode in (0, 1), imported.stdout[-3000:]
    assert not (other / "store" / "events.jsonl").exists()  # nothing trained, nothing computed
    assert len(list((other / "store" / "models").glob("[0-9a-f]*"))) == 12


def test_kag_report_rerenders_from_the_cache_under_the_current_directory(cold, tmp_path):
    home, report, _ = cold
    rerender = _run([sys.executable, "-m", "kag", "report", "--profile", "smoke"], home, cwd=tmp_path)
    assert rerender.returncode == 0, rerender.stderr
    out = tmp_path / "reports" / "smoke"
    again = json.loads((out / "results.json").read_text())
    first = json.loads((report / "results.json").read_text())
    assert [c["status"] for c in again["criteria"]] == [c["status"] for c in first["criteria"]]
    assert again["figures_data"] == first["figures_data"]
    lines = rerender.stdout.strip().splitlines()  # the headline, as at the end of `pytest claims`, then the path
    assert lines[0].startswith("Outcome ") and lines[1].startswith("claim  ") and "robustness" in lines[1]
    assert lines[-1] == f"report written to {out}"
