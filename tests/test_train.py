from __future__ import annotations

import dataclasses

import pytest
import torch

from kag.experiments.config import TrainConfig
from kag.experiments.train import initial_state, train_seeds

TINY = TrainConfig(epochs=2, train_subset=1024, checkpoint_every=1, batch_size=128)


@pytest.mark.parametrize("regime", ["standard", "augmented"])
def test_batched_training_equals_training_each_seed_alone(mnist, regime):
    together = train_seeds(16, (3, 7), regime, TINY, mnist, "cpu")
    for i, seed in enumerate((3, 7)):
        alone = train_seeds(16, (seed,), regime, TINY, mnist, "cpu")
        for name, value in alone.final_states[0].items():
            torch.testing.assert_close(together.final_states[i][name], value, rtol=1e-4, atol=1e-5)
        assert together.test_accuracy[i] == pytest.approx(alone.test_accuracy[0], abs=2e-4)


def test_seeds_differ_and_untrained_network_is_kept(mnist):
    group = train_seeds(16, (0, 1), "standard", TINY, mnist, "cpu")
    assert not torch.equal(group.init_states[0]["fc1.weight"], group.init_states[1]["fc1.weight"])
    torch.testing.assert_close(group.init_states[0]["fc1.weight"], initial_state(16, 0)["fc1.weight"])
    assert not torch.allclose(group.final_states[0]["fc1.weight"], group.init_states[0]["fc1.weight"])
    assert sorted(group.checkpoints[0]) == [0, 1, 2]
    torch.testing.assert_close(group.checkpoints[0][0]["fc1.weight"], group.init_states[0]["fc1.weight"])
    torch.testing.assert_close(group.checkpoints[0][2]["fc1.weight"], group.final_states[0]["fc1.weight"])
    assert set(group.checkpoints[0][1]) == {"fc1.weight", "fc1.bias"}  # only what the timeline needs


def test_training_learns(mnist):
    config = dataclasses.replace(TINY, epochs=3, train_subset=4096)
    group = train_seeds(32, (0,), "standard", config, mnist, "cpu")
    assert group.test_accuracy[0] > 0.8
    assert group.final_loss[0] < 0.5


def test_augmented_regime_keeps_no_timeline_by_default(mnist):
    group = train_seeds(8, (0,), "augmented", dataclasses.replace(TINY, epochs=1), mnist, "cpu")
    assert group.checkpoints[0] == {}


def test_checkpoint_epochs_include_init_and_end():
    assert TrainConfig(epochs=25, checkpoint_every=10).checkpoint_epochs() == (0, 10, 20, 25)
    assert TrainConfig(epochs=200).checkpoint_epochs()[:3] == (0, 10, 20)


@pytest.mark.parametrize("kwargs, match", [
    (dict(width=0), "width=0"),
    (dict(regime="rotated"), "regime='rotated'"),
    (dict(seeds=()), "seeds=()"),
])
def test_bad_training_arguments_are_one_line_errors(mnist, kwargs, match):
    args = dict(width=8, seeds=(0,), regime="standard", config=TINY, mnist=mnist)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match.replace("(", "\\(").replace(")", "\\)")):
        train_seeds(**args)


# -- rotation and scale in the augmented regime (the assumption sweep, SPEC §8) ---------------------
AFFINE_SMOKE = TrainConfig(epochs=1, train_subset=512, checkpoint_every=1, batch_size=128)


def test_rotation_and_scale_train_and_differ_from_translation_only(mnist):
    plain = train_seeds(8, (0,), "augmented", AFFINE_SMOKE, mnist, "cpu", evaluate=False)
    rotated = dataclasses.replace(AFFINE_SMOKE, rotate_deg=15.0, scale_range=(0.9, 1.1))
    group = train_seeds(8, (0,), "augmented", rotated, mnist, "cpu", evaluate=False)
    again = train_seeds(8, (0,), "augmented", rotated, mnist, "cpu", evaluate=False)
    weight = group.final_states[0]["fc1.weight"]
    assert torch.isfinite(weight).all() and torch.equal(weight, again.final_states[0]["fc1.weight"])
    assert not torch.allclose(weight, plain.final_states[0]["fc1.weight"])
    # the same init: only the augmentation differs
    torch.testing.assert_close(group.init_states[0]["fc1.weight"], plain.init_states[0]["fc1.weight"])


