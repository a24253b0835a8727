"""The norm-matched surrogate of SPEC §5 on cases whose norms are known."""

import pytest
import torch

from kag.surrogate import SURROGATE_VERSION, norm_matched, norm_matched_variants

B, N, D = 3, 5, 7  # images, hidden units, pixels


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _jacobian(seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(B, N, D, generator=_gen(seed), dtype=dtype)


def _row_norms(J: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(J, dim=2)


def _col_norms(J: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(J, dim=1)


def _brute_force(J_init: torch.Tensor, J_trained: torch.Tensor, match: str, rounds: int) -> torch.Tensor:
    """Entry by entry: one image, one row or column at a time."""
    X = J_init.to(torch.float64).clone()
    T = J_trained.to(torch.float64)
    steps = {"rows": ["rows"], "cols": ["cols"], "both": ["cols", "rows"] * rounds}[match]
    for b in range(X.shape[0]):
        for step in steps:
            if step == "rows":
                for i in range(X.shape[1]):
                    current, target = float(X[b, i].norm()), float(T[b, i].norm())
                    X[b, i] = X[b, i] / current * target if current > 0 else 0.0
            else:
                for j in range(X.shape[2]):
                    current, target = float(X[b, :, j].norm()), float(T[b, :, j].norm())
                    X[b, :, j] = X[b, :, j] / current * target if current > 0 else 0.0
    return X


def test_version_is_an_integer():
    assert isinstance(SURROGATE_VERSION, int) and SURROGATE_VERSION >= 1


def test_rows_only_gives_the_trained_row_norms():
    J0, J = _jacobian(0), _jacobian(1) * torch.rand(B, N, 1, generator=_gen(2), dtype=torch.float64)
    S = norm_matched(J_trained=J, J_init=J0, match="rows")
    torch.testing.assert_close(_row_norms(S), _row_norms(J), rtol=1e-13, atol=0)
    assert not torch.allclose(_col_norms(S), _col_norms(J), rtol=1e-3)
    torch.testing.assert_close(S / _row_norms(S)[..., None], J0 / _row_norms(J0)[..., None])  # init directions


def test_cols_only_gives_the_trained_column_norms():
    J0, J = _jacobian(0), _jacobian(1) * torch.rand(B, 1, D, generator=_gen(2), dtype=torch.float64)
    S = norm_matched(J_trained=J, J_init=J0, match="cols")
    torch.testing.assert_close(_col_norms(S), _col_norms(J), rtol=1e-13, atol=0)
    assert not torch.allclose(_row_norms(S), _row_norms(J), rtol=1e-3)


def test_both_matches_rows_exactly_and_columns_closely():
    J0 = _jacobian(0).abs() + 0.1  # a generic positive case: the iteration converges
    J = (_jacobian(1).abs() + 0.1) * torch.rand(B, N, 1, generator=_gen(2), dtype=torch.float64)
    S = norm_matched(J_trained=J, J_init=J0)
    torch.testing.assert_close(_row_norms(S), _row_norms(J), rtol=1e-13, atol=0)
    torch.testing.assert_close(_col_norms(S), _col_norms(J), rtol=1e-4, atol=0)
    one_round = norm_matched(J_trained=J, J_init=J0, rounds=1)
    assert (_col_norms(one_round) - _col_norms(J)).abs().max() > (_col_norms(S) - _col_norms(J)).abs().max()


@pytest.mark.parametrize("match", ["rows", "cols", "both"])
def test_matching_a_jacobian_to_itself_returns_it(match):
    J = _jacobian(0)
    torch.testing.assert_close(norm_matched(J_trained=J.clone(), J_init=J, match=match), J, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("match", ["rows", "cols", "both"])
def test_zero_target_rows_and_columns_give_zero_rows_and_columns(match):
    J0, J = _jacobian(0), _jacobian(1)
    J[0, 2] = 0.0  # a dead unit
    J[1, :, 4] = 0.0  # a pixel that reaches no unit
    S = norm_matched(J_trained=J, J_init=J0, match=match)
    assert torch.isfinite(S).all()
    if match != "cols":
        assert (S[0, 2] == 0).all()
    if match != "rows":
        assert (S[1, :, 4] == 0).all()
    if match == "both":
        assert (S[0, 2] == 0).all() and (S[1, :, 4] == 0).all()


@pytest.mark.parametrize("match", ["rows", "cols", "both"])
def test_a_zero_row_of_the_init_stays_zero(match):
    J0, J = _jacobian(0), _jacobian(1)
    J0[2, 3] = 0.0
    S = norm_matched(J_trained=J, J_init=J0, match=match)
    assert torch.isfinite(S).all() and (S[2, 3] == 0).all()


def test_subnormal_rows_are_matched_without_overflow():
    """float64 rows of ~1e-310 (SPEC §3): the target / current scale would overflow to inf."""
    J0, J = _jacobian(0), _jacobian(1)
    J0[0, 1] *= 1e-310
    J[0, 2] *= 1e-310
    S = norm_matched(J_trained=J, J_init=J0, match="rows")
    assert torch.isfinite(S).all()
    torch.testing.assert_close(S[0, 1].norm(), J[0, 1].norm())
    assert 0 < float(S[0, 2].abs().max()) < 1e-300


def test_each_image_is_matched_on_its_own():
    J0, J = _jacobian(0), _jacobian(1)
    together = norm_matched(J_trained=J[:2], J_init=J0[:2])
    apart = torch.cat([norm_matched(J_trained=J[b : b + 1], J_init=J0[b : b + 1]) for b in range(2)])
    torch.testing.assert_close(together, apart, rtol=1e-14, atol=0)


@pytest.mark.parametrize("match, rounds", [("rows", 1), ("cols", 1), ("both", 1), ("both", 5)])
def test_norm_matched_agrees_with_a_brute_force_loop(match, rounds):
    J0, J = _jacobian(0), _jacobian(1)
    J[0, 1] = 0.0
    J0[1, :, 3] = 0.0
    torch.testing.assert_close(norm_matched(J_trained=J, J_init=J0, match=match, rounds=rounds),
                               _brute_force(J0, J, match, rounds))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_surrogate_has_the_init_dtype(dtype):
    J0, J = _jacobian(0, dtype), _jacobian(1, torch.float64)
    S = norm_matched(J_trained=J, J_init=J0)
    assert S.dtype == dtype
    rtol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(_row_norms(S.double()), _row_norms(J), rtol=rtol, atol=0)


def test_variants_built_together_equal_each_built_alone():
    """The analysis builds the three surrogates of a chunk from one pass over the norms: bit for bit
    the surrogates that three separate calls give."""
    J_init, J_trained = _jacobian(0, torch.float32), _jacobian(1, torch.float32)
    variants = {"surrogate": "both", "surrogate_rows": "rows", "surrogate_cols": "cols"}
    together = norm_matched_variants(J_trained=J_trained, J_init=J_init, variants=variants, rounds=7)
    assert list(together) == list(variants)
    for name, match in variants.items():
        assert torch.equal(together[name], norm_matched(J_trained=J_trained, J_init=J_init, match=match, rounds=7))
    assert torch.equal(J_init, _jacobian(0, torch.float32))  # the input is not modified


def test_a_bad_variant_raises_before_any_work():
    with pytest.raises(ValueError, match="match='pixels' is not allowed"):
        norm_matched_variants(J_trained=_jacobian(1), J_init=_jacobian(0), variants={"a": "rows", "b": "pixels"})


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((torch.zeros(2, 3, 4), torch.zeros(2, 3, 5)), {},
         r"J_init has shape \[2, 3, 4\] but J_trained has \[2, 3, 5\]"),
        ((torch.zeros(3, 4), torch.zeros(3, 4)), {}, r"J_init has shape \[3, 4\]: expected a 3-D tensor"),
        ((torch.zeros(1, 2, 2), torch.full((1, 2, 2), float("nan"))), {}, "J_trained contains NaN or Inf"),
        ((torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)), dict(match="pixels"), "match='pixels' is not allowed"),
        ((torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)), dict(rounds=0), "rounds=0 is not allowed"),
    ],
    ids=["shape-mismatch", "2-D", "nan", "bad-match", "rounds0"],
)
def test_bad_surrogate_arguments_raise(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        norm_matched(J_trained=args[1], J_init=args[0], **kwargs)


def test_the_two_jacobians_are_named_never_positional():
    """trained first or by keyword everywhere (issue 18): a positional call cannot swap them silently."""
    with pytest.raises(TypeError, match="positional"):
        norm_matched(_jacobian(1), _jacobian(0))
