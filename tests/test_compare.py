"""compare_to_init: a trained network against its initialisation, on one layer's representation."""

import copy
import math
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kag.compare import KAGComparison, compare_to_init
from kag.jacobians import hidden_jacobians
from kag.metrics import kl_divergence, mean_ignoring_undefined, participation_ratio, rotation_ratios, zero_row_fraction
from kag.determinants import minors, sample_indices
from kag.experiments.model import MLP

SMALL = dict(n_samples=300, n_rotations=4)


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc1 = nn.Linear(4 * 4 * 4, 12)
        self.fc2 = nn.Linear(12, 5)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.features(x).flatten(1))))


def _perturbed(model: nn.Module, scale: float = 0.3, seed: int = 1) -> nn.Module:
    """A copy of ``model`` with every parameter moved by Gaussian noise (a stand-in for training)."""
    out = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return out


@pytest.fixture(scope="module")
def cnn_pair():
    torch.manual_seed(0)
    init = TinyCNN().eval()
    return _perturbed(init).eval(), init, torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(2))


def test_a_network_against_itself_has_ratio_one_and_no_divergence(cnn_pair):
    trained, _, x = cnn_pair
    table = compare_to_init(trained, copy.deepcopy(trained), x, layer="fc1", **SMALL)
    assert [row.k for row in table] == [1, 2, 3]
    for row in table:
        assert row.pr_ratio == 1.0 and row.kl == 0.0 and row.rr_ratio == 1.0
        assert row.pr_trained == row.pr_init and row.zero_rows_trained == row.zero_rows_init


def test_layer_as_name_module_or_callable_gives_identical_results(cnn_pair):
    trained, init, x = cnn_pair
    by_name = compare_to_init(trained, init, x, layer="fc1", **SMALL)
    by_module = compare_to_init(trained, init, x, layer=trained.fc1, **SMALL)
    by_callable = compare_to_init(trained, init, x, layer=lambda m, v: m.fc1(m.features(v).flatten(1)), **SMALL)
    assert by_name == by_module == by_callable
    assert all(math.isfinite(v) for row in by_name for v in row.to_dict().values())
    assert by_name[0].pr_ratio != 1.0


@pytest.mark.filterwarnings("ignore:k=1. 90% of the sampled minors:RuntimeWarning")  # a conv layer, sampled uniformly
def test_nested_names_and_the_whole_output(cnn_pair):
    trained, init, x = cnn_pair
    nested = compare_to_init(trained, init, x, layer="features.0", ks=(1,), **SMALL)
    assert compare_to_init(trained, init, x, layer=trained.features[0], ks=(1,), **SMALL) == nested
    output = compare_to_init(trained, init, x, ks=(2,), **SMALL)
    assert output == compare_to_init(trained, init, x, layer=lambda m, v: m(v), ks=(2,), **SMALL)


def test_networks_are_left_unchanged_and_may_stay_in_float32(cnn_pair):
    trained, init, x = cnn_pair
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    compare_to_init(trained, init, x, layer="fc1", ks=(2,), **SMALL)
    single = compare_to_init(trained, init, x, layer="fc1", ks=(2,), dtype=None, **SMALL)
    assert all(torch.equal(v, before[k]) and v.dtype == torch.float32 for k, v in trained.state_dict().items())
    assert not trained.fc1._forward_hooks and single[0].pr_ratio == pytest.approx(
        compare_to_init(trained, init, x, layer="fc1", ks=(2,), **SMALL)[0].pr_ratio, rel=1e-4
    )


def test_to_dict_lists_every_field():
    row = KAGComparison(2, 0.2, 0.1, 2.0, 0.5, 1.2, 1.0, 1.2, 0.01, 0.01, 0.3, 0.05, js=0.25, rr_ratio_se=0.1)
    got = row.to_dict()
    assert got == {
        "k": 2, "pr_trained": 0.2, "pr_init": 0.1, "pr_ratio": 2.0, "kl": 0.5, "rr_trained": 1.2,
        "rr_init": 1.0, "rr_ratio": 1.2, "zero_rows_trained": 0.01, "zero_rows_init": 0.01,
        "zero_minors_trained": 0.3, "zero_minors_init": 0.05, "pr_ratio_se": got["pr_ratio_se"],
        "kl_se": got["kl_se"], "js": 0.25, "js_se": got["js_se"], "rr_ratio_se": 0.1,
    }
    assert all(math.isnan(got[f]) for f in ("pr_ratio_se", "kl_se", "js_se"))  # SEs default to NaN (unknown)


