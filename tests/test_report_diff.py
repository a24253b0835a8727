"""The determinism check of CI (``python -m kag.repro.report.diff``): numbers and verdicts compared
exactly, and with ``--same-cpu-only`` only between reports made on the same kind of CPU."""

from __future__ import annotations

import json

import pytest

from kag.repro.report.assemble import cpu_identity
from kag.repro.report.diff import main

HERE = {"model": "AMD EPYC", "capability": "AVX2"}
ELSEWHERE = {"model": "Intel(R) Xeon(R) Platinum", "capability": "AVX512"}


def _report(tmp_path, name, value, cpu):
    path = tmp_path / f"{name}.json"
    provenance = {"generated": name} | ({"cpu": cpu} if cpu else {})
    path.write_text(json.dumps({"summary": [{"id": "C1", "status": "reproduced", "mean": value}],
                                "provenance": provenance}))
    return path


def test_numbers_are_compared_exactly_and_a_difference_fails(tmp_path, capsys):
    old, same = _report(tmp_path, "old", 1.0, HERE), _report(tmp_path, "same", 1.0, HERE)
    assert main([str(old), str(same), "--rtol", "1e-9"]) == 0
    moved = _report(tmp_path, "moved", 1.0 + 1e-6, HERE)
    assert main([str(old), str(moved), "--rtol", "1e-9"]) == 1
    assert "summary[0].mean: 1.0 -> 1.000001" in capsys.readouterr().out


@pytest.mark.parametrize("other", [ELSEWHERE, None])
def test_same_cpu_only_skips_reports_of_another_or_an_unrecorded_cpu_with_one_line(tmp_path, capsys, other):
    old, new = _report(tmp_path, "old", 1.0, other), _report(tmp_path, "new", 2.0, HERE)
    assert main([str(old), str(new), "--rtol", "1e-9", "--same-cpu-only"]) == 0
    out = capsys.readouterr().out.strip()
    said = "Intel(R) Xeon(R) Platinum (AVX512)" if other else "a CPU it does not record"
    assert out == (f"not compared: {old} was made on {said}, {new} on AMD EPYC (AVX2); training round-off differs "
                   "between CPU kinds, so only reports of the same kind must agree")


def test_same_cpu_only_still_compares_reports_of_the_same_cpu(tmp_path):
    old, new = _report(tmp_path, "old", 1.0, HERE), _report(tmp_path, "new", 2.0, dict(HERE))
    assert main([str(old), str(new), "--rtol", "1e-9", "--same-cpu-only"]) == 1


def test_the_report_records_the_cpu_it_was_made_on():
    cpu = cpu_identity()
    assert set(cpu) == {"model", "capability"} and all(isinstance(v, str) and v for v in cpu.values())
