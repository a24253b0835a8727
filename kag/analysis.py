"""The metric table of one trained model: every number the paper's measurements need, as rows.

For a model (width, seed, regime) and a :class:`~kag.config.MetricConfig`, :func:`compute_table`
measures (SPEC §3-6) and returns a :class:`~kag.table.ResultTable` (see :mod:`kag.table` for the
columns):

* ``global``: for L1 and L2 and every k, PR of the trained, init and null (independent init)
  networks, the PR ratios, KL against the init, RR and the RR ratios, the exact-zero share;
* ``zero_rows``: zero-row fractions of trained, init and null, and the threshold;
* ``timeline``: the L1 PR ratio at every stored checkpoint (condition = epoch);
* ``balls``, ``patches``, ``separation`` (spatial, when asked): PR ratios with the columns
  restricted to pixel pools, for L1/L2 and the spatial k's;
* ``accuracy``: test accuracy on clean and on shifted test images (from the model's manifest).

Every ratio compares the trained network with its own initialisation on the same images and the
same index sample. PR ratio = (mean PR of the trained network over images) / (mean PR of the init).
:func:`ensure_metrics` serves tables from the store, computing (and training) what is missing.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from filelock import Timeout

from kag import data, determinants, jacobians, metrics, spatial, table as table_module
from kag.config import MetricConfig, TrainConfig, key_fields
from kag.data import IMAGE_HEIGHT, IMAGE_WIDTH, MNIST, load_mnist, normalize
from kag.devices import resolve_device
from kag.errors import Busy, CorruptEntryError, MissingResults
from kag.jacobians import first_layer_jacobian, jacobians_from_weights
from kag.metrics import (
    kl_divergence,
    mean_ignoring_undefined,
    participation_ratio,
    rotation_ratios,
    zero_row_fraction,
)
from kag.determinants import minors, sample_indices
from kag.pipeline import ModelRecord, ensure_models, model_key
from kag.progress import Progress
from kag.spatial import ImageGrid
from kag.store import Store, make_key, source_digest
from kag.table import ResultTable, Row
from kag.train import initial_state, shifted_test_images

# Version of this file's recipe (which images, how index samples and rotations are shared, how
# per-image values are pooled): part of every metric cache key, with the versions it builds on.
ANALYSIS_VERSION = 1
LAYERS = ("L1", "L2")
SPATIAL_ANALYSES = ("balls", "patches", "separation")
MNIST_GRID = ImageGrid(IMAGE_HEIGHT, IMAGE_WIDTH)
# The code behind a metric table: its digest is provenance only (see kag.pipeline.TRAINING_SOURCES).
METRIC_SOURCES = ("kag.data", "kag.jacobians", "kag.determinants", "kag.metrics", "kag.spatial", "kag.analysis", "kag.table")


def measurement_versions() -> dict[str, int]:
    """The versions of every algorithm that determines a metric table (read at call time)."""
    return {"data": data.DATA_VERSION, "jacobians": jacobians.JACOBIAN_VERSION, "minors": determinants.MINORS_VERSION,
            "observables": metrics.OBSERVABLES_VERSION, "spatial": spatial.SPATIAL_VERSION,
            "analysis": ANALYSIS_VERSION, "table": table_module.TABLE_VERSION}


def effective_config(config: MetricConfig, regime: str) -> MetricConfig:
    """Standard models are always measured on clean images; ``eval_images`` only moves augmented ones."""
    return config if regime == "augmented" else dataclasses.replace(config, eval_images="clean")


def metric_key(model_key: str, config: MetricConfig, regime: str, spatial: bool) -> str:
    """Cache key of one metric table: the model's key, the metric config, and the algorithm versions."""
    return make_key(
        "metrics",
        model=model_key,
        metrics=key_fields(effective_config(config, regime)),
        spatial=spatial,
        versions=measurement_versions(),
    )


@dataclass(frozen=True)
class MetricTable:
    """One model's measured rows, the key they are stored under, and what is not a number (timings,
    keys, the ball centres)."""

    key: str
    table: ResultTable
    meta: dict[str, Any]


def evaluation_inputs(mnist: MNIST, config: MetricConfig, regime: str, n: int, device: torch.device,
                      max_shift: int = 4) -> torch.Tensor:
    """The first ``n`` test images, normalised ``[n, 784]``; shifted ones for augmented models if asked."""
    if effective_config(config, regime).eval_images == "augmented":
        images = shifted_test_images(mnist, max_shift, config.eval_shift_seed)[:n]
    else:
        images = mnist.test_images[:n]
    return normalize(images.to(device))


