"""Render the assembled report data to ``out_dir``: results.json, table.csv, figure PNGs, index.html, README.md.

index.html is one file that loads nothing: its figures are embedded as ``data:image/png;base64``
URIs and its styles are inline, so it can be mailed or archived alone. README.md links the PNG
files written beside it (a code host renders those).

Every file is written atomically (a temporary file, then ``os.replace``), so a reader never sees a
half-written report, and PNGs of figures that this render did not draw are removed, so the folder
always matches its results.json.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import matplotlib
from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape

from kag.experiments.paths import kag_home
from kag.files import write_atomically
from kag.progress import format_duration
from kag.repro.criteria import CONTROL_SAYS_NO, CONTROL_SHOWS_EFFECT
from kag.repro.report.assemble import TABLE_FILE, headline, jsonable, robustness_text
from kag.repro.report.figures import FIGURES, SWEEP_FIGURES, spec_curve
from kag.experiments.table import COLUMNS, ResultTable

TEMPLATES = Path(__file__).parent / "templates"
DPI = 90
MAX_FIGURE_CACHE_BYTES = 100 << 20  # $KAG_HOME/figures keeps the most recently used figures up to this size
# Fonts and sizes for every figure; applied only while the figures are drawn and saved.
RC = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
      "legend.fontsize": 7, "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "kag"}


@functools.cache
def _figure_code() -> str:
    """What a figure's pixels depend on besides its data: the report package's code (figures, their
    labels and words), matplotlib, DPI and RC."""
    h = hashlib.sha256(f"{matplotlib.__version__}|{DPI}|{sorted(RC.items())}".encode())
    for module in sorted(Path(__file__).parent.glob("*.py")):
        h.update(module.name.encode() + b"\0" + module.read_bytes())
    return h.hexdigest()


_NOTHING = b""  # a cached "this figure draws nothing for these data"


def _digest(inputs: Any) -> str:
    """The hash of a figure's input data (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _drawn(stem: str, digest: str, draw: Any) -> bytes | None:
    """The PNG of ``draw()`` (None when it draws nothing), memoised in ``$KAG_HOME/figures`` under the
    ``digest`` of its data (:func:`_digest`), its stem and the drawing code: a report re-rendered on
    unchanged numbers (a warm ``pytest claims``) reuses its figures instead of drawing them again
    (about 15 s of 27 figures)."""
    key = hashlib.sha256(f"{stem}|{digest}|{_figure_code()}".encode()).hexdigest()
    try:
        folder = kag_home() / "figures"
        cached = folder / f"{key}.png"
        if cached.is_file() and cached.stat().st_size <= 16 << 20:  # a figure is about 50 KB
            payload = cached.read_bytes()
            if payload == _NOTHING or payload[:8] == b"\x89PNG\r\n\x1a\n":
                os.utime(cached)  # used now: the pruning keeps it
                return payload or None
    except (OSError, ValueError):
        folder = None
    fig = draw()
    payload = _png(fig) if fig is not None else None
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomically(folder / f"{key}.png", payload or _NOTHING)
        except OSError:
            pass  # a read-only cache only costs the redraw
    return payload


def prune_figure_cache(max_bytes: int = MAX_FIGURE_CACHE_BYTES) -> int:
    """Delete the least recently used figures of ``$KAG_HOME/figures`` until it holds at most ``max_bytes``
    (each report re-renders on new numbers, so the folder would otherwise only grow). Returns the files
    deleted; a folder that cannot be read or written is left as it is."""
    try:
        files = [(f.stat().st_mtime, f.stat().st_size, f) for f in (kag_home() / "figures").glob("*.png")]
    except (OSError, ValueError):
        return 0
    total, deleted = sum(size for _, size, _ in files), 0
    for _, size, f in sorted(files, key=lambda item: item[0]):
        if total <= max_bytes:
            break
        try:
            f.unlink()
        except OSError:
            continue
        total -= size
        deleted += 1
    return deleted


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # No Software/date chunks: identical numbers give identical bytes.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"optimize": True})
    return buf.getvalue()


