"""The report renderer on a real ``smoke`` report (tests/data/report_sample.json): files, links, strict JSON."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from kag.repro.report.figures import FIGURES
from kag.repro.report.render import data_uri, render, render_figures

SAMPLE = Path(__file__).parent / "data" / "report_sample.json"


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(SAMPLE.read_text())


@pytest.fixture(scope="module")
def report(data: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(copy.deepcopy(data), tmp_path_factory.mktemp("report"))


def _strict_json(text: str):
    def reject(name: str):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=reject)


def test_render_writes_every_file_and_every_figure_with_data(report: Path):
    for name in ("results.json", "index.html", "README.md"):
        assert (report / name).stat().st_size > 0, name
    # every figure but C2-depth's, which needs 3+ hidden layers (the fake world is the paper's 2-layer MLP)
    assert sorted(p.stem for p in report.glob("*.png")) == sorted(set(FIGURES) - {"c2_depth"})
    assert not list(report.glob(".*.tmp")), "temporary files left behind"


def test_figures_are_small_pngs(report: Path):
    for png in report.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png.name
        assert png.stat().st_size < 100_000, f"{png.name} is {png.stat().st_size} bytes"


def test_html_is_self_contained_and_names_every_claim(report: Path, data: dict):
    html = (report / "index.html").read_text()
    for c in data["criteria"]:
        assert f'id="{c["id"]}"' in html, c["id"]
    assert f"<b>{data['profile']['name']}</b> profile" in html
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html
    srcs = re.findall(r'<img[^>]*\bsrc="([^"]+)"', html)
    assert srcs, "no figure in the report"
    for src in srcs:  # embedded: the page needs no file beside it
        assert src.startswith("data:image/png;base64,"), src[:60]
    assert {data_uri(p.read_bytes()) for p in report.glob("*.png")} == set(srcs)


def test_html_marks_statuses_and_verdicts_with_classes(report: Path, data: dict):
    html = (report / "index.html").read_text()
    status_class = {"reproduced": "ok", "contradicted": "bad", "inconclusive": "warn", "not run": "na"}
    for s in data["summary"]:
        assert f'<span class="badge {status_class[s["status"]]}" title="{s["status"]}">{s["label"]}</span>' in html
    for c in data["criteria"]:
        for r in c["cells"]:
            word = r["verdict"] or "not judged"
            assert f'<span class="verdict {word.replace(" ", "-")}">{word}</span>' in html
    assert '<section class="control">' in html


def test_a_control_that_is_invalid_or_shows_kag_is_shown_in_its_own_words(data: dict, tmp_path: Path):
    d = copy.deepcopy(data)
    d["figures_data"] = {}
    n1 = next(s for s in d["summary"] if s["id"] == "N1")
    n1.update(status="inconclusive", label="invalid: NaN in PR ratio (null) at seed 1 (cell n=8-k=1-L1)")
    crit = next(c for c in d["criteria"] if c["id"] == "N1")
    crit["cells"][0].update(verdict="invalid", as_expected=False)
    crit["cells"][1].update(verdict="supported", as_expected=False)
    out = render(d, tmp_path)
    md, html = (out / "README.md").read_text(), (out / "index.html").read_text()
    assert "**invalid: NaN in PR ratio (null) at seed 1 (cell n=8-k=1-L1)**" in md
    assert "| supported (the control shows KAG) | no |" in md
    assert '<span class="verdict invalid">invalid</span>' in html


def test_html_escapes_text(data: dict, tmp_path: Path):
    d = copy.deepcopy(data)
    d["criteria"][0]["claim"] = "<script>alert(1)</script>"
    d["figures_data"] = {}
    html = (render(d, tmp_path) / "index.html").read_text()
    assert "<script" not in html and "&lt;script&gt;" in html


def test_sample_uses_the_verdict_words(data: dict):
    words = {"supported", "contradicted", "inconclusive", "invalid", None}
    for s in data["summary"]:
        assert s["status"] in ("reproduced", "contradicted", "inconclusive", "not run"), s
        assert sum(s["counts"].values()) == s["n_cells"] and s["counts_text"]
    for c in data["criteria"]:
        for r in c["cells"]:
            assert r["verdict"] in words and (r["verdict"] is None) == (r["as_expected"] is None), (c["id"], r["cell"])
    n1 = next(s for s in data["summary"] if s["id"] == "N1")
    assert n1["control"] and n1["label"] in ("the control says no", "not run") or n1["label"].startswith(
        ("the control shows KAG", "invalid: ", "inconclusive: "))


def test_readme_has_summary_table_and_every_claim(report: Path, data: dict):
    md = (report / "README.md").read_text()
    assert "| Claim | Statement | Status | Robustness | Cells | Key number |" in md
    for c in data["criteria"]:
        assert f"### {c['id']}" in md, c["id"]
    assert "![" in md and "](global_pr_ratio.png)" in md
    summary = md[md.index("## Summary"):]
    for s in data["summary"]:
        line = next(line for line in summary.splitlines() if line.startswith(f"| [{s['id']}]"))
        assert f" **{s['label']}** | — | {s['counts_text']}" in line, line  # the sample has no variants
    n1 = next(line for line in summary.splitlines() if line.startswith("| [N1]"))
    assert "control: as expected when every cell is contradicted or inconclusive" in n1
    assert "| Cell | Outcome | Verdict | As expected | Measured values |" in md
    assert ", measurement SE " in md  # beside the seed std where the tables carry bootstrap SEs
    # A `|` inside a value must not split a table row.
    for line in md.splitlines():
        if line.startswith("| `"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 6, line


def test_results_json_is_strict_even_with_nan(data: dict, tmp_path: Path):
    d = copy.deepcopy(data)
    acc = {"clean": [float("nan"), 0.9], "shifted": [0.5, float("inf")]}
    d["figures_data"] = {"accuracy": {"standard": {"8": acc}}}
    render(d, tmp_path)
    out = _strict_json((tmp_path / "results.json").read_text())
    assert out["figures_data"]["accuracy"]["standard"]["8"]["clean"] == [None, 0.9]
    assert [p.name for p in tmp_path.glob("*.png")] == ["accuracy.png"]


def test_empty_figures_data_renders_without_figures(data: dict, tmp_path: Path):
    d = copy.deepcopy(data)
    d["figures_data"] = {}
    render(d, tmp_path)
    assert not list(tmp_path.glob("*.png"))
    html = (tmp_path / "index.html").read_text()
    assert "<img" not in html and "No figure" in html
    assert "](" + "global_pr_ratio.png)" not in (tmp_path / "README.md").read_text()


def test_each_figure_skips_missing_or_partial_data(data: dict):
    fd = data["figures_data"]
    partial = {"global": {"standard": fd["global"]["standard"]}, "spatial": {}, "timeline": {"standard": {}},
               "accuracy": {"augmented": {}}, "zero_rows": None}
    for stem, fn in FIGURES.items():
        assert fn({}) is None, stem
        fn(partial)  # draws what is there or returns None; never raises


def test_rerender_removes_stale_pngs_but_not_foreign_ones(report: Path, data: dict, tmp_path: Path):
    out = tmp_path / "r"
    out.mkdir()
    for stem in FIGURES:
        (out / f"{stem}.png").write_bytes(b"stale")
    (out / "notes.png").write_bytes(b"not ours")
    d = copy.deepcopy(data)
    d["figures_data"] = {"accuracy": data["figures_data"]["accuracy"]}
    render(d, out)
    assert sorted(p.name for p in out.glob("*.png")) == ["accuracy.png", "notes.png"]
    assert (out / "accuracy.png").read_bytes() == (report / "accuracy.png").read_bytes()


def test_figures_are_deterministic(data: dict, tmp_path: Path):
    fd = {"zero_rows": data["figures_data"]["zero_rows"]}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert render_figures(fd, tmp_path / "a") == render_figures(fd, tmp_path / "b") == ["zero_rows"]
    assert (tmp_path / "a" / "zero_rows.png").read_bytes() == (tmp_path / "b" / "zero_rows.png").read_bytes()


def test_figures_are_memoised_on_their_data_and_redrawn_when_it_changes(data, tmp_path, monkeypatch):
    """A re-render on unchanged numbers reuses the cached PNGs byte for byte without drawing; changed
    data, or a damaged cache file, is drawn again."""
    import sys

    render_module = sys.modules["kag.repro.report.render"]  # the package re-exports a function of that name

    drawn = []
    # Three of the registered figures: the memo works figure by figure, and drawing all of them three
    # times cost 30 s of the suite
    real = {stem: render_module.FIGURES[stem] for stem in ("accuracy", "zero_rows", "timeline")}
    counting = {stem: (lambda fd, fn=fn, stem=stem: drawn.append(stem) or fn(fd)) for stem, fn in real.items()}
    monkeypatch.setattr(render_module, "FIGURES", counting)
    monkeypatch.setenv("KAG_HOME", str(tmp_path / "home"))  # an empty figure cache
    for sub in "abcd":
        (tmp_path / sub).mkdir()
    first = render_module._write_figures(data["figures_data"], tmp_path / "a")
    assert first and set(drawn) == set(real)
    drawn.clear()
    second = render_module._write_figures(data["figures_data"], tmp_path / "b")
    assert drawn == [] and second == first
    changed = copy.deepcopy(data["figures_data"])
    changed["changed"] = 1
    render_module._write_figures(changed, tmp_path / "c")
    assert set(drawn) == set(real)
    for cached in (Path(os.environ["KAG_HOME"]) / "figures").glob("*.png"):
        cached.write_bytes(b"not a png")
    drawn.clear()
    assert render_module._write_figures(data["figures_data"], tmp_path / "d") == first and set(drawn) == set(real)


def test_the_figure_cache_keeps_the_most_recently_used_within_its_size(tmp_path, monkeypatch):
    import time

    from kag.repro.report.render import prune_figure_cache

    monkeypatch.setenv("KAG_HOME", str(tmp_path))
    folder = tmp_path / "figures"
    folder.mkdir()
    for i in range(10):  # ten 1 KB figures, the oldest first
        (folder / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1016))
        os.utime(folder / f"{i}.png", (time.time() - 100 + i, time.time() - 100 + i))
    assert prune_figure_cache(max_bytes=4096) == 6
    assert sorted(p.name for p in folder.iterdir()) == ["6.png", "7.png", "8.png", "9.png"]
    assert prune_figure_cache(max_bytes=4096) == 0
