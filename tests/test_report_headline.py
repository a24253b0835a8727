"""What a reader needs first: the headline ([Re]/[¬Re]/partial, our value, robustness, compute),
each failing cell's plain-words line, the figures of the quantities C2-C4 are judged on, and the
specification curves of the multiverse (drawn only where the cells carry variants)."""

from __future__ import annotations

import copy
import json
import math

import pytest
from matplotlib.figure import Figure

from fakes import ZERO_MINORS, FakeResults, anti_kag, kag_like, scaled_augmentation
from kag.progress import WorkMonitor, format_duration
from kag.repro.claims import BY_ID
from kag.repro.profiles import SMOKE
from kag.repro.report.assemble import (NOT_RE, PARTIAL, RE, assemble, figure_data, headline, robustness_text,
                                       verdicts_from_cache, zero_minor_table)
from kag.repro.report.figures import FIGURES, c2_layer_gap, c3_order_gap, c4_width, spec_curve
from kag.repro.report.quantities import key_quantity, value_text
from kag.repro.report.render import render, spec_stem
from kag.repro.report.words import expectation, failure_text, headline_lines


# -- the headline ------------------------------------------------------------------------------------
def _entry(cid: str, status: str, control: bool = False, **more) -> dict:
    cells = [{"cell": "n=8", "verdict": None if status == "not run" else "supported", "outcome": "passed",
              "values": {"mean": 1.5, "std": 0.1, "measurement_se": 0.02, "lower_bound": 1.3, "upper_bound": 1.7,
                         "threshold": 1.0}}]
    return {"id": cid, "claim": f"{cid} says so.", "measurement": "m", "status": status, "label": status,
            "control": control, "plain": "" if status == "reproduced" else f"{cid} missed.", "cells": cells,
            "profiles": ["paper"], **more}


PROVENANCE = {"device": "cpu", "device_name": "x86_64", "cpu_count": 2, "torch_threads": 1,
              "training_devices": ["cpu"],
              "timings": {"session_seconds": 320.0, "training_seconds": 4000.0, "metrics_seconds": 75.5,
                          "metrics_seconds_by_stage": {"global": 60.0, "spatial": 15.5}}}


@pytest.mark.parametrize(("statuses", "outcome"), [
    (("reproduced", "reproduced"), RE),
    (("contradicted", "inconclusive"), NOT_RE),
    (("reproduced", "contradicted"), PARTIAL),
    (("reproduced", "not run"), RE),  # a claim not judged under this profile does not count
])
def test_the_outcome_counts_the_paper_claims_judged(statuses, outcome):
    criteria = [_entry("C1-PR", statuses[0]), _entry("C9", statuses[1]),
                _entry("N2", "contradicted"), _entry("N1", "contradicted", control=True)]
    h = headline(criteria, PROVENANCE)
    assert h["outcome"] == outcome
    assert h["not_counted"] == ["N2", "N1"] and "N1 is a control, N2 goes beyond the paper" in h["sentence"]
    assert [c["counted"] for c in h["claims"]] == [True, True, False, False]
    assert [c["role"] for c in h["claims"]] == ["paper", "paper", "beyond the paper", "control"]
    if "not run" in statuses:
        assert h["not_judged"] == ["C9"] and "Not judged under this profile: C9." in h["sentence"]


def test_nothing_judged_is_not_an_outcome():
    h = headline([_entry("C1-PR", "not run"), _entry("N2", "reproduced")], PROVENANCE)
    assert h["outcome"] == "not run"


