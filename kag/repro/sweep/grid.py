"""A sweep grid (SPEC §8) read from a committed TOML file, validated, and turned into profiles.

The file has three sections::

    [fidelity]                 # the reduced fidelity every point is trained and measured at
    widths = [64, 512]
    seeds = [0, 1, 2]
    epochs = 20
    train_subset = 10000       # optional: the first N training images (default: all 60,000)
    checkpoint_every = 10      # optional: timeline checkpoints (default: the paper's)
    metrics = "paper"          # optional: the profile whose measurement sizes are used (paper, quick, smoke)

    [axes]                     # SPEC §8; an axis left out stays at its default
    lr = [3e-4, 1e-3, 3e-3]
    weight_decay = [0.0, 1e-4, 1e-2]
    augmentation = ["translate2", "translate4", "translate6", "affine"]
    eval_images = ["clean", "shifted"]  # the images C5-C7 judge augmented models on (C8, C9: both, always)

    [design]                   # optional (default: one-factor, no pairs)
    kind = "one-factor"        # or "full": every combination of the axes' values
    pairs = [["augmentation", "weight_decay"]]

The default point is SPEC §2 as written (lr 1e-3, weight decay 1e-4, translate ±4 px, clean test
images): the ``paper`` profile with the fidelity applied. "one-factor" varies one axis at a time
around it, and each pair of ``pairs`` crosses the non-default values of two axes. Every point is a
:class:`~kag.repro.profiles.Profile`; a point at the paper's fidelity has exactly the paper's
configs, so it reuses the paper profile's cached models and tables (the keys are the same).
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
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from kag.analysis import check_metric_request
from kag.config import TrainConfig
from kag.determinants import check_int
from kag.model import check_widths
from kag.repro.profiles import PAPER, PROFILES, Profile, check_verdict_seeds
from kag.train import check_epochs, check_seeds, check_train_config

AXES = ("lr", "weight_decay", "augmentation", "eval_images")
# augmentation name -> the TrainConfig fields it sets (every other field stays the paper's). "affine"
# is torchvision RandomAffine(degrees=15, translate=(4/28, 4/28), scale=(0.9, 1.1)).
AUGMENTATIONS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "translate2": {"translate_px": 2},
    "translate4": {"translate_px": 4},
    "translate6": {"translate_px": 6},
    "affine": {"translate_px": 4, "rotate_deg": 15.0, "scale_range": (0.9, 1.1)},
})
EVAL_IMAGES: Mapping[str, str] = MappingProxyType({"clean": "clean", "shifted": "augmented"})  # -> MetricConfig
DEFAULTS: Mapping[str, Any] = MappingProxyType({  # SPEC §2 as written: the paper profile
    "lr": PAPER.train.lr, "weight_decay": PAPER.train.weight_decay, "augmentation": "translate4",
    "eval_images": PAPER.metrics.eval_images,
})
DESIGNS = ("one-factor", "full")
FIDELITY_KEYS = ("widths", "seeds", "epochs", "train_subset", "checkpoint_every", "metrics")
SECTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "fidelity": FIDELITY_KEYS, "axes": AXES, "design": ("kind", "pairs")})
MNIST_TRAIN_IMAGES = 60_000
_RANGES = {"lr": (0.0, 1.0, False), "weight_decay": (0.0, 1.0, True)}  # (low, high, low included)


def _toml(value: Any) -> str:
    """A value as it reads in the file (lists in brackets, strings in double quotes)."""
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, default=str)


def _num(value: float) -> str:
    """A number as a person writes it: ``3e-4``, ``0.01``, ``0``."""
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

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.settings)

    @property
    def changed(self) -> dict[str, Any]:
        """The axes on which this point leaves the default."""
        return {axis: v for axis, v in self.settings if v != DEFAULTS[axis]}


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
    text: str = dataclasses.field(default="", repr=False, compare=False)  # the file as read (the report's provenance)

    def axis(self, name: str) -> tuple[Any, ...]:
        """The values of axis ``name`` (the default alone when the file leaves the axis out)."""
        return dict(self.axes).get(name, (DEFAULTS[name],))

    @property
    def at_paper_fidelity(self) -> bool:
        """True when every point is trained and measured as SPEC says (only the assumptions vary)."""
        return not self.reductions()

    def reductions(self) -> tuple[str, ...]:
        """What the fidelity scales down from SPEC, in words (empty at the paper's fidelity)."""
        out = []
        if self.widths != PAPER.widths:
            out.append(f"widths {', '.join(map(str, self.widths))} instead of {', '.join(map(str, PAPER.widths))}")
        if self.seeds != PAPER.seeds:
            out.append(f"seeds {', '.join(map(str, self.seeds))} instead of {', '.join(map(str, PAPER.seeds))}")
        if self.epochs != PAPER.train.epochs:
            out.append(f"{self.epochs} epoch{'' if self.epochs == 1 else 's'} instead of {PAPER.train.epochs}")
        if self.train_subset is not None:
            out.append(f"the first {self.train_subset:,} training images instead of all {MNIST_TRAIN_IMAGES:,}")
        if self.checkpoint_every != PAPER.train.checkpoint_every:
            every = f"{self.checkpoint_every} epoch{'' if self.checkpoint_every == 1 else 's'}"
            out.append(f"timeline checkpoints every {every} instead of {PAPER.train.checkpoint_every}")
        if self.metrics != "paper":
            out.append(f"measured at the sizes of the {self.metrics} profile instead of the paper's")
        return tuple(out)

    def profile(self, settings: Mapping[str, Any], name: str | None = None) -> Profile:
        """The profile of one point: the paper profile with the fidelity and the point's ``settings`` applied."""
        values = {**DEFAULTS, **settings}
        fidelity = {"epochs": self.epochs, "train_subset": self.train_subset, "checkpoint_every": self.checkpoint_every}
        train = dataclasses.replace(PAPER.train, **fidelity, lr=values["lr"], weight_decay=values["weight_decay"],
                                    **AUGMENTATIONS[values["augmentation"]])
        metrics = dataclasses.replace(PROFILES[self.metrics].metrics, eval_images=EVAL_IMAGES[values["eval_images"]])
        words = ", ".join(f"{axis} {value_text(values[axis])}" for axis in AXES)
        return dataclasses.replace(
            PAPER, name=name or point_name(values), widths=self.widths, seeds=self.seeds,
            spatial_widths=(max(self.widths),), train=train, metrics=metrics,
            description=f"a point of the assumption sweep {self.source}: {words}", reductions=self.reductions())

    def points(self) -> list[Point]:
        """Every point of the design, the default first (when the design holds it)."""
        if self.design == "full":
            combos = [dict(zip(AXES, values)) for values in itertools.product(*(self.axis(a) for a in AXES))]
        else:
            combos = [dict(DEFAULTS)]
            for axis in AXES:
                combos += [{**DEFAULTS, axis: v} for v in self.axis(axis) if v != DEFAULTS[axis]]
            for a, b in self.pairs:
                combos += [{**DEFAULTS, a: va, b: vb} for va in self.axis(a) if va != DEFAULTS[a]
                           for vb in self.axis(b) if vb != DEFAULTS[b]]
        out, seen = [], set()
        for values in combos:
            name = point_name(values)
            if name not in seen:
                seen.add(name)
                out.append(Point(name, tuple((a, values[a]) for a in AXES), self.profile(values, name)))
        return out

    def default_point(self) -> Point:
        """The SPEC §2 point at this grid's fidelity (whether or not the design holds it)."""
        return Point("default", tuple(DEFAULTS.items()), self.profile(DEFAULTS, "default"))


def value_text(value: Any) -> str:
    """An axis value as point names write it: ``3e-4``, ``0``, ``translate2``."""
    return _toml(value).strip('"')


def point_name(values: Mapping[str, Any]) -> str:
    """``default``, ``lr=3e-4``, or ``augmentation=affine,weight_decay=0`` (the axes off their default)."""
    changed = [f"{axis}={value_text(values[axis])}" for axis in AXES if values[axis] != DEFAULTS[axis]]
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
        out = []
        for v in value:
            if name in _RANGES:
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


def parse_grid(text: str, source: str = "<grid>") -> Grid:
    """Parse and validate the TOML text of a grid file (``source`` names it in errors)."""
    check = _Checker(source)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML: {exc}") from None
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
    pairs: list[tuple[str, str]] = []
    for pair in pairs_in:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(a, str) for a in pair)) \
                or pair[0] == pair[1]:
            raise check.error("design.pairs", f"holds {_toml(pair)}: each pair names two different axes", pairs_in)
        for a in pair:
            if a not in AXES:
                raise check.error("design.pairs", f"names {_toml(a)}, which is not an axis: use {', '.join(AXES)}",
                                  pairs_in)
            if not any(v != DEFAULTS[a] for v in given.get(a, ())):
                raise check.error("design.pairs", f"pairs {a}, but axes.{a} has no value besides the default "
                                                  f"{_toml(DEFAULTS[a])}: the pair adds no point", pairs_in)
        if tuple(sorted(pair)) in {tuple(sorted(p)) for p in pairs}:
            raise check.error("design.pairs", f"repeats {_toml(pair)}: give each pair once", pairs_in)
        pairs.append((pair[0], pair[1]))

    if any(v == "affine" for v in given.get("augmentation", ())):
        known = {x.name for x in dataclasses.fields(TrainConfig)}
        missing = [f for f in ("rotate_deg", "scale_range") if f not in known]
        if missing:
            raise check.error("axes.augmentation", f"holds \"affine\", which needs TrainConfig."
                                                   f"{' and '.join(missing)}: this version of kag has no affine "
                                                   "augmentation", given["augmentation"])

    grid = Grid(source, widths, seeds, options["epochs"], axes, kind, tuple(pairs),
                options.get("train_subset"), options.get("checkpoint_every", PAPER.train.checkpoint_every), metrics,
                text)
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


def load_grid(path: str | Path) -> Grid:
    """Read and validate the grid file at ``path`` (a one-line ``ValueError`` naming the key when it is bad)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such grid file" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read as a grid file: {exc}") from None
    return parse_grid(text, str(path))
