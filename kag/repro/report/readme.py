"""The README's opening summary, generated from a rendered report (issue 17 item 6).

The repository's README opens with the headline of the committed ``reports/quick`` report (the one
CI regenerates and checks): its outcome ([Re] / [¬Re] / partial) and, per claim, the paper's
statement, our value, the verdict, its robustness and the deviation. The block between
:data:`START` and :data:`END` is written by::

    python -m kag.repro.report.readme            # README.md from reports/quick/README.md

and a unit test checks that the committed README holds what the committed report generates. The
report's compute paragraph (wall times, which vary from run to run) stays in the report.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

START = "<!-- headline: generated from reports/quick by `python -m kag.repro.report.readme`; do not edit -->"
END = "<!-- headline end -->"
ROOT = Path(__file__).resolve().parents[3]


def headline_block(report_md: str, report_dir: str = "reports/quick") -> str:
    """The README block for the report whose Markdown is ``report_md`` (found under ``report_dir``):
    its "## Headline" section without the compute paragraph, links pointing into the report."""
    match = re.search(r"^## Headline\n(.*?)(?=^## )", report_md, re.M | re.S)
    if match is None:
        raise ValueError(f"{report_dir}/README.md has no '## Headline' section: render the report first")
    paragraphs = [p for p in match.group(1).strip().split("\n\n") if not p.startswith("**Compute.**")]
    body = "\n\n".join(paragraphs)
    body = re.sub(r"\]\(#", f"]({report_dir}/README.md#", body)
    profile = re.search(r"produced by the `(\w+)` profile", report_md)
    which = f"the `{profile.group(1)}` profile" if profile else "the committed report"
    intro = (f"**What the committed report says** ([`{report_dir}/`]({report_dir}/README.md), {which}: see "
             "\"Profiles\" for its sizes; its compute, figures and every cell are in the report):")
    return f"{START}\n{intro}\n\n{body}\n{END}"


def update(readme: Path, report: Path, report_dir: str = "reports/quick") -> bool:
    """Write the block into ``readme`` (between the markers, which must be there); True if it changed."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no headline markers: add the lines {START!r} and {END!r} where it goes")
    block = headline_block(report.read_text(encoding="utf-8"), report_dir)
    new = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main() -> int:
    changed = update(ROOT / "README.md", ROOT / "reports" / "quick" / "README.md")
    print("README.md: headline " + ("updated" if changed else "already up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
