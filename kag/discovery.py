"""Registries that find their entries: every module of a package lists what it adds in one attribute
(``FAMILIES_HERE``, ``DATASETS_HERE``, ``CLAIMS_HERE``), so adding a model family, a dataset or a claim
is adding one file. One loop serves the three registries."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Sequence
from typing import Any


def listed_in_modules(package: str, path: Sequence[str], attribute: str) -> list[Any]:
    """What every module of ``package`` (its ``__path__`` is ``path``) lists in ``attribute``, module by
    module in name order; each module is imported (a module without the attribute adds nothing)."""
    found: list[Any] = []
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        found.extend(getattr(importlib.import_module(f"{package}.{info.name}"), attribute, ()))
    return found


def first_repeat(values: Iterable[Any]) -> Any | None:
    """The smallest value that occurs more than once in ``values``, or None when none repeats."""
    values = list(values)
    repeated = sorted({v for v in values if values.count(v) > 1})
    return repeated[0] if repeated else None
