"""kag.measure: many layers in one call, one tidy table, refused before any Jacobian when too big."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch import nn

import kag.measurement as measure_module
from kag.compare import compare_to_init
from kag.measurement import FIELDS, Measurement, measure


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc1 = nn.Linear(4 * 6 * 6, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(torch.relu(self.conv(x)).flatten(1))))


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    init = _Net().eval()
    trained = copy.deepcopy(init)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    return trained, init, x


KW = dict(ks=(1, 2), n_samples=300, n_rotations=4, rotation_images=4, seed=3)


@pytest.fixture(scope="module")
def result(nets) -> Measurement:
    trained, init, x = nets
    return measure(trained, init, x, ["fc1", "fc2"], n_bootstrap=50, per_image=True, verbose=False, **KW)


def test_every_layer_k_and_observable_is_a_row(result):
    assert {r.layer for r in result.rows} == {"fc1", "fc2"}
    for layer in ("fc1", "fc2"):
        for k in (1, 2):
            got = {(r.observable, r.role) for r in result.select(layer=layer, k=k)}
            assert got == {("pr", "trained"), ("pr", "init"), ("pr_ratio", "trained"), ("kl", "trained"),
                           ("js", "trained"), ("rr", "trained"), ("rr", "init"), ("rr_ratio", "trained")}
        zero = result.select(layer=layer, observable="zero_row_fraction")
        assert {r.role for r in zero} == {"trained", "init"} and all(r.k is None for r in zero)
    ratio = result.select(layer="fc1", k=2, observable="pr_ratio")[0]
    assert math.isfinite(ratio.se) and ratio.se > 0 and ratio.n_defined == 8 and 0 <= ratio.zero_fraction <= 1


@pytest.mark.parametrize("layer", ["fc1", "fc2"])
def test_the_numbers_are_those_of_compare_to_init(nets, result, layer):
    """One measurement path: the same index samples, KL rule, RR and zero-row threshold as compare_to_init."""
    trained, init, x = nets
    for row in compare_to_init(trained, init, x, layer=layer, **KW):
        def one(observable, role="trained"):
            return result.select(layer=layer, k=row.k, observable=observable, role=role)[0]
        assert one("pr").value == pytest.approx(row.pr_trained, rel=1e-12)
        assert one("pr", "init").value == pytest.approx(row.pr_init, rel=1e-12)
        assert one("kl").value == pytest.approx(row.kl, rel=1e-12, nan_ok=True)
        assert one("rr").value == pytest.approx(row.rr_trained, rel=1e-12)
        assert one("rr_ratio").value == pytest.approx(row.rr_ratio, rel=1e-12)
        assert one("pr").zero_fraction == row.zero_minors_trained
    zero = {r.role: r.value for r in result.select(layer=layer, observable="zero_row_fraction")}
    assert (zero["trained"], zero["init"]) == (row.zero_rows_trained, row.zero_rows_init)


def test_rr_can_be_switched_off_and_per_image_values_are_kept(nets, result):
    trained, init, x = nets
    off = measure(trained, init, x, ["fc1"], rr=False, verbose=False, n_bootstrap=20, **KW)
    assert not [r for r in off.rows if r.observable.startswith("rr")] and off.per_image is None
    per = result.per_image[("fc1", 2, "pr", "trained")]
    assert per.shape == (8,)
    assert float(per.mean()) == pytest.approx(result.select(layer="fc1", k=2, observable="pr")[0].value)
    assert result.per_image[("fc2", 1, "rr", "init")].shape == (4,)  # RR on the first rotation_images


def test_the_table_saves_as_csv_and_json(result, tmp_path):
    csv_text = result.to_csv(tmp_path / "kag.csv").read_text().splitlines()
    assert csv_text[0] == ",".join(FIELDS) and len(csv_text) == len(result.rows) + 1
    data = json.loads(result.to_json(tmp_path / "kag.json").read_text())  # strict: NaN as null
    assert data["fields"] == list(FIELDS) and len(data["rows"]) == len(result.rows)
    assert data["rows"][0][:4] == ["fc1", 1, "pr", "trained"]


def test_the_table_is_a_dataframe_when_pandas_is_installed(result):
    pd = pytest.importorskip("pandas")
    frame = result.to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(FIELDS) and len(frame) == len(result.rows)


def test_too_much_memory_is_refused_before_any_jacobian(nets, monkeypatch):
    trained, init, x = nets

    def no_jacobian(*args, **kwargs):
        raise AssertionError("a Jacobian was computed before the memory check")

    monkeypatch.setattr(measure_module, "jacobian", no_jacobian)
    with pytest.raises(ValueError) as info:  # conv: m = 144, 100 rotations of 144 x 144 = 16.6 MB
        measure(trained, init, x, ["fc2", "conv"], ks=(1,), n_rotations=100, memory_budget=8 * 2**20, verbose=False)
    message = str(info.value)
    assert message.startswith("layer 'conv' (m=144) needs about") and "memory_budget=8.0 MiB" in message
    assert "lower n_rotations, use rotations='structured' or pass rr=False" in message and "\n" not in message
    with pytest.raises(ValueError, match=r"layer='nope' is not a submodule of model: valid names include 'conv'"):
        measure(trained, init, x, ["fc1", "nope"], verbose=False)
    with pytest.raises(ValueError, match="k=20 exceeds layer 'fc1'"):
        measure(trained, init, x, ["fc1"], ks=(20,), verbose=False)
    with pytest.raises(ValueError, match=r"layers='fc1' is not allowed: give a non-empty list of module names"):
        measure(trained, init, x, "fc1", verbose=False)


def test_progress_lines_and_the_estimate_are_printed(nets, capsys, monkeypatch):
    trained, init, x = nets
    monkeypatch.delenv("KAG_QUIET", raising=False)
    measure(trained, init, x, ["fc1", "fc2"], n_bootstrap=20, **KW)
    err = capsys.readouterr().err
    assert "[kag] measure: 2 layers of 8 images, peak memory about" in err
    assert "[kag] measure: 1/2 layer, fc1 in" in err and "left if the others cost as much" in err
    assert "[kag] measure: done: " in err


def test_plot_measurement_draws_one_panel_per_network_and_refuses_unknown_observables(result, tmp_path):
    from kag.plots import plot_measurement

    figure = plot_measurement({"a": result, "b": result}, observable="pr_ratio")
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["fc1", "fc2"]
    assert len(axes[0].get_legend().get_texts()) == 2  # k = 1, 2
    figure.savefig(tmp_path / "pr.png")
    assert (tmp_path / "pr.png").stat().st_size > 5_000
    single = plot_measurement(result, observable="zero_row_fraction")  # no k: one line
    assert len(single.get_axes()) == 1
    with pytest.raises(ValueError, match="observable='prr' is not in the results: they hold .*pr_ratio"):
        plot_measurement(result, observable="prr")
    with pytest.raises(ValueError, match="results must be a Measurement"):
        plot_measurement({})