def test_each_claim_shows_value_verdict_robustness_deviation_and_the_compute():
    robust = {"status": "fragile", "disagree": ["S=2,000"], "variants": []}
    h = headline([_entry("C1-PR", "reproduced", robustness={"status": "robust", "disagree": []}),
                  _entry("C2", "contradicted", robustness=robust), _entry("C3", "inconclusive")], PROVENANCE)
    c1, c2, c3 = h["claims"]
    assert c1["value"] == "1.5 ± 0.1 (SD over seeds, SE 0.02)" and c1["quantity"] == "PR ratio (trained / init)"
    assert (c1["robustness"], c2["robustness"], c3["robustness"]) == ("robust", "fragile (S=2,000 disagrees)", "—")
    assert (c1["deviation"], c2["deviation"]) == ("none", "C2 missed.")
    assert "Reproduced and robust under every pre-registered variant: C1-PR." in h["sentence"]
    compute = h["compute"]
    assert compute["hardware"] == "x86_64 (cpu), 2 CPU cores, 1 torch threads"
    assert [s["stage"].strip() for s in compute["stages"]] == [
        "training (summed over models)", "metric tables (summed over tables)", "metrics: global", "metrics: spatial",
        "this run, wall time"]


def test_a_claim_without_robustness_in_the_data_shows_a_dash():
    assert robustness_text({"id": "C2"}) == "—"
    assert robustness_text({"robustness": {"status": "not run"}}) == "not run"
    assert robustness_text({"robustness": {"status": "fragile", "disagree": ["a", "b"]}}) == "fragile (a, b disagree)"


def test_value_text_is_one_cell_in_full_and_several_as_ranges():
    one = key_quantity({"mean": 1.234, "std": 0.05, "measurement_se": 0.01, "lower_bound": 1.1, "upper_bound": 1.3})
    two = key_quantity({"mean": 2.0, "std": 0.2, "measurement_se": 0.03, "lower_bound": 1.6, "upper_bound": 2.4})
    assert value_text([one]) == "1.23 ± 0.05 (SD over seeds, SE 0.01)"
    assert value_text([one, two]) == "1.23–2 over 2 cells (SD 0.05–0.2, SE 0.01–0.03)"
    rhos = [key_quantity({"rho": 1.0, "threshold": 0.8}), key_quantity({"rho": -0.5, "threshold": 0.8})]
    assert value_text(rhos) == "ρ = −0.50 to 1.00 over 2 cells" and value_text([]) == "—"


def test_the_report_opens_with_the_headline(tmp_path, without_figures):
    fake = FakeResults(SMOKE, anti_kag)
    data = assemble(fake, verdicts_from_cache(fake), fake.available())
    assert data["headline"]["outcome"] == NOT_RE
    out = render(data, tmp_path, fake.available())
    md, html = (out / "README.md").read_text(), (out / "index.html").read_text()
    assert md.index("## Headline") < md.index("## Summary") < md.index("## Claims")
    assert "**Outcome: [¬Re]** (no paper claim judged here reproduced)." in md
    assert "| [N2](#n2) *(beyond the paper; not counted)* |" in md and "**Compute.**" in md
    assert html.index('id="headline"') < html.index('id="summary"')
    assert '<span class="outcome-badge bad">[¬Re]</span>' in html
    assert json.loads((out / "results.json").read_text())["headline"]["outcome"] == NOT_RE


def test_an_old_results_json_without_a_headline_still_gets_one(tmp_path, without_figures):
    fake = FakeResults(SMOKE, kag_like)
    data = assemble(fake, verdicts_from_cache(fake), fake.available())
    expected = data.pop("headline")
    md = (render(data, tmp_path) / "README.md").read_text()
    assert f"**Outcome: {expected['outcome']}** ({expected['outcome_words']}). {expected['sentence']}" in md


def test_the_terminal_gets_the_headline_as_a_compact_table():
    h = headline([_entry("C1-PR", "reproduced"), _entry("C2", "contradicted"),
                  _entry("N1", "reproduced", control=True, label="the control says no")], PROVENANCE)
    lines = headline_lines(h, {("C2", "n=8"): {"outcome": "failed"}, ("C1-PR", "n=8"): {"outcome": "passed"}})
    assert lines[0] == f"Outcome partial: {h['sentence']}"
    assert lines[1].split() == ["claim", "status", "robustness", "key", "number"]
    assert lines[2].startswith("C1-PR  reproduced           —           PR ratio (trained / init): 1.5 ± 0.1")
    assert lines[4].startswith("N1     the control says no  —  ")
    assert lines[5].startswith("The 1 failed tests are cells that did not come out as the claim expects")
    assert headline_lines({}) == []


