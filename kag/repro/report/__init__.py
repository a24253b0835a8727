"""The reproduction report: ``reports/<profile>/`` with index.html, README.md, figures, results.json
and the long-format results table (table.csv).

:func:`write_report` is called once per ``pytest claims`` run by the controlling process, with the
verdicts the tests recorded; :func:`render_from_cache` (``kag report``) judges every cell again on
the cached tables, without pytest and without training anything, and refuses (MissingResults)
when no metric table of the profile is cached. Reports go to
``reports/<profile>`` under the current directory unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path

from kag.errors import MissingResults
from kag.repro.profiles import Profile, get_profile
from kag.repro.report.assemble import assemble, verdicts_from_cache, verdicts_from_outcomes
from kag.repro.report.render import render
from kag.repro.results import Results


def default_out_dir(profile: Profile) -> Path:
    """``reports/<profile>`` under the current directory (``reports/studies/<study>/<profile>`` for a
    study other than the paper's, see :mod:`kag.repro.studies`)."""
    from kag.repro.studies import get_study

    return get_study(profile.study).report_dir(profile.name)


def write_report(profile: Profile, outcomes: dict[tuple[str, str], dict], out_dir: str | Path | None = None,
                 device: str | None = None, session_seconds: float | None = None,
                 git: dict | None = None) -> Path:
    """Render the report of a pytest run (``outcomes``: (claim id, cell id) -> outcome and recorded verdict;
    ``git``: the commit the run started from, :func:`~kag.repro.report.assemble.git_state`, default now's)."""
    results = Results(profile, device=device, compute=False)
    table = results.available()
    data = assemble(results, verdicts_from_outcomes(profile, outcomes), table, session_seconds, device, git)
    return render(data, Path(out_dir) if out_dir else default_out_dir(profile), table, results.available_variants())


def render_from_cache(profile_name: str | None = None, device: str | None = None,
                      out_dir: str | Path | None = None, study: str | None = None,
                      not_reproduced: str = "fail") -> Path:
    """Re-judge every claim on cached tables and render the report (nothing is trained or computed);
    ``not_reproduced`` as pytest's ``--kag-not-reproduced`` (``"fail"`` or ``"xfail"``).

    Raises :class:`~kag.errors.MissingResults`, before anything is written, when no metric table of
    the profile is cached: a report whose every claim is "not run" would only hide that. A store
    holding some of the profile's tables renders, its other claims "not run"."""
    profile = get_profile(profile_name, device=device, study=study)
    results = Results(profile, device=device, compute=False)
    table = results.available()
    if not len(table):
        raise MissingResults(
            f"no metric table of the {profile.name} profile is cached in {results.store.root}: produce them with "
            f"`pytest claims -n auto --kag-profile {profile.name}"
            + ("" if profile.study == "mnist-mlp" else f" --kag-study {profile.study}")
            + "` (or set KAG_HOME to the kag home that holds them)")
    data = assemble(results, verdicts_from_cache(results, not_reproduced), table, None, device)
    return render(data, Path(out_dir) if out_dir else default_out_dir(profile), table, results.available_variants())