@pytest.mark.parametrize("layer", ["L1", "L2"])
def test_paper_mlp_agrees_with_the_closed_form(layer):
    """fc1 alone is the pre-activation z1: the hidden layers are GELU of fc1 / fc2, given as callables."""
    init = MLP(16, generator=torch.Generator().manual_seed(0))
    trained = _perturbed(init, scale=0.05)
    x = torch.randn(5, 784, generator=torch.Generator().manual_seed(3))
    i = 0 if layer == "L1" else 1
    kw = dict(ks=(1, 2, 3), n_samples=500, n_rotations=5, rotation_images=3, rr_index_samples=2, seed=7)
    table = compare_to_init(trained, init, x, layer=lambda m, v: m.hidden(v)[i], **kw)
    if layer == "L1":
        assert table == compare_to_init(trained, init, x, layer=lambda m, v: F.gelu(m.fc1(v)), **kw)

    J = {name: hidden_jacobians(net, x, dtype=torch.float64)[i] for name, net in (("trained", trained), ("init", init))}
    samples = [sample_indices(16, k, 500, n_cols=784, seed=7) for k in (1, 2, 3)]
    second = [sample_indices(16, k, 500, n_cols=784, seed=8) for k in (1, 2, 3)]  # RR's second index sample
    # RR per index sample (mean over images, float32 like the pipeline), then over the two samples
    rr = {name: torch.tensor([mean_ignoring_undefined(v)[0] for v in rotation_ratios(J[name][:3].float(), s,
                                                                                       n_rotations=5, seed=7)])
          for name in J for s in [samples + second]}  # [6]: j = 0 for k = 1, 2, 3, then j = 1
    zero = zero_row_fraction(J["trained"], J["init"])
    for i_k, (row, (rows, cols)) in enumerate(zip(table, samples)):
        rr_t, rr_i = (rr[name][[i_k, 3 + i_k]] for name in ("trained", "init"))
        m = {name: minors(J[name], rows, cols) for name in J}
        pr = {name: mean_ignoring_undefined(participation_ratio(m[name]))[0] for name in J}
        assert row.pr_trained == pytest.approx(pr["trained"], rel=1e-10)
        assert row.pr_init == pytest.approx(pr["init"], rel=1e-10)
        assert row.kl == pytest.approx(kl_divergence(m["trained"], m["init"]), rel=1e-8, abs=1e-12)
        assert row.rr_trained == pytest.approx(float(rr_t.mean()), rel=1e-5)
        assert row.rr_init == pytest.approx(float(rr_i.mean()), rel=1e-5)
        assert row.rr_ratio == pytest.approx(math.exp(float((rr_t / rr_i).log().mean())), rel=1e-5)
        assert math.isfinite(row.rr_ratio_se) and math.isfinite(row.pr_ratio_se) and math.isfinite(row.js)
        assert (row.zero_rows_trained, row.zero_rows_init) == (zero.trained, zero.init)
        assert (row.zero_minors_trained, row.zero_minors_init) == tuple(
            float((m[name] == 0).double().mean()) for name in ("trained", "init"))


def test_fc1_of_the_paper_mlp_is_its_weight_matrix():
    """The representation named "fc1" is z1 = W1·x + b1, whose Jacobian is W1 at every image."""
    init = MLP(8, generator=torch.Generator().manual_seed(0))
    trained = _perturbed(init, scale=0.05)
    x = torch.randn(3, 784, generator=torch.Generator().manual_seed(3))
    table = compare_to_init(trained, init, x, layer="fc1", ks=(2,), n_samples=200, n_rotations=3)
    W = {name: net.fc1.weight.detach().double().expand(3, -1, -1) for name, net in (("t", trained), ("i", init))}
    rows, cols = sample_indices(8, 2, 200, n_cols=784, seed=42)
    expected = [mean_ignoring_undefined(participation_ratio(minors(W[n], rows, cols)))[0] for n in ("t", "i")]
    assert (table[0].pr_trained, table[0].pr_init) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(layer="fc9"), r"layer='fc9' is not a submodule of trained: valid names include 'features', "),
        (dict(layer=nn.Linear(3, 3)), "layer is a Linear that is not a submodule of trained"),
        (dict(layer=3), "layer=3 is not allowed"),
        (dict(layer="fc1", ks=(13,)), "k=13 exceeds this layer's 12 outputs"),
        (dict(ks=(6,)), "k=6 exceeds this layer's 5 outputs"),
        (dict(ks=()), r"ks=\(\) is not allowed"),
        (dict(ks=2), "ks=2 is not allowed"),
        (dict(ks=(0,)), "k=0 is not allowed"),
        (dict(n_samples=0), "n_samples=0 is not allowed"),
        (dict(rotation_images=0), "rotation_images=0 is not allowed"),
    ],
    ids=["unknown-name", "foreign-module", "bad-type", "k-over-layer", "k-over-output", "no-ks", "int-ks", "k0",
         "S0", "no-rotation-images"],
)
def test_bad_arguments_raise(cnn_pair, kwargs, message):
    trained, init, x = cnn_pair
    with pytest.raises(ValueError, match=message):
        compare_to_init(trained, init, x, **kwargs)