def render_figures(figures_data: dict, out_dir: Path) -> list[str]:
    """Draw every registered figure that has data; write ``<stem>.png``; remove the PNGs of the others.

    Returns the stems written. A figure that raises is skipped with a warning: one bad panel must not
    cost the report of a long run.
    """
    return list(_write_figures(figures_data, out_dir))


def _write_figures(figures_data: dict, out_dir: Path, figures: dict[str, Any] | None = None) -> dict[str, bytes]:
    """:func:`render_figures` of the registry ``figures`` (stem -> function; default :data:`FIGURES`),
    returning stem -> PNG bytes of the figures written."""
    written = {}
    digest = _digest(figures_data or {})  # every figure reads the whole figures_data: hashed once
    with matplotlib.rc_context(RC):
        for stem, fn in (FIGURES if figures is None else figures).items():
            try:
                payload = _drawn(stem, digest, lambda: fn(figures_data or {}))
            except Exception as exc:  # noqa: BLE001 - reported, and the rest of the report still renders
                warnings.warn(f"figure {stem!r} skipped: {exc!r}", RuntimeWarning, stacklevel=2)
                payload = None
            path = out_dir / f"{stem}.png"
            if payload is None:
                path.unlink(missing_ok=True)
            else:
                write_atomically(path, payload)
                written[stem] = payload
    return written


def spec_stem(claim_id: str) -> str:
    """The file stem of a claim's specification curve: ``spec_c1-pr``."""
    return f"spec_{claim_id.lower()}"


def _write_spec_curves(criteria: list[dict], out_dir: Path) -> dict[str, bytes]:
    """Draw :func:`~kag.repro.report.figures.spec_curve` for every claim whose cells carry variants;
    write ``spec_<id>.png`` and remove that file for the claims without one. Returns claim id -> PNG."""
    written = {}
    with matplotlib.rc_context(RC):
        for entry in criteria:
            path = out_dir / f"{spec_stem(str(entry.get('id')))}.png"
            try:
                payload = _drawn(path.name, _digest(entry), lambda: spec_curve(entry))
            except Exception as exc:  # noqa: BLE001 - reported, and the rest of the report still renders
                warnings.warn(f"specification curve of {entry.get('id')!r} skipped: {exc!r}", RuntimeWarning,
                              stacklevel=2)
                payload = None
            if payload is None:
                path.unlink(missing_ok=True)
            else:
                write_atomically(path, payload)
                written[str(entry["id"])] = payload
    return written


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:image/png;base64,...`` URI, for an <img> that needs no file beside the page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# -- template helpers -----------------------------------------------------------------------------
def _seconds(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.1f} s"


def _num(x: Any, fmt: str = ".4g") -> str:
    return "n/a" if x is None else format(x, fmt) if isinstance(x, (int, float)) else str(x)


def _yesno(x: Any) -> str:
    return "n/a" if x is None else "yes" if x else "no"


def _md(x: Any) -> str:
    """A value made safe for one GitHub table cell."""
    return "" if x is None else str(x).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "html.j2"]),
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(seconds=_seconds, num=_num, yesno=_yesno, md=_md, short=lambda k: str(k or "")[:12],
                       duration=format_duration)
    return env


# A status as a word in a coloured badge (HTML) or in bold (Markdown): no emoji, which a page
# without an emoji font shows as empty boxes.
STATUS_CLASS = {"reproduced": "ok", "contradicted": "bad", "inconclusive": "warn", "not run": "na", "skipped": "na"}


