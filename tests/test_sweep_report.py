"""The sweep's verdict-matrix report on fake results: the matrix, the summary it generates, the
figures (only the points that vary their axes), results.json, provenance, and ``kag sweep
--report-only``. No cluster and no training: each grid point is judged on a fake results table.

The grid is sweeps/smoke.toml with a weight-decay, an augmentation and an evaluation-images value
added, and the augmentation x weight-decay pair. Every point lives in one world (augmentation raises
the spatial PR ratios, so C8 is contradicted; PR ratios on shifted test images are below 1), except:
at lr=3e-3 layer 2 beats layer 1 (C2 flips), and at augmentation=translate2 augmentation lowers the
PR ratios by 30% and the augmented models score 95.5% on clean test images (C8 and the paper's 96%
recovered there).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest

from fakes import CachedFakeResults, FakeResults, scaled_augmentation
from kag.cli import main
from kag.errors import MissingResults
from kag.repro.claims import CLAIMS, get_claim
from kag.repro.profiles import QUICK, SMOKE
from kag.repro.prose import plain
from kag.repro.report.assemble import jsonable
from kag.repro.report.render import render_sweep
from kag.repro.results import Group
from kag.repro.sweep import report as sweep_report
from kag.repro.sweep.engine import judge_point
from kag.repro.sweep.grid import load_grid, parse_grid

ROOT = Path(__file__).resolve().parents[1]
SMOKE_GRID = ROOT / "sweeps" / "smoke.toml"
SOURCE = "sweeps/smoke-plus.toml"
MORE_AXES = ('weight_decay = [0.0, 1e-4]\naugmentation = ["translate2", "translate4"]\n'
             'eval_images = ["clean", "shifted"]\n\n[design]\npairs = [["augmentation", "weight_decay"]]\n')
SPATIAL = ("balls", "patches", "separation")
PAIR = "weight_decay=0,augmentation=translate2"


def world(factor: float = 1.6, shifted_below_one: bool = True, layers_swapped: bool = False,
          clean_accuracy: float | None = None):
    """:func:`fakes.scaled_augmentation` (augmented spatial PR ratios ``factor`` x standard), with PR
    ratios of 0.5 on shifted test images, layer 2's global values in place of layer 1's (and back),
    and another clean accuracy of the augmented models, each if asked."""
    base = scaled_augmentation(factor)

    def value(**row):
        if layers_swapped and row["analysis"] == "global" and row["layer"] in ("L1", "L2"):
            row = {**row, "layer": {"L1": "L2", "L2": "L1"}[row["layer"]]}
        if (shifted_below_one and row["eval_images"] == "augmented" and row["analysis"] in SPATIAL
                and row["observable"] == "pr_ratio"):
            return 0.5 + 0.001 * row["seed"]
        if (clean_accuracy is not None and row["regime"] == "augmented" and row["observable"] == "test_accuracy"
                and row["condition"] == "clean"):
            return clean_accuracy
        return base(**row)
    return value


WORLDS = {"lr=3e-3": world(layers_swapped=True),
          "augmentation=translate2": world(0.7, shifted_below_one=False, clean_accuracy=0.955)}


@pytest.fixture(scope="module")
def grid():
    return parse_grid(SMOKE_GRID.read_text() + MORE_AXES, SOURCE)


@pytest.fixture(scope="module")
def swept(grid):
    points = grid.points()
    results = {p.name: FakeResults(p.profile, WORLDS.get(p.name, world())) for p in points}
    verdicts = {p.name: judge_point(p.profile, results[p.name]) for p in points}
    return points, results, verdicts


@pytest.fixture(scope="module")
def data(grid, swept):
    points, results, verdicts = swept
    return sweep_report.assemble_sweep(grid, points, verdicts, results)


@pytest.fixture(scope="module")
def rendered(data, tmp_path_factory):
    return render_sweep(data, tmp_path_factory.mktemp("sweep_report"))


def _cell(data, claim: str, point: str) -> dict:
    return next(r for r in data["matrix"] if r["id"] == claim)["cells"][point]


# -- the matrix -------------------------------------------------------------------------------------
def test_the_matrix_has_a_row_per_claim_and_a_column_per_point_default_first(data, swept):
    points, _, verdicts = swept
    names = [p["name"] for p in data["points"]]
    assert names[0] == "default" and sorted(names) == sorted(p.name for p in points) and len(names) == 6
    assert [r["id"] for r in data["matrix"]] == [c.id for c in CLAIMS]
    assert all(list(r["cells"]) == names for r in data["matrix"])
    c2 = get_claim("C2")
    rows = [r for r in verdicts["lr=3e-3"] if r["claim"] == "C2"]
    cell = _cell(data, "C2", "lr=3e-3")
    assert cell["status"] == "contradicted" and cell["plain"] == plain(c2, rows) and cell["plain"]
    assert cell["key_number"] == c2.key_number(rows) and cell["key_number"].startswith("lower bound")
    ok = _cell(data, "C2", "default")
    assert ok["status"] == "reproduced" and ok["plain"] == "" and ok["key_number"]
    assert all(_cell(data, "C9", n)["status"] == "skipped" for n in names)  # judged at the paper's fidelity only
    assert _cell(data, "N1", "default")["label"] == "the control says no"
    c8 = next(r for r in data["matrix"] if r["id"] == "C8")["plain"]  # one sentence, said at five points
    assert len(c8) == 1 and c8[0]["points"] == [n for n in names if n != "augmentation=translate2"]
    assert c8[0]["text"] == _cell(data, "C8", "default")["plain"] and c8[0]["label"] == "contradicted"


def test_the_shifted_point_judges_c5_to_c7_of_augmented_models_on_shifted_images(data, swept, grid):
    points, results, verdicts = swept
    for claim in ("C5", "C6", "C7"):
        assert _cell(data, claim, "default")["status"] == "reproduced", claim
        assert _cell(data, claim, "eval_images=shifted")["status"] == "contradicted", claim
        rows = [r for r in verdicts["eval_images=shifted"] if r["claim"] == claim]
        assert {r["params"]["regime"] for r in rows if r["verdict"] == "contradicted"} == {"augmented"}
        assert all(r["verdict"] == "supported" for r in rows if r["params"]["regime"] == "standard")
        assert all(r["detail"].startswith("on shifted test images: ") for r in rows
                   if r["params"]["regime"] == "augmented")
        shifted = next(p.profile for p in points if p.name == "eval_images=shifted")
        cell = next(c for c in get_claim(claim).cells(shifted) if c.p["regime"] == "augmented")
        assert get_claim(claim).needs(cell, shifted) == [Group(cell.p["n"], "augmented", "augmented")]
        for profile in (SMOKE, QUICK):  # the named profiles read clean images, as before
            cell = next(c for c in get_claim(claim).cells(profile) if c.p["regime"] == "augmented")
            assert get_claim(claim).needs(cell, profile) == [Group(cell.p["n"], "augmented", "clean")]
    # C8 and C9 name their images per cell: the same at the shifted point as at the default
    c8 = {r["cell"]: r["verdict"] for r in verdicts["default"] if r["claim"] == "C8"}
    assert c8 == {r["cell"]: r["verdict"] for r in verdicts["eval_images=shifted"] if r["claim"] == "C8"}
    assert any("eval_images=shifted" in n for n in data["notes"])


# -- the summary ------------------------------------------------------------------------------------
def test_the_summary_names_the_points_where_a_claim_flips(data):
    s = data["summary"]
    flips = {f["claim"]: f for f in s["flips"]}
    assert set(flips) == {"C2", "C5", "C6", "C7", "C8"}
    assert flips["C2"]["by_status"] == {"reproduced": ["default", "weight_decay=0", "augmentation=translate2",
                                                       "eval_images=shifted", PAIR],
                                        "contradicted": ["lr=3e-3"]}
    text = " ".join(s["sentences"])
    assert "C2 is reproduced at the default point and 4 other points; it flips to contradicted at lr=3e-3." in text
    assert "C5 is reproduced at the default point and 4 other points; it flips to contradicted at " \
           "eval_images=shifted." in text
    assert "C8 is contradicted at the default point and 4 other points; it flips to reproduced at " \
           "augmentation=translate2." in text
    held = s["hold"]
    assert "C1-PR" in held and "N1 (the control says no)" in held and "C2" not in held
    assert text.startswith("Reproduced at every point of the grid (6 points): C1-PR, C1-KL, C1-RR, C3,")
    assert "Inconclusive at every point: C4." in text  # one width: rho undefined everywhere
    assert "Not judged at this fidelity: C9 (judged at the paper's fidelity only)." in text


def test_the_summary_says_where_c8_and_the_paper_s_accuracy_are_recovered(data):
    rec = data["summary"]["recovered"]
    assert rec["C8"] == ["augmentation=translate2"]
    everywhere = [p["name"] for p in data["points"]]
    assert rec["accuracy"] == {"clean": ["augmentation=translate2"], "shifted": everywhere}
    c2, c8, band, clean, shifted = rec["sentences"]
    assert band.startswith("C8 cells whose mean reduction lies inside C8's 15%–50% band: ")
    for name, cells in data["summary"]["c8_in_band"].items():  # every in-band cell is named, with its reduction
        assert all(0.15 <= c["reduction"] <= 0.5 and f"{c['cell']}: {c['reduction']:.2f}" in band for c in cells)
    assert data["summary"]["c8_in_band"]["augmentation=translate2"]
    assert c8 == ("C8 (augmentation lowers the PR ratios by 15% to 50% and keeps them above 1) is recovered at "
                  "augmentation=translate2 (mean reduction 0.30).")
    assert c2 == "C2 (layer 1's PR ratio above layer 2's) is recovered at every point but lr=3e-3 (mean L1 - L2 0.30)."
    assert clean == ("The paper's 96% test accuracy of augmented models (within 1 percentage point, at every width) "
                     "is recovered on clean test images at augmentation=translate2.")
    assert shifted.startswith("On shifted test images") and shifted.endswith("recovered at every point of the grid.")


def test_a_claim_recovered_nowhere_says_so(grid, swept):
    points, results, verdicts = swept
    some = [p for p in points if p.name in ("default", "lr=3e-3")]
    data = sweep_report.assemble_sweep(grid, some, verdicts, results)
    sentences = data["summary"]["recovered"]["sentences"]
    assert sentences[1].endswith("is recovered nowhere in the grid.") and sentences[1].startswith("C8 (")
    assert sentences[2] == "C8 cells whose mean reduction lies inside C8's 15%–50% band: none at the default point, lr=3e-3."
    assert sentences[3].endswith("is recovered nowhere in the grid on clean test images (mean accuracies 99.0%).")
    assert data["summary"]["recovered"]["C8"] == []


def test_accuracy_comes_from_c9_where_it_is_judged_else_from_the_tables():
    rows = [{"claim": "C9", "verdict": "supported", "params": {"regime": "augmented", "n": 8, "eval": e},
             "values": {"seeds": seeds}} for e, seeds in (("clean", [0.95, 0.96, 0.97]), ("augmented", [0.9] * 3))]
    asked = []

    class Tables:  # width 16 has no C9 cell: its tables are read, and are missing
        def table(self, *group):
            asked.append(group)
            raise MissingResults("not cached")

    got = sweep_report.augmented_accuracy(SMOKE, rows, Tables())
    assert got["source"] == "C9" and got["widths"] == {"8": {"clean": [0.95, 0.96, 0.97], "shifted": [0.9] * 3}}
    assert asked == [(16, "augmented", "clean")] * 2


# -- the figures ------------------------------------------------------------------------------------
def test_each_figure_holds_only_the_points_that_vary_its_axes(data):
    fd = data["figures_data"]
    names = lambda section: [p["name"] for p in section["points"]]  # noqa: E731
    assert names(fd["c8"]) == ["default", "weight_decay=0", "augmentation=translate2", PAIR]
    lr, wd = fd["c2"]["panels"]
    assert (lr["axis"], names(lr), lr["x_values"]) == ("learning rate", ["default", "lr=3e-3"], ["1e-3", "3e-3"])
    assert (wd["axis"], names(wd), wd["x_values"]) == ("weight decay", ["default", "weight_decay=0"], ["0", "1e-4"])
    assert names(fd["accuracy"]) == ["default", "augmentation=translate2"]
    assert fd["c8"]["x_values"] == ["translate2", "translate4"] and fd["c8"]["line_values"] == ["0", "1e-4"]
    c8 = get_claim("C8").thresholds
    assert fd["c8"]["band"] == [c8["min_reduction"], c8["max_reduction"]]


def test_the_figures_are_built_from_the_points_verdict_values(data, swept):
    _, _, verdicts = swept
    fd = data["figures_data"]
    by_name = {p["name"]: p for p in fd["c8"]["points"]}
    c8 = [r["values"]["reduction"] for r in verdicts["augmentation=translate2"] if r["claim"] == "C8"]
    assert by_name["augmentation=translate2"]["reduction"]["clean"] + \
        by_name["augmentation=translate2"]["reduction"]["shifted"] == c8
    assert all(r == pytest.approx(0.3, abs=1e-3) for r in c8)
    assert by_name["default"]["reduction"]["clean"] == pytest.approx([-0.6] * (len(c8) // 2), abs=1e-3)
    c2 = {p["name"]: p["cells"] for p in fd["c2"]["panels"][0]["points"]}
    means = [r["values"]["mean"] for r in verdicts["lr=3e-3"] if r["claim"] == "C2"]
    assert [c["mean"] for c in c2["lr=3e-3"]] == means and all(m < 0 for m in means)
    acc = {p["name"]: p for p in fd["accuracy"]["points"]}
    assert acc["augmentation=translate2"]["widths"]["8"]["clean"] == [0.955] * 3
    assert acc["default"]["source"] == "tables" and fd["accuracy"]["paper"] == 0.96


def test_the_report_embeds_its_figures_and_says_the_same_in_markdown(rendered, data):
    html = (rendered / "index.html").read_text()
    md = (rendered / "README.md").read_text()
    stems = ["sweep_c8_reduction", "sweep_c2_gap", "sweep_accuracy"]
    assert all((rendered / f"{stem}.png").read_bytes().startswith(b"\x89PNG") for stem in stems)
    assert html.count('src="data:image/png;base64,') == 3
    assert not re.search(r'(src|href)="(https?:|//)', html)  # loads nothing
    assert all(f"({stem}.png)" in md for stem in stems)
    for sentence in data["summary"]["sentences"] + data["summary"]["recovered"]["sentences"]:
        assert sentence in md
        assert sentence.replace("'", "&#39;") in html
    header = next(line for line in md.splitlines() if line.startswith("| Claim |"))
    assert header.split("|")[2].strip() == "default" and "weight_decay=0, augmentation=translate2" in header
    c2 = next(line for line in md.splitlines() if line.startswith("| **C2** |"))
    assert c2.count("| reproduced<br>") == 5 and c2.count("| contradicted<br>") == 1 and "lower bound" in c2
    assert "| skipped |" in next(line for line in md.splitlines() if line.startswith("| **C9** |"))


def test_status_marks_need_no_emoji_font_and_the_matrix_fits_a_1400_pixel_page(rendered, data):
    html = (rendered / "index.html").read_text()
    md = (rendered / "README.md").read_text()
    # letters in coloured boxes, words in Markdown: nothing outside Latin-1 and common punctuation
    marks = set(re.findall(r'<span class="mark [a-z]+">([^<]*)</span>', html))
    assert marks and marks <= {"R", "C", "I", "N", "S"}
    assert not [ch for ch in html + md if ord(ch) > 0x2FFF], "a character that may need an emoji font"
    # fixed-layout matrix sharing the page's width; the page is at most 1,200 px wide
    assert re.search(r"table\.matrix \{ table-layout: fixed; width: 100%; \}", html)
    assert "max-width: 1200px" in html and not re.search(r"table\.matrix[^{]*\{[^}]*min-width", html)
    headers = re.findall(r'<th title="([^"]+)">(.*?)</th>', html.split('<table class="matrix">')[1].split("</thead>")[0])
    assert [name for name, _ in headers] == [p["name"] for p in data["points"]]
    longest = max(len(line) for _, text in headers for line in text.split("<br>"))
    assert longest <= 14, headers  # "aug=translate2": a column of 1/16 of the page holds it


def test_a_grid_that_varies_no_figure_axis_draws_no_figure(swept, tmp_path):
    grid = load_grid(SMOKE_GRID)  # lr only: C2's figure, and neither C8's nor the accuracy's
    points, results, verdicts = swept
    some = [p for p in points if p.name in ("default", "lr=3e-3")]
    out = render_sweep(sweep_report.assemble_sweep(grid, some, verdicts, results), tmp_path)
    assert sorted(p.name for p in out.glob("*.png")) == ["sweep_c2_gap.png"]
    assert "No figure: the grid does not vary augmentation or weight decay" in (out / "README.md").read_text()


def test_results_json_round_trips(rendered, data, tmp_path):
    loaded = json.loads((rendered / "results.json").read_text())
    assert loaded == jsonable(data)
    again = render_sweep(loaded, tmp_path)
    for name in ("results.json", "index.html", "README.md", "sweep_c8_reduction.png"):
        assert (again / name).read_bytes() == (rendered / name).read_bytes(), name


def test_provenance_records_the_grid_file_fidelity_design_and_points(data, grid):
    prov = data["provenance"]
    assert prov["grid"]["text"] == grid.text and prov["grid"]["source"] == SOURCE
    assert prov["grid"]["sha256"] == hashlib.sha256(grid.text.encode()).hexdigest()
    assert prov["fidelity"]["widths"] == [8] and prov["fidelity"]["epochs"] == 1 and prov["fidelity"]["reductions"]
    assert prov["design"] == {"kind": "one-factor", "pairs": [["augmentation", "weight_decay"]], "points": [],
                              "axes": {"epochs": ["1"], "lr": ["1e-3", "3e-3"], "weight_decay": ["0", "1e-4"],
                                       "augmentation": ["translate2", "translate4"],
                                       "eval_images": ["clean", "shifted"]}}
    assert [p["name"] for p in prov["points"]][0] == "default" and len(prov["points"]) == 6
    assert all(p["tables"] == 0 and p["missing"] for p in prov["points"])  # fakes keep no store entries
    assert {"kag", "torch", "distributed"} <= set(prov["versions"]) and prov["git"]["commit"]
    assert prov["run"] is None and prov["session_seconds"] is None and prov["device"]


# -- the command line --------------------------------------------------------------------------------
# -- the fidelity check (SPEC §8) ----------------------------------------------------------------------
def test_the_reference_of_a_reduced_grid_is_its_default_point_at_the_paper_fidelity(grid):
    from kag.repro.profiles import PAPER

    ref = grid.reference().default_point().profile
    assert ref.train == PAPER.train and ref.metrics == PAPER.metrics and ref.seeds == PAPER.seeds
    assert ref.widths == grid.widths
    widths = ", ".join(map(str, grid.widths))
    assert grid.reference().reductions() == (f"widths {widths} instead of 64, 128, 256, 512",)


def _three_seeds(value):
    """Fake results of a profile's first three seeds (the fakes know three), e.g. the paper's five."""
    return lambda profile, **kw: FakeResults(dataclasses.replace(profile, seeds=profile.seeds[:3]), value)


def test_the_fidelity_check_names_the_claims_whose_status_differs(grid, monkeypatch):
    """Reduced runs judged in one world, the paper-fidelity reference in another where layer 2 beats
    layer 1: C2 differs, and the check says so; the claims that agree are counted."""
    default = grid.default_point()
    reduced = judge_point(default.profile, FakeResults(default.profile, world()))
    monkeypatch.setattr(sweep_report, "Results", _three_seeds(world(layers_swapped=True)))
    check = sweep_report.fidelity_check(grid, reduced, store=None, mnist=None)
    assert check["needed"] and check["available"]
    by_id = {c["id"]: c for c in check["claims"]}
    assert by_id["C2"]["reduced"] == "reproduced" and by_id["C2"]["reference"] == "contradicted"
    assert not by_id["C2"]["match"] and by_id["C2"]["cells_agree"] < by_id["C2"]["cells"]
    assert "C2" in check["differ"] and by_id["C3"]["match"]
    assert by_id["C9"]["reduced"] == "skipped" and not by_id["C9"]["compared"]  # judged at paper fidelity only
    assert len(check["agree"]) == len(check["compared"]) - len(check["differ"])
    assert check["sentence"].startswith(f"At the default point, the reduced fidelity gives the paper-fidelity status "
                                        f"for {len(check['agree'])} of {len(check['compared'])} claims")
    assert "C2 (reproduced here, contradicted at the paper's fidelity)" in check["sentence"]


def test_a_claim_whose_reference_is_partly_computed_is_not_compared(grid):
    """A sweep stopped inside the reference's tables: a claim with cells not run there is named, not
    compared on the cells that happen to exist; the others are compared as usual."""
    default = grid.default_point()
    reduced = judge_point(default.profile, FakeResults(default.profile, world()))
    first = next(r for r in reduced if r["claim"] == "C2" and r["outcome"] == "judged")
    reference = [dict(r, outcome="not run", verdict=None) if r is first else r for r in reduced]
    check = sweep_report.compare_fidelity(reduced, reference)
    assert check["partial"] == ["C2"] and "C2" not in check["compared"] and "C3" in check["agree"]
    assert check["sentence"].endswith("Not compared, some of their cells not run at one of the two fidelities: C2 "
                                      "(`kag sweep GRID` computes the rest).")
    assert sweep_report.compare_fidelity(reduced, reduced)["partial"] == []


def test_the_fidelity_check_without_the_reference_tables_says_it_was_not_measured(grid, tmp_path):
    from kag.experiments.store import Store

    default = grid.default_point()
    reduced = judge_point(default.profile, FakeResults(default.profile, world()))
    check = sweep_report.fidelity_check(grid, reduced, Store(tmp_path / "store"), mnist=None)
    assert check["needed"] and not check["available"]
    widths = ", ".join(map(str, grid.widths))
    assert check["sentence"].startswith(f"Not measured: the paper-fidelity tables of widths {widths} were not in the "
                                        "store this report was rendered from")
    assert str(tmp_path) not in check["sentence"]  # a committed report names no machine's paths


def test_the_report_shows_the_fidelity_check(grid, swept, monkeypatch, tmp_path):
    points, results, verdicts = swept
    monkeypatch.setattr(sweep_report, "Results", _three_seeds(world()))
    out = sweep_report.write_sweep_report(grid, points, results, tmp_path, verdicts=verdicts)
    data = json.loads((out / "results.json").read_text())
    assert data["fidelity"]["available"] and data["fidelity"]["differ"] == []
    for page in ("README.md", "index.html"):
        text = (out / page).read_text()
        assert "Fidelity check" in text and data["fidelity"]["sentence"] in text


def test_report_only_refuses_an_empty_cache(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KAG_HOME", str(tmp_path / "home"))
    out = tmp_path / "report"
    assert main(["sweep", str(SMOKE_GRID), "--report-only", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"kag: error: 2 of 2 points of {SMOKE_GRID} have no cached metric table")
    assert f"run `kag sweep {SMOKE_GRID}` first" in err and not out.exists()


def test_report_only_renders_from_the_cache_without_running(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(sweep_report, "Results",  # the fidelity check's paper-fidelity reference has 5 seeds
                        lambda profile, **kw: CachedFakeResults(dataclasses.replace(profile, seeds=profile.seeds[:3]),
                                                                world()))
    monkeypatch.setattr("kag.experiments.data.load_mnist", lambda: None)  # the fakes need no data
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(SMOKE_GRID), "--report-only"]) == 0
    out = tmp_path / "reports" / "sweep"
    assert capsys.readouterr().out.strip() == f"sweep report written to {out}"
    data = json.loads((out / "results.json").read_text())
    assert [p["name"] for p in data["points"]] == ["default", "lr=3e-3"]
    assert data["provenance"]["run"] is None and data["provenance"]["training_devices"] == ["cpu"]
    default = data["provenance"]["points"][0]
    assert default["tables"] == default["groups"] * 3 and default["missing"] == []  # 3 seeds per group
    assert "no run in this process: re-rendered from the cache" in (out / "README.md").read_text()
    assert data["fidelity"]["available"]  # the check is judged on the cached reference as well


class EmptyResults(CachedFakeResults):
    """A point none of whose tables is in the cache."""

    def entries(self, width, regime, eval_images="clean"):
        raise MissingResults(f"no cached metric table for width {width} {regime}")

    def table(self, width, regime, eval_images="clean"):
        return self.entries(width, regime, eval_images)


def test_report_only_partial_renders_the_cached_points_and_names_the_others(capsys, monkeypatch, tmp_path):
    """--partial: lr=3e-3 has no table, so its column is "not run", the summary and stderr name it once, and
    the default point is judged as usual; without --partial the same cache is refused, pointing at --partial."""
    def results(profile, **kw):
        cls = EmptyResults if profile.train.lr == 3e-3 else CachedFakeResults
        return cls(dataclasses.replace(profile, seeds=profile.seeds[:3]), world())

    monkeypatch.setattr(sweep_report, "Results", results)
    monkeypatch.setattr("kag.experiments.data.load_mnist", lambda: None)
    out = tmp_path / "report"
    assert main(["sweep", str(SMOKE_GRID), "--report-only", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "1 of 2 points" in err and "(lr=3e-3)" in err and "add --partial" in err and not out.exists()

    assert main(["sweep", str(SMOKE_GRID), "--report-only", "--partial", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == f"kag: 1 point of {SMOKE_GRID} not run (no cached metric table), marked so in " \
                                   "the report: lr=3e-3"
    data = json.loads((out / "results.json").read_text())
    assert data["summary"]["points_not_run"] == ["lr=3e-3"]
    said = [s for s in data["summary"]["sentences"] if s.startswith("Not run")]
    assert said == ["Not run: 1 of 2 points (lr=3e-3): no claim is judged there, for want of the metric tables its "
                    "cells read (none, or not all, are in the cache)."]
    # "every point" then means every point that was run: a claim holding at the default point holds there
    assert data["summary"]["sentences"][0].startswith("Reproduced at every point that was run (1 of the grid's 2): ")
    assert "C1-PR" in data["summary"]["hold"] and not any("where judged" in s for s in data["summary"]["sentences"])
    judged = [r for r in data["matrix"] if r["cells"]["default"]["status"] != "skipped"]
    assert judged and all(r["cells"]["lr=3e-3"]["status"] == "not run" for r in judged)
    assert any(r["cells"]["default"]["status"] != "not run" for r in judged)
    assert said[0] in (out / "README.md").read_text()


def test_report_only_partial_still_refuses_a_cache_with_no_point(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KAG_HOME", str(tmp_path / "home"))
    assert main(["sweep", str(SMOKE_GRID), "--report-only", "--partial", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "2 of 2 points" in err and "--partial" not in err


def test_partial_without_report_only_is_a_bad_argument(capsys):
    assert main(["sweep", str(SMOKE_GRID), "--partial", "--dry-run"]) == 2
    assert "--partial applies to --report-only" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["--report-only", "--dry-run"], "give one of them"),
    (["--report-only", "--workers", "2"], "--report-only runs nothing"),
], ids=["with-dry-run", "with-workers"])
def test_report_only_with_options_that_run_is_a_bad_argument(capsys, argv, fragment):
    assert main(["sweep", str(SMOKE_GRID), *argv]) == 2
    assert fragment in capsys.readouterr().err


def test_an_out_that_is_a_file_is_a_bad_argument(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["sweep", str(SMOKE_GRID), "--report-only", "--out", str(blocker)]) == 2
    assert f"--out={blocker} is a file" in capsys.readouterr().err


def test_weight_decay_points_where_the_decay_cannot_act_are_marked_and_said(data, grid):
    """The smoke grid's weight decays (0, 1e-4) cannot act in 1 epoch: every point that varies weight
    decay is named as no test of that axis, and its matrix column says so."""
    decay = data["summary"]["weight_decay"]
    varied = [p["name"] for p in data["points"] if "weight_decay" in p["changed"]]
    assert varied and decay["untested"] == varied
    assert decay["levels"] == {"1": {"can_act": False, "shrink": pytest.approx(1.0, abs=1e-3)}}
    assert decay["sentence"] in data["summary"]["sentences"] and "it can at no training length" in decay["sentence"]
    for p in data["points"]:
        assert (p["short"][-1] == "wd cannot act") == (p["name"] in varied), p


def test_the_weight_decay_sentence_names_the_lengths_where_the_decay_acts():
    grid = load_grid(ROOT / "sweeps" / "assumptions.toml")
    note = sweep_report.weight_decay_note(grid, grid.points())
    assert note["levels"]["20"]["can_act"] is False and note["levels"]["200"]["can_act"] is True
    assert "epochs=200,weight_decay=0.01" not in note["untested"]
    assert set(note["untested"]) == {p.name for p in grid.points()
                                     if "weight_decay" in p.changed and p.values["epochs"] == 20}
    assert "it can at 200 epochs (to 62.5%)" in note["sentence"] and "it cannot at 20 epochs (to 95.4%)" in note["sentence"]
    assert note["not_run"] == [] and "tests weight decay" not in note["sentence"]


def test_the_weight_decay_sentence_says_when_the_points_where_it_acts_were_not_run():
    grid = load_grid(ROOT / "sweeps" / "assumptions.toml")
    note = sweep_report.weight_decay_note(grid, grid.points(), ["epochs=200", "epochs=200,weight_decay=0.01"])
    assert note["not_run"] == ["epochs=200,weight_decay=0.01"]
    assert note["sentence"].endswith("; the point varying it where it can (epochs=200,weight_decay=0.01) was not "
                                     "run, so no point of this report tests weight decay.")


def test_c8_cells_inside_the_band_are_named_at_every_point(grid):
    points = grid.points()[:3]

    def cell(name: str, reduction: float) -> dict:
        return {"claim": "C8", "cell": name, "verdict": "contradicted", "params": {"eval": "clean"},
                "values": {"reduction": reduction}}

    verdicts = {points[0].name: [cell("a", -0.2), cell("b", 0.149)],
                points[1].name: [cell("c", 0.15), cell("d", 0.5), cell("e", 0.51)],
                points[2].name: []}
    got = sweep_report.c8_in_band(points, verdicts)
    assert got["cells"] == {points[0].name: [], points[1].name: [{"cell": "c", "reduction": 0.15},
                                                                 {"cell": "d", "reduction": 0.5}], points[2].name: []}
    assert got["sentence"] == (f"C8 cells whose mean reduction lies inside C8's 15%–50% band: 2 of 3 at {points[1].name} "
                               "(c: 0.15; d: 0.50); none at the default point.")


def test_a_claim_judged_on_only_some_of_its_cells_is_named_with_how_many(grid, swept):
    """A point whose tables are partly missing: C1-PR there keeps its supported cells, the others "not run";
    the status reads inconclusive (not every cell supported) and the summary says why, with the counts."""
    points, results, verdicts = swept
    rows = [dict(r) for r in verdicts["weight_decay=0"]]
    c1 = [r for r in rows if r["claim"] == "C1-PR"]
    for r in c1[: len(c1) // 2]:
        r.update(outcome="not run", verdict=None)
    data = sweep_report.assemble_sweep(grid, points, {**verdicts, "weight_decay=0": rows}, results)
    assert _cell(data, "C1-PR", "weight_decay=0")["status"] == "inconclusive"
    judged = len(c1) - len(c1) // 2
    assert data["summary"]["partly_run"] == {"weight_decay=0": [{"claim": "C1-PR", "judged": judged,
                                                                  "cells": len(c1)}]}
    assert (f"Partly run at weight_decay=0 (some of its metric tables are missing from the cache): C1-PR ({judged} "
            f"of {len(c1)} cells judged);") in " ".join(data["summary"]["sentences"])


def test_a_fully_judged_grid_names_no_partly_run_point(data):
    assert data["summary"]["partly_run"] == {}
    assert "Partly run" not in " ".join(data["summary"]["sentences"])


# -- exact-zero minors ------------------------------------------------------------------------------
def test_every_point_reports_its_trained_networks_exact_zero_minors(data, rendered):
    """Per point, width, regime and layer: the fakes' k = 3 exact-zero fraction (0.1 per unit of k: 30%),
    the same in the summary (no point above half), the Markdown and the HTML table."""
    zeros = data["exact_zeros"]
    assert zeros["k"] == 3
    names = [p["name"] for p in data["points"]]
    for name in names:
        cells = zeros["points"][name]
        assert {(c["n"], c["regime"], c["layer"]) for c in cells} == {
            (8, rg, layer) for rg in ("standard", "augmented") for layer in ("L1", "L2")}  # the smoke grid's one width
        assert all(c["zero_fraction"] == pytest.approx(0.3) and c["undefined"] is None for c in cells)
    said = [s for s in data["summary"]["sentences"] if s.startswith("Exact-zero minors")]
    assert said == ["Exact-zero minors of the trained networks (k = 3, clean test images): at most 30.0% of them at "
                    "any point (the default point, n = 8 standard L1)."]
    table = zeros["table"]
    assert table["columns"] == ["n = 8 standard L1", "n = 8 standard L2", "n = 8 augmented L1", "n = 8 augmented L2"]
    assert [r["point"] for r in table["rows"]] == names and all(r["cells"] == ["30.0%"] * 4 for r in table["rows"])
    md, html = (rendered / "README.md").read_text(), (rendered / "index.html").read_text()
    assert "## Exact-zero minors" in md and f"| **default** |{' 30.0% |' * 4}" in md
    assert 'id="zeros"' in html and html.count("<td>30.0%</td>") == 4 * len(names)


def test_a_point_whose_minors_are_mostly_zero_is_named_with_its_cells():
    """More than half of the trained k-minors exactly 0: the point, each such cell (largest first) with the
    images that have no defined PR, what that does to PR, and the largest fraction at the other points."""
    cell = lambda n, rg, layer, z, u: {"n": n, "regime": rg, "layer": layer, "zero_fraction": z, "undefined": u,
                                       "images": 128}
    zeros = {"default": [cell(64, "standard", "L2", 0.0004, 0.0), cell(512, "standard", "L2", 0.46, 0.0),
                         cell(64, "augmented", "L2", 0.0, 0.0)],
             "epochs=200,lr=3e-3": [cell(512, "standard", "L2", 0.996, 11 / 3), cell(512, "augmented", "L2", 0.99996, 383 / 3),
                                    cell(512, "augmented", "L1", 0.98, 0.0), cell(64, "standard", "L1", 0.2, 0.0)],
             "lr=3e-4": []}
    said = sweep_report.exact_zeros_sentence(["default", "lr=3e-4", "epochs=200,lr=3e-3"], zeros)
    assert said.startswith("Exact-zero minors of the trained networks (k = 3, clean test images): more than 50% are "
                           "exactly 0 at epochs=200,lr=3e-3 n = 512 augmented L2 >99.9%, no defined PR on 127.7 of 128 "
                           "images, n = 512 standard L2 99.6%, no defined PR on 3.7 of 128 images, n = 512 augmented L1 "
                           "98.0%. There PR rests on the few non-zero minors")
    assert "a cell whose images have none is inconclusive" in said
    assert said.endswith(" At the other points at most 46.0% (the default point, n = 512 standard L2).")
    assert sweep_report.exact_zeros_sentence(["lr=3e-4"], zeros) is None  # no cached table: nothing to say
    assert [sweep_report._share(x) for x in (0, 0.0004, 0.5, 0.9996, 1)] == ["0%", "<0.1%", "50.0%", ">99.9%", "100%"]
    tiny = {"default": [cell(64, "standard", "L2", 0.0004, 0.0)]}
    assert sweep_report.exact_zeros_sentence(["default"], tiny).endswith(
        ": below 0.1% of them at any point (the default point, n = 64 standard L2).")
    table = sweep_report.exact_zeros_table(["default", "epochs=200,lr=3e-3"], zeros)
    assert table["columns"] == ["n = 64 standard L2", "n = 512 standard L2", "n = 64 augmented L2",
                                "n = 512 augmented L2", "n = 512 augmented L1", "n = 64 standard L1"]
    assert table["rows"][0]["cells"] == ["<0.1%", "46.0%", "0%", "–", "–", "–"]  # "a few" is not "none"
    assert table["rows"][1]["cells"] == ["–", "99.6% (3.7 of 128 images undefined)", "–",
                                         ">99.9% (127.7 of 128 images undefined)", "98.0%", "20.0%"]


# -- robustness under the estimator variants --------------------------------------------------------
class NonzeroMatchedMoves(FakeResults):
    """A point whose PR ratios are 0.5 when PR is read on non-zero minors at a matched count (the fake has no
    variant rows of its own: every other variant reads the primary's)."""

    def under(self, variant):
        if variant != "nonzero-matched":
            return super().under(variant)
        base = world()
        return FakeResults(self.profile, lambda **row: 0.5 if row["observable"] == "pr_ratio" else base(**row))


def test_every_status_is_judged_under_its_claims_estimator_variants(data, rendered, grid, swept, tmp_path):
    """Where no variant moves a status (the fakes read the primary's rows under every variant), every judged
    cell is robust and the summary says so; where reading PR on non-zero minors turns C1-PR, the cell is
    fragile, named in the summary with the variant and its status, and marked in both renderings."""
    for row in data["matrix"]:
        for name, cell in row["cells"].items():
            assert cell["robustness"] in (("robust", "no variants") if cell["status"] not in ("skipped", "not run")
                                          else (None,)), (row["id"], name, cell)
    assert next(r for r in data["matrix"] if r["id"] == "C9")["cells"]["default"]["robustness"] is None  # skipped
    assert ("Robust: every status above is the same under every pre-registered estimator variant of its claim "
            "(SPEC §7), at every point where it was judged.") in data["summary"]["sentences"]
    assert "*fragile:" not in (rendered / "README.md").read_text()

    points, _, _ = swept
    default = next(p for p in points if p.name == "default")
    moved = NonzeroMatchedMoves(default.profile, world())
    verdicts = {"default": judge_point(default.profile, moved)}
    moved_data = sweep_report.assemble_sweep(grid, [default], verdicts, {"default": moved})
    c1 = _cell(moved_data, "C1-PR", "default")
    assert c1["status"] == "reproduced" and c1["robustness"] == "fragile" and c1["disagree"] == ["nonzero-matched"]
    assert c1["variant_statuses"]["nonzero-matched"] == "contradicted"
    assert _cell(moved_data, "C1-KL", "default")["robustness"] == "robust"  # KL has no PR variant
    said = next(s for s in moved_data["summary"]["sentences"] if s.startswith("Under the pre-registered"))
    assert said.endswith(": C1-PR is fragile: reproduced at every point where judged, but contradicted under "
                         "nonzero-matched.")
    assert any(s.startswith("Robust at every point where judged: C1-KL, C1-RR") for s in moved_data["summary"]["sentences"])
    out = render_sweep(moved_data, tmp_path / "moved")
    assert "<br>*fragile: nonzero-matched*" in next(line for line in (out / "README.md").read_text().splitlines()
                                                    if line.startswith("| **C1-PR** |"))
    assert 'title="fragile: nonzero-matched">fragile</span>' in (out / "index.html").read_text()
    assert verdicts["default"] == judge_point(default.profile, moved)  # the primary rows are left as they were


def test_fragile_statuses_are_grouped_per_claim_by_what_the_variants_make_of_them():
    names = ["default", "lr=3e-4", "lr=3e-3", "wd=0", "wd=0.01", "epochs=200"]
    robust = {"robustness": "robust", "status": "reproduced", "disagree": [], "variant_statuses": {}}
    fewer = {"robustness": "fragile", "status": "reproduced", "disagree": ["fewer-minors"],
             "variant_statuses": {"fewer-minors": "inconclusive"}}
    zeros = {"robustness": "fragile", "status": "contradicted", "disagree": ["nonzero-matched", "fewer-minors"],
             "variant_statuses": {"nonzero-matched": "reproduced", "fewer-minors": "inconclusive",
                                  "more-minors": "contradicted"}}
    rows = [{"id": "C2", "cells": {**{n: fewer for n in names[:4]}, "wd=0.01": robust, "epochs=200": zeros}},
            {"id": "C3", "cells": {**{n: robust for n in names}, "lr=3e-3": {"robustness": None}}},
            {"id": "C9", "cells": {n: {"robustness": None} for n in names}}]
    said = sweep_report.robustness_sentences(rows, names)
    assert said == [
        "Under the pre-registered estimator variants (SPEC §7; the primary status first, then what a variant makes "
        "of it): C2 is fragile: reproduced at every point where judged except wd=0.01, epochs=200, but inconclusive "
        "under fewer-minors; contradicted at epochs=200, but reproduced under nonzero-matched, "
        "inconclusive under fewer-minors.",
        "Robust at every point where judged: C3."]
    rows[0]["cells"] = {n: fewer for n in names[:5]} | {"epochs=200": robust}
    assert "reproduced at every point where judged except epochs=200, but inconclusive under fewer-minors" in \
        sweep_report.robustness_sentences(rows, names)[0]
    assert sweep_report._among(names[:4], names + ["a", "b", "c"]) == \
        "at 4 of 9 points (the default point, lr=3e-4, lr=3e-3, wd=0)"
    assert sweep_report.robustness_sentences(rows[2:], names) == [
        "Robustness: no claim was judged under its estimator variants (SPEC §7)."]
