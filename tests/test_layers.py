"""One-way layers: the core (the ``kag`` command included, until a reproduction command runs) never
imports the reproduction, the pytest layer or pytest itself, and
the wheel ships the library (with the reproduction's templates) but not the claims suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("kag", "kag.paths", "kag.errors", "kag.config", "kag.devices", "kag.progress", "kag.stats", "kag.data",
        "kag.datasets", "kag.fashion_mnist", "kag.model", "kag.augment", "kag.train", "kag.keys", "kag.store", "kag.pipeline", "kag.jacobians", "kag.determinants",
        "kag.rotations", "kag.metrics", "kag.rr", "kag.spatial", "kag.surrogate", "kag.compare", "kag.field", "kag.measurement", "kag.plots", "kag.table", "kag.analysis", "kag.profiles", "kag.cli",
        "kag.families", "kag.families.mlp", "kag.families.cnn")


def test_every_core_module_exists():
    def path(module: str) -> Path:
        flat = ROOT / (module.replace(".", "/") + ".py")
        return flat if flat.is_file() else ROOT / module.replace(".", "/") / "__init__.py"

    missing = [m for m in CORE[1:] if not path(m).is_file()]
    assert not missing
    listed = {f"kag.{p.stem}" for p in (ROOT / "kag").glob("*.py") if p.stem not in ("__init__", "__main__")}
    listed |= {"kag.families"} | {f"kag.families.{p.stem}" for p in (ROOT / "kag/families").glob("*.py")
                                  if p.stem != "__init__"}
    assert listed == set(CORE[1:]), "a new core module must be added to CORE"


def test_the_core_never_imports_the_reproduction_claims_or_pytest():
    code = (f"import importlib, sys\nfor m in {CORE!r}: importlib.import_module(m)\n"
            "importlib.import_module('kag.cli').build_parser()\n"  # the CLI imports the reproduction only to run it
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
    assert "kag/repro/report/templates/report.html.j2" in names and "kag/repro/claims.py" in names