def _context(data: dict, figures: dict[str, bytes], specs: dict[str, bytes] | None = None) -> dict[str, Any]:
    prov = data.get("provenance") or {}
    criteria = list(data.get("criteria") or [])
    specs = specs or {}
    return {
        "title": data.get("title", "Reproduction report"),
        "profile": data.get("profile") or {},
        "study": data.get("study") or {},
        "headline": data.get("headline") or headline(criteria, prov),
        "robustness": {str(c.get("id")): robustness_text(c) for c in criteria},
        "spec_file": {cid: f"{spec_stem(cid)}.png" for cid in specs},
        "spec_uri": {cid: data_uri(png) for cid, png in specs.items()},
        "summary": data.get("summary") or [],
        "criteria": criteria,
        "assumptions": data.get("assumptions") or [],
        "methods": data.get("methods") or [],
        "n2_statement": data.get("n2_statement") or "",
        "prov": prov,
        "timings": prov.get("timings") or {},
        "cache": prov.get("cache") or {},
        "figures": set(figures),
        "figure_uri": {stem: data_uri(png) for stem, png in figures.items()},
        "status_class": STATUS_CLASS,
        "control_words": {"says_no": CONTROL_SAYS_NO, "shows": CONTROL_SHOWS_EFFECT},
    }


def table_csv(table: ResultTable, variants: dict[str, ResultTable] | None = None) -> bytes:
    """The long-format results table as CSV (empty fields for None; ``nan`` for undefined values),
    with a ``variant`` column: "primary" for the primary estimator's rows, then every multiverse
    variant's own rows (docs/SPEC.md §7)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow((*COLUMNS, "variant"))
    for name, rows in (("primary", table), *sorted((variants or {}).items())):
        writer.writerows([*("" if v is None else repr(v) if isinstance(v, float) else v for v in row), name]
                         for row in rows)
    return buf.getvalue().encode()


def render(data: dict, out_dir: Path, table: ResultTable | None = None,
           variants: dict[str, ResultTable] | None = None) -> Path:
    """Write the report of ``data`` (from :func:`kag.repro.report.assemble.assemble`) into ``out_dir``,
    with ``table`` (the rows behind it) as table.csv."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = jsonable(data)
    write_atomically(out_dir / "results.json", json.dumps(data, indent=1, allow_nan=False).encode())
    if table is not None:
        write_atomically(out_dir / TABLE_FILE, table_csv(table, variants))
    figures = _write_figures(data.get("figures_data") or {}, out_dir)
    specs = _write_spec_curves(data.get("criteria") or [], out_dir)
    prune_figure_cache()
    env, ctx = _environment(), _context(data, figures, specs)
    write_atomically(out_dir / "index.html", env.get_template("report.html.j2").render(ctx).encode())
    write_atomically(out_dir / "README.md", env.get_template("report.md.j2").render(ctx).encode())
    return out_dir


# -- the sweep report (kag.repro.sweep.report) ----------------------------------------------------
# One letter per status for the verdict matrix, whose 15+ columns leave no room for the words (the
# words are in each cell's tooltip, in the legend above the matrix and in the Markdown).
STATUS_MARK = {"reproduced": "R", "contradicted": "C", "inconclusive": "I", "not run": "N", "skipped": "S"}


def render_sweep(data: dict, out_dir: Path) -> Path:
    """Write the sweep report of ``data`` (from :func:`kag.repro.sweep.report.assemble_sweep`) into
    ``out_dir``: results.json, the figure PNGs, index.html (figures embedded) and README.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = jsonable(data)
    write_atomically(out_dir / "results.json", json.dumps(data, indent=1, allow_nan=False).encode())
    figures = _write_figures(data.get("figures_data") or {}, out_dir, SWEEP_FIGURES)
    prune_figure_cache()
    prov = data.get("provenance") or {}
    ctx = {**data, "prov": prov, "figures_drawn": set(figures),
           "figure_uri": {stem: data_uri(png) for stem, png in figures.items()},
           "status_class": STATUS_CLASS, "status_mark": STATUS_MARK,
           "control_words": {"says_no": CONTROL_SAYS_NO, "shows": CONTROL_SHOWS_EFFECT}}
    env = _environment()
    write_atomically(out_dir / "index.html", env.get_template("sweep.html.j2").render(ctx).encode())
    write_atomically(out_dir / "README.md", env.get_template("sweep.md.j2").render(ctx).encode())
    return out_dir


# -- the cross-study report (kag.repro.report.studies) --------------------------------------------
STATUS_COLOUR = {"reproduced": "#2e7d32", "contradicted": "#c62828", "inconclusive": "#f9a825", "not run": "#bdbdbd",
                 "skipped": "#e0e0e0"}


def studies_matrix_figure(data: dict) -> bytes:
    """The claim × study verdict matrix as one picture: a coloured square per status, its letter inside."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows, present = data["rows"], data["present"]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(1.6 + 1.3 * len(present), 0.8 + 0.32 * len(rows)), layout="constrained")
        ax = fig.subplots()
        for i, row in enumerate(rows):
            for j, name in enumerate(present):
                status = row["cells"][name]["status"]
                ax.add_patch(matplotlib.patches.Rectangle((j - 0.45, i - 0.4), 0.9, 0.8,
                                                          color=STATUS_COLOUR.get(status, "#ffffff")))
                ax.text(j, i, STATUS_MARK.get(status, "?"), ha="center", va="center", color="white", fontsize=8)
        ax.set_xlim(-0.5, len(present) - 0.5)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xticks(range(len(present)), present)
        ax.set_yticks(range(len(rows)), [r["id"] for r in rows])
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.legend(handles=[Patch(color=c, label=s) for s, c in STATUS_COLOUR.items()], loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), frameon=False)
        ax.set_title("Claim status per study")
        return _png(fig)


