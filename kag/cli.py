"""The ``kag`` command (also ``python -m kag``): data, train, metrics, cache, report.

``data``, ``train``, ``metrics`` and ``cache`` are clients of the core (any dataset of
:mod:`kag.experiments.datasets`, any model family of :mod:`kag.experiments.families`, the run sizes of :mod:`kag.experiments.profiles`
and metric flags); ``report``, ``studies`` and ``sweep`` import the reproduction (:mod:`kag.repro`)
when they run, never before.

Every failure the user can cause ends in one line ``kag: error: ...`` and exit code 2 for bad
arguments (``ValueError``) or 1 for a problem with data, the cache or the file system
(:class:`kag.errors.KagError`, ``OSError``), never a traceback (``KAG_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from kag.experiments.datasets import DATASETS
from kag.experiments.profiles import PROFILE_CHOICES


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{self.prog}: {message}")


def _checked_int(name: str, check: Callable[[int], int]):
    """argparse type: an integer that passes the library's ``check`` (whose one-line message names
    ``name``, the bad value and what is allowed)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not an integer") from None
        try:
            return check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _width(value: int) -> int:
    from kag.experiments.model import check_width

    return check_width(value)


def _seed(value: int) -> int:
    from kag.experiments.train import check_seed

    return check_seed(value)


def _epochs(value: int) -> int:
    from kag.experiments.train import check_epochs

    return check_epochs(value)


def _k(value: int) -> int:
    from kag.checks import check_int

    return check_int("k", value, 1)


def _positive(name: str) -> Callable[[int], int]:
    def check(value: int) -> int:
        from kag.checks import check_int

        return check_int(name, value, 1)
    return check


def _os_message(exc: OSError) -> str:
    """``<path>: <problem>`` for an OSError that names a path, else its own text."""
    if exc.filename is None or not exc.strerror:
        return str(exc)
    where = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes, os.PathLike)) else str(exc.filename)
    if exc.filename2 is not None:
        where += f" -> {os.fsdecode(exc.filename2)}"
    return f"{where}: {exc.strerror}"


def _emit(obj: Any, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=2, default=str) if as_json else text)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- commands ---------------------------------------------------------------------------------
def cmd_data(args: argparse.Namespace) -> int:
    from kag.experiments.data import describe
    from kag.experiments.datasets import load_dataset

    info = {"name": args.dataset, **describe(load_dataset(args.dataset))}
    _emit(info, args.json, "\n".join(f"{k}: {v}" for k, v in info.items()))
    return 0


def _device(args: argparse.Namespace) -> str | None:
    """``--device`` as the profiles take it: None for the automatic choice."""
    return args.device if args.device not in (None, "auto") else None


def _profile(args: argparse.Namespace):
    """The run size asked for (core profiles: ``kag train`` and ``kag metrics`` need no study)."""
    from kag.experiments.profiles import resolve_profile

    return resolve_profile(args.profile, device=_device(args))


# kag metrics' measurement flags -> the MetricConfig field each sets
METRIC_FLAGS = {"ks": "ks", "n_images": "n_images", "n_samples": "n_samples", "n_rotations": "n_rotations",
                "sampling": "sampling"}


def _metric_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes = {field: getattr(args, flag) for flag, field in METRIC_FLAGS.items()
               if getattr(args, flag, None) is not None}
    if "ks" in changes:
        changes["ks"] = tuple(changes["ks"])
    return changes


@dataclasses.dataclass(frozen=True)
class _Training:
    """What ``kag train`` and ``kag metrics`` were asked to train, checked (see :func:`_training`)."""

    profile: Any
    config: Any  # the profile's TrainConfig, with --epochs applied
    regime: str
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    family: str  # kag.experiments.families
    dataset: str  # kag.experiments.datasets