def test_k_beyond_the_input_size_raises_before_any_jacobian():
    net = nn.Linear(2, 6)
    with pytest.raises(ValueError, match="k=3 exceeds the input's 2 values"):
        compare_to_init(net, copy.deepcopy(net), torch.randn(4, 2), ks=(3,))


def test_init_without_the_layer_raises(cnn_pair):
    trained, _, x = cnn_pair
    other = nn.Sequential(nn.Flatten(), nn.Linear(192, 5))
    with pytest.raises(ValueError, match="layer='fc1' is not a submodule of init: valid names include '0', '1'"):
        compare_to_init(trained, other, x, layer="fc1")


def test_a_layer_that_runs_twice_is_refused():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Linear(4, 4)

        def forward(self, x):
            return self.block(torch.tanh(self.block(x)))

    net = Twice()
    with pytest.raises(ValueError, match="layer 'block' ran 2 times in one forward pass"):
        compare_to_init(net, copy.deepcopy(net), torch.randn(3, 4), layer="block", ks=(1,))


class _Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_a_conv_layer_is_measured_where_its_jacobian_is_non_zero():
    """Uniform minors of a 3x3 convolution's output are nearly all exactly 0 (each output sees 9 of 64
    pixels), and a warning says so; sampling="support" draws them where the layer is non-zero."""
    torch.manual_seed(0)
    init = _Conv()
    trained = _perturbed(init, scale=0.1)
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    kw = dict(layer="conv", ks=(2, 3), n_samples=400, n_rotations=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        uniform = compare_to_init(trained.eval(), init.eval(), x, **kw)
    said = [str(w.message) for w in caught if w.category is RuntimeWarning]
    for k in (2, 3):  # one warning per result
        assert any(re.match(rf"k={k}: \d+% of the sampled minors of \w+ are exactly 0.*sampling='support'", m)
                   for m in said), said
    assert all(r.zero_minors_trained > 0.9 and r.zero_minors_init > 0.9 for r in uniform)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        local = compare_to_init(trained.eval(), init.eval(), x, sampling="support", **kw)
    assert all(r.zero_minors_trained < 0.05 and r.zero_minors_init < 0.05 for r in local)
    assert all(math.isfinite(v) for r in local for v in (r.pr_ratio, r.kl, r.rr_ratio))
    with pytest.raises(ValueError, match="sampling='nearby' is not allowed: use 'uniform' or 'support'"):
        compare_to_init(trained, init, x, sampling="nearby", **kw)


def test_kl_is_undefined_only_when_neither_side_has_a_positive_minor():
    """One rule for the library and the pipeline (kag.metrics.divergence_defined): a trained layer whose
    minors are all exactly 0 (every unit dead) still has a KL against its init, all its mass in the
    underflow bin; KL, JS and their SEs are NaN only when neither side has a positive minor."""
    from kag.experiments.analysis import _bootstrap_kl, _divergences
    from kag.experiments.config import MetricConfig
    from kag.metrics import bootstrap_kl, divergences

    zero = torch.zeros(4, 50, dtype=torch.float64)
    positive = torch.rand(4, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.1
    for a, b in ((zero, positive), (positive, zero)):
        kl, js = divergences(a, b)
        assert math.isfinite(kl) and math.isfinite(js) and kl == pytest.approx(kl_divergence(a, b))
        assert bootstrap_kl(a, b, n_boot=10).kl == kl
    assert all(math.isnan(v) for v in (*divergences(zero, zero), *tuple(bootstrap_kl(zero, zero))[:4]))
    config = MetricConfig()
    assert math.isnan(_divergences(zero, zero, config)[0]) and math.isnan(_bootstrap_kl(zero, zero, config).kl)
    assert math.isfinite(_divergences(zero, positive, config)[0])
    # compare_to_init on a network whose trained layer is all dead: KL defined
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
    dead = copy.deepcopy(net)
    with torch.no_grad():
        dead[0].bias.fill_(-100.0)
    with pytest.warns(RuntimeWarning, match="100% of the sampled minors of trained are exactly 0"):
        row = compare_to_init(dead, net, torch.randn(4, 6), layer="1", ks=(2,), n_samples=50, rr=False,
                              n_bootstrap=10)[0]
    assert row.zero_minors_trained == 1.0 and math.isfinite(row.kl) and math.isnan(row.rr_ratio)


def test_a_layer_too_wide_for_the_memory_budget_is_refused_before_any_jacobian(monkeypatch):
    """RR's rotations are [n_rotations, m, m]: a wide layer used to fail late, in the allocator (issue 18)."""
    import kag.compare as compare_module

    def no_jacobian(*args, **kwargs):
        raise AssertionError("a Jacobian was computed before the memory check")

    monkeypatch.setattr(compare_module, "jacobian", no_jacobian)
    init = _Conv()
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError) as info:  # conv: m = 144; 1,000 rotations of 144 x 144 float64 = 166 MB
        compare_to_init(_perturbed(init), init, x, layer="conv", n_rotations=1_000, memory_budget=100 * 2**20)
    message = str(info.value)
    assert message.startswith("this layer (m=144) needs about") and "memory_budget=100.0 MiB" in message
    assert "lower n_rotations" in message and "\n" not in message


@pytest.mark.parametrize("layer", ["L1", "L2"])
def test_the_library_and_the_pipeline_agree_on_the_same_jacobians(layer):
    """One measurement path (issue 18 item 1): compare_to_init and the reproduction's pipeline
    (kag.experiments.analysis.global_metrics) on the same networks, images, index samples and rotations give the
    same numbers: PR, the PR ratio and its SE, KL and JS with their SEs, RR (the estimator over index
    samples) and its SE, the zero-minor shares and the zero-row fractions."""
    from kag.experiments.analysis import _Rows, global_metrics
    from kag.experiments.families import get_family
    from kag.experiments.config import MetricConfig
    from kag.measurement import measure_jacobians
    from kag.experiments.table import ResultTable
    from kag.experiments.train import initial_state

    width = 16
    init_state = initial_state(width, 0)
    trained_state = {k: v + 0.05 * torch.randn(v.shape, generator=torch.Generator().manual_seed(1))
                     for k, v in init_state.items()}
    config = MetricConfig(n_images=6, n_samples=300, n_rotations=3, n_rotation_images=2, rr_index_samples=3,
                          n_bootstrap=10, pr_sample_sizes=(100, 300), rr_variant_images=4, rr_variant_rotations=())
    x = torch.randn(6, 784, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    states = {"trained": trained_state, "init": init_state, "null": initial_state(width, 7),
              "null2": initial_state(width, 8)}
    rows = _Rows(width, 0, "standard", "clean")
    global_metrics(rows, states, x, config, surrogate=False)
    table = ResultTable(rows.rows)  # the primary estimator's rows (variants are kept apart)

    def net(state):
        model = MLP(width)
        model.load_state_dict(state)
        return model.double().eval()

    i = 0 if layer == "L1" else 1
    options = dict(ks=config.ks, n_samples=config.n_samples, n_rotations=config.n_rotations,
                   rotation_images=config.n_rotation_images, rr_index_samples=config.rr_index_samples,
                   n_bootstrap=config.n_bootstrap, seed=config.index_seed)
    # the same Jacobians (the pipeline's closed form) through the library's path: identical numbers
    J = {name: get_family("mlp2").layer_jacobian(states[name], x, layer, torch.float64) for name in ("trained", "init")}
    library = measure_jacobians(J["trained"], J["init"], **options)
    # and compare_to_init, whose Jacobians come from autograd (equal to ~1e-16; RR's float32 rotations ~1e-6)
    got = compare_to_init(net(trained_state), net(init_state), x, layer=lambda m, v: m.hidden(v)[i], **options)
    for row in got:
        def pipeline(observable, role="trained"):
            return table.value(analysis="global", layer=layer, k=row.k, observable=observable, role=role)

        def lib(observable, role="trained"):
            return library.select(k=row.k, observable=observable, role=role)[0]
        names = [("pr", "trained"), ("pr", "init"), ("pr_ratio", "trained"), ("kl", "trained"), ("js", "trained"),
                 ("rr", "trained"), ("rr", "init"), ("rr_ratio", "trained")]
        values = [lib(o, r).value for o, r in names] + [lib(o, "trained").se for o in ("pr_ratio", "kl", "js", "rr_ratio")]
        expected = [pipeline(o, r) for o, r in names] + [pipeline(f"{o}_se") for o in ("pr_ratio", "kl", "js", "rr_ratio")]
        assert values == expected and all(math.isfinite(v) for v in values)  # identical, not close
        assert lib("pr", "trained").zero_fraction == pipeline("zero_minor_fraction")
        from_compare = [row.pr_trained, row.pr_init, row.pr_ratio, row.kl, row.js, row.rr_trained, row.rr_init,
                        row.rr_ratio, row.pr_ratio_se, row.kl_se, row.js_se, row.rr_ratio_se]
        assert from_compare == pytest.approx(expected, rel=1e-5)
    zero = {role: table.value(analysis="zero_rows", layer=layer, observable="zero_row_fraction", role=role)
            for role in ("trained", "init")}
    assert [r.value for r in library.select(observable="zero_row_fraction")] == [zero["trained"], zero["init"]]
    assert (got[0].zero_rows_trained, got[0].zero_rows_init) == (zero["trained"], zero["init"])
