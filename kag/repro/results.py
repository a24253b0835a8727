"""All metric tables of a profile, fetched on demand, and a scheduler that computes them in parallel.

:class:`Results` is what the claims and the report read: ``results.table(512, "augmented")`` is
the :class:`~kag.experiments.table.ResultTable` of every seed of that group, computing (and training) what is
missing unless ``compute=False``; :meth:`Results.entries` gives the per-model keys and timings.
:func:`prepare` walks every group a profile needs, each process starting at a different group and
skipping groups whose lock another process holds, so that pytest-xdist workers share the work
instead of waiting on one another.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch

from kag.experiments.analysis import PRIMARY, MetricTable, ensure_metrics
from kag.experiments.data import MNIST
from kag.errors import Busy, MissingResults
from kag.progress import Progress
from kag.repro.profiles import Profile
from kag.experiments.store import Store
from kag.experiments.table import ResultTable
from kag.repro.studies import regimes_of


# Divergence variants of C1-KL (docs/SPEC.md §7): which divergence, against which reference. Each maps
# the rows C1-KL reads (kl and kl_se of the trained network and of the reference role "null") onto
# measured rows: JS instead of KL, and/or the norm-matched surrogate instead of the null.
DIVERGENCE_VARIANTS = {"js-vs-null": ("js", "null"), "kl-vs-surrogate": ("kl", "surrogate"),
                       "js-vs-surrogate": ("js", "surrogate")}


def divergence_overlay(table: ResultTable, variant: str) -> ResultTable:
    """``table`` with its global ``kl``/``kl_se`` rows of roles trained and null replaced by the
    ``variant``'s divergence and reference (rows absent from the table are left as they were)."""
    divergence, reference = DIVERGENCE_VARIANTS[variant]
    source = {(r.layer, r.k, r.role, r.observable): r.value for r in table.select(analysis="global")}
    out = []
    for r in table:
        if r.analysis == "global" and r.observable in ("kl", "kl_se") and r.role in ("trained", "null"):
            role = reference if r.role == "null" else "trained"
            observable = divergence + r.observable[2:]
            value = source.get((r.layer, r.k, role, observable))
            if value is not None:
                r = r._replace(value=value)
        out.append(r)
    return ResultTable(out)


@dataclass(frozen=True)
class Group:
    """The metric tables of all seeds of one (width, regime, evaluation images)."""

    width: int
    regime: str
    eval_images: str = "clean"

    def __str__(self) -> str:
        suffix = "" if self.eval_images == "clean" else f" (eval {self.eval_images})"
        return f"width {self.width} {self.regime}{suffix}"


def groups_needed(profile: Profile) -> list[Group]:
    """Every group the claims of ``profile`` read, most expensive first."""
    regimes = regimes_of(profile)
    groups = [Group(w, r) for w in sorted(profile.widths, reverse=True) for r in regimes]
    if "augmented" in regimes:  # the augmented models measured on shifted test images (C5-C8)
        groups += [Group(w, "augmented", "augmented") for w in sorted(profile.spatial_widths, reverse=True)]
    return groups


