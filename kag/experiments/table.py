"""The results table: every metric value as one row of a long-format ("tidy") table.

A row is one number with everything that identifies it::

    width, seed, regime, eval_images, layer, k, analysis, condition, role, observable, value

* ``analysis``: ``global`` (whole images), ``zero_rows``, ``timeline`` (checkpoints; condition =
  epoch), ``sampling`` (PR ratio against the number of sampled minors; condition = S),
  ``rr_variance`` (the RR ratio's measurement SE from one source alone; condition = index
  samples, images or rotations),
  ``balls`` / ``patches`` / ``separation`` (spatial; condition = radius, patch name or distance d)
  and ``accuracy`` (condition = ``clean`` or ``shifted`` test images);
* ``role``: which network the number describes: ``trained``, ``init``, ``null`` and ``null2`` (two
  independent initialisations), and the norm-matched surrogates of the trained network
  ``surrogate`` (rows and columns matched), ``surrogate_rows`` and ``surrogate_cols``. A ratio or
  divergence against the init carries the role of its numerator (``pr_ratio`` with role ``null``
  is PR(null)/PR(init); ``kl`` with role ``null`` is KL(null‖init)); ``*_trained_over`` with a
  surrogate role is X(trained)/X(that surrogate), how much of X the norms alone explain; a
  ``*_se`` observable is the measurement standard error of the observable it names; ``none`` for
  numbers of the measurement itself (pool size, zero-row threshold);
* ``layer``, ``k`` and ``condition`` are ``None`` where they do not apply.

Judging, figures and ``results.json`` are filters over this table (:meth:`ResultTable.select`,
:meth:`ResultTable.by_seed`). ``TABLE_VERSION`` is the schema: bump it whenever a column, an
analysis, an observable or the meaning of a role changes, so stored tables of the old layout are
never read as new ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

TABLE_VERSION = 3  # 2: roles null2 and surrogate*, analysis "sampling", *_se and *_trained_over observables;
# 3: js_se, {kl,js}_minus_surrogate(_se), rr_trained_over_se, spatial pr_ratio_se

ROLES = ("trained", "init", "null", "null2", "surrogate", "surrogate_rows", "surrogate_cols", "none")


class Row(NamedTuple):
    width: int
    seed: int
    regime: str
    eval_images: str
    layer: str | None
    k: int | None
    analysis: str
    condition: str | None
    role: str
    observable: str
    value: float


COLUMNS: tuple[str, ...] = Row._fields
_INDEX = {name: i for i, name in enumerate(COLUMNS)}


def _check_columns(where: dict[str, Any]) -> None:
    unknown = sorted(set(where) - set(COLUMNS))
    if unknown:
        raise ValueError(f"column {unknown[0]!r} is unknown: the results table has columns {', '.join(COLUMNS)}")


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, (set, frozenset, list, tuple)):
        return value in wanted
    return value == wanted


class ResultTable:
    """An immutable list of :class:`Row` with filters. ``select(layer="L1", k=3)`` narrows it;
    a set, list or tuple as a value matches any of its members."""

    def __init__(self, rows: Iterable[Row] = ()) -> None:
        self.rows: tuple[Row, ...] = tuple(rows)
        self._indexes: dict[int, dict[Any, list[int]]] = {}  # column -> value -> row numbers, built on first use

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResultTable) and _same(self.rows, other.rows)

    def __add__(self, other: "ResultTable") -> "ResultTable":
        return ResultTable(self.rows + other.rows)

    def __repr__(self) -> str:
        return f"ResultTable({len(self.rows)} rows)"

    def select(self, **where: Any) -> "ResultTable":
        """The rows whose columns equal the given values (or belong to the given sets), in table order.

        Key columns are looked up in a per-column index built on first use (the table is immutable),
        so judging many cells on one large table does not rescan it for every cell."""
        _check_columns(where)
        hits: set[int] | None = None
        scan = []
        for name, wanted in where.items():
            i = _INDEX[name]
            values = tuple(wanted) if isinstance(wanted, (set, frozenset, list, tuple)) else (wanted,)
            if name == "value" or not all(_hashable(v) for v in values):
                scan.append((i, wanted))  # floats (NaN never equals itself) and odd values: compared one by one
                continue
            index = self._index(i)
            mine = {n for v in values for n in index.get(v, ())}
            hits = mine if hits is None else hits & mine
        rows = self.rows if hits is None else [self.rows[n] for n in sorted(hits)]
        return ResultTable(r for r in rows if all(_matches(r[i], w) for i, w in scan))

    def _index(self, column: int) -> dict[Any, list[int]]:
        index = self._indexes.get(column)
        if index is None:
            index = {}
            for n, r in enumerate(self.rows):
                index.setdefault(r[column], []).append(n)
            self._indexes[column] = index
        return index

    def unique(self, column: str) -> list[Any]:
        """The distinct values of ``column``, in order of first appearance."""
        _check_columns({column: None})
        return list(dict.fromkeys(getattr(r, column) for r in self.rows))

    def by_seed(self, **where: Any) -> dict[int, float]:
        """``{seed: value}`` of the rows matching ``where``, which must pin one value per seed."""
        out: dict[int, float] = {}
        for r in self.select(**where):
            if r.seed in out:
                raise ValueError(f"the filter {where} matches several rows for seed {r.seed}: pin more columns")
            out[r.seed] = r.value
        return dict(sorted(out.items()))

    def seed_values(self, seeds: Iterable[int], **where: Any) -> list[float]:
        """One value per seed of ``seeds`` (in that order); a missing seed raises LookupError."""
        found = self.by_seed(**where)
        missing = [s for s in seeds if s not in found]
        if missing:
            raise LookupError(f"no value for seed {missing[0]} with {where}")
        return [found[s] for s in seeds]

    def value(self, **where: Any) -> float:
        """The value of the single row matching ``where``."""
        rows = self.select(**where).rows
        if len(rows) != 1:
            raise LookupError(f"{len(rows)} rows match {where}: expected exactly one")
        return rows[0].value

    # -- serialisation ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """``{"schema", "columns", "rows"}``: rows as lists, NaN as None (strict JSON)."""
        return {"schema": TABLE_VERSION, "columns": list(COLUMNS),
                "rows": [[*r[:-1], None if not math.isfinite(r.value) else r.value] for r in self.rows]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ResultTable":
        """Inverse of :meth:`to_json`; a table of another schema raises ValueError."""
        if data.get("schema") != TABLE_VERSION or data.get("columns") != list(COLUMNS):
            raise ValueError(f"results table of schema {data.get('schema')!r} with columns {data.get('columns')} "
                             f"cannot be read: this code reads schema {TABLE_VERSION}")
        return cls(Row(*r[:-1], math.nan if r[-1] is None else float(r[-1])) for r in data["rows"])


def _same(a: tuple[Row, ...], b: tuple[Row, ...]) -> bool:
    """Row-wise equality in which NaN equals NaN (a table equals its JSON round trip)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x[:-1] != y[:-1]:
            return False
        if not (x.value == y.value or (math.isnan(x.value) and math.isnan(y.value))):
            return False
    return True
