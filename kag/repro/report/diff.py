"""Compare the numbers of two reports' ``results.json``: do two runs give the same results?

``python -m kag.repro.report.diff OLD NEW [--rtol R]`` walks the verdicts (``summary``, every
cell's ``values``) and ``figures_data`` of both files and lists every number or verdict that
differs (beyond ``rtol``, default 0: bit-identical), and every value one file has and the other
lacks. Provenance (times, keys, versions) is not compared. Exit status 0 when nothing differs.

``--same-cpu-only``: compare only when both reports were made on the same kind of CPU (model name
and torch's vector instructions, ``provenance.cpu``): training amplifies a last-bit difference
between two CPU kinds far beyond any tolerance (README, "Determinism"), so across them the
comparison says nothing about the code; it is then skipped with one line (exit 0).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

COMPARED = ("summary", "criteria", "figures_data")
SKIPPED_KEYS = {"detail", "plain"}  # free text rebuilt from the numbers; the numbers themselves are compared


def differences(old: Any, new: Any, rtol: float = 0.0, path: str = "") -> list[str]:
    """Every place where ``new`` departs from ``old`` (numbers beyond ``rtol``, anything else at all)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = [f"{path}.{k}: only in the old report" for k in old if k not in new and k not in SKIPPED_KEYS]
        out += [f"{path}.{k}: only in the new report" for k in new if k not in old and k not in SKIPPED_KEYS]
        return out + [d for k in old if k in new and k not in SKIPPED_KEYS
                      for d in differences(old[k], new[k], rtol, f"{path}.{k}")]
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{path}: {len(old)} items, now {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, rtol, f"{path}[{i}]")]
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool) and not isinstance(new, bool):
        if old == new or math.isclose(old, new, rel_tol=rtol, abs_tol=0.0):
            return []
        return [f"{path}: {old!r} -> {new!r}"]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def compare_files(old: Path, new: Path, rtol: float = 0.0) -> tuple[int, list[str]]:
    """(number of values compared, differences) between two results.json files."""
    a, b = json.loads(Path(old).read_text()), json.loads(Path(new).read_text())
    diffs = [d for section in COMPARED for d in differences(a.get(section), b.get(section), rtol, section)]
    return _count(tuple(a.get(s) for s in COMPARED)), diffs


def cpu_of(path: Path) -> dict | None:
    """The CPU a report was made on (``provenance.cpu``), or None if it does not say."""
    cpu = (json.loads(Path(path).read_text()).get("provenance") or {}).get("cpu")
    return cpu if isinstance(cpu, dict) and cpu.get("model") and cpu.get("capability") else None


def _count(obj: Any) -> int:
    if isinstance(obj, dict):
        return sum(_count(v) for k, v in obj.items() if k not in SKIPPED_KEYS)
    if isinstance(obj, (list, tuple)):
        return sum(_count(v) for v in obj)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kag.repro.report.diff", description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for numbers (default 0: exact)")
    parser.add_argument("--same-cpu-only", action="store_true",
                        help="skip the comparison (exit 0, one line) unless both were made on the same kind of CPU")
    args = parser.parse_args(argv)
    if args.same_cpu_only:
        old_cpu, new_cpu = cpu_of(args.old), cpu_of(args.new)
        if old_cpu is None or old_cpu != new_cpu:
            def said(cpu):
                return f"{cpu['model']} ({cpu['capability']})" if cpu else "a CPU it does not record"

            print(f"not compared: {args.old} was made on {said(old_cpu)}, {args.new} on {said(new_cpu)}; training "
                  "round-off differs between CPU kinds, so only reports of the same kind must agree")
            return 0
    n, diffs = compare_files(args.old, args.new, args.rtol)
    for d in diffs[:50]:
        print(d)
    print(f"{n} values compared, {len(diffs)} differ" + (" (first 50 shown)" if len(diffs) > 50 else ""))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
