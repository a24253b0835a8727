"""The reproduction report: ``reports/<profile>/`` with index.html, README.md, figures, results.json
and the long-format results table (table.csv).

:func:`write_report` is called once per ``pytest claims`` run by the controlling process, with the
verdicts the tests recorded; :func:`render_from_cache` (``kag report``) judges every cell again on
the cached tables, without pytest and without training anything. Reports go to
``reports/<profile>`` under the current directory unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path

from kag.repro.profiles import Profile, get_profile
from kag.repro.report.assemble import assemble, verdicts_from_cache, verdicts_from_outcomes
from kag.repro.report.render import render
from kag.repro.results import Results


def default_out_dir(profile: Profile) -> Path:
    """``reports/<profile>`` under the current directory."""
    return Path.cwd() / "reports" / profile.name


def write_report(profile: Profile, outcomes: dict[tuple[str, str], dict], out_dir: str | Path | None = None,
                 device: str | None = None, session_seconds: float | None = None) -> Path:
    """Render the report of a pytest run (``outcomes``: (claim id, cell id) -> outcome and recorded verdict)."""
    results = Results(profile, device=device, compute=False)
    table = results.available()
    data = assemble(results, verdicts_from_outcomes(profile, outcomes), table, session_seconds, device)
    return render(data, Path(out_dir) if out_dir else default_out_dir(profile), table)


def render_from_cache(profile_name: str | None = None, device: str | None = None,
                      out_dir: str | Path | None = None) -> Path:
    """Re-judge every claim on cached tables and render the report (nothing is trained or computed)."""
    profile = get_profile(profile_name, device=device)
    results = Results(profile, device=device, compute=False)
    table = results.available()
    data = assemble(results, verdicts_from_cache(results), table, None, device)
    return render(data, Path(out_dir) if out_dir else default_out_dir(profile), table)
