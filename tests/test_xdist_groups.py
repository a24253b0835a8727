"""The unit suite's ``--dist loadgroup`` (pyproject.toml) must keep each ``xdist_group`` on one worker:
the claims suite's cold run and the sweep's cluster are module fixtures built once for their group.
pytest 9.2 silently broke that with pytest-xdist 3.8 (pytest-xdist#1386: the group is written into
a node id pytest 9.2 no longer reads), and every such fixture was built once per worker, a minute
or more each; the test extra now keeps pytest below 9.2, and this test notices if grouping breaks again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # runs a pytest session with two workers

GROUPED = '''
import os, pytest
pytestmark = pytest.mark.xdist_group("together")

@pytest.fixture(scope="module")
def built_once():
    with open("builds.txt", "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")

@pytest.mark.parametrize("i", range(6))
def test_grouped(built_once, i):
    pass
'''
LOOSE = '''
import time, pytest

@pytest.mark.parametrize("i", range(20))
def test_loose(i):
    time.sleep(0.02)
'''


def test_an_xdist_group_runs_on_one_worker_and_builds_its_module_fixture_once(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --dist loadgroup\n")
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_loose.py").write_text(LOOSE)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q"],
                          cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    builds = (tmp_path / "builds.txt").read_text().split()
    assert len(builds) == 1, f"the group's module fixture was built on workers {builds}: loadgroup does not group"
