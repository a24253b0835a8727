"""An honest report: `kag report` refuses an empty store, every claim that misses says why in plain
words built from its numbers, and index.html loads nothing from outside itself."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

import kag.repro.report
from fakes import FakeResults, anti_kag, kag_like, noisy, null_shows_kag, null_with_nan, scaled_augmentation
from kag.cli import main
from kag.errors import MissingResults
from kag.repro.claims import BY_ID, CLAIMS
from kag.repro.prose import plain
from kag.repro.profiles import SMOKE
from kag.repro.report.assemble import assemble, verdicts_from_cache, verdicts_from_outcomes
from kag.repro.report.render import data_uri, render


def judged_rows(world, claims=CLAIMS) -> dict[str, list[dict]]:
    """Claim id -> report rows with every cell of ``claims`` judged, whatever profiles a claim is
    judged under (so C9, a paper-only claim, is judged on the smoke-sized fake too)."""
    fake = FakeResults(SMOKE, world)
    outcomes = {(c.id, cell.id): {"outcome": "judged", "verdict": c.judge(cell, fake).to_dict()}
                for c in claims for cell in c.cells(SMOKE)}
    return verdicts_from_outcomes(SMOKE, outcomes)


@pytest.fixture(scope="module")
def worlds() -> dict[str, dict[str, list[dict]]]:
    return {name: judged_rows(world) for name, world in (("anti_kag", anti_kag), ("noisy", noisy),
                                                          ("null_shows_kag", null_shows_kag),
                                                          ("null_with_nan", null_with_nan), ("kag_like", kag_like))}


# -- kag report on an empty store ------------------------------------------------------------------
def test_kag_report_on_an_empty_store_exits_1_naming_profile_store_and_the_fix(capsys, monkeypatch, tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("KAG_HOME", str(home))
    monkeypatch.chdir(cwd)
    for extra in ([], ["--out", str(tmp_path / "out")]):
        code = main(["report", "--profile", "smoke", *extra])
        out, err = capsys.readouterr()
        assert code == 1 and out == ""
        assert err.startswith(f"kag: error: no metric table of the smoke profile is cached in {home / 'store'}")
        assert "`pytest claims -n auto --kag-profile smoke`" in err and err.count("\n") == 1
    assert not list(cwd.iterdir()) and not (tmp_path / "out").exists() and not list(home.iterdir())


class PartialFake(FakeResults):
    """Fake results whose store holds only the groups of ``widths``."""

    def __init__(self, profile, value, widths):
        super().__init__(profile, value)
        self.widths = widths

    def table(self, width, regime, eval_images="clean"):
        if width not in self.widths:
            raise MissingResults(f"width {width} is not cached")
        return super().table(width, regime, eval_images)

    def available(self, groups=None):
        return self._table.select(width=set(self.widths))


def test_render_from_cache_refuses_nothing_cached_and_renders_a_partial_store(monkeypatch, tmp_path, without_figures):
    made = {}
    monkeypatch.setattr(kag.repro.report, "Results",
                        lambda profile, **kw: made.setdefault("r", PartialFake(profile, kag_like, made["widths"])))
    made["widths"] = ()
    with pytest.raises(MissingResults, match=r"no metric table of the smoke profile is cached in .*--kag-profile smoke"):
        kag.repro.report.render_from_cache("smoke", out_dir=tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
    made.clear()
    made["widths"] = (8,)
    out = kag.repro.report.render_from_cache("smoke", out_dir=tmp_path / "partial")
    saved = json.loads((out / "results.json").read_text())
    c1 = next(c for c in saved["criteria"] if c["id"] == "C1-PR")
    assert {r["outcome"] for r in c1["cells"] if r["params"]["n"] == 16} == {"not run"}
    assert {r["verdict"] for r in c1["cells"] if r["params"]["n"] == 8} == {"supported"}
    assert c1["status"] == "inconclusive" and "were not judged" in c1["plain"]


# -- plain words ---------------------------------------------------------------------------------
def misses(claim, rows) -> bool:
    bad = ("supported", "invalid") if claim.control else ("contradicted", "inconclusive")
    return any(r["verdict"] in bad for r in rows)


@pytest.mark.parametrize("world", ["anti_kag", "noisy", "null_shows_kag", "null_with_nan"])
def test_every_claim_that_misses_says_why_in_one_sentence(worlds, world):
    for c in CLAIMS:
        rows = worlds[world][c.id]
        sentence = plain(c, rows)
        if misses(c, rows):
            assert sentence.startswith("Expected ") and sentence.endswith(".") and "\n" not in sentence, c.id
            assert sentence.count(". ") == 0, (c.id, sentence)  # one sentence
        else:
            assert sentence == "", (c.id, sentence)


def test_every_claim_id_is_explained_in_some_world(worlds):
    explained = {c.id for c in CLAIMS for rows in worlds.values() if plain(c, rows[c.id])}
    assert explained == {c.id for c in CLAIMS}
    for world in ("anti_kag", "noisy"):  # every claim misses; the control says no
        assert all(plain(BY_ID[cid], worlds[world][cid]) for cid in BY_ID if cid != "N1"), world


def test_a_world_where_everything_reproduces_needs_no_sentence(worlds):
    assert all(plain(c, worlds["kag_like"][c.id]) == "" for c in CLAIMS)


@pytest.mark.parametrize(("factor", "words"), [(1.6, "it raised them by 60%"), (1.3, "it raised them by 30%"),
                                               (0.9, "it lowered them by only 10%")])
def test_the_c8_sentence_reads_its_numbers_from_the_reductions(factor, words):
    rows = judged_rows(scaled_augmentation(factor), [BY_ID["C8"]])["C8"]
    sentence = plain(BY_ID["C8"], rows)
    assert sentence.startswith("Expected augmentation to lower the PR ratios by 15–50% and keep them above 1, but ")
    assert f"in all {len(rows)} cells {words}" in sentence, sentence


def test_difference_sentences_say_which_side_led_and_by_how_much(worlds):
    rows = worlds["anti_kag"]["C2"]
    gaps = sorted(-r["values"]["mean"] for r in rows)
    expected = f"{gaps[0]:.3g}–{gaps[-1]:.3g}" if f"{gaps[0]:.3g}" != f"{gaps[-1]:.3g}" else f"{gaps[0]:.3g}"
    assert f"layer 2's was at least as large (by {expected})" in plain(BY_ID["C2"], rows)
    c4 = plain(BY_ID["C4"], worlds["anti_kag"]["C4"])
    assert "it fell with width in both cells" in c4 and "rho -1.00" in c4
    assert "rho undefined" in plain(BY_ID["C4"], worlds["noisy"]["C4"])


def test_a_mixed_claim_counts_and_locates_the_cells_that_missed(worlds):
    good, bad = worlds["kag_like"]["C1-PR"], worlds["anti_kag"]["C1-PR"]
    mixed = [bad[i] if i in (0, 5) else good[i] for i in range(len(good))]
    mixed[7] = {**good[7], "verdict": None, "as_expected": None, "values": {}, "outcome": "error"}
    sentence = plain(BY_ID["C1-PR"], mixed)
    assert f"in 2 of {len(good)} cells ({bad[0]['cell']}, {bad[5]['cell']}) it was at or below 1" in sentence
    assert sentence.endswith(f"; 1 of {len(good)} cells were not judged.")


def test_the_control_says_what_went_wrong(worlds):
    shows = plain(BY_ID["N1"], worlds["null_shows_kag"]["N1"])
    assert shows.startswith("Expected two independent initialisations to show no KAG, but in all 12 cells it "
                            "showed KAG (PR ratio (null): lower bound")
    invalid = plain(BY_ID["N1"], worlds["null_with_nan"]["N1"])
    assert "could not be judged (NaN in PR ratio (null) at seed 1)" in invalid


def test_values_from_json_with_nan_as_null_still_explain(worlds):
    rows = json.loads(json.dumps(worlds["noisy"]["C4"]).replace("NaN", "null"))
    assert "rho undefined" in plain(BY_ID["C4"], rows)


# -- the rendered report -----------------------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag, attrs):
        self.links += [(tag, name, value or "") for name, value in attrs if name in ("src", "href", "srcset", "data")]


@pytest.fixture
def anti_report(tmp_path, without_figures) -> tuple[dict, Path]:
    fake = FakeResults(SMOKE, anti_kag)
    data = assemble(fake, verdicts_from_cache(fake), fake.available())
    return data, render(data, tmp_path / "anti", fake.available())


def test_plain_sentences_are_in_results_json_and_beside_each_verdict(anti_report):
    data, out = anti_report
    saved = json.loads((out / "results.json").read_text())
    md, html = (out / "README.md").read_text(), (out / "index.html").read_text()
    for c, s in zip(saved["criteria"], saved["summary"]):
        assert c["plain"] == s["plain"] == plain(BY_ID[c["id"]], c["cells"]), c["id"]
        if c["status"] in ("reproduced", "not run"):
            assert c["plain"] == "", c["id"]
            continue
        assert c["plain"]
        assert f"**In plain words:** {c['plain']}" in md
        assert f"- **[{c['id']}](#{c['id'].lower()})** ({c['label']}): {c['plain']}" in md
        assert f'<p class="plain"><b>In plain words:</b> {escape(c["plain"])}</p>' in html
    c8 = next(c for c in saved["criteria"] if c["id"] == "C8")
    assert "raised them by 30%" in c8["plain"]


def test_index_html_embeds_every_figure_and_loads_nothing_external(tmp_path):
    fake = FakeResults(SMOKE, kag_like)
    out = render(assemble(fake, verdicts_from_cache(fake), fake.available()), tmp_path, fake.available())
    html = (out / "index.html").read_text()
    parser = _Links()
    parser.feed(html)
    assert parser.links
    for tag, name, value in parser.links:
        assert value.startswith("#") or value.startswith("data:image/png;base64,"), (tag, name, value[:60])
    assert "<link" not in html.lower() and "<script" not in html.lower()
    assert "url(" not in html and "@import" not in html
    pngs = sorted(out.glob("*.png"))
    assert pngs, "the fake draws figures"
    images = {value for tag, name, value in parser.links if tag == "img" and name == "src"}
    assert images == {data_uri(p.read_bytes()) for p in pngs}
    assert "](global_pr_ratio.png)" in (out / "README.md").read_text()  # Markdown links the files beside it


def test_n2_names_each_observable_on_its_own_scale(worlds):
    """N2 judges a PR ratio, a KL difference and an RR ratio: each missed observable gets its own
    clause, counted among its own cells, with its own threshold (1 for ratios, 0 for KL)."""
    rows = worlds["noisy"]["N2"]
    sentence = plain(BY_ID["N2"], rows)
    per_obs = {obs: sum(1 for r in rows if r["params"]["obs"] == obs) for obs in ("PR", "KL", "RR")}
    assert sentence.startswith("Expected PR(trained)/PR(norm-matched surrogate) above 1 in every cell, but ")
    assert "; expected KL(trained‖init) − KL(surrogate‖init) above 0 in every cell, but " in sentence
    assert "; expected RR(trained)/RR(norm-matched surrogate) above 1 in every cell, but " in sentence
    assert f"of {len(rows)} cells" not in sentence and f"all {len(rows)} cells" not in sentence, sentence
    assert all(n < len(rows) for n in per_obs.values())
