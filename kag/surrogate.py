"""The norm-matched surrogate of SPEC §5: a control beyond the paper.

Per image, the initial Jacobian J₀ is rescaled until its row norms (hidden units) and column norms
(pixels) are those of the trained Jacobian J. The surrogate thus has the trained network's row
and column norms and the initial network's directions; any observable X is reported as
X(trained)/X(surrogate) to say how much of X the norms alone explain (a ratio ≈ 1: all of it).
"""

from __future__ import annotations

import torch

from kag.checks import check_int, check_jacobian

# Version of the surrogate construction: part of the cache key of every metric computed on it;
# bump it when norm_matched computes something else.
SURROGATE_VERSION = 1

_MATCHES = ("rows", "cols", "both")


def norm_matched(
    *, J_trained: torch.Tensor, J_init: torch.Tensor, match: str = "both", rounds: int = 20
) -> torch.Tensor:
    """The norm-matched surrogate: ``J_trained, J_init [B, n, d] -> [B, n, d]`` in J_init's dtype.

    Keyword-only (``norm_matched(J_trained=..., J_init=...)``), so that the two Jacobians cannot be
    swapped: every kag function that takes both names the trained one first or by keyword.

    Per image, start from J_init and rescale it:

    * ``match="rows"``: each row once to the trained row norm (exact; column norms unmatched);
    * ``match="cols"``: each column once to the trained column norm (exact; row norms unmatched);
    * ``match="both"``: ``rounds`` rounds, each scaling the columns then the rows (a Sinkhorn
      iteration on the squared entries), so the row norms match exactly and the column norms
      approximately.

    A zero target norm makes the row (column) zero; a row (column) whose current norm is zero stays
    zero, with no division by zero. Norms are max-scaled, so subnormal rows (SPEC §3) keep their
    tiny norm instead of underflowing to 0. Computed in float64: images are independent, so call
    it on chunks of images to bound memory. :func:`norm_matched_variants` builds several variants
    from one pass over the norms.
    """
    return norm_matched_variants(J_trained=J_trained, J_init=J_init, variants={match: match}, rounds=rounds)[match]


def norm_matched_variants(
    *, J_trained: torch.Tensor, J_init: torch.Tensor, variants: dict[str, str], rounds: int = 20
) -> dict[str, torch.Tensor]:
    """Several surrogates of one pair of Jacobians, ``{name: match} -> {name: surrogate}``, each exactly
    :func:`norm_matched` with that ``match``; the target norms and the init's scaled squares are computed
    once for all of them instead of once per variant."""
    check_jacobian(J_init, "J_init")
    check_jacobian(J_trained, "J_trained")
    if J_init.shape != J_trained.shape:
        raise ValueError(
            f"J_init has shape {list(J_init.shape)} but J_trained has {list(J_trained.shape)}: they must match"
        )
    for match in variants.values():
        if match not in _MATCHES:
            raise ValueError(f"match={match!r} is not allowed: expected one of {', '.join(_MATCHES)}")
    rounds = check_int("rounds", rounds, 1)

    with torch.no_grad():
        target = J_trained.to(device=J_init.device, dtype=torch.float64)
        row_target, col_target = _norms(target, dim=2), _norms(target, dim=1)  # [B, n], [B, d]
        del target
        J0 = J_init.to(torch.float64)
        # Sinkhorn on the squared entries, one matrix-vector product per half-round instead of a pass
        # of norms and a rescaling of J per half-round: X = diag(a) J0 diag(c) with row-max-scaled
        # squares A = (J0 / rho)^2 in [0, 1], so subnormal rows keep their tiny norm.
        rho = J0.abs().amax(dim=2, keepdim=True)  # [B, n, 1]
        unit = J0 / torch.where(rho > 0, rho, torch.ones_like(rho))  # rows scaled to max |entry| 1
        A = unit.square()  # [B, n, d]
        rho = rho.squeeze(2)
        out = {}
        for name, match in variants.items():
            row_scale = rho.clone()  # a_i * rho_i, the effective scale of row i (a = 1 to start)
            col = torch.ones_like(col_target)  # c_j
            for step in {"rows": ["rows"], "cols": ["cols"], "both": ["cols", "rows"] * rounds}[match]:
                if step == "cols":  # ||X[:, j]||^2 = sum_i (a_i rho_i)^2 A_ij c_j^2
                    col = _safe_ratio(col_target, torch.bmm(row_scale.square()[:, None, :], A).squeeze(1).sqrt())
                else:  # ||X[i, :]|| = a_i rho_i sqrt(sum_j A_ij c_j^2)
                    row_scale = _safe_ratio(row_target, torch.bmm(A, col.square()[:, :, None]).squeeze(2).sqrt())
            X = unit.mul(row_scale[:, :, None]).mul_(col[:, None, :])  # never forms a_i = row_scale / rho
            out[name] = X.to(J_init.dtype)
    return out


def _safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` where ``den > 0``, else 0: a zero norm stays zero, with no division by zero."""
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


def _norms(X: torch.Tensor, dim: int) -> torch.Tensor:
    """Euclidean norms of ``X [B, n, d]`` along ``dim``, max-scaled against underflow."""
    top = X.abs().amax(dim=dim, keepdim=True)
    top = torch.where(top > 0, top, torch.ones_like(top))
    return (torch.linalg.vector_norm(X / top, dim=dim, keepdim=True) * top).squeeze(dim)
