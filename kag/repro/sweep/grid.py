"""A sweep grid (SPEC §8) read from a committed TOML file, validated, and turned into profiles.

The file has three sections::

    [fidelity]                 # the reduced fidelity every point is trained and measured at
    widths = [64, 512]
    seeds = [0, 1, 2]
    epochs = 20
    train_subset = 10000       # optional: the first N training images (default: all 60,000)
    checkpoint_every = 10      # optional: timeline checkpoints (default: the paper's)
    metrics = "paper"          # optional: the profile whose measurement sizes are used (paper, quick, smoke)
    check = true               # optional: also train and measure the fidelity check's reference (SPEC §8)

    [axes]                     # SPEC §8; an axis left out stays at its default
    epochs = [20, 200]         # training length (default: fidelity.epochs)
    lr = [3e-4, 1e-3, 3e-3]
    weight_decay = [0.0, 1e-4, 1e-2]
    augmentation = ["translate2", "translate4", "translate6", "affine"]
    eval_images = ["clean", "shifted"]  # the images C5-C7 judge augmented models on (C8, C9: both, always)

    [design]                   # optional (default: one-factor, no pairs)
    kind = "one-factor"        # or "full": every combination of the axes' values
    pairs = [["augmentation", "weight_decay"]]
    points = [{epochs = 200, weight_decay = 1e-2}]   # single extra points (values from [axes])

The default point is SPEC §2 as written (lr 1e-3, weight decay 1e-4, translate ±4 px, clean test
images, ``fidelity.epochs``): the ``paper`` profile with the fidelity applied. "one-factor" varies one
axis at a time around it, each pair of ``pairs`` crosses the non-default values of two axes, and
``points`` adds single points (e.g. one setting at another training length). Every point is a
:class:`~kag.repro.profiles.Profile`; a point at the paper's fidelity has exactly the paper's
configs, so it reuses the paper profile's cached models and tables (the keys are the same); a
point at the paper's 200 epochs keeps the paper's timeline checkpoints, so it reuses the paper's
models at any metric sizes.

A reduced fidelity must be justified by a measured check (SPEC §8): the default point at the paper's
fidelity (:meth:`Grid.reference`: SPEC's seeds, epochs and sizes, the grid's widths) judged beside the
default point here. ``check = true`` puts that reference's trainings and tables in the sweep's plan;
without it the report judges the reference only where other runs left its tables in the store.
A bad file raises a one-line ``ValueError`` that names the file and the key.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from kag.experiments.analysis import check_metric_request
from kag.experiments.config import TrainConfig
from kag.checks import check_int
from kag.experiments.model import check_widths
from kag.repro.profiles import PAPER, PROFILES, Profile, check_verdict_seeds
from kag.experiments.train import check_epochs, check_seeds, check_train_config, weight_decay_shrink

MAX_TASKS = 10_000  # trained models a grid may ask for unless `kag sweep --max-tasks` raises it
MAX_AXIS_VALUES = 100  # values one axis may list
MAX_GRID_BYTES = 1 << 20  # a grid file is a few KB
AXES = ("epochs", "lr", "weight_decay", "augmentation", "eval_images")
# augmentation name -> the TrainConfig fields it sets (every other field stays the paper's). "affine"
# is torchvision RandomAffine(degrees=15, translate=(4/28, 4/28), scale=(0.9, 1.1)).
AUGMENTATIONS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "translate2": {"translate_px": 2},
    "translate4": {"translate_px": 4},
    "translate6": {"translate_px": 6},
    "affine": {"translate_px": 4, "rotate_deg": 15.0, "scale_range": (0.9, 1.1)},
})
EVAL_IMAGES: Mapping[str, str] = MappingProxyType({"clean": "clean", "shifted": "augmented"})  # -> MetricConfig
DEFAULTS: Mapping[str, Any] = MappingProxyType({  # SPEC §2 as written: the paper profile (a grid's
    "epochs": PAPER.train.epochs,                    # default point trains for its fidelity.epochs: Grid.defaults)
    "lr": PAPER.train.lr, "weight_decay": PAPER.train.weight_decay, "augmentation": "translate4",
    "eval_images": PAPER.metrics.eval_images,
})
DESIGNS = ("one-factor", "full")
FIDELITY_KEYS = ("widths", "seeds", "epochs", "train_subset", "checkpoint_every", "metrics", "check")
REFERENCE = "fidelity reference"  # the plan's name of the fidelity check's reference point
SECTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "fidelity": FIDELITY_KEYS, "axes": AXES, "design": ("kind", "pairs", "points")})
# [pre-registered, docs/SPEC.md §8] weight decay is a tested axis at a training length only where its
# decoupled decay alone shrinks the weights to at most this fraction of their size (by >= 10%) at the
# axis's largest value: at the default lr, 1e-2 gives 0.954 at 20 epochs (cannot act), 0.625 at 200.
DECAY_CAN_ACT = 0.9
MNIST_TRAIN_IMAGES = 60_000
_RANGES = {"lr": (0.0, 1.0, False), "weight_decay": (0.0, 1.0, True)}  # (low, high, low included)


def _toml(value: Any) -> str:
    """A value as it reads in the file (lists in brackets, strings in double quotes)."""
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, default=str)


def _num(value: float) -> str:
    """A number as a person writes it: ``3e-4``, ``0.01``, ``0`` (``nan``, ``inf``, ``-inf`` as TOML spells them)."""
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int) or value == 0:
        return str(int(value)) if float(value).is_integer() else repr(value)
    plain = f"{value:g}"
    mantissa, exponent = f"{value:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    scientific = f"{mantissa}e{int(exponent)}"
    return scientific if len(scientific) < len(plain) else plain


@dataclass(frozen=True)
class Point:
    """One point of a grid: its readable name, its value on every axis, and its profile."""

    name: str
    settings: tuple[tuple[str, Any], ...]
    profile: Profile
    defaults: tuple[tuple[str, Any], ...] = tuple(DEFAULTS.items())  # the grid's default point

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.settings)

    @property
    def changed(self) -> dict[str, Any]:
        """The axes on which this point leaves the grid's default point."""
        defaults = dict(self.defaults)
        return {axis: v for axis, v in self.settings if v != defaults[axis]}