def _training(args: argparse.Namespace) -> _Training:
    """The training options shared by ``train`` and ``metrics``, every one checked before any work:
    distinct widths and seeds, the profile's TrainConfig with ``--epochs`` applied, the device."""
    from kag.devices import resolve_device
    from kag.experiments.families import get_family
    from kag.experiments.model import check_widths
    from kag.experiments.train import MAX_CHECKPOINTS, check_seeds, check_train_config

    profile = _profile(args)
    config = profile.train
    if args.epochs is not None:  # the profile's timeline cadence, thinned if it would keep too many checkpoints
        every = max(config.checkpoint_every, -(-args.epochs // (MAX_CHECKPOINTS - 2)))
        config = dataclasses.replace(config, epochs=args.epochs, checkpoint_every=every)
    resolve_device(args.device)
    family = get_family(args.family)
    return _Training(profile, check_train_config(config), "augmented" if args.augment else "standard",
                     tuple(family.check_width(w) for w in check_widths(args.width)),
                     check_seeds(args.seeds) if args.seeds else profile.seeds, family.name, args.dataset)


def _score(row: dict) -> str:
    """A model's test performance in words: accuracy for a classifier, R² for a regression (xor3d)."""
    if "test_r2" in row:
        return f"test R² {row['test_r2']:.4f}"
    return f"test accuracy {row['test_accuracy']:.4f}"


def cmd_train(args: argparse.Namespace) -> int:
    from kag.experiments.datasets import load_dataset
    from kag.experiments.pipeline import ensure_models

    job = _training(args)
    profile, config, regime, seeds = job.profile, job.config, job.regime, job.seeds
    rows, t0 = [], time.perf_counter()
    data = load_dataset(job.dataset)
    for width in job.widths:
        for rec in ensure_models(width, seeds, regime, config, device=args.device, mnist=data,
                                 eval_shift_seed=profile.metrics.eval_shift_seed, family=job.family):
            rows.append({
                "width": rec.width, "seed": rec.seed, "regime": rec.regime, "epochs": rec.manifest["epochs"],
                "test_accuracy": rec.manifest.get("test_accuracy"),
                "shifted_test_accuracy": rec.manifest.get("shifted_test_accuracy"),
                **({"test_r2": rec.manifest["test_r2"]} if "test_r2" in rec.manifest else {}),
                "key": rec.key, "seconds": rec.manifest["seconds"], "cached": rec.cached,
                "device": rec.manifest.get("device"),
            })
    lines = [f"width {r['width']:>4} seed {r['seed']} {r['regime']:<9} epochs {r['epochs']:>3}  {_score(r)}  "
             f"{'cached' if r['cached'] else 'trained'}  {r['key'][:12]}" for r in rows]
    lines.append(f"{len(rows)} models ({sum(not r['cached'] for r in rows)} trained) in {time.perf_counter() - t0:.1f} s")
    _emit(rows, args.json, "\n".join(lines))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from kag.experiments.analysis import check_metric_request, ensure_metrics, summarize_table
    from kag.experiments.datasets import load_dataset
    from kag.experiments.pipeline import model_key
    from kag.experiments.store import Store

    job = _training(args)
    changes = _metric_changes(args) | ({"eval_images": args.eval_images} if args.eval_images else {})
    profile = job.profile.with_metrics(**changes) if changes else job.profile
    spatial = {w: w in profile.spatial_widths and not args.no_spatial for w in job.widths}
    for width in job.widths:  # an impossible measurement fails here, before anything is trained
        check_metric_request(width, job.seeds, profile.metrics, spatial[width], family=job.family)
    store, mnist = Store(), load_dataset(job.dataset)
    entries = []
    for width in job.widths:
        keys = {s: model_key(width, s, job.regime, job.config, mnist.sha256, job.family) for s in job.seeds}
        missing = [s for s in job.seeds if not store.has_model(keys[s])]
        if missing:
            print(f"kag: training {_count(len(missing), 'model')} first (width {width} {job.regime}, "
                  f"seed{'s' if len(missing) > 1 else ''} {' '.join(map(str, missing))}, "
                  f"{_count(job.config.epochs, 'epoch')})", file=sys.stderr, flush=True)
        entries.extend(ensure_metrics(width, job.regime, job.seeds, job.config, profile.metrics,
                                      spatial=spatial[width], device=args.device, store=store,
                                      mnist=mnist, label=profile.name, family=job.family))
    if args.json:
        rows = [{"key": e.key, "meta": e.meta, "table": e.table.to_json()} for e in entries]
        print(json.dumps(rows, indent=1, default=str, allow_nan=False))
    else:
        print("\n\n".join(summarize_table(e) for e in entries))
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from kag.experiments.keys import short
    from kag.experiments.store import Store

    store = Store()
    if args.action == "ls":
        rows = [{**r, "flags": _staleness(r)} for r in store.entries()]
        _emit(rows, args.json, _cache_table(rows) if rows else f"(empty: {store.root})")
        if saved := store.saved_trainings():  # not entries, but they take room: say what they are
            size = sum(p.stat().st_size for p in saved)
            print(f"{_count(len(saved), 'training')} saved mid-way in {saved[0].parent} ({size / 1e6:,.0f} MB): the "
                  "command that started one resumes it; delete the folder to start them over", file=sys.stderr)
    elif args.action == "export":
        from kag.experiments.archive import export_archive

        n = export_archive(store, Path(args.file))
        print(f"exported {n} entries from {store.root} to {args.file}")
    elif args.action == "import":
        from kag.experiments.archive import import_archive

        return _import_summary(import_archive(store, Path(args.file)), args.file, store)
    elif args.action == "pull":
        from kag.experiments.pull import pull_archive

        report = pull_archive(args.url, store, pins=args.published, sha256=args.sha256, timeout_s=args.timeout,
                              keep=args.keep)
        return _import_summary(report, args.url, store)
    elif args.action == "release":
        from kag.repro.profiles import get_profile
        from kag.repro.publish import release

        published = release(get_profile(args.profile, study=args.study), Path(args.out), store=store,
                            pins=args.published, url=args.url)
        from kag.experiments.pull import default_pins

        print(f"wrote {Path(args.out) / published.name}: {published.entries} entries, {published.bytes:,} bytes, "
              f"sha256 {published.sha256}; pinned in {args.published or default_pins()}")
    elif args.action == "seal":
        sealed = store.seal_unsealed()
        print(f"sealed {len(sealed)} files written by an older kag in {store.root}; "
              "`kag cache verify` lists what is still wrong")
    elif args.action == "rm":
        keys = [store.resolve_key(prefix) for prefix in args.keys]  # every key checked before anything is removed
        for key in keys:
            store.remove(key)
            print(f"removed {short(key)}")
    elif args.action == "verify":
        problems = store.repair() if args.repair else store.problems()
        for p in problems:
            print(f"{'removed' if args.repair else 'problem'}: {p}", file=sys.stderr)
        n = len(store.keys())
        if args.repair:
            print(f"{len(problems)} problems removed; {n} entries verified in {store.root}")
            return 0
        if problems:
            unsealed = sum("not sealed" in p.reason for p in problems)
            print(f"{len(problems)} problems in {store.root}: `kag cache verify --repair` removes them "
                  "(broken entries are recomputed when next needed)"
                  + (f"; {unsealed} of them were written before entries were sealed: `kag cache seal` keeps "
                     "them (your own store)" if unsealed else ""))
            return 1
        print(f"{n} entries verified in {store.root}")
    return 0


def _import_summary(report, source: str, store) -> int:
    """Print what an import did; exit status 1 when anything was rejected."""
    for name, reason in report.rejected:
        print(f"rejected {name}: {reason}", file=sys.stderr)
    replaced = f", {len(report.replaced)} broken ones replaced" if report.replaced else ""
    print(f"imported {len(report.added)} new entries from {source} into {store.root} "
          f"({len(report.present)} already there{replaced}, {len(report.rejected)} rejected)")
    return 1 if report.rejected else 0


LS_COLUMNS = ("kind", "key", "family", "data", "width", "seed", "regime", "images", "epochs", "score", "profile")


def _cache_table(rows: list[dict[str, Any]]) -> str:
    """``kag cache ls``: a header, then one aligned line per entry. Two metric tables of one model that
    differ only in their evaluation images (clean or shifted) differ in the ``images`` column."""
    from kag.experiments.datasets import DATASETS, pinned_digest
    from kag.experiments.keys import short

    datasets = {pinned_digest(name): name for name in DATASETS}

    def cells(r: dict[str, Any]) -> list[str]:
        if r.get("error"):
            return [r["kind"], short(r["key"]), r["error"]]
        score = (f"R² {r['test_r2']:.4f}" if r.get("test_r2") is not None
                 else f"acc {r['test_accuracy']:.4f}" if r.get("test_accuracy") is not None else "")
        images = ("clean+spatial" if r.get("spatial") else "clean") if r.get("eval_images") == "clean" else (
            "shifted" + ("+spatial" if r.get("spatial") else "") if r.get("eval_images") else "")
        values = {"kind": r["kind"], "key": short(r["key"]), "family": r.get("family") or "",
                  "data": datasets.get(r.get("data_sha256"), "other" if r.get("data_sha256") else ""),
                  "width": r.get("width"), "seed": r.get("seed"), "regime": r.get("regime"), "images": images,
                  "epochs": r.get("epochs"), "score": score, "profile": r.get("profile")}
        return [("" if values[c] is None else str(values[c])) for c in LS_COLUMNS]

    table = [list(LS_COLUMNS)] + [cells(r) for r in rows]
    widths = [max(len(row[i]) for row in table if len(row) == len(LS_COLUMNS)) for i in range(len(LS_COLUMNS))]
    lines = []
    for row, r in zip(table, [None] + rows):
        text = "  ".join(v.ljust(w) for v, w in zip(row, widths)) if len(row) == len(LS_COLUMNS) else "  ".join(row)
        lines.append((text.rstrip() + "".join(f"  [{flag}]" for flag in (r or {}).get("flags", []))).rstrip())
    return "\n".join(lines)


def _staleness(entry: dict[str, Any]) -> list[str]:
    """Flags for ``cache ls``: an entry made by other source code (provenance: its key is still valid)
    or under other algorithm versions (unreachable: no current key points at it)."""
    from kag.experiments.analysis import METRIC_SOURCES, measurement_versions
    from kag.experiments.pipeline import TRAINING_SOURCES, training_versions
    from kag.experiments.store import source_digest

    if "error" in entry:
        return []
    sources, versions = ((TRAINING_SOURCES, training_versions()) if entry["kind"] == "model"
                         else (METRIC_SOURCES, measurement_versions()))
    flags = []
    if entry.get("versions") != versions:
        flags.append("other versions: unreachable, `kag cache rm` it")
    if entry.get("source_sha256") != source_digest(*sources):
        flags.append("made by other source code")
    return flags


def cmd_studies(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kag.repro.report.studies import write_studies_report

    try:
        out = write_studies_report(args.profile, out_dir=Path(args.out) if args.out else None)
    except FileNotFoundError as exc:
        from kag.errors import MissingResults

        raise MissingResults(str(exc)) from None
    print(f"cross-study report written to {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from kag.experiments.paths import usable_directory
    from kag.repro.report import default_out_dir, render_from_cache

    if args.out:
        try:  # a bad --out is a bad argument (exit 2), found before the cache is read
            out_dir = usable_directory(args.out, f"--out={args.out}")
        except NotADirectoryError as exc:
            raise ValueError(str(exc)) from None
    else:
        from kag.repro.profiles import get_profile

        out_dir = default_out_dir(get_profile(args.profile, device=_device(args), study=args.study))
        usable_directory(out_dir, f"the report directory {out_dir}")
    out = render_from_cache(args.profile, device=args.device, out_dir=out_dir, study=args.study,
                            not_reproduced=args.not_reproduced)
    import json

    from kag.repro.report.words import headline_lines

    head = json.loads((out / "results.json").read_text(encoding="utf-8")).get("headline") or {}
    for line in headline_lines(head):  # the same headline as the end of `pytest claims`
        print(line)
    print(f"report written to {out}")
    return 0


def _sweep_out_dir(args: argparse.Namespace):
    """Where the sweep report goes (``--out``, else reports/sweep under the current directory), checked
    before any work: a bad --out is a bad argument."""
    from kag.experiments.paths import usable_directory
    from kag.repro.sweep.report import default_out_dir

    if args.out:
        try:
            return usable_directory(args.out, f"--out={args.out}")
        except NotADirectoryError as exc:
            raise ValueError(str(exc)) from None
    out_dir = default_out_dir()
    return usable_directory(out_dir, f"the report directory {out_dir}")


def cmd_sweep(args: argparse.Namespace) -> int:
    from kag.experiments.data import load_mnist
    from kag.devices import resolve_device
    from kag.repro.sweep import engine
    from kag.repro.sweep import eta as sweep_eta
    from kag.repro.sweep import report as sweep_report
    from kag.repro.sweep.grid import MAX_TASKS, load_grid
    from kag.experiments.store import Store

    t0 = time.perf_counter()
    grid = load_grid(args.grid, args.max_tasks or MAX_TASKS)  # a bad grid file is a bad argument: one line, exit 2
    if args.scheduler and args.workers is not None:
        raise ValueError("--workers sizes the embedded cluster: with --scheduler the cluster at "
                         f"{args.scheduler} has its own workers")
    if args.report_only and args.dry_run:
        raise ValueError("--report-only renders the report of work already done and --dry-run lists the work to "
                         "do: give one of them")
    if args.report_only and (args.scheduler or args.workers is not None):
        raise ValueError("--report-only runs nothing: --scheduler and --workers do not apply")
    if not args.scheduler:  # on a cluster, the workers resolve the device
        resolve_device(args.device)
    out_dir = None if args.dry_run else _sweep_out_dir(args)
    if args.partial and not args.report_only:
        raise ValueError("--partial applies to --report-only (a run renders its missing points as 'not run' anyway)")
    if args.report_only:  # refuses (exit 1) when a point has no cached metric table, unless --partial
        out = sweep_report.report_from_cache(grid, out_dir, device=args.device, partial=args.partial)
        absent = json.loads((out / "results.json").read_text())["summary"]["points_not_run"]
        if absent:
            print(f"kag: {_count(len(absent), 'point')} of {grid.source} not run (no cached metric table), "
                  f"marked so in the report: {', '.join(absent)}", file=sys.stderr)
        print(f"sweep report written to {out}")
        return 0
    points = grid.points()
    if args.dry_run:
        store = Store()
        plan = engine.plan_sweep(points, load_mnist(), store, grid.reference_point())
        cached = plan.cached(store)
        listed = [*points, *([plan.reference] if plan.reference else [])]
        pad = max(len(p.name) for p in listed)
        for p in listed:
            keys = plan.needs[p.name]
            print(f"{p.name:<{pad}}  {_count(len(keys), 'task')} ({sum(k in cached for k in keys)} cached)")
        kinds = [t.kind for t in plan.tasks.values()]
        reference = " and the fidelity check's reference" if plan.reference else ""
        print(f"{_count(len(points), 'point')}{reference}, {_count(len(kinds), 'task')} ({kinds.count('train')} "
              f"training, {kinds.count('metrics')} metric tables), {len(cached)} cached; fidelity: "
              + ("the paper's" if grid.at_paper_fidelity else "; ".join(grid.reductions())))
        print(sweep_eta.compute_text([t for k, t in plan.tasks.items() if k not in cached], store.events()))
        return 0
    run = engine.run_sweep(grid, scheduler=args.scheduler, workers=args.workers, device=args.device)
    verdicts = {p.name: engine.judge_point(p.profile, run.results[p.name]) for p in run.points}
    for p in run.points:
        print(engine.verdict_line(p.name, verdicts[p.name]))
    print(f"sweep {grid.source}: {run.summary}")
    # written even when tasks failed: their points' claims show "not run"
    out = sweep_report.write_sweep_report(grid, run.points, run.results, out_dir, verdicts=verdicts, run=run.summary,
                                          session_seconds=time.perf_counter() - t0, device=args.device,
                                          scheduler=args.scheduler)
    print(f"sweep report written to {out}")
    if run.failed:
        for key, error in run.failed.items():
            print(f"failed: {key}: {error}", file=sys.stderr)
        raise engine.SweepError(f"{_count(len(run.failed), 'task')} of the sweep failed after retries (listed above); "
                                "run it again to retry them (finished work is kept)")
    return 0


# -- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from kag.experiments.families import families

    parser = _Parser(prog="kag", description="Measure Kolmogorov-Arnold geometry in neural networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", choices=PROFILE_CHOICES, default=None,
                       help="run size (default: $KAG_PROFILE or auto = paper on CUDA, quick on CPU)")
        p.add_argument("--device", default=None, help="auto, cpu or cuda[:i] (default: auto)")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("data", help="fetch/verify a dataset (MNIST by default) and describe it")
    p.add_argument("--dataset", choices=tuple(DATASETS), default="mnist",
                   help="which dataset (default: mnist; fashion-mnist for the fashion-mlp study)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data)

    def training(p: argparse.ArgumentParser) -> None:  # what to train: the same for train and metrics
        p.add_argument("--width", type=_checked_int("width", _width), nargs="+", required=True,
                       help="hidden widths, distinct, each in 1..65536")
        p.add_argument("--seeds", type=_checked_int("seed", _seed), nargs="+", default=None,
                       help="distinct seeds in 0..2**32-1 (default: the profile's)")
        p.add_argument("--epochs", type=_checked_int("epochs", _epochs), default=None,
                       help="epochs in 1..100,000 (default: the profile's); timeline checkpoints are thinned to "
                            "at most 1,000")
        p.add_argument("--augment", action="store_true", help="the augmented regime (random ±4 px shifts)")
        p.add_argument("--family", choices=tuple(families()), default=None,
                       help="model family (default: mlp2, the paper's 2-layer GELU MLP; see kag.experiments.families)")
        p.add_argument("--dataset", choices=tuple(DATASETS), default="mnist", help="dataset (default: mnist)")

    p = sub.add_parser("train", help="train (or reuse cached) models")
    training(p)
    common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("metrics", help="compute (or reuse cached) metric tables, training missing models first")
    training(p)
    p.add_argument("--eval-images", choices=("clean", "augmented"), default=None,
                   help="measure on clean or shifted test images (default: the profile's)")
    p.add_argument("--ks", type=_checked_int("k", _k), nargs="+", default=None,
                   help="minor orders k, each >= 1 (default: the profile's, 1 2 3)")
    p.add_argument("--n-images", type=_checked_int("n_images", _positive("n_images")), default=None,
                   help="test images per table (default: the profile's)")
    p.add_argument("--n-samples", type=_checked_int("n_samples", _positive("n_samples")), default=None,
                   help="sampled minors per k (default: the profile's)")
    p.add_argument("--n-rotations", type=_checked_int("n_rotations", _positive("n_rotations")), default=None,
                   help="Haar rotations per image for RR (default: the profile's)")
    p.add_argument("--sampling", choices=("uniform", "support"), default=None,
                   help="minor columns uniform, or from each unit's receptive field (local layers; default: uniform)")
    p.add_argument("--no-spatial", action="store_true", help="skip the spatial analyses (balls, patches, separations)")
    common(p)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("cache", help="list, export, import, verify or remove cache entries")
    csub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    c = csub.add_parser("ls")
    c.add_argument("--json", action="store_true")
    csub.add_parser("export").add_argument("file")
    csub.add_parser("import").add_argument("file")
    csub.add_parser("verify", help="re-hash every entry and recompute its key; list every problem").add_argument(
        "--repair", action="store_true", help="remove broken entries and temporaries left by killed processes")
    csub.add_parser("rm").add_argument("keys", nargs="+", help="keys or prefixes of 12+ hex digits")
    csub.add_parser("seal", help="seal the entries an older kag wrote without a seal (your own store only)")
    c = csub.add_parser("pull", help="download a published archive (resumable), check its pinned sha256, import it")
    c.add_argument("url", help="http(s) URL of an archive pinned in reports/paper/published.json")
    c.add_argument("--sha256", default=None, help="accept an archive the repository does not pin, by this digest")
    c.add_argument("--published", type=Path, default=None, help="the pins to check against (default: the repository's)")
    c.add_argument("--timeout", type=float, default=30.0, help="seconds without data before a download counts as "
                                                               "stalled (rerun the command to resume)")
    c.add_argument("--keep", action="store_true", help="keep the downloaded archive after importing it")
    c = csub.add_parser("release", help="export what a profile's claims read into a pinned archive to publish")
    c.add_argument("out", help="directory to write kag-<study>-<profile>.tar.gz to")
    c.add_argument("--profile", choices=PROFILE_CHOICES, default="paper")
    c.add_argument("--study", default=None, help="the study (default: mnist-mlp)")
    c.add_argument("--published", type=Path, default=None, help="the pins to update (default: the repository's)")
    c.add_argument("--url", default=None, help="where the archive will be hosted (recorded in the pin)")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("report", help="re-render the reproduction report from cached results")
    p.add_argument("--profile", choices=PROFILE_CHOICES, default=None)
    p.add_argument("--study", default=None,
                   help="the study (default: $KAG_STUDY or mnist-mlp; `kag studies` and kag.repro.studies list them)")
    p.add_argument("--device", default=None, help="auto, cpu or cuda[:i] (default: auto)")
    p.add_argument("--out", default=None,
                   help="output directory (default: reports/<profile>; reports/studies/<study>/<profile> for another study)")
    p.add_argument("--not-reproduced", choices=("fail", "xfail"), default="fail",
                   help="how a paper claim's cell that is contradicted or inconclusive is recorded, as pytest's "
                        "--kag-not-reproduced: failed (default) or xfailed (as the CI run that writes reports/quick)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("studies", help="the cross-study report: every claim's verdict in every study's report")
    p.add_argument("--profile", choices=tuple(c for c in PROFILE_CHOICES if c != "auto"), default="quick",
                   help="the profile whose study reports are compared (default: quick)")
    p.add_argument("--out", default=None, help="output directory (default: reports/studies/<profile>)")
    p.set_defaults(func=cmd_studies)

    p = sub.add_parser("sweep", help="re-judge the claims over a grid of assumptions (SPEC §8), on Dask distributed")
    p.add_argument("grid", help="a TOML grid file, e.g. sweeps/assumptions.toml")
    p.add_argument("--max-tasks", type=_checked_int("max-tasks", _positive("max-tasks")), default=None,
                   help="refuse a grid of more trained models than this (points x widths x seeds x 2 regimes; "
                        "default 10,000)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="attach to a running Dask cluster (tcp://host:8786; its workers must share KAG_HOME "
                        "and KAG_DATA) instead of starting one on this machine")
    p.add_argument("--workers", type=_checked_int("workers", _positive("workers")), default=None,
                   help="worker processes of the embedded cluster (default: physical cores, or one per GPU)")
    p.add_argument("--device", default=None, help="auto, cpu or cuda[:i] (default: auto)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the points, how many tasks they need (and how many are cached) and the compute "
                        "left at the pace the store recorded; run nothing")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where the verdict-matrix report goes (default: reports/sweep under the current directory)")
    p.add_argument("--report-only", action="store_true",
                   help="re-render the report from cached results without running anything (refused when a point "
                        "has no cached results, unless --partial)")
    p.add_argument("--partial", action="store_true",
                   help="with --report-only: render the points that have cached results and mark the others "
                        "'not run' (the summary names them) instead of refusing")
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from kag.errors import KagError

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except BrokenPipeError:  # the reader went away (`kag metrics --json | head`): stop quietly, as Unix tools do
        with contextlib.suppress(OSError):  # and let the interpreter's final flush write nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UsageError, ValueError) as exc:  # bad arguments, found before or during the work
        if os.environ.get("KAG_DEBUG"):
            raise
        print(f"kag: error: {exc}", file=sys.stderr)
        return 2
    except (KagError, KeyError, RuntimeError, OSError) as exc:  # corrupt data or cache, busy, file system
        if os.environ.get("KAG_DEBUG"):
            raise
        if isinstance(exc, OSError):
            message = _os_message(exc)
        else:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"kag: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kag: interrupted", file=sys.stderr)
        return 130