class _Rows:
    """Collects the rows of one model's table; the identifying columns are fixed once."""

    def __init__(self, width: int, seed: int, regime: str, eval_images: str) -> None:
        self.ident = (width, seed, regime, eval_images)
        self.rows: list[Row] = []

    def add(self, analysis: str, observable: str, value: float, *, layer: str | None = None, k: int | None = None,
            condition: str | None = None, role: str = "trained") -> None:
        number = math.nan if value is None else float(value)
        self.rows.append(Row(*self.ident, layer, k, analysis, condition, role, observable, number))


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


def global_metrics(rows: _Rows, states: dict[str, dict[str, torch.Tensor]], x: torch.Tensor,
                   config: MetricConfig) -> None:
    """``global`` and ``zero_rows`` rows for the trained, init and null (independent init) networks."""
    jac = {name: _layer_jacobians(state, x) for name, state in states.items()}
    for layer in LAYERS:
        J = {name: jac[name][layer] for name in states}
        n, d = J["trained"].shape[1:]
        z = zero_row_fraction(J["trained"], J["init"], config.zero_row_percentile)
        z_null = zero_row_fraction(J["null"], J["init"], config.zero_row_percentile)
        for role, value in (("trained", z.trained), ("init", z.init), ("null", z_null.trained)):
            rows.add("zero_rows", "zero_row_fraction", value, layer=layer, role=role)
        rows.add("zero_rows", "zero_row_threshold", z.threshold, layer=layer, role="none")

        samples = {k: sample_indices(n, k, config.n_samples, n_cols=d, seed=config.index_seed) for k in config.ks}
        r_imgs = slice(0, config.n_rotation_images)
        rr_all = {  # [len(ks), B]: the rotated Jacobians are shared by every k
            name: rotation_ratios(J[name][r_imgs], [samples[k] for k in config.ks], n_rotations=config.n_rotations,
                                  seed=config.index_seed)
            for name in states
        }
        for i, k in enumerate(config.ks):
            rows_k, cols_k = samples[k]
            m = {name: minors(J[name], rows_k, cols_k) for name in states}
            pr = {name: _mean_pr(m[name]) for name in states}
            rr = {name: mean_ignoring_undefined(rr_all[name][i])[0] for name in states}

            def add(observable: str, value: float, role: str = "trained") -> None:
                rows.add("global", observable, value, layer=layer, k=k, role=role)

            for name in states:
                add("pr", pr[name][0], name)
                add("pr_undefined", pr[name][1], name)
                add("rr", rr[name], name)
            add("pr_ratio", _ratio(pr["trained"][0], pr["init"][0]))
            add("pr_ratio", _ratio(pr["null"][0], pr["init"][0]), "null")
            add("kl", _kl(m["trained"], m["init"], config))
            add("kl", _kl(m["null"], m["init"], config), "null")
            add("rr_ratio", _ratio(rr["trained"], rr["init"]))
            add("rr_ratio", _ratio(rr["null"], rr["init"]), "null")
            add("zero_minor_fraction", float((m["trained"] == 0).double().mean()))
        del J


def timeline_metrics(rows: _Rows, checkpoints: dict[int, dict[str, torch.Tensor]], x: torch.Tensor,
                     config: MetricConfig) -> None:
    """``timeline`` rows: L1 PR ratio (k = ``timeline_k``) at every checkpoint, relative to epoch 0."""
    if 0 not in checkpoints:
        return
    n = checkpoints[0]["fc1.weight"].shape[0]
    k = min(config.timeline_k, n)
    idx_rows, idx_cols = sample_indices(n, k, config.n_samples, n_cols=x.shape[1], seed=config.index_seed)

    def pr(snapshot: dict[str, torch.Tensor]) -> float:
        J = first_layer_jacobian(snapshot["fc1.weight"].to(x.device), snapshot["fc1.bias"].to(x.device), x)
        return _mean_pr(minors(J, idx_rows, idx_cols))[0]

    base = pr(checkpoints[0])
    for epoch in sorted(checkpoints):
        rows.add("timeline", "pr_ratio", _ratio(pr(checkpoints[epoch]), base), layer="L1", k=k, condition=str(epoch))


