"""Render the assembled report data to files (placeholder until templates land)."""

from __future__ import annotations

import json
from pathlib import Path

from kag.report.assemble import jsonable


def render(data: dict, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(jsonable(data), indent=1, allow_nan=False))
    return out_dir
