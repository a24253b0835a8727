"""Model families (kag.experiments.families): every family's closed-form Jacobians against autograd, its batched
forward against its nn.Module, and the paper's mlp2 bit for bit against kag.experiments.model (so the paper's
cache keys and tables are unchanged)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from kag.experiments.families import families, get_family
from kag.jacobians import first_layer_jacobian, jacobians_from_weights
from kag.experiments.keys import make_key, model_key_of
from kag.experiments.config import TrainConfig
from kag.experiments.keys import key_fields
from kag.experiments.model import MLP, init_params, stacked_forward
from kag.experiments.pipeline import model_key, training_versions


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mlp2_is_the_papers_network_bit_for_bit():
    fam = get_family("mlp2")
    state, paper = fam.init_state(16, _g(0)), MLP(16, generator=_g(0)).state_dict()
    assert list(state) == list(paper) == list(fam.param_shapes(16))
    assert all(torch.equal(state[k], paper[k]) for k in paper)
    stacked, paper_stacked = fam.init_params(16, [_g(0), _g(1)]), init_params(16, [_g(0), _g(1)])
    x = torch.randn(2, 5, 784, generator=_g(2))
    assert torch.equal(fam.stacked_forward(stacked, x), stacked_forward(paper_stacked, x))
    xs = torch.randn(6, 784, generator=_g(3))
    J = fam.layer_jacobians(state, xs, ["L1", "L2"], torch.float64)
    J1, J2 = jacobians_from_weights(state["fc1.weight"], state["fc1.bias"], state["fc2.weight"], state["fc2.bias"],
                                    xs, dtype=torch.float64)
    assert torch.equal(J["L1"], J1) and torch.equal(J["L2"], J2)
    assert torch.equal(fam.layer_jacobian({k: state[k] for k in fam.checkpoint_params()}, xs, "L1", torch.float64),
                       first_layer_jacobian(state["fc1.weight"], state["fc1.bias"], xs, dtype=torch.float64))


@pytest.mark.parametrize("name", list(families()))
def test_every_familys_jacobians_are_autograds(name):
    fam = get_family(name)
    net = fam.module(12, _g(4)).double()
    x = torch.randn(3, fam.input_dim, dtype=torch.float64, generator=_g(5))
    J = fam.layer_jacobians(net.state_dict(), x, fam.layers, torch.float64)
    assert list(J) == list(fam.layers) or set(J) == set(fam.layers)
    for i, layer in enumerate(fam.layers):
        reference = torch.func.vmap(torch.func.jacrev(lambda v, i=i: net.hidden(v[None])[i][0]))(x)
        assert J[layer].shape == (3, fam.units(12, layer), fam.input_dim)
        torch.testing.assert_close(J[layer], reference, rtol=1e-10, atol=1e-12)
    # the first layer's Jacobian needs only the parameters the training timeline keeps
    first = {k: v for k, v in net.state_dict().items() if k in fam.checkpoint_params()}
    torch.testing.assert_close(fam.layer_jacobian(first, x, "L1", torch.float64), J["L1"])


@pytest.mark.parametrize("name", list(families()))
def test_the_batched_forward_is_each_members_module(name):
    fam = get_family(name)
    params = fam.init_params(10, [_g(6), _g(7), _g(8)])
    assert {k: tuple(v.shape[1:]) for k, v in params.items()} == fam.param_shapes(10)
    x = torch.randn(3, 4, fam.input_dim, generator=_g(9))
    out = fam.stacked_forward(params, x)
    for i in range(3):
        member = fam.model_from_state({k: v[i] for k, v in params.items()})
        torch.testing.assert_close(out[i], member(x[i]), rtol=1e-5, atol=1e-6)
        assert fam.width_of(member.state_dict()) == 10


def test_the_cnns_support_holds_every_nonzero_jacobian_entry():
    fam = get_family("cnn")
    net = fam.module(8, _g(10)).double()
    J = fam.layer_jacobians(net.state_dict(), torch.randn(4, 784, dtype=torch.float64, generator=_g(11)),
                            fam.layers, torch.float64)
    for layer in ("L1", "L2"):
        support = fam.support(8, layer)
        nonzero = (J[layer] != 0).any(0)
        assert not (nonzero & ~support).any()  # nothing outside the receptive field
        assert (nonzero == support).float().mean() > 0.99  # and the field is what the layer uses
    assert fam.support(8, "L3") is None  # the fc layer sees every pixel
    assert int(fam.support(8, "L1").sum(1).max()) == 25  # a 5 x 5 kernel


def test_bad_family_layer_or_state_is_one_line():
    with pytest.raises(ValueError, match="family='resnet' is unknown: choose one of mlp2, cnn, mlp1-3d, mlp4"):
        get_family("resnet")
    with pytest.raises(ValueError, match="layer='L3' is not a layer of the mlp2 family: choose one of L1, L2"):
        get_family("mlp2").units(8, "L3")
    fam = get_family("cnn")
    state = fam.init_state(8, _g(0))
    state["fc1.weight"] = state["fc1.weight"][:, :10]
    with pytest.raises(ValueError, match=r"fc1.weight has shape \[8, 10\], a cnn network of width 8 has \[8, 392\]"):
        fam.check_state(state, 8)
    with pytest.raises(ValueError, match="width=0 is not allowed"):
        fam.module(0)


def test_the_papers_model_keys_do_not_name_a_family_and_the_others_do():
    config = TrainConfig(epochs=2)
    legacy = make_key("model", data="d", width=8, seed=0, regime="standard", train=key_fields(config),
                      versions=training_versions())
    assert model_key(8, 0, "standard", config, "d") == legacy == model_key(8, 0, "standard", config, "d", "mlp2")
    keys = {model_key(8, 0, "standard", config, "d", f) for f in families()}
    assert len(keys) == len(families())
    manifest = {"data_sha256": "d", "width": 8, "seed": 0, "regime": "standard",
                "train_config": dataclasses.asdict(config), "versions": training_versions(), "family": "cnn",
                "family_version": get_family("cnn").version}
    assert model_key_of(manifest) == model_key(8, 0, "standard", config, "d", "cnn")


def test_support_sampling_draws_each_rows_column_from_its_receptive_field():
    from kag.determinants import sample_indices, sample_pooled_indices
    from kag.spatial import ImageGrid

    support = get_family("cnn").support(8, "L1")
    rows, cols = sample_indices(784, 3, 500, n_cols=784, support=support, seed=1)
    assert support[rows, cols].all()
    ball = ImageGrid(28, 28).ball(7, 14 * 28 + 14)
    rows, cols = sample_pooled_indices(784, 2, 300, [ball], n_cols=784, support=support, seed=2)
    inside = support[rows, cols[0]]
    can = support[rows][:, :, ball].any(-1)  # rows whose field meets the ball get a column from it
    assert inside[can].all() and torch.isin(cols[0], ball).all()


def test_the_depth_figure_draws_three_or_more_layers_and_nothing_for_two():
    from kag.repro.report.figures import c2_depth

    def world(layers):
        cell = {"pr_ratio": [1.3, 1.2, 1.25]}
        return {"global": {"standard": {str(n): {layer: {"2": cell, "3": cell} for layer in layers}
                                        for n in (64, 128)}}}

    assert c2_depth(world(["L1", "L2"])) is None
    fig = c2_depth(world(["L1", "L2", "L3", "L4"]))
    assert fig is not None and len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["L1", "L2", "L3", "L4"]
