"""Jacobians of a network's representation with respect to its input (SPEC §3).

Two paths:

* :func:`jacobian` — any ``nn.Module`` or callable, any input shape: ``x [B, *in_shape] ->
  J [B, m, d]`` with ``d = prod(in_shape)`` and ``m = prod(out_shape)``, by ``torch.func``
  (``vmap`` over ``jacrev`` or ``jacfwd``, chunked over samples to bound memory).
* the closed form for the paper's MLP. For ``h1 = σ(z1)``, ``z1 = W1·x + b1`` and
  ``h2 = σ(z2)``, ``z2 = W2·h1 + b2``::

      J1 = diag(σ'(z1)) · W1                  [n, d]
      J2 = diag(σ'(z2)) · W2 · J1             [n, d]

  with σ the exact (erf) GELU, σ'(z) = Φ(z) + z·φ(z). A whole batch costs two scalings and one
  batched matmul, instead of n backward passes per image.

Everything runs on the weights' (or the input's) device with TF32 disabled, so CPU and CUDA agree
to float rounding.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, jacfwd, jacrev, vmap

from kag.checks import check_int, chunk_bytes

# Version of the Jacobian computations (the closed form and the generic path): part of every metric
# cache key; bump it when a Jacobian's value changes.
JACOBIAN_VERSION = 1

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@contextlib.contextmanager
def full_float32_precision() -> Iterator[None]:
    """Temporarily forbid TF32 (and other reduced-precision float32 matmuls); restore on exit."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


# ---------------------------------------------------------------------------------------------
# any network: torch.func

# Jacobians alive at once in one vmap chunk: modest on CPU, large on GPUs (few big kernels).
_JACOBIAN_CHUNK_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}
_WORK_PER_JACOBIAN = 4  # working memory of one sample's transform, in units of its [m, d] Jacobian
_MODES = ("auto", "rev", "fwd")
# Layers whose training-mode forward is random or couples the samples of a batch.
_TRAINING_SENSITIVE = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)


Layer = str | nn.Module | Callable[[nn.Module, torch.Tensor], torch.Tensor] | None


class _Representation(nn.Module):
    """``x -> `` the chosen representation of ``model``, as a module (so dtype casts reach its weights)."""

    def __init__(self, model: nn.Module, name: str | None, fn: Callable | None) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fn is not None:
            return self.fn(self.model, x)
        if not self.name:
            return self.model(x)
        captured: list[object] = []
        handle = self.model.get_submodule(self.name).register_forward_hook(lambda mod, inp, out: captured.append(out))
        try:
            self.model(x)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise ValueError(f"layer {self.name!r} ran {len(captured)} times in one forward pass: expected once "
                             "(pass a callable (model, x) -> representation instead)")
        if not isinstance(captured[0], torch.Tensor):
            raise ValueError(f"layer {self.name!r} returns {type(captured[0]).__name__}: expected a tensor "
                             "(pass a callable (model, x) -> representation instead)")
        return captured[0]


def _resolve_layer(layer: Layer, trained: nn.Module, net: nn.Module,
                   called: tuple[str, str] = ("trained", "init")) -> tuple[str | None, Callable | None]:
    """``(submodule name, callable)`` of ``layer`` for ``net`` (``trained`` or its ``init``; ``called``:
    how errors name the two)."""
    if layer is None:
        return None, None
    if isinstance(layer, nn.Module):
        names = [name for name, mod in trained.named_modules() if mod is layer]
        if not names:
            raise ValueError(f"layer is a {type(layer).__name__} that is not a submodule of {called[0]}: pass one of "
                             f"{called[0]}'s submodules, its name, or a callable (model, x) -> representation")
        layer = names[0]
    if isinstance(layer, str):
        for name, model in ((called[0], trained), (called[1], net)):
            modules = dict(model.named_modules())
            if layer not in modules:
                valid = [n for n in modules if n][:8]
                raise ValueError(f"layer={layer!r} is not a submodule of {name}: valid names include "
                                 f"{', '.join(map(repr, valid)) or 'none (it has no submodules)'}")
        return layer, None
    if callable(layer):
        return None, layer
    raise ValueError(f"layer={layer!r} is not allowed: give None, a submodule name, a submodule, or a callable")