# -- plain words ---------------------------------------------------------------------------------------
def _judged(world, claim_id: str, i: int = 0) -> dict:
    c = BY_ID[claim_id]
    return c.judge(c.cells(SMOKE)[i], FakeResults(SMOKE, world)).to_dict()


def test_c8_names_its_band_and_the_measured_reduction():
    v = _judged(scaled_augmentation(1.25), "C8")
    text = failure_text(BY_ID["C8"], v)
    head, numbers = text.split("\n")
    assert head.startswith(f"C8 [{v['cell']}] contradicted: expected the augmented PR ratio to be 15–50% lower "
                           "than the standard one (reduction in [0.15, 0.5])")
    assert "measured a reduction of −0.25 (augmentation raised it by 25%), per-seed interval −0.25 to −0.25" in head
    assert numbers == f"  numbers: {v['detail']}"


def test_a_lower_bound_rule_names_its_threshold_and_the_measured_bounds():
    v = _judged(anti_kag, "C2")
    text = expectation(BY_ID["C2"], v["values"])
    lb, ub = v["values"]["lower_bound"], v["values"]["upper_bound"]
    assert text.startswith("expected layer 1's PR ratio minus layer 2's above 0 (rule: lower bound > 0.0); measured ")
    assert f"error bars {lb:.3g} to {ub:.3g}, wholly at or below 0".replace("-", "−") in text
    straddling = expectation(BY_ID["C1-PR"], {"mean": 1.0, "std": 0.2, "lower_bound": 0.6, "upper_bound": 1.4,
                                              "threshold": 1.0})
    assert straddling.endswith("error bars 0.6 to 1.4, straddling 1")


@pytest.mark.parametrize("claim_id", [c for c in BY_ID if c != "C9"])
def test_every_claim_says_what_it_expected_and_what_it_measured(claim_id):
    v = _judged(anti_kag, claim_id)
    head = failure_text(BY_ID[claim_id], v).split("\n")[0]
    assert head.startswith(f"{claim_id} [{v['cell']}] {v['verdict']}") and "expected " in head and "; measured" in head


def test_values_of_an_unknown_shape_fall_back_to_the_rule():
    text = failure_text(BY_ID["C5"], {"cell": "x", "verdict": "inconclusive", "values": {"conditions": "oops"}})
    assert text.startswith("C5 [x] inconclusive: expected ")


# -- the figures of the judged quantities -------------------------------------------------------------
@pytest.fixture(scope="module")
def fd() -> dict:
    fake = FakeResults(SMOKE, kag_like)
    return figure_data(fake.available(), SMOKE)