def _pooled_pr(rows: _Rows, analysis: str, condition: str, layer: str, k: int, J: dict[str, torch.Tensor],
               pools: list[torch.Tensor | None], config: MetricConfig, grid: ImageGrid, min_separation: float = 0.0) -> None:
    """PR ratio with columns restricted to each pool (None = every column); PRs of all (image, pool)
    pairs are pooled."""
    n = J["trained"].shape[1]
    prs: dict[str, list[torch.Tensor]] = {"trained": [], "init": []}
    for pool in pools:
        idx_rows, idx_cols = sample_indices(n, k, config.n_spatial_samples, grid=grid, pool=pool,
                                            min_separation=min_separation, seed=config.index_seed)
        for name in prs:
            prs[name].append(participation_ratio(minors(J[name], idx_rows, idx_cols)))
    mean = {name: mean_ignoring_undefined(torch.cat(v)) for name, v in prs.items()}
    pool_size = sum(grid.n_columns if p is None else int(p.numel()) for p in pools) / len(pools)

    def add(observable: str, value: float, role: str = "trained") -> None:
        rows.add(analysis, observable, value, layer=layer, k=k, condition=condition, role=role)

    add("pr_ratio", _ratio(mean["trained"][0], mean["init"][0]))
    for name in mean:
        add("pr", mean[name][0], name)
        add("pr_undefined", mean[name][1], name)
    add("pool_size", pool_size, "none")


def spatial_metrics(rows: _Rows, states: dict[str, dict[str, torch.Tensor]], x: torch.Tensor,
                    config: MetricConfig, grid: ImageGrid = MNIST_GRID) -> list[int]:
    """Balls of growing radius, the five patches, and well-separated pixels (SPEC §6); returns the
    ball centres (pixel indices)."""
    jac = {name: _layer_jacobians(states[name], x) for name in ("trained", "init")}
    centres = grid.random_centres(config.n_centres, seed=config.index_seed)
    patches = grid.patches()
    for layer in LAYERS:
        J = {name: jac[name][layer] for name in jac}
        for k in config.spatial_ks:
            for r in config.radii:
                _pooled_pr(rows, "balls", str(r), layer, k, J, [grid.ball(r, int(c)) for c in centres], config, grid)
            for name, pool in patches.items():
                _pooled_pr(rows, "patches", name, layer, k, J, [pool], config, grid)
            for d in config.separations:
                _pooled_pr(rows, "separation", str(d), layer, k, J, [None], config, grid, min_separation=float(d))
    return centres.tolist()