def jacobian(
    f: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    dtype: torch.dtype | None = None,
    mode: str = "auto",
    max_bytes: int | None = None,
    layer: Layer = None,
) -> torch.Tensor:
    """The Jacobian of ``f`` at every sample of ``x``: ``x [B, *in_shape] -> J [B, m, d]``.

    ``f`` (an ``nn.Module`` or any callable) maps a batch ``[B, *in_shape]`` to ``[B, *out_shape]``
    and treats samples independently; per sample it is a map R^d -> R^m with
    ``d = prod(in_shape)``, ``m = prod(out_shape)``, both flattened in PyTorch's row-major order
    (an image ``[C, H, W]`` gives column ``c*H*W + row*W + col``, see :class:`kag.spatial.ImageGrid`).

    * ``layer``: with an ``nn.Module`` ``f``, the representation measured instead of its output: a
      name from ``dict(f.named_modules())`` (e.g. ``"blocks.0.attn"``: that submodule's output,
      captured by a forward hook while the whole network runs), a submodule of ``f``, or a callable
      ``(model, x) -> representation``.
    * ``dtype``: compute dtype (e.g. ``torch.float64`` for tight checks); ``x`` is cast to it and an
      ``nn.Module`` runs through ``torch.func.functional_call`` with its floating parameters and
      buffers cast, so the module itself is never modified. None = as given. A plain function's
      captured weights cannot be cast: pass the module (and ``layer``) instead.
    * ``mode``: ``"rev"`` (``jacrev``: one backward pass per output), ``"fwd"`` (``jacfwd``: one
      forward-mode pass per input) or ``"auto"`` (``rev`` when ``m <= d``, else ``fwd``; when an
      operation has no forward-mode rule, e.g. PyTorch's fused attention, ``rev`` after all).
    * ``max_bytes``: memory budget of one chunk of samples (about 4·m·d elements per sample);
      None = 256 MiB on CPU, 2 GiB on CUDA.

    Modules must be in eval mode when they hold dropout or batch norm (their training-mode
    forward is random or mixes samples): such a module in training mode is refused. Runs on
    ``x``'s device with TF32 off; the result is detached.
    """
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r} is not allowed: expected one of {', '.join(map(repr, _MODES))}")
    if max_bytes is not None:
        max_bytes = check_int("max_bytes", max_bytes, 1)
    if layer is not None:
        if not isinstance(f, nn.Module):
            raise ValueError(f"layer={layer!r} needs f to be an nn.Module, got {type(f).__name__}: pass the model")
        f = _Representation(f, *_resolve_layer(layer, f, f, ("f", "f")))
    fn, x = _batch_function(f, x, dtype)
    B, d = x.shape[0], x[0].numel()
    try:
        m = _output_size(fn, x)
    except RuntimeError as exc:
        if dtype is None or isinstance(f, nn.Module) or "dtype" not in str(exc).lower() and "Double" not in str(exc):
            raise
        raise ValueError(f"f is a function, so dtype={dtype} reaches x but not the weights it uses "
                         f"({str(exc).splitlines()[0]}): pass the nn.Module itself (with layer=... for an inner "
                         "representation), whose weights are cast, or cast the model first (model.double())") from None
    auto = mode == "auto"
    if auto:
        mode = "rev" if m <= d else "fwd"

    def per_sample(xi: torch.Tensor) -> torch.Tensor:
        return fn(xi.unsqueeze(0)).reshape(-1)

    budget = max_bytes or chunk_bytes(_JACOBIAN_CHUNK_BYTES, x.device)
    chunk = max(1, budget // (_WORK_PER_JACOBIAN * m * d * x.element_size()))

    def run(transform: Callable) -> torch.Tensor:
        with torch.no_grad(), full_float32_precision(), warnings.catch_warnings():  # transforms ignore the outer no_grad
            # forward-mode AD loads torch's own decompositions through torch.jit.script, which warns
            warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
            # vmap runs an operation without a batching rule (attention, ...) one sample at a time and says
            # so once per call: correct, only slower, and nothing the caller can change
            warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")
            return vmap(transform(per_sample), chunk_size=chunk if chunk < B else None)(x)

    try:
        J = run(jacrev if mode == "rev" else jacfwd)
    except NotImplementedError as exc:
        if not (auto and mode == "fwd" and "forward AD" in str(exc)):
            raise
        J = run(jacrev)  # an operation without a forward-mode rule: reverse mode computes the same Jacobian
    return J.reshape(B, m, d).detach()


def _batch_function(
    f: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, dtype: torch.dtype | None
) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """Validate ``f``, ``x`` and ``dtype``; return ``f`` evaluated in ``dtype`` and ``x`` cast to it (detached)."""
    if not callable(f):
        raise ValueError(f"f must be an nn.Module or a callable, got {type(f).__name__}")
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a tensor [B, *in_shape], got {type(x).__name__}")
    if x.dim() == 0 or x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(f"x has shape {list(x.shape)}: expected a non-empty batch [B, *in_shape] with B >= 1")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype={dtype} is not allowed: use a floating-point dtype (float32 or float64)")
    x = x.detach() if dtype is None else x.detach().to(dtype)
    if not x.dtype.is_floating_point:
        raise ValueError(f"x has dtype {x.dtype}: expected floating-point inputs (or pass dtype=torch.float32)")
    if not isinstance(f, nn.Module):
        return f, x
    for name, layer in f.named_modules():
        if layer.training and isinstance(layer, _TRAINING_SENSITIVE):
            where = f" {name!r}" if name else ""
            raise ValueError(
                f"f holds {type(layer).__name__}{where} in training mode: call .eval() first "
                "(its training-mode forward is random or mixes the samples of a batch)"
            )
    if dtype is None:
        return f, x

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(dtype) if t.is_floating_point() else t.detach()

    state = ({k: cast(v) for k, v in f.named_parameters()}, {k: cast(v) for k, v in f.named_buffers()})
    return (lambda inp: functional_call(f, state, (inp,))), x


def _output_size(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """``m``, the size of one sample's output, from one forward pass on (at most) two samples."""
    probe = x[:2]
    with torch.no_grad(), full_float32_precision():
        out = fn(probe)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"f returned {type(out).__name__}: expected a tensor [B, *out_shape]")
    if out.dim() == 0 or out.shape[0] != probe.shape[0]:
        raise ValueError(
            f"f maps a batch of {probe.shape[0]} to shape {list(out.shape)}: expected a batch of "
            f"{probe.shape[0]} outputs [{probe.shape[0]}, *out_shape], one per sample"
        )
    if out[0].numel() == 0:
        raise ValueError(f"f returned shape {list(out.shape)}: each sample's output must be non-empty")
    return out[0].numel()


# ---------------------------------------------------------------------------------------------
# the paper's MLP: closed form


def gelu_derivative(z: torch.Tensor) -> torch.Tensor:
    """σ'(z) = Φ(z) + z·φ(z) for the exact GELU σ(z) = z·Φ(z); elementwise, same shape."""
    cdf = 0.5 * (1.0 + torch.erf(z * _INV_SQRT2))
    pdf = torch.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return cdf + z * pdf


def _check_matrix(name: str, t: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    """One-line ValueError unless ``t`` is a finite tensor of ``shape`` (None = any size)."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
    want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
    if t.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        raise ValueError(f"{name} has shape {list(t.shape)}: expected {want}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or Inf: only finite values are allowed")


def _prepare(x: torch.Tensor, W1: torch.Tensor, b1: torch.Tensor, dtype: torch.dtype | None) -> tuple:
    """Validate the first layer and the input; cast everything to one dtype on W1's device."""
    _check_matrix("W1", W1, (None, None))
    n, d = W1.shape
    _check_matrix("b1", b1, (n,))
    _check_matrix("x", x, (None, d))
    dtype = dtype or W1.dtype
    if not dtype.is_floating_point:
        raise ValueError(f"dtype={dtype} is not allowed: use a floating-point dtype (float32 or float64)")
    return tuple(t.detach().to(W1.device, dtype) for t in (x, W1, b1))


def first_layer_jacobian(
    W1: torch.Tensor, b1: torch.Tensor, x: torch.Tensor, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """L1 Jacobian from fc1 alone (timeline checkpoints keep only fc1).

    ``W1: [n, d], b1: [n], x: [B, d] -> J1: [B, n, d]``; dtype None = W1's dtype.
    """
    x, W1, b1 = _prepare(x, W1, b1, dtype)
    with torch.no_grad(), full_float32_precision():
        s1 = gelu_derivative(torch.addmm(b1, x, W1.T))  # [B, n]
        return s1[:, :, None] * W1


def jacobians_from_weights(
    W1: torch.Tensor,
    b1: torch.Tensor,
    W2: torch.Tensor,
    b2: torch.Tensor,
    x: torch.Tensor,
    *,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both hidden Jacobians from raw weights (e.g. a state dict).

    ``W1: [n, d], b1: [n], W2: [m, n], b2: [m], x: [B, d] -> (J1: [B, n, d], J2: [B, m, d])``.
    Computed in ``dtype`` (None = W1's dtype) on W1's device, under no_grad, without TF32.
    """
    x, W1, b1 = _prepare(x, W1, b1, dtype)
    _check_matrix("W2", W2, (None, W1.shape[0]))
    _check_matrix("b2", b2, (W2.shape[0],))
    W2, b2 = (t.detach().to(W1.device, W1.dtype) for t in (W2, b2))
    with torch.no_grad(), full_float32_precision():
        z1 = torch.addmm(b1, x, W1.T)  # [B, n]
        s1 = gelu_derivative(z1)
        h1 = torch.nn.functional.gelu(z1)
        s2 = gelu_derivative(torch.addmm(b2, h1, W2.T))  # [B, m]
        J1 = s1[:, :, None] * W1  # [B, n, d]
        J2 = torch.matmul(W2, J1).mul_(s2[:, :, None])  # [m, n] @ [B, n, d] -> [B, m, d]
    return J1, J2


def hidden_jacobians(
    model: nn.Module, x: torch.Tensor, *, dtype: torch.dtype | None = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobians of both hidden layers of ``model`` (anything with ``fc1``, ``fc2`` Linear layers).

    ``x: [B, d] -> (J1, J2): [B, n, d]`` each, on the model's device. ``dtype`` is the
    compute dtype (float32 by default; float64 for tight checks; None = the weights' dtype).
    """
    for name in ("fc1", "fc2"):
        if not isinstance(getattr(model, name, None), nn.Linear):
            raise ValueError(f"model={type(model).__name__} has no nn.Linear layer {name!r}: expected fc1 and fc2")
    fc1, fc2 = model.fc1, model.fc2
    b1 = fc1.bias if fc1.bias is not None else torch.zeros_like(fc1.weight[:, 0])
    b2 = fc2.bias if fc2.bias is not None else torch.zeros_like(fc2.weight[:, 0])
    return jacobians_from_weights(fc1.weight, b1, fc2.weight, b2, x, dtype=dtype)