STUDY_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def studies_question_figure(question: dict, studies: list[str]) -> bytes:
    """One question of the cross-study report: a line per study (mean ± 2 std over seeds) over its x
    (layers or widths), 1 = no change from the initialisation."""
    from matplotlib.figure import Figure

    from kag.repro.report.figures import mean_2std

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.5, 3.6), layout="constrained")
        ax = fig.subplots()
        numeric = all(isinstance(x, int) for s in question["studies"].values() for x in s["x"])
        for i, name in enumerate(studies):
            series = question["studies"].get(name)
            if not series:
                continue
            xs = series["x"] if numeric else [j + 1 + 0.06 * (i - len(studies) / 2) for j in range(len(series["x"]))]
            pts = [(x, m) for x, seeds in zip(xs, series["seeds"]) if (m := mean_2std(seeds)) is not None]
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts], yerr=[p[1][1] for p in pts], capsize=2,
                            marker="o", ms=3.5, lw=1.2, color=STUDY_COLOURS[i % len(STUDY_COLOURS)],
                            label=f"{name} ({series['at']})")
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        if numeric:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("width n")
        else:
            depth = max(len(s["x"]) for s in question["studies"].values())
            ax.set_xticks(range(1, depth + 1), [f"L{j}" for j in range(1, depth + 1)])
            ax.set_xlabel("hidden layer (input side first)")
        ax.set_ylabel("ratio (1 = as at init)" if question["id"] != "norms" else "PR(trained) / PR(surrogate)")
        ax.set_title(question["question"], fontsize=10)
        ax.legend(fontsize=7, frameon=False)
        return _png(fig)


def render_studies(data: dict, out_dir: Path) -> Path:
    """Write the cross-study report of ``data`` (from :func:`kag.repro.report.studies.assemble_studies`)
    into ``out_dir``: results.json, matrix.png, index.html (figure embedded) and README.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = jsonable(data)
    write_atomically(out_dir / "results.json", json.dumps(data, indent=1, allow_nan=False).encode())
    png = studies_matrix_figure(data)
    write_atomically(out_dir / "matrix.png", png)
    question_uri = {}
    for question in data.get("questions") or []:
        drawn = studies_question_figure(question, data["present"])
        write_atomically(out_dir / f"question_{question['id']}.png", drawn)
        question_uri[question["id"]] = data_uri(drawn)
    ctx = {**data, "matrix_uri": data_uri(png), "question_uri": question_uri, "status_class": STATUS_CLASS,
           "status_mark": STATUS_MARK}
    env = _environment()
    write_atomically(out_dir / "index.html", env.get_template("studies.html.j2").render(ctx).encode())
    write_atomically(out_dir / "README.md", env.get_template("studies.md.j2").render(ctx).encode())
    return out_dir