@dataclass(frozen=True)
class Grid:
    """A validated grid file: the fidelity, the values of each axis, and the design."""

    source: str
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    epochs: int
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    design: str = "one-factor"
    pairs: tuple[tuple[str, str], ...] = ()
    train_subset: int | None = None
    checkpoint_every: int = PAPER.train.checkpoint_every
    metrics: str = "paper"
    check: bool = False  # fidelity.check: the plan holds the reference of the fidelity check (SPEC §8)
    text: str = dataclasses.field(default="", repr=False, compare=False)  # the file as read (the report's provenance)

    extra: tuple[tuple[tuple[str, Any], ...], ...] = ()  # design.points: the axes each single point sets

    @property
    def defaults(self) -> dict[str, Any]:
        """The default point's value on every axis: SPEC §2, trained for ``epochs`` (the fidelity's)."""
        return {**DEFAULTS, "epochs": self.epochs}

    def axis(self, name: str) -> tuple[Any, ...]:
        """The values of axis ``name`` (the default alone when the file leaves the axis out)."""
        return dict(self.axes).get(name, (self.defaults[name],))

    def checkpoint_every_at(self, epochs: int) -> int:
        """Timeline checkpoints of a point trained ``epochs`` epochs: the fidelity's at its own length;
        the paper's at the paper's length (so such a point reuses the paper's models); elsewhere the
        same number of timeline points as at the fidelity's length."""
        if epochs == self.epochs:
            return self.checkpoint_every
        if epochs == PAPER.train.epochs and self.train_subset is None:
            return PAPER.train.checkpoint_every
        if self.checkpoint_every <= 0:
            return self.checkpoint_every
        return max(1, round(self.checkpoint_every * epochs / self.epochs))

    def weight_decay_tested(self, epochs: int) -> tuple[bool, float]:
        """(whether the weight-decay axis can act at ``epochs``, the weight shrink factor of its
        largest value at the default lr): tested when that factor is at most :data:`DECAY_CAN_ACT`."""
        train = dataclasses.replace(PAPER.train, epochs=epochs, train_subset=self.train_subset,
                                    lr=self.defaults["lr"], weight_decay=max(self.axis("weight_decay")))
        shrink = weight_decay_shrink(train)
        return shrink <= DECAY_CAN_ACT, shrink

    @property
    def at_paper_fidelity(self) -> bool:
        """True when every point is trained and measured as SPEC says (only the assumptions vary)."""
        return not self.reductions()

    def reference(self) -> Grid:
        """This grid at the paper's fidelity (SPEC's seeds, epochs, checkpoints and measurement sizes),
        its widths kept: its default point is the fidelity check's reference (SPEC §8)."""
        return dataclasses.replace(self, seeds=PAPER.seeds, epochs=PAPER.train.epochs, train_subset=None,
                                   checkpoint_every=PAPER.train.checkpoint_every, metrics="paper", check=False)

    def reference_point(self) -> Point | None:
        """The fidelity check's reference as a point of the plan (named :data:`REFERENCE`), when
        ``check`` asks for it and the fidelity is reduced (at the paper's there is nothing to check)."""
        if not self.check or self.at_paper_fidelity:
            return None
        return dataclasses.replace(self.reference().default_point(), name=REFERENCE)

    def reductions(self, epochs: int | None = None) -> tuple[str, ...]:
        """What the fidelity scales down from SPEC, in words (empty at the paper's fidelity), for a point
        trained ``epochs`` epochs (default: the fidelity's)."""
        epochs = self.epochs if epochs is None else epochs
        every = self.checkpoint_every_at(epochs)
        out = []
        if self.widths != PAPER.widths:
            out.append(f"widths {', '.join(map(str, self.widths))} instead of {', '.join(map(str, PAPER.widths))}")
        if self.seeds != PAPER.seeds:
            out.append(f"seeds {', '.join(map(str, self.seeds))} instead of {', '.join(map(str, PAPER.seeds))}")
        if epochs != PAPER.train.epochs:
            out.append(f"{epochs} epoch{'' if epochs == 1 else 's'} instead of {PAPER.train.epochs}")
        if self.train_subset is not None:
            out.append(f"the first {self.train_subset:,} training images instead of all {MNIST_TRAIN_IMAGES:,}")
        if every != PAPER.train.checkpoint_every:
            words = f"{every} epoch{'' if every == 1 else 's'}"
            out.append(f"timeline checkpoints every {words} instead of {PAPER.train.checkpoint_every}")
        if self.metrics != "paper":
            out.append(f"measured at the sizes of the {self.metrics} profile instead of the paper's")
        return tuple(out)

    def profile(self, settings: Mapping[str, Any], name: str | None = None) -> Profile:
        """The profile of one point: the paper profile with the fidelity and the point's ``settings`` applied."""
        values = {**self.defaults, **settings}
        epochs = values["epochs"]
        fidelity = {"epochs": epochs, "train_subset": self.train_subset, "checkpoint_every": self.checkpoint_every_at(epochs)}
        train = dataclasses.replace(PAPER.train, **fidelity, lr=values["lr"], weight_decay=values["weight_decay"],
                                    **AUGMENTATIONS[values["augmentation"]])
        metrics = dataclasses.replace(PROFILES[self.metrics].metrics, eval_images=EVAL_IMAGES[values["eval_images"]])
        words = ", ".join(f"{axis} {value_text(values[axis])}" for axis in AXES)
        return dataclasses.replace(
            PAPER, name=name or point_name(values, self.defaults), widths=self.widths, seeds=self.seeds,
            spatial_widths=(max(self.widths),), train=train, metrics=metrics,
            description=f"a point of the assumption sweep {self.source}: {words}", reductions=self.reductions(epochs))

    def points(self) -> list[Point]:
        """Every point of the design, the default first (when the design holds it)."""
        base = self.defaults
        if self.design == "full":
            combos = [dict(zip(AXES, values)) for values in itertools.product(*(self.axis(a) for a in AXES))]
        else:
            combos = [dict(base)]
            for axis in AXES:
                combos += [{**base, axis: v} for v in self.axis(axis) if v != base[axis]]
            for a, b in self.pairs:
                combos += [{**base, a: va, b: vb} for va in self.axis(a) if va != base[a]
                           for vb in self.axis(b) if vb != base[b]]
            combos += [{**base, **dict(settings)} for settings in self.extra]
        out, seen = [], set()
        for values in combos:
            name = point_name(values, base)
            if name not in seen:
                seen.add(name)
                out.append(self._point(name, values))
        return out

    def default_point(self) -> Point:
        """The SPEC §2 point at this grid's fidelity (whether or not the design holds it)."""
        return self._point("default", self.defaults)

    def _point(self, name: str, values: Mapping[str, Any]) -> Point:
        return Point(name, tuple((a, values[a]) for a in AXES), self.profile(values, name),
                     tuple(self.defaults.items()))