def test_augmentation_fields_leave_the_standard_regime_alone(mnist):
    """The premise of kag.experiments.config.regime_config: a standard model is the same whatever augmentation is named."""
    affine = dataclasses.replace(AFFINE_SMOKE, translate_px=6, rotate_deg=15.0, scale_range=(0.9, 1.1))
    a = train_seeds(8, (0,), "standard", affine, mnist, "cpu", evaluate=False)
    b = train_seeds(8, (0,), "standard", AFFINE_SMOKE, mnist, "cpu", evaluate=False)
    for name, tensor in b.final_states[0].items():
        assert torch.equal(a.final_states[0][name], tensor), name
    assert a.checkpoints[0].keys() == b.checkpoints[0].keys()
    for epoch, snapshot in b.checkpoints[0].items():
        assert all(torch.equal(a.checkpoints[0][epoch][k], v) for k, v in snapshot.items()), epoch


@pytest.mark.parametrize("fields, match", [
    (dict(rotate_deg=-1.0), "rotate_deg=-1.0"),
    (dict(rotate_deg=181.0), "rotate_deg=181.0"),
    (dict(rotate_deg=float("nan")), "rotate_deg=nan"),
    (dict(scale_range=(1.1, 0.9)), "scale_range=(1.1, 0.9)"),
    (dict(scale_range=(0.0, 1.0)), "scale_range=(0.0, 1.0)"),
    (dict(scale_range=(0.9,)), "scale_range=(0.9,)"),
], ids=["angle-negative", "angle-over-180", "angle-nan", "scale-reversed", "scale-zero", "scale-one-value"])
def test_bad_rotation_or_scale_is_a_one_line_error(fields, match):
    from kag.experiments.train import check_train_config

    with pytest.raises(ValueError, match=match.replace("(", "\\(").replace(")", "\\)")) as info:
        check_train_config(dataclasses.replace(TINY, **fields))
    assert "\n" not in str(info.value)


def test_the_weight_decay_shrink_factor_is_what_adamw_does_to_a_weight_without_gradient():
    """Independent check of kag.experiments.train.weight_decay_shrink: run torch's AdamW on a weight whose gradient
    is always 0 (Adam's own step is then 0), for the steps of a short training run."""
    from kag.experiments.train import weight_decay_shrink
    config = TrainConfig(epochs=3, lr=3e-3, weight_decay=0.5, batch_size=100, train_subset=1_050)  # 11 steps/epoch
    w = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = torch.optim.AdamW([w], lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    for _ in range(3 * 11):
        w.grad = torch.zeros_like(w)
        opt.step()
    assert weight_decay_shrink(config) == pytest.approx(float(w[0].detach()), rel=1e-12)
    assert weight_decay_shrink(TrainConfig(epochs=20, weight_decay=1e-2)) == pytest.approx(0.95408, abs=1e-5)


def test_a_timeline_of_more_than_a_thousand_checkpoints_is_refused_before_training():
    from kag.experiments.config import TrainConfig
    from kag.experiments.train import check_train_config

    with pytest.raises(ValueError, match=r"^checkpoint_every=1 with epochs=5000 keeps 5,001 timeline checkpoints, "
                                         r"more than 1,000: raise checkpoint_every to at least 6$"):
        check_train_config(TrainConfig(epochs=5000, checkpoint_every=1))
    check_train_config(TrainConfig(epochs=5000, checkpoint_every=6))  # 835 checkpoints
    assert len(TrainConfig(epochs=998, checkpoint_every=1).checkpoint_epochs()) == 999