def compute_table(record: ModelRecord, train: TrainConfig, config: MetricConfig, mnist: MNIST,
                  device: torch.device, spatial: bool) -> tuple[ResultTable, dict[str, Any]]:
    """The full metric table of one model (see the module docstring) and its metadata."""
    config = effective_config(config, record.regime)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    states = {
        "trained": record.final_state,
        "init": record.init_state,
        "null": initial_state(record.width, record.seed + config.null_init_offset),
    }
    rows = _Rows(record.width, record.seed, record.regime, config.eval_images)
    rows.add("accuracy", "test_accuracy", record.test_accuracy, condition="clean")
    rows.add("accuracy", "test_accuracy", record.manifest.get("shifted_test_accuracy"), condition="shifted")
    x = evaluation_inputs(mnist, config, record.regime, config.n_images, device, train.translate_px)
    global_metrics(rows, states, x, config)
    timings["global"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    timeline_metrics(rows, record.checkpoints, x, config)
    timings["timeline"] = time.perf_counter() - t1
    centres = None
    if spatial:
        t2 = time.perf_counter()
        xs = evaluation_inputs(mnist, config, record.regime, config.n_spatial_images, device, train.translate_px)
        centres = spatial_metrics(rows, {k: states[k] for k in ("trained", "init")}, xs, config)
        timings["spatial"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    meta = {"width": record.width, "seed": record.seed, "regime": record.regime, "eval_images": config.eval_images,
            "model_key": record.key, "epochs": record.manifest.get("epochs"), "spatial": spatial,
            "centres": centres, "timings": timings, "device": str(device)}
    return ResultTable(rows.rows), meta


def _stored(store: Store, key: str) -> MetricTable:
    body = store.load_metrics(key)
    try:
        return MetricTable(key, ResultTable.from_json(body["payload"]["table"]), body["payload"]["meta"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptEntryError(f"metric entry {key} in {store.metrics_dir} is not a metric table of this version "
                                f"({exc}); delete it (kag cache rm {key})") from None


def ensure_metrics(
    width: int,
    regime: str,
    seeds: tuple[int, ...] | list[int],
    train: TrainConfig,
    config: MetricConfig,
    *,
    spatial: bool = False,
    device: str | torch.device | None = None,
    store: Store | None = None,
    mnist: MNIST | None = None,
    compute: bool = True,
    wait: bool = True,
    label: str = "",
) -> list[MetricTable]:
    """Metric tables of the ``seeds`` of one (width, regime): from the store, or computed (training
    the models first if needed) under a per-table lock, then stored.

    ``compute=False`` only reads the store (raises :class:`kag.errors.MissingResults`). ``wait=False``
    skips work that another process holds the lock for and raises :class:`kag.errors.Busy` at the
    end, so a scheduler can do something else meanwhile. ``label`` (e.g. the profile name) is
    recorded in the stored entry for ``kag cache ls``.
    """
    store = store or Store()
    mnist = mnist or load_mnist()
    seeds = tuple(seeds)
    if not compute:
        tables = []
        for seed in seeds:
            key = metric_key(model_key(width, seed, regime, train, mnist.sha256), config, regime, spatial)
            if not store.has_metrics(key):
                raise MissingResults(f"no cached metric table for width {width} seed {seed} {regime}"
                                     f"{' under profile ' + label if label else ''} "
                                     f"(eval {effective_config(config, regime).eval_images})")
            tables.append(_stored(store, key))
        return tables
    dev = resolve_device(device)
    records = ensure_models(width, seeds, regime, train, device=dev, store=store, mnist=mnist,
                            eval_shift_seed=config.eval_shift_seed, wait=wait)
    tables, busy = [], False
    for record in records:
        key = metric_key(record.key, config, regime, spatial)
        if not store.has_metrics(key):
            try:
                with store.lock(f"metrics-{key[:20]}", timeout=-1 if wait else 0):
                    if not store.has_metrics(key):
                        table, meta = compute_table(record, train, config, mnist, dev, spatial)
                        store.save_metrics(key, {"table": table.to_json(), "meta": meta},
                                           {"profile": label or None, "width": width, "seed": record.seed,
                                            "regime": regime, "metric_config": dataclasses.asdict(config),
                                            "versions": measurement_versions(),
                                            "source_sha256": source_digest(*METRIC_SOURCES)})
                        store.log_event("metrics", width=width, regime=regime, seed=record.seed,
                                        eval_images=meta["eval_images"], seconds=meta["timings"]["total"], key=key)
                        Progress(f"metrics width {width} {regime} seed {record.seed} (eval {meta['eval_images']})",
                                 total=1).done(f"{meta['timings']['total']:.1f} s")
            except Timeout:
                busy = True
                continue
        tables.append(_stored(store, key))
    if busy:
        raise Busy(f"another process is computing metric tables of width {width} {regime}")
    return tables


def summarize_table(entry: MetricTable) -> str:
    """A few human-readable lines: accuracy and the global PR, KL and RR ratios."""
    t, meta = entry.table, entry.meta
    acc = t.select(analysis="accuracy", condition="clean")
    lines = [f"width {meta['width']} seed {meta['seed']} {meta['regime']} (eval: {meta['eval_images']}), "
             f"test accuracy {acc.rows[0].value:.4f}, key {entry.key[:12]}"]
    g = t.select(analysis="global")
    for layer in g.unique("layer"):
        cells = []
        for k in g.select(layer=layer).unique("k"):
            at = g.select(layer=layer, k=k)
            cells.append(f"k={k}: PR ratio {at.value(observable='pr_ratio', role='trained'):.3f}, "
                         f"KL {at.value(observable='kl', role='trained'):.3f} "
                         f"(null {at.value(observable='kl', role='null'):.3f}), "
                         f"RR ratio {at.value(observable='rr_ratio', role='trained'):.3f}")
        lines.append(f"  {layer}: {', '.join(cells)}")
    z = t.select(analysis="zero_rows", layer="L1", observable="zero_row_fraction")
    lines.append(f"  zero rows L1: trained {z.value(role='trained'):.4f}, init {z.value(role='init'):.4f}")
    tl = t.select(analysis="timeline")
    if len(tl):
        lines.append("  timeline L1 PR ratio: " + " ".join(f"{r.condition}:{r.value:.3f}" for r in tl))
    return "\n".join(lines)
