"""kag.experiments.allocator: large temporaries reused from the heap instead of mapped afresh."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from kag.experiments import allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A table's pattern in miniature: a 48 MiB temporary (above glibc's largest mmap threshold, 32 MiB) made,
# written and freed, 16 times over; the process prints its page faults during the loop.
LOOP = """
import resource, sys, torch
from kag.experiments.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.ones(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(16):
    t = torch.empty(12 * 1024 * 1024)
    t.fill_(1.0)
    del t
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(*modes: str) -> list[int]:
    """The loop's page faults in a fresh process per mode (run side by side), no MALLOC_ variable set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    procs = [subprocess.Popen([sys.executable, "-c", LOOP, mode], env=env, stdout=subprocess.PIPE, text=True)
             for mode in modes]
    outs = [p.communicate()[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return [int(out.split()[-1]) for out in outs]


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_a_freed_large_block_is_reused_not_mapped_again():
    pages = 48 * 1024 * 1024 // 4096
    default, kept = _page_faults("default", "keep")
    assert default >= 16 * pages * 0.9  # glibc maps each block afresh: every page of every block faults
    # the heap grows to hold a few blocks (the small objects made in between fragment it), then reuses them
    assert kept <= 6 * pages


def test_keep_freed_memory_is_applied_once_and_reports_it(monkeypatch):
    monkeypatch.setattr(allocator, "_done", None)
    calls = []
    monkeypatch.setattr(allocator, "_apply", lambda: calls.append(1) or True)
    assert allocator.keep_freed_memory() and allocator.keep_freed_memory()
    assert calls == [1]


def test_elsewhere_than_glibc_nothing_is_set(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert allocator._apply() is False


def test_the_worker_environment_says_the_same_as_the_call():
    assert allocator.ENVIRONMENT == {"MALLOC_MMAP_MAX_": "0",
                                     "MALLOC_TRIM_THRESHOLD_": str(allocator.TRIM_THRESHOLD_BYTES),
                                     "MALLOC_ARENA_MAX": "1"}
    assert allocator.TRIM_THRESHOLD_BYTES == 2**31 - 1  # mallopt's int


def test_a_metric_table_asks_for_it(monkeypatch):
    """compute_table calls it first (the pipeline's processes compute table after table)."""
    from kag.experiments import analysis

    class Called(Exception):
        pass

    def called():
        raise Called

    monkeypatch.setattr(analysis, "keep_freed_memory", called)
    with pytest.raises(Called):
        analysis.compute_table(None, None, None, None, None, False)
