"""The metric table of one trained model: everything the claims need, computed once and cached.

For a model (width, seed, regime) and a profile's :class:`~kag.profiles.MetricConfig` the table
holds (SPEC §3-6):

* ``global[layer][k]``: PR of trained / init / independent init, PR ratio and its null, KL and its
  null, RR of trained / init / independent init, for L1 and L2 and every k;
* ``zero_rows[layer]``: zero-row fractions of trained, init and independent init;
* ``timeline``: the L1 PR ratio at every stored checkpoint (standard regime);
* ``spatial`` (at the profile's spatial widths): PR ratios for Euclidean balls, the five 14×14
  patches and well-separated pixels, for L1/L2 and the spatial k's.

Every ratio compares the trained network with its own initialisation on the same images and the
same index sample. PR ratio = (mean PR of the trained network over images) / (mean PR of the init).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch

from kag.data import MNIST, load_mnist, normalize
from kag.jacobian import first_layer_jacobian, jacobians_from_weights
from kag.metrics import kl_divergence, mean_ignoring_undefined, participation_ratio, rotation_ratios, zero_row_fraction
from kag.minors import minors, sample_indices
from filelock import Timeout

from kag.pipeline import ModelRecord, ensure_models, model_key
from kag.profiles import MetricConfig, Profile, resolve_device
from kag.progress import Progress
from kag.spatial import ball_pool, patch_pools, random_centres
from kag.store import Busy, Store, make_key, source_digest
from kag.train import initial_state, shifted_test_images

LAYERS = ("L1", "L2")
METRIC_SOURCES = ("kag.jacobian", "kag.minors", "kag.metrics", "kag.spatial", "kag.analysis", "kag.data")


def effective_config(config: MetricConfig, regime: str) -> MetricConfig:
    """Standard models are always measured on clean images; ``eval_images`` only moves augmented ones."""
    return config if regime == "augmented" else dataclasses.replace(config, eval_images="clean")


def metric_key(model_key: str, config: MetricConfig, regime: str, spatial: bool) -> str:
    return make_key(
        "metrics",
        model=model_key,
        metrics=dataclasses.asdict(effective_config(config, regime)),
        spatial=spatial,
        source=source_digest(*METRIC_SOURCES),
    )


def evaluation_inputs(mnist: MNIST, config: MetricConfig, regime: str, n: int, device: torch.device,
                      max_shift: int = 4) -> torch.Tensor:
    """The first ``n`` test images, normalised ``[n, 784]``; shifted ones for augmented models if asked."""
    if effective_config(config, regime).eval_images == "augmented":
        images = shifted_test_images(mnist, max_shift, config.eval_shift_seed)[:n]
    else:
        images = mnist.test_images[:n]
    return normalize(images.to(device))


def _layer_jacobians(state: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
    dev = x.device
    J1, J2 = jacobians_from_weights(*(state[k].to(dev) for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")), x)
    return {"L1": J1, "L2": J2}


def _mean_pr(m: torch.Tensor) -> tuple[float, int]:
    return mean_ignoring_undefined(participation_ratio(m))


def _kl(m_p: torch.Tensor, m_q: torch.Tensor, config: MetricConfig) -> float:
    """KL of log-minor histograms; NaN (undefined, never a claim's support) when a side has no positive minor."""
    if not ((m_p > 0).any() and (m_q > 0).any()):
        return float("nan")
    return kl_divergence(m_p, m_q, config.kl_bins, config.kl_smoothing)


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else float("nan")


def global_metrics(states: dict[str, dict[str, torch.Tensor]], x: torch.Tensor, config: MetricConfig) -> tuple[dict, dict]:
    """``global[layer][k]`` and ``zero_rows[layer]`` for the trained, init and null (independent init) networks."""
    out: dict[str, dict] = {}
    zero: dict[str, dict] = {}
    jac = {name: _layer_jacobians(state, x) for name, state in states.items()}
    for layer in LAYERS:
        J = {name: jac[name][layer] for name in states}
        n = J["trained"].shape[1]
        z = zero_row_fraction(J["trained"], J["init"], config.zero_row_percentile)
        z_null = zero_row_fraction(J["null"], J["init"], config.zero_row_percentile)
        zero[layer] = {"trained": z.trained, "init": z.init, "null": z_null.trained, "threshold": z.threshold}
        out[layer] = {}
        samples = {k: sample_indices(n, k, config.n_samples, seed=config.index_seed) for k in config.ks}
        r_imgs = slice(0, config.n_rotation_images)
        rr_all = {  # [len(ks), B]: the rotated Jacobians are shared by every k
            name: rotation_ratios(J[name][r_imgs], [samples[k] for k in config.ks], n_rotations=config.n_rotations,
                                  seed=config.index_seed)
            for name in states
        }
        for i, k in enumerate(config.ks):
            rows, cols = samples[k]
            m = {name: minors(J[name], rows, cols) for name in states}
            pr = {name: _mean_pr(m[name]) for name in states}
            rr = {name: mean_ignoring_undefined(rr_all[name][i])[0] for name in states}
            out[layer][str(k)] = {
                "pr_trained": pr["trained"][0],
                "pr_init": pr["init"][0],
                "pr_null": pr["null"][0],
                "pr_ratio": _ratio(pr["trained"][0], pr["init"][0]),
                "pr_ratio_null": _ratio(pr["null"][0], pr["init"][0]),
                "pr_undefined": {name: pr[name][1] for name in states},
                "kl": _kl(m["trained"], m["init"], config),
                "kl_null": _kl(m["null"], m["init"], config),
                "rr_trained": rr["trained"],
                "rr_init": rr["init"],
                "rr_null": rr["null"],
                "rr_ratio": _ratio(rr["trained"], rr["init"]),
                "rr_ratio_null": _ratio(rr["null"], rr["init"]),
                "zero_minor_fraction": float((m["trained"] == 0).double().mean()),
            }
        del J
    return out, zero


def timeline_metrics(checkpoints: dict[int, dict[str, torch.Tensor]], x: torch.Tensor, config: MetricConfig) -> dict:
    """L1 PR ratio (k = ``timeline_k``) at every checkpoint, relative to the checkpoint at epoch 0."""
    if 0 not in checkpoints:
        return {}
    n = checkpoints[0]["fc1.weight"].shape[0]
    k = min(config.timeline_k, n)
    rows, cols = sample_indices(n, k, config.n_samples, seed=config.index_seed)

    def pr(snapshot: dict[str, torch.Tensor]) -> float:
        J = first_layer_jacobian(snapshot["fc1.weight"].to(x.device), snapshot["fc1.bias"].to(x.device), x)
        return _mean_pr(minors(J, rows, cols))[0]

    base = pr(checkpoints[0])
    epochs = sorted(checkpoints)
    return {"layer": "L1", "k": k, "epochs": epochs, "pr_ratio": [_ratio(pr(checkpoints[e]), base) for e in epochs]}


def _pooled_pr_ratio(J: dict[str, torch.Tensor], pools: list[torch.Tensor], k: int, config: MetricConfig,
                     min_separation: float = 0.0) -> dict[str, Any]:
    """PR ratio with columns restricted to each pool; PRs of all (image, pool) pairs are pooled."""
    n = J["trained"].shape[1]
    prs: dict[str, list[torch.Tensor]] = {"trained": [], "init": []}
    for pool in pools:
        rows, cols = sample_indices(n, k, config.n_spatial_samples, pool=pool, min_separation=min_separation,
                                    seed=config.index_seed)
        for name in prs:
            prs[name].append(participation_ratio(minors(J[name], rows, cols)))
    mean = {name: mean_ignoring_undefined(torch.cat(v)) for name, v in prs.items()}
    return {
        "pr_ratio": _ratio(mean["trained"][0], mean["init"][0]),
        "pr_trained": mean["trained"][0],
        "pr_init": mean["init"][0],
        "pr_undefined": {name: mean[name][1] for name in mean},
        "pool_size": sum(int(p.numel()) for p in pools) / len(pools),
    }


def spatial_metrics(states: dict[str, dict[str, torch.Tensor]], x: torch.Tensor, config: MetricConfig) -> dict:
    """Balls of growing radius, the five patches, and well-separated pixels (SPEC §6)."""
    jac = {name: _layer_jacobians(states[name], x) for name in ("trained", "init")}
    centres = random_centres(config.n_centres, seed=config.index_seed)
    patches = patch_pools()
    out: dict[str, dict] = {"balls": {}, "patches": {}, "separation": {}, "centres": centres.tolist()}
    for layer in LAYERS:
        J = {name: jac[name][layer] for name in jac}
        for analysis in out:
            if analysis != "centres":
                out[analysis][layer] = {}
        for k in config.spatial_ks:
            key = str(k)
            out["balls"][layer][key] = {
                str(r): _pooled_pr_ratio(J, [ball_pool(r, int(c)) for c in centres], k, config) for r in config.radii
            }
            out["patches"][layer][key] = {name: _pooled_pr_ratio(J, [pool], k, config) for name, pool in patches.items()}
            out["separation"][layer][key] = {
                str(d): _pooled_pr_ratio(J, [torch.arange(784)], k, config, min_separation=float(d))
                for d in config.separations
            }
    return out


def compute_table(record: ModelRecord, profile: Profile, mnist: MNIST, device: torch.device, spatial: bool) -> dict:
    """The full metric table of one model (see the module docstring)."""
    config = effective_config(profile.metrics, record.regime)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    states = {
        "trained": record.final_state,
        "init": record.init_state,
        "null": initial_state(record.width, record.seed + config.null_init_offset),
    }
    x = evaluation_inputs(mnist, config, record.regime, config.n_images, device, profile.train.translate_px)
    table: dict[str, Any] = {
        "width": record.width,
        "seed": record.seed,
        "regime": record.regime,
        "eval_images": config.eval_images,
        "model_key": record.key,
        "test_accuracy": record.test_accuracy,
        "shifted_test_accuracy": record.manifest.get("shifted_test_accuracy"),
        "epochs": record.manifest.get("epochs"),
    }
    table["global"], table["zero_rows"] = global_metrics(states, x, config)
    timings["global"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    table["timeline"] = timeline_metrics(record.checkpoints, x, config)
    timings["timeline"] = time.perf_counter() - t1
    table["spatial"] = None
    if spatial:
        t2 = time.perf_counter()
        xs = evaluation_inputs(mnist, config, record.regime, config.n_spatial_images, device, profile.train.translate_px)
        table["spatial"] = spatial_metrics({k: states[k] for k in ("trained", "init")}, xs, config)
        timings["spatial"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    table["timings"] = timings
    table["device"] = str(device)
    return table


class MissingResults(LookupError):
    """A metric table is not in the store and computing it was not allowed."""


def ensure_metrics(
    profile: Profile,
    width: int,
    regime: str,
    seeds: tuple[int, ...] | list[int] | None = None,
    *,
    device: str | torch.device | None = None,
    store: Store | None = None,
    mnist: MNIST | None = None,
    compute: bool = True,
    wait: bool = True,
) -> list[dict]:
    """Metric tables of the ``seeds`` of one (width, regime) under ``profile``: from the store, or
    computed (training the models first if needed) under a per-table lock, then stored.

    ``compute=False`` only reads the store (raises :class:`MissingResults`). ``wait=False`` skips
    work that another process holds the lock for and raises :class:`kag.store.Busy` at the end,
    so a scheduler can do something else meanwhile.
    """
    store = store or Store()
    mnist = mnist or load_mnist()
    seeds = tuple(seeds) if seeds is not None else profile.seeds
    spatial = width in profile.spatial_widths
    if not compute:
        tables = []
        for seed in seeds:
            key = metric_key(model_key(width, seed, regime, profile.train, mnist.sha256), profile.metrics, regime, spatial)
            if not store.has_metrics(key):
                raise MissingResults(f"no cached metric table for width {width} seed {seed} {regime} under profile "
                                     f"{profile.name} (eval {effective_config(profile.metrics, regime).eval_images})")
            tables.append({**store.load_metrics(key)["payload"], "key": key})
        return tables
    dev = resolve_device(device)
    records = ensure_models(width, seeds, regime, profile.train, device=dev, store=store, mnist=mnist,
                            eval_shift_seed=profile.metrics.eval_shift_seed, wait=wait)
    tables, busy = [], False
    for record in records:
        key = metric_key(record.key, profile.metrics, regime, spatial)
        if not store.has_metrics(key):
            try:
                with store.lock(f"metrics-{key[:20]}", timeout=-1 if wait else 0):
                    if not store.has_metrics(key):
                        table = compute_table(record, profile, mnist, dev, spatial)
                        store.save_metrics(key, table, {"profile": profile.name, "width": width, "seed": record.seed,
                                                        "regime": regime, "metric_config": dataclasses.asdict(profile.metrics)})
                        store.log_event("metrics", width=width, regime=regime, seed=record.seed,
                                        eval_images=table["eval_images"], seconds=table["timings"]["total"], key=key)
                        Progress(f"metrics width {width} {regime} seed {record.seed} (eval {table['eval_images']})",
                                 total=1).done(f"{table['timings']['total']:.1f} s")
            except Timeout:
                busy = True
                continue
        tables.append({**store.load_metrics(key)["payload"], "key": key})
    if busy:
        raise Busy(f"another process is computing metric tables of width {width} {regime}")
    return tables


def summarize_table(table: dict) -> str:
    """A few human-readable lines: accuracy and the global PR ratios."""
    lines = [f"width {table['width']} seed {table['seed']} {table['regime']} (eval: {table['eval_images']}), "
             f"test accuracy {table['test_accuracy']:.4f}, key {table['key'][:12]}"]
    for layer, per_k in table["global"].items():
        cells = ", ".join(f"k={k}: PR ratio {v['pr_ratio']:.3f}, KL {v['kl']:.3f} (null {v['kl_null']:.3f}), "
                          f"RR ratio {v['rr_ratio']:.3f}" for k, v in per_k.items())
        lines.append(f"  {layer}: {cells}")
    z = table["zero_rows"]["L1"]
    lines.append(f"  zero rows L1: trained {z['trained']:.4f}, init {z['init']:.4f}")
    if table["timeline"]:
        tl = table["timeline"]
        lines.append("  timeline L1 PR ratio: " + " ".join(f"{e}:{r:.3f}" for e, r in zip(tl["epochs"], tl["pr_ratio"])))
    return "\n".join(lines)
