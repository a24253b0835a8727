"""The README opens with the committed quick report's headline (kag.repro.report.readme)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kag.repro.report.readme import END, START, headline_block, update

ROOT = Path(__file__).resolve().parents[1]

REPORT = """# Reproduction

> **This report was produced by the `smoke` profile; its verdicts are about reduced runs.**

## Headline

**Outcome: partial** (some paper claims reproduced).

| Claim | Verdict |
|---|---|
| [C1-PR](#c1-pr) | **reproduced** |

**Compute.** 2 CPU cores; wall time: 12.3 s.

## Summary
"""


def test_the_committed_readme_opens_with_the_committed_report_s_headline():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = headline_block((ROOT / "reports" / "quick" / "README.md").read_text(encoding="utf-8"))
    assert block in readme, "README.md's headline is stale: run `python -m kag.repro.report.readme`"
    assert readme.index(START) < readme.index("## Set-up")  # it opens the README


def test_the_block_links_into_the_report_and_leaves_the_wall_times_there():
    block = headline_block(REPORT, "reports/smoke")
    assert block.startswith(START) and block.endswith(END)
    assert "[C1-PR](reports/smoke/README.md#c1-pr)" in block and "(#c1-pr)" not in block
    assert "**Outcome: partial**" in block and "the `smoke` profile" in block
    assert "Compute" not in block and "## Summary" not in block


def test_update_rewrites_only_the_block(tmp_path):
    readme, report = tmp_path / "README.md", tmp_path / "report.md"
    report.write_text(REPORT)
    readme.write_text(f"# kag\n\nbefore\n\n{START}\nold\n{END}\n\nafter\n")
    assert update(readme, report, "reports/smoke") is True
    text = readme.read_text()
    assert text.startswith("# kag\n\nbefore\n\n") and text.endswith("\n\nafter\n") and "old" not in text
    assert update(readme, report, "reports/smoke") is False  # idempotent
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="has no headline markers"):
        update(readme, report)
    with pytest.raises(ValueError, match="has no '## Headline' section"):
        headline_block("# nothing\n")
