"""The house's layers, read from the source (every import statement, those inside functions too):

* the math (``kag/*.py``: Jacobians, minors, observables, spatial pools, surrogate, checks) imports
  neither the experiments nor the reproduction;
* the experiments (``kag/experiments/``: datasets, model families, training, store, metric tables)
  never import the reproduction;
* the reproduction (``kag/repro/``) is a client of both;
* the ``kag`` command imports the reproduction only inside the commands that run it, and the
  package's front door (``kag/__init__``) never;
* no module imports itself back through others (no import cycle);

and at run time the core never pulls in the reproduction, the pytest layer or pytest itself. The wheel
ships the library (with the reproduction's templates) but not the claims suite."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kag"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def _layer(module: str) -> str:
    if module.startswith("kag.repro"):
        return "repro"
    if module.startswith("kag.experiments"):
        return "experiments"
    if module in ("kag", "kag.__main__", "kag.cli"):
        return "front"
    return "math"


def _imports(module: str) -> list[tuple[str, bool]]:
    """``(imported kag module, at module level?)`` for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    top_level = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from kag.x import y": y may itself be a module (kag.x.y)
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        for name in names:
            while name not in MODULES and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in MODULES and name != "kag" and name.startswith("kag"):
                out.append((name, id(node) in top_level))
    return out


def test_the_layers_are_what_the_test_reads():
    layers = {_layer(m) for m in MODULES}
    assert layers == {"math", "experiments", "repro", "front"}
    assert "kag.jacobians" in MODULES and "kag.experiments.store" in MODULES and "kag.repro.claims" in MODULES


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_point_down(module):
    allowed = {"math": {"math"}, "experiments": {"math", "experiments"}, "repro": {"math", "experiments", "repro"},
               "front": {"math", "experiments"}}[_layer(module)]
    for imported, at_top in _imports(module):
        layer = _layer(imported)
        if module == "kag.cli" and layer == "repro" and not at_top:
            continue  # a reproduction command imports the reproduction when it runs
        assert layer in allowed or layer == "front" and module == "kag.__main__", \
            f"{module} ({_layer(module)}) imports {imported} ({layer})"


def test_no_import_cycles():
    graph = {m: {i for i, _ in _imports(m) if i != m and not m.startswith(i + ".")} for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_core_never_imports_the_reproduction_claims_or_pytest_at_run_time():
    core = sorted(m for m in MODULES if _layer(m) != "repro" and m != "kag.__main__")
    code = (f"import importlib, sys\nfor m in {core!r}: importlib.import_module(m)\n"
            "importlib.import_module('kag.cli').build_parser()\n"
            "bad = sorted(m for m in sys.modules if m == 'pytest' or m.startswith(('kag.repro', 'claims', '_pytest')))\n"
            "print(','.join(bad))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"the core imported {proc.stdout.strip()}"


def _has_modern_setuptools() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 68


def test_the_wheel_ships_kag_and_its_templates_but_no_claims(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("kag", "claims"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    isolation = ["--no-build-isolation"] if _has_modern_setuptools() else []
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", *isolation,
                           "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("kag-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"kag"}, tops
    assert "kag/repro/report/templates/report.html.j2" in names and "kag/repro/claims/c2_depth.py" in names
    assert "kag/experiments/families/cnn.py" in names
