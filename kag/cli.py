"""The ``kag`` command (also ``python -m kag``): data, train, metrics, cache, report.

Every failure the user can cause ends in one line ``kag: error: ...`` and exit code 2 for bad
arguments (``ValueError``) or 1 for a problem with data, the cache or the file system
(:class:`kag.errors.KagError`, ``OSError``), never a traceback (``KAG_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Sequence

from kag.repro.profiles import PROFILE_CHOICES


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{self.prog}: {message}")


def _int_at_least(name: str, minimum: int):
    """argparse type: an integer >= ``minimum``, with a message naming ``name`` and the bad value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}={text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name}={value} is not allowed: it must be >= {minimum}")
        return value

    return parse


def _emit(obj: Any, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=2, default=str) if as_json else text)


# -- commands ---------------------------------------------------------------------------------
def cmd_data(args: argparse.Namespace) -> int:
    from kag.data import describe, load_mnist

    info = describe(load_mnist())
    _emit(info, args.json, "\n".join(f"{k}: {v}" for k, v in info.items()))
    return 0


def _profile(args: argparse.Namespace):
    from kag.repro.profiles import get_profile

    return get_profile(args.profile, device=args.device if args.device not in (None, "auto") else None)


def cmd_train(args: argparse.Namespace) -> int:
    from kag.pipeline import ensure_models

    profile = _profile(args)
    config = profile.train
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    regime = "augmented" if args.augment else "standard"
    seeds = tuple(args.seeds) if args.seeds else profile.seeds
    rows, t0 = [], time.perf_counter()
    for width in args.width:
        for rec in ensure_models(width, seeds, regime, config, device=args.device,
                                 eval_shift_seed=profile.metrics.eval_shift_seed):
            rows.append({
                "width": rec.width, "seed": rec.seed, "regime": rec.regime, "epochs": rec.manifest["epochs"],
                "test_accuracy": rec.test_accuracy, "shifted_test_accuracy": rec.manifest.get("shifted_test_accuracy"),
                "key": rec.key, "seconds": rec.manifest["seconds"], "cached": rec.cached,
                "device": rec.manifest.get("device"),
            })
    lines = [f"width {r['width']:>4} seed {r['seed']} {r['regime']:<9} epochs {r['epochs']:>3}  "
             f"test accuracy {r['test_accuracy']:.4f}  {'cached' if r['cached'] else 'trained'}  {r['key'][:12]}" for r in rows]
    lines.append(f"{len(rows)} models ({sum(not r['cached'] for r in rows)} trained) in {time.perf_counter() - t0:.1f} s")
    _emit(rows, args.json, "\n".join(lines))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from kag.analysis import ensure_metrics, summarize_table

    profile = _profile(args)
    regime = "augmented" if args.augment else "standard"
    if args.eval_images:
        profile = profile.with_metrics(eval_images=args.eval_images)
    seeds = tuple(args.seeds) if args.seeds else profile.seeds
    entries = []
    for width in args.width:
        entries.extend(ensure_metrics(width, regime, seeds, profile.train, profile.metrics,
                                      spatial=width in profile.spatial_widths, device=args.device, label=profile.name))
    if args.json:
        rows = [{"key": e.key, "meta": e.meta, "table": e.table.to_json()} for e in entries]
        print(json.dumps(rows, indent=1, default=str, allow_nan=False))
    else:
        print("\n\n".join(summarize_table(e) for e in entries))
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from kag.store import Store

    store = Store()
    if args.action == "ls":
        rows = [{**r, "flags": _staleness(r)} for r in store.entries()]
        text = "\n".join(
            f"{r['kind']:<7} {r['key'][:16]}  " + (r.get("error") or " ".join(
                f"{k}={r[k]}" for k in ("profile", "width", "seed", "regime", "epochs", "test_accuracy") if r.get(k) is not None))
            + "".join(f"  [{flag}]" for flag in r["flags"])
            for r in rows) or f"(empty: {store.root})"
        _emit(rows, args.json, text)
    elif args.action == "export":
        n = store.export(args.file)
        print(f"exported {n} entries from {store.root} to {args.file}")
    elif args.action == "import":
        n = store.import_(args.file)
        print(f"imported {n} new entries from {args.file} into {store.root}")
    elif args.action == "rm":
        for key in args.keys:
            print(f"{'removed' if store.remove(key) else 'no such entry'}: {key}")
    elif args.action == "verify":
        rows = store.entries()
        for r in rows:
            if r["kind"] == "model" and "error" not in r:
                store.verify_model(r["key"])
            elif r["kind"] == "metrics":
                store.load_metrics(r["key"])
        print(f"{len(rows)} entries verified in {store.root}")
    return 0


def _staleness(entry: dict[str, Any]) -> list[str]:
    """Flags for ``cache ls``: an entry made by other source code (provenance: its key is still valid)
    or under other algorithm versions (unreachable: no current key points at it)."""
    from kag.analysis import METRIC_SOURCES, measurement_versions
    from kag.pipeline import TRAINING_SOURCES, training_versions
    from kag.store import source_digest

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


def cmd_report(args: argparse.Namespace) -> int:
    from kag.repro.report import render_from_cache

    out = render_from_cache(args.profile, device=args.device, out_dir=args.out)
    print(f"report written to {out}")
    return 0


# -- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kag", description="Measure Kolmogorov-Arnold geometry in neural networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", choices=PROFILE_CHOICES, default=None,
                       help="run size (default: $KAG_PROFILE or auto = paper on CUDA, quick on CPU)")
        p.add_argument("--device", default=None, help="auto, cpu or cuda[:i] (default: auto)")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("data", help="fetch/verify MNIST and describe it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="train (or reuse cached) models")
    p.add_argument("--width", type=_int_at_least("width", 1), nargs="+", required=True)
    p.add_argument("--seeds", type=_int_at_least("seed", 0), nargs="+", default=None)
    p.add_argument("--epochs", type=_int_at_least("epochs", 0), default=None)
    p.add_argument("--augment", action="store_true", help="the augmented regime (random ±4 px shifts)")
    common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("metrics", help="compute (or reuse cached) metric tables")
    p.add_argument("--width", type=_int_at_least("width", 1), nargs="+", required=True)
    p.add_argument("--seeds", type=_int_at_least("seed", 0), nargs="+", default=None)
    p.add_argument("--augment", action="store_true")
    p.add_argument("--eval-images", choices=("clean", "augmented"), default=None,
                   help="measure on clean or shifted test images (default: the profile's)")
    common(p)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("cache", help="list, export, import, verify or remove cache entries")
    csub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    c = csub.add_parser("ls")
    c.add_argument("--json", action="store_true")
    csub.add_parser("export").add_argument("file")
    csub.add_parser("import").add_argument("file")
    csub.add_parser("verify")
    csub.add_parser("rm").add_argument("keys", nargs="+")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("report", help="re-render the reproduction report from cached results")
    p.add_argument("--profile", choices=PROFILE_CHOICES, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="output directory (default: reports/<profile>)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from kag.errors import KagError

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, ValueError) as exc:  # bad arguments, found before or during the work
        if os.environ.get("KAG_DEBUG"):
            raise
        print(f"kag: error: {exc}", file=sys.stderr)
        return 2
    except (KagError, KeyError, RuntimeError, OSError) as exc:  # corrupt data or cache, busy, file system
        if os.environ.get("KAG_DEBUG"):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"kag: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kag: interrupted", file=sys.stderr)
        return 130