class Results:
    """Metric tables of one profile, memoised in-process, read from (or added to) the store."""

    def __init__(self, profile: Profile, *, device: str | torch.device | None = None, store: Store | None = None,
                 compute: bool = True, mnist: MNIST | None = None) -> None:
        self.profile = profile
        self.device = device
        self.store = store or Store()
        self.compute = compute
        self._mnist = mnist
        self._cache: dict[Group, list[MetricTable]] = {}
        self._tables: dict[tuple[Group, str], ResultTable] = {}  # shared by the views of under()
        self.variant = PRIMARY  # the estimator variant claims read (docs/SPEC.md §7, the multiverse)

    def under(self, variant: str) -> "Results":
        """A view of these results (same store, same in-process memo) that claims read under the
        estimator ``variant``: every row the variant measured replaces the primary's, and a
        divergence variant (:data:`DIVERGENCE_VARIANTS`) maps KL rows onto JS or surrogate rows."""
        view = copy.copy(self)
        view.variant = variant
        return view

    @property
    def mnist(self) -> MNIST:
        """The study's dataset (MNIST for ``mnist-mlp``), loaded on first use."""
        if self._mnist is None:
            from kag.experiments.datasets import load_dataset
            from kag.repro.studies import get_study

            self._mnist = load_dataset(get_study(self.profile.study).dataset)
        return self._mnist

    @property
    def family(self) -> str:
        """The study's model family (:mod:`kag.experiments.families`): ``mlp2`` for ``mnist-mlp``."""
        from kag.repro.studies import get_study

        return get_study(self.profile.study).family

    def profile_for(self, eval_images: str) -> Profile:
        if eval_images == self.profile.metrics.eval_images:
            return self.profile
        return self.profile.with_metrics(eval_images=eval_images)

    def entries(self, width: int, regime: str, eval_images: str = "clean", *, wait: bool = True) -> list[MetricTable]:
        """One stored metric table per seed (in the profile's seed order)."""
        group = Group(width, regime, eval_images)
        if group not in self._cache:
            profile = self.profile_for(eval_images)
            self._cache[group] = ensure_metrics(
                width, regime, self.profile.seeds, profile.train, profile.metrics,
                spatial=width in profile.spatial_widths, device=self.device, store=self.store, mnist=self.mnist,
                compute=self.compute, wait=wait, label=profile.name, family=self.family,
            )
        return self._cache[group]

    def table(self, width: int, regime: str, eval_images: str = "clean") -> ResultTable:
        """The rows of every seed of one group, as one table (under :attr:`variant`); built once per
        group and variant (its lookups are indexed, see :meth:`ResultTable.select`)."""
        memo = (Group(width, regime, eval_images), self.variant)
        if memo not in self._tables:
            entries = self.entries(width, regime, eval_images)
            parts = ([divergence_overlay(e.table, self.variant) for e in entries]
                     if self.variant in DIVERGENCE_VARIANTS else [e.table_of(self.variant) for e in entries])
            self._tables[memo] = ResultTable(row for part in parts for row in part)
        return self._tables[memo]

    def replicates(self, width: int, regime: str, eval_images: str, key: str) -> list[np.ndarray] | None:
        """Per seed (profile order), the bootstrap replicates stored under ``key``
        (:func:`kag.experiments.analysis.replicate_key`); None unless every seed has them."""
        found = [e.replicates.get(key) for e in self.entries(width, regime, eval_images)]
        return None if any(f is None for f in found) or len(found) != len(self.profile.seeds) else found

    def available_variants(self, groups: list[Group] | None = None) -> dict[str, ResultTable]:
        """Every multiverse variant's own rows in the cached groups (variant -> rows), for table.csv."""
        out: dict[str, ResultTable] = {}
        for g in groups if groups is not None else groups_needed(self.profile):
            try:
                entries = self.entries(g.width, g.regime, g.eval_images)
            except MissingResults:
                continue
            for e in entries:
                for name, rows in e.variants.items():
                    out[name] = out.get(name, ResultTable()) + rows
        return out

    def available(self, groups: list[Group] | None = None) -> ResultTable:
        """The rows of every cached group (default: all groups the profile needs); missing ones are skipped."""
        out = ResultTable()
        for g in groups if groups is not None else groups_needed(self.profile):
            try:
                out = out + self.table(g.width, g.regime, g.eval_images)
            except MissingResults:
                continue
        return out


def needed_keys(profile: Profile, groups: list[Group] | None = None) -> tuple[set[str], set[str]]:
    """(model keys, metric-table keys) that ``groups`` (default: every group the profile needs) read. The
    keys are computed as :func:`kag.experiments.analysis.ensure_metrics` computes them, with the dataset's
    pinned digest (the one every load verifies), so nothing is loaded or trained."""
    from kag.experiments.analysis import metric_key
    from kag.experiments.datasets import pinned_digest
    from kag.experiments.pipeline import model_key
    from kag.repro.studies import get_study

    study = get_study(profile.study)
    digest = pinned_digest(study.dataset)
    res = Results(profile, compute=False)
    models, tables = set(), set()
    for g in groups if groups is not None else groups_needed(profile):
        p = res.profile_for(g.eval_images)
        for seed in profile.seeds:
            mk = model_key(g.width, seed, g.regime, p.train, digest, study.family)
            models.add(mk)
            tables.add(metric_key(mk, p.metrics, g.regime, g.width in p.spatial_widths))
    return models, tables


def prepare(results: Results, groups: list[Group] | None = None, start: int = 0,
            poll_seconds: float = 2.0) -> dict[str, float]:
    """Compute ``groups`` (default: every group the profile needs); returns seconds per group.

    Starts at group ``start`` (e.g. the xdist worker index) and skips busy groups, coming back to
    them later, so N processes work on N different groups at once.
    """
    groups = list(groups) if groups is not None else groups_needed(results.profile)
    if not groups:
        return {}
    pending = groups[start % len(groups):] + groups[: start % len(groups)]
    timings: dict[str, float] = {}
    progress = Progress(f"prepare profile {results.profile.name}", total=len(groups), unit="groups", every=0)
    while pending:
        progressed = False
        for group in list(pending):
            t0 = time.perf_counter()
            try:
                results.entries(group.width, group.regime, group.eval_images, wait=False)
            except Busy:
                continue
            timings[str(group)] = time.perf_counter() - t0
            pending.remove(group)
            progressed = True
            progress.update(len(groups) - len(pending), str(group))
        if pending and not progressed:
            time.sleep(poll_seconds)  # everything left is being computed elsewhere
    return timings