def test_c2_c3_c4_each_draw_the_quantity_they_are_judged_on(fd):
    for fn in (c2_layer_gap, c3_order_gap, c4_width):
        fig = fn(fd)
        assert isinstance(fig, Figure), fn.__name__
        assert fn({}) is None
    ax = c2_layer_gap(fd).axes[0]
    assert ax.get_ylabel() == "PR ratio L1 − PR ratio L2"
    assert [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"] == [0.0]  # threshold
    labels = [t.get_text() for t in c4_width(fd).axes[0].get_legend().get_texts()]
    assert labels == ["standard: ρ = +1.00", "augmented: ρ = +1.00"]
    from kag.repro.claims import BY_ID
    assert {BY_ID[c].figure for c in ("C2", "C3", "C4")} == {"c2_layer_gap", "c3_order_gap", "c4_width"}
    assert {BY_ID[c].figure for c in ("C2", "C3", "C4")} <= set(FIGURES)


def test_c2_without_orders_above_one_draws_nothing(fd):
    only_k1 = copy.deepcopy(fd)
    for n in only_k1["global"]["standard"].values():
        for layer in n.values():
            for k in [k for k in layer if k != "1"]:
                del layer[k]
    assert c2_layer_gap(only_k1) is None and c3_order_gap(only_k1) is None


# -- the multiverse -------------------------------------------------------------------------------
def _with_variants(entry: dict) -> dict:
    """A claim entry whose cells carry two variants: one that agrees, one shifted down by 0.5."""
    out = copy.deepcopy(entry)
    for row in out["cells"]:
        v = row["values"]
        low = {**v, **{k: v[k] - 0.5 for k in ("mean", "lower_bound", "upper_bound")}}
        row["variants"] = {"S=2,000": {"verdict": row["verdict"], "values": v},
                           "non-zero minors": {"verdict": "contradicted", "values": low}}
    out["variant_names"] = ["S=2,000", "non-zero minors"]
    out["robustness"] = {"status": "fragile", "disagree": ["non-zero minors"],
                         "variants": [{"name": "S=2,000", "description": "2,000 minors", "sizes": "S = 2,000",
                                       "status": "reproduced", "counts": {"supported": 12}},
                                      {"name": "non-zero minors", "description": "zeros dropped, matched count",
                                       "sizes": "", "status": "contradicted", "counts": {"contradicted": 12}}]}
    return out


@pytest.fixture(scope="module")
def report_data() -> tuple[dict, FakeResults]:
    fake = FakeResults(SMOKE, kag_like)
    return assemble(fake, verdicts_from_cache(fake), fake.available()), fake


def _without_variants(entry: dict) -> dict:
    """A claim entry as a report without the multiverse has it: no variants in its cells."""
    out = {k: v for k, v in entry.items() if k not in ("robustness", "variant_names")}
    out["cells"] = [{k: v for k, v in row.items() if k != "variants"} for row in entry["cells"]]
    return out


def test_a_spec_curve_is_drawn_only_for_a_claim_with_variants(report_data):
    data, _ = report_data
    c1 = _without_variants(next(c for c in data["criteria"] if c["id"] == "C1-PR"))
    assert spec_curve(c1) is None
    fig = spec_curve(_with_variants(c1))
    assert isinstance(fig, Figure)
    top, bottom = fig.axes
    assert [t.get_text() for t in bottom.get_yticklabels()] == ["primary", "S=2,000", "non-zero minors"]
    points = [line for line in top.get_lines() if line.get_marker() == "o"]
    assert sum(len(line.get_xdata()) for line in points) == 3 * len(c1["cells"])  # a point per (cell, estimator)
    assert sorted(x for line in points for x in line.get_xdata()) == list(range(3 * len(c1["cells"])))
    assert any(line.get_linestyle() == "--" for line in top.get_lines())  # the threshold


def test_a_spec_curve_reads_each_rule_shape(report_data):
    data, _ = report_data
    for cid in ("C4", "C5", "C7", "C8", "N1"):
        entry = _with_variants_any(next(c for c in data["criteria"] if c["id"] == cid))
        assert isinstance(spec_curve(entry), Figure), cid
    c8 = next(c for c in data["criteria"] if c["id"] == "C8")
    key = key_quantity(c8["cells"][0]["values"])
    assert key.band == (0.15, 0.5) and key.kind == "reduction"
    c5 = key_quantity(next(c for c in data["criteria"] if c["id"] == "C5")["cells"][0]["values"])
    assert c5.kind == "condition" and c5.where and math.isfinite(c5.lower)


def _with_variants_any(entry: dict) -> dict:
    out = copy.deepcopy(entry)
    for row in out["cells"]:
        row["variants"] = {"other": {"verdict": "inconclusive", "values": row["values"]}}
    return out


def test_the_report_shows_spec_curves_robustness_and_zero_minors_beside_the_pr_claims(report_data, tmp_path):
    data, fake = report_data
    d = copy.deepcopy(data)
    d["criteria"] = [_with_variants(c) if c["id"] == "C2" else _without_variants(c) for c in d["criteria"]]
    out = render(d, tmp_path, fake.available())
    assert (out / f"{spec_stem('C2')}.png").is_file() and not (out / f"{spec_stem('C1-PR')}.png").exists()
    md, html = (out / "README.md").read_text(), (out / "index.html").read_text()
    assert "![C2: specification curve](spec_c2.png)" in md
    assert html.count('alt="C2: specification curve"') == 1
    assert "**Robustness:** fragile (non-zero minors disagrees) — under each pre-registered variant: *S=2,000* " \
           "(S = 2,000): reproduced; *non-zero minors*: contradicted" in md
    assert "| Under the variants |" in md and "S=2,000: supported; non-zero minors: contradicted" in md
    c2_summary = next(line for line in md[md.index("## Summary"):].splitlines() if line.startswith("| [C2]"))
    assert "| fragile (non-zero minors disagrees) |" in c2_summary
    for cid in ("C1-PR", "C2", "C3", "N2"):
        table = next(c for c in d["criteria"] if c["id"] == cid)["zero_minors"]
        assert table["columns"] == ["n", "k", "L1 trained", "L1 init", "L2 trained", "L2 init"], cid
    c3 = zero_minor_table(fake.available(), SMOKE, "C3")
    assert [row[1] for row in c3["rows"]] == ["1", "3", "1", "3"]  # C3 reads the lowest and highest k
    assert c3["rows"][1][2:] == [f"{3 * ZERO_MINORS['trained']:.2f}", f"{3 * ZERO_MINORS['init']:.2f}"] * 2
    c4 = zero_minor_table(fake.available(), SMOKE, "C4")  # judged in each regime, at the highest k
    assert c4["columns"][:3] == ["regime", "n", "k"] and {(r[0], r[2]) for r in c4["rows"]} == {
        ("standard", "3"), ("augmented", "3")}
    c5 = zero_minor_table(fake.available(), SMOKE, "C5")  # the range over the radii of the means over seeds
    assert c5["columns"] == ["n", "regime", "analysis", "k", "L1 trained", "L1 init", "L2 trained", "L2 init"]
    n_radii = len(SMOKE.metrics.radii)
    first = c5["rows"][0]
    assert first[:4] == ["16", "standard", "balls", "2"]
    assert first[4] == f"{2 * ZERO_MINORS['trained']:.2f}–{2 * n_radii * ZERO_MINORS['trained']:.2f}"
    assert {r[2] for r in zero_minor_table(fake.available(), SMOKE, "C8")["rows"]} == {"balls", "patches", "separation"}
    assert zero_minor_table(fake.available(), SMOKE, "C9") is None
    # rendering again without variants removes the stale curve
    d["criteria"] = [_without_variants(c) for c in d["criteria"]]
    render(d, tmp_path, fake.available())
    assert not (out / f"{spec_stem('C2')}.png").exists()


# -- the progress monitor --------------------------------------------------------------------------
class _Store:
    def __init__(self):
        self.models, self.tables, self.log = set(), set(), []

    def has_model(self, key):
        return key in self.models

    def has_metrics(self, key):
        return key in self.tables

    def events(self):
        return self.log


def test_the_monitor_counts_what_is_done_and_estimates_the_rest():
    store, lines = _Store(), []
    m = WorkMonitor(store, ["m1", "m2"], ["t1", "t2", "t3", "t4"], lines.append, workers=2)
    assert "models trained 0/2, metric tables computed 0/4, time left: estimated once a model and a table are done" \
        in m.line()
    only_tables = WorkMonitor(store, [], ["t1"], lines.append, workers=2)  # nothing to train: a table suffices
    assert "time left: estimated once a table is done" in only_tables.line()
    store.tables |= {"t1"}  # a table timed before any model (a resumed run): a floor from the tables left
    store.log += [{"time": m.start_time + 1, "kind": "metrics", "key": "t1", "seconds": 30.0}]
    assert ("metric tables computed 1/4, time left: at least ~45.0 s for the tables, estimated once a model is "
            "done") in m.line()
    store.tables, store.log = set(), []
    store.models |= {"m1", "m2"}
    store.tables |= {"t1"}
    store.log += [{"time": m.start_time + 1, "kind": "train", "seeds": [0, 1], "seconds": 20.0},
                  {"time": m.start_time + 2, "kind": "metrics", "key": "t1", "seconds": 30.0},
                  {"time": m.start_time - 5, "kind": "metrics", "key": "t2", "seconds": 999.0}]  # an earlier run
    assert m.seconds_left(2, 1) == pytest.approx(3 * 30.0 / 2)
    assert "models trained 2/2, metric tables computed 1/4, ~45.0 s left" in m.line()
    store.tables |= {"t2", "t3", "t4"}
    m.finish()
    m.finish()  # once
    assert len(lines) == 1 and lines[0].startswith("[kag] progress: done: models trained 2/2, metric tables "
                                                   "computed 4/4 in ")


def test_the_monitor_shows_how_far_each_running_training_has_come():
    store, lines = _Store(), []
    m = WorkMonitor(store, ["m1"], ["t1"], lines.append)
    assert "(training" not in m.line()  # a store that cannot say: nothing shown
    store.trainings = lambda: [{"label": "width 512 standard", "epoch": 37, "epochs": 200},
                               {"label": "cnn width 64 augmented", "epoch": 3, "epochs": 200}]
    assert ("models trained 0/1 (training width 512 standard: epoch 37/200, cnn width 64 augmented: epoch 3/200), "
            "metric tables computed 0/1, ") in m.line()
    store.trainings = lambda: []
    assert "models trained 0/1, metric tables computed 0/1, " in m.line()


def test_the_trainings_text_of_a_store_that_cannot_say_is_empty():
    from kag.progress import trainings_text

    class Unreadable:
        def trainings(self):
            raise OSError("permission denied")

    assert trainings_text(Unreadable()) == trainings_text(object()) == ""
    store = _Store()
    store.trainings = lambda: [{"label": "width 64 augmented", "epoch": 1, "epochs": 8}]
    assert trainings_text(store) == "training width 64 augmented: epoch 1/8"  # the sweep's progress note


def test_a_running_training_says_how_long_it_has_left_at_its_pace_so_far():
    from kag.progress import trainings_text

    store = _Store()
    store.trainings = lambda: [{"label": "width 512 augmented", "epoch": 50, "epochs": 200, "seconds": 1250.0},
                               {"label": "width 64 standard", "epoch": 200, "epochs": 200, "seconds": 400.0},
                               {"label": "width 8 standard", "epoch": 3, "epochs": 9, "seconds": "soon"}]
    assert trainings_text(store) == ("training width 512 augmented: epoch 50/200 (~1 h 02 min left), "
                                     "width 64 standard: epoch 200/200, width 8 standard: epoch 3/9")


def test_a_resumed_training_is_priced_at_the_pace_of_the_process_running_it():
    """Epochs 1-100 of a resumed training ran on a loaded machine (70 s each), this process runs
    epochs 101-150 at 10 s each: 50 epochs left take ~8 min 20 s, not the ~58 min of its overall pace."""
    from kag.progress import epoch_seconds, trainings_text

    store = _Store()
    record = {"label": "width 512 augmented", "epoch": 150, "epochs": 200, "seconds": 7500.0,
              "since_epoch": 101, "since_seconds": 7010.0}
    store.trainings = lambda: [record]
    assert epoch_seconds(record) == 10.0
    assert trainings_text(store) == "training width 512 augmented: epoch 150/200 (~8 min 20 s left)"
    assert epoch_seconds({**record, "since_epoch": 150}) == 50.0  # one epoch of this process: the overall pace
    assert epoch_seconds({**record, "since_seconds": "x"}) == 50.0 and epoch_seconds({"epoch": 0}) is None


def test_durations_read_as_a_person_would_say_them():
    assert [format_duration(s) for s in (None, 12.34, 320, 7500)] == ["n/a", "12.3 s", "5 min 20 s", "2 h 05 min"]


def test_claims_beyond_the_paper_are_listed_but_never_counted():
    from kag.repro.report.assemble import counted_in_outcome

    assert counted_in_outcome({"id": "C2", "control": False})
    assert not counted_in_outcome({"id": "C2-depth", "control": False})  # registered beyond_paper
    assert not counted_in_outcome({"id": "N2", "control": False}) and not counted_in_outcome({"id": "N1", "control": True})