def value_text(value: Any) -> str:
    """An axis value as point names write it: ``3e-4``, ``0``, ``translate2``."""
    return _toml(value).strip('"')


def point_name(values: Mapping[str, Any], defaults: Mapping[str, Any] = DEFAULTS) -> str:
    """``default``, ``lr=3e-4``, or ``augmentation=affine,weight_decay=0`` (the axes off ``defaults``)."""
    changed = [f"{axis}={value_text(values[axis])}" for axis in AXES if values[axis] != defaults[axis]]
    return ",".join(changed) or "default"


# -- reading and validating a file ----------------------------------------------------------------
class _Checker:
    """One-line errors that name the file and the key: ``sweeps/x.toml: axes.lr = [] is empty: ...``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, why: str, value: Any = ...) -> ValueError:
        shown = "" if value is ... else f" = {_toml(value)}"
        return ValueError(f"{self.source}: {key}{shown} {why}")

    def wrapped(self, key: str, value: Any, exc: ValueError) -> ValueError:
        return ValueError(f"{self.source}: {key} = {_toml(value)}: {exc}")

    def table(self, doc: Mapping[str, Any], section: str, required: bool) -> dict[str, Any]:
        if section not in doc:
            if required:
                raise ValueError(f"{self.source}: [{section}] is missing: a grid file needs "
                                 f"{' and '.join(f'[{s}]' for s in ('fidelity', 'axes'))}")
            return {}
        body = doc[section]
        if not isinstance(body, dict):
            raise self.error(section, f"is not a section: write it as [{section}]", body)
        for key in body:
            if key not in SECTIONS[section]:
                raise ValueError(f"{self.source}: {section}.{key} is not a key of [{section}]: use "
                                 f"{', '.join(SECTIONS[section])}")
        return body

    def integers(self, key: str, value: Any, check) -> tuple[int, ...]:
        if not isinstance(value, list):
            raise self.error(key, "is not a list: write it as a list, e.g. [0, 1, 2]", value)
        if not value:
            raise self.error(key, "is empty: give at least one value", value)
        try:
            return check(value)
        except ValueError as exc:
            raise self.wrapped(key, value, exc) from None

    def axis(self, name: str, value: Any) -> tuple[Any, ...]:
        key = f"axes.{name}"
        if not isinstance(value, list):
            raise self.error(key, f"is not a list: write it as a list, e.g. {name} = [{_toml(DEFAULTS[name])}]", value)
        if not value:
            raise self.error(key, "is empty: give at least one value", value)
        if len(value) > MAX_AXIS_VALUES:
            raise self.error(key, f"lists {len(value):,} values, more than the {MAX_AXIS_VALUES} an axis may hold",
                             value[:3])
        out = []
        for v in value:
            if name == "epochs":
                if isinstance(v, bool) or not isinstance(v, int):
                    raise self.error(key, f"holds {_toml(v)}, not a whole number of epochs", value)
                try:
                    v = check_epochs(v)
                except ValueError as exc:
                    raise self.wrapped(key, value, exc) from None
            elif name in _RANGES:
                low, high, closed = _RANGES[name]
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                    raise self.error(key, f"holds {_toml(v)}, not a finite number", value)
                if not ((low <= v if closed else low < v) and v <= high):
                    raise self.error(key, f"is out of range: {name}={_toml(v)} must lie in "
                                          f"{'[' if closed else '('}{_toml(low)}, {_toml(high)}]", value)
                v = float(v)
            else:
                allowed = AUGMENTATIONS if name == "augmentation" else EVAL_IMAGES
                if not isinstance(v, str) or v not in allowed:
                    raise self.error(key, f"holds {_toml(v)}, which is not a known {name.replace('_', ' ')} value: "
                                          f"choose from {', '.join(allowed)}", value)
            if v in out:
                raise self.error(key, f"repeats {_toml(v)}: give each value once", value)
            out.append(v)
        return tuple(out)


def task_count(n_points: int, widths: Sequence[int], seeds: Sequence[int]) -> int:
    """An upper bound on the models a grid trains: points x widths x seeds x both regimes."""
    return n_points * len(widths) * len(seeds) * 2


def _count_points(kind: str, given: Mapping[str, tuple[Any, ...]], defaults: Mapping[str, Any],
                  pairs: Sequence[tuple[str, str]], extra: Sequence[Any]) -> int:
    """The number of points the design would hold (an upper bound), computed without building one."""
    if kind == "full":
        return math.prod(len(given.get(a, (defaults[a],))) for a in AXES)
    off = {a: sum(v != defaults[a] for v in given.get(a, ())) for a in AXES}
    return 1 + sum(off.values()) + sum(off[a] * off[b] for a, b in pairs) + len(extra)


def parse_grid(text: str, source: str = "<grid>", max_tasks: int = MAX_TASKS) -> Grid:
    """Parse and validate the TOML text of a grid file (``source`` names it in errors). A grid of more
    than ``max_tasks`` trained models (:func:`task_count`) is refused before any point is built."""
    check = _Checker(source)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ValueError(f"{source}: nested too deeply to be a grid file") from None
    for section in doc:
        if section not in SECTIONS:
            raise ValueError(f"{source}: [{section}] is not a section of a grid file: use {', '.join(SECTIONS)}")
    fidelity = check.table(doc, "fidelity", required=True)
    axes_in = check.table(doc, "axes", required=True)
    design_in = check.table(doc, "design", required=False)

    for key, example in (("widths", "[64, 512]"), ("seeds", "[0, 1, 2]"), ("epochs", "20")):
        if key not in fidelity:
            raise ValueError(f"{source}: fidelity.{key} is missing: give it, e.g. {key} = {example}")
    widths = check.integers("fidelity.widths", fidelity["widths"], check_widths)
    seeds = check.integers("fidelity.seeds", fidelity["seeds"], check_seeds)
    check_verdict_seeds(seeds, f"{source}: fidelity.seeds")
    options: dict[str, Any] = {}
    for key, minimum, checker in (("epochs", 1, check_epochs), ("train_subset", 1, None),
                                  ("checkpoint_every", 0, None)):
        if key in fidelity:
            try:
                options[key] = (checker or (lambda v, k=key, m=minimum: check_int(k, v, m)))(fidelity[key])
            except ValueError as exc:
                raise check.wrapped(f"fidelity.{key}", fidelity[key], exc) from None
    if options.get("train_subset", 0) > MNIST_TRAIN_IMAGES:
        raise check.error("fidelity.train_subset", f"is more than the {MNIST_TRAIN_IMAGES:,} MNIST training images",
                          options["train_subset"])
    metrics = fidelity.get("metrics", "paper")
    if not isinstance(metrics, str) or metrics not in PROFILES:
        raise check.error("fidelity.metrics", f"is not a profile: choose one of {', '.join(PROFILES)} "
                                              "(whose measurement sizes every point uses)", metrics)
    check_reference = fidelity.get("check", False)
    if not isinstance(check_reference, bool):
        raise check.error("fidelity.check", "is not true or false (whether the sweep also trains and measures the "
                                            "fidelity check's reference)", check_reference)

    axes = tuple((name, check.axis(name, axes_in[name])) for name in AXES if name in axes_in)
    if not axes:
        raise ValueError(f"{source}: [axes] is empty: give at least one axis ({', '.join(AXES)})")

    kind = design_in.get("kind", "one-factor")
    if not isinstance(kind, str) or kind not in DESIGNS:
        raise check.error("design.kind", f"is not a design: use {' or '.join(DESIGNS)}", kind)
    pairs_in = design_in.get("pairs", [])
    if not isinstance(pairs_in, list):
        raise check.error("design.pairs", "is not a list of pairs: write e.g. [[\"augmentation\", \"weight_decay\"]]",
                          pairs_in)
    if pairs_in and kind == "full":
        raise check.error("design.pairs", "is only for the one-factor design: full already crosses every axis",
                          pairs_in)
    given = dict(axes)
    defaults = {**DEFAULTS, "epochs": options["epochs"]}
    pairs: list[tuple[str, str]] = []
    for pair in pairs_in:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(a, str) for a in pair)) \
                or pair[0] == pair[1]:
            raise check.error("design.pairs", f"holds {_toml(pair)}: each pair names two different axes", pairs_in)
        for a in pair:
            if a not in AXES:
                raise check.error("design.pairs", f"names {_toml(a)}, which is not an axis: use {', '.join(AXES)}",
                                  pairs_in)
            if not any(v != defaults[a] for v in given.get(a, ())):
                raise check.error("design.pairs", f"pairs {a}, but axes.{a} has no value besides the default "
                                                  f"{_toml(defaults[a])}: the pair adds no point", pairs_in)
        if tuple(sorted(pair)) in {tuple(sorted(p)) for p in pairs}:
            raise check.error("design.pairs", f"repeats {_toml(pair)}: give each pair once", pairs_in)
        pairs.append((pair[0], pair[1]))
    extra = _single_points(check, design_in.get("points", []), kind, given, defaults)
    tasks = task_count(_count_points(kind, given, defaults, pairs, extra), widths, seeds)
    if check_reference:  # the reference's models (SPEC's seeds at the paper's length)
        tasks += task_count(1, widths, PAPER.seeds)
    if tasks > max_tasks:
        raise ValueError(f"{source}: the grid asks for {tasks:,} trained models (points x widths x seeds x 2 "
                         f"regimes), more than the limit of {max_tasks:,}: shrink [axes] or use the one-factor "
                         "design, or raise the limit with --max-tasks")

    if any(v == "affine" for v in given.get("augmentation", ())):
        known = {x.name for x in dataclasses.fields(TrainConfig)}
        missing = [f for f in ("rotate_deg", "scale_range") if f not in known]
        if missing:
            raise check.error("axes.augmentation", f"holds \"affine\", which needs TrainConfig."
                                                   f"{' and '.join(missing)}: this version of kag has no affine "
                                                   "augmentation", given["augmentation"])

    grid = Grid(source, widths, seeds, options["epochs"], axes, kind, tuple(pairs),
                train_subset=options.get("train_subset"),
                checkpoint_every=options.get("checkpoint_every", PAPER.train.checkpoint_every), metrics=metrics,
                check=check_reference, text=text, extra=extra)
    base = grid.default_point().profile
    for width in widths:  # an impossible measurement fails here, before anything trains
        try:
            check_metric_request(width, seeds, base.metrics, width in base.spatial_widths)
        except ValueError as exc:
            raise ValueError(f"{source}: [fidelity] cannot be measured at the {metrics} profile's sizes: "
                             f"{exc}") from None
    for point in grid.points():
        try:
            check_train_config(point.profile.train)
        except ValueError as exc:
            raise ValueError(f"{source}: point {point.name}: {exc}") from None
    return grid


def _single_points(check: _Checker, points_in: Any, kind: str, given: Mapping[str, tuple[Any, ...]],
                   defaults: Mapping[str, Any]) -> tuple[tuple[tuple[str, Any], ...], ...]:
    """design.points: each an inline table of axis values taken from [axes], off the default point."""
    key = "design.points"
    if not isinstance(points_in, list) or not all(isinstance(p, dict) for p in points_in):
        raise check.error(key, "is not a list of points: write e.g. [{epochs = 200, weight_decay = 1e-2}]", points_in)
    if points_in and kind == "full":
        raise check.error(key, "is only for the one-factor design: full already holds every combination", points_in)
    out: list[tuple[tuple[str, Any], ...]] = []
    for point in points_in:
        settings = []
        for axis, value in point.items():
            if axis not in AXES:
                raise check.error(key, f"holds {axis} = {_toml(value)}, and {axis} is not an axis: use "
                                       f"{', '.join(AXES)}", points_in)
            v = check.axis(axis, [value])[0]
            if v not in given.get(axis, ()):
                raise check.error(key, f"holds {axis} = {_toml(value)}, which axes.{axis} does not list: add it "
                                       "there (a point takes its values from the axes)", points_in)
            settings.append((axis, v))
        if all(defaults[a] == v for a, v in settings):
            raise check.error(key, f"holds {_toml(point)}, which is the default point", points_in)
        if tuple(settings) in out:
            raise check.error(key, f"repeats {_toml(point)}: give each point once", points_in)
        out.append(tuple(settings))
    return tuple(out)


def load_grid(path: str | Path, max_tasks: int = MAX_TASKS) -> Grid:
    """Read and validate the grid file at ``path`` (a one-line ``ValueError`` naming the key when it is bad)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such grid file" + (" (it is a directory)" if path.is_dir() else ""))
    if path.stat().st_size > MAX_GRID_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size:,} bytes, more than the {MAX_GRID_BYTES:,} a grid file may have")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read as a grid file: {exc}") from None
    return parse_grid(text, str(path), max_tasks)
