"""Whole-grid evaluation time of the ``paper`` profile on this machine, against an earlier revision.

The paper grid's metric tables are 40 models (4 widths x 5 seeds x 2 regimes) plus the augmented
models of the spatial width measured on shifted test images. This benchmark times one metric
table of every kind (width, regime, evaluation images) at SPEC sizes on a synthetic model (the
untrained network and a perturbed copy, fc1 checkpoints every 10 epochs; the cost of a table
does not depend on how well the model is trained), multiplies by the seeds and divides by the
workers (``pytest claims -n 2`` runs two tables at once, one thread each).

With ``--whole-grid`` it measures instead of extrapolating: the models of the current store are
hard-linked into a temporary, empty ``KAG_HOME`` and ``pytest claims -n 2 --kag-profile paper`` computes
every metric table there (nothing is trained); it prints the wall time and whether the verdicts and
numbers equal those of the committed ``reports/paper/results.json`` (rtol 0: a faster evaluation must
compute the same tables). It needs the 40 trained ``paper`` models in the store.

With ``--baseline REV`` it times the same kinds with the code of revision REV (checked out into a
temporary git worktree and run in a subprocess). A revision from before ``kag.repro`` (such as
b19fc60) computed RR over all 512 images and 100 rotations, tens of minutes per table, so it is
timed on 8 and 16 rotation images and extrapolated linearly in images; a later one runs as it is.
The last line is ``ratio <x>`` (baseline / now).

    python benchmarks/paper_evaluation.py --baseline b19fc60
    python benchmarks/paper_evaluation.py --baseline 1a78492   # before the multiverse (issue 17)
    python benchmarks/paper_evaluation.py --whole-grid
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2

# One table of every kind: (width, regime, eval images, spatial). The spatial width is the largest.
KINDS_SCRIPT = """
import json, sys, time, torch
torch.set_num_threads(1)
{imports}
mnist = load_mnist()
out = {{}}
for width in PAPER.widths:
    init = initial_state(width, 0)
    gen = torch.Generator().manual_seed(1)
    trained = {{k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in init.items()}}
    ckpts = {{e: {{k: trained[k] for k in ("fc1.weight", "fc1.bias")}} for e in PAPER.train.checkpoint_epochs()}}
    kinds = [("standard", "clean"), ("augmented", "clean")]
    if width in PAPER.spatial_widths:
        kinds.append(("augmented", "augmented"))
    for regime, images in kinds:
        record = ModelRecord("0" * 64, width, 0, regime, init, trained, ckpts,
                             {{"test_accuracy": 0.5, "shifted_test_accuracy": 0.5, "epochs": 200}}, True)
        t0 = time.perf_counter()
        {measure}
        out[f"{{width}} {{regime}} {{images}}"] = seconds
        print(f"  n={{width}} {{regime}} ({{images}} images): {{seconds:.1f}} s", file=sys.stderr, flush=True)
print(json.dumps(out))
"""

NOW = dict(
    imports="from kag.experiments.analysis import compute_table\nfrom kag.experiments.data import load_mnist\nfrom kag.experiments.pipeline import ModelRecord\n"
            "from kag.repro.profiles import PAPER\nfrom kag.experiments.train import initial_state",
    measure="config = PAPER.metrics if images == 'clean' else PAPER.with_metrics(eval_images='augmented').metrics\n"
            "        compute_table(record, PAPER.train, config, mnist, torch.device('cpu'), width in PAPER.spatial_widths)\n"
            "        seconds = time.perf_counter() - t0",
)

# The code at the start of the library restructuring: kag.experiments.analysis.compute_table(record, profile, ...).
BEFORE = dict(
    imports="from kag.experiments.analysis import compute_table\nfrom kag.experiments.data import load_mnist\nfrom kag.experiments.pipeline import ModelRecord\n"
            "from kag.experiments.profiles import PAPER\nfrom kag.experiments.train import initial_state",
    measure="times = []\n"
            "        for r_imgs in (8, 16):\n"
            "            p = PAPER.with_metrics(n_rotation_images=r_imgs, **({} if images == 'clean' else {'eval_images': 'augmented'}))\n"
            "            t0 = time.perf_counter()\n"
            "            compute_table(record, p, mnist, torch.device('cpu'), width in PAPER.spatial_widths)\n"
            "            times.append(time.perf_counter() - t0)\n"
            "        per_image = max(0.0, (times[1] - times[0]) / 8)\n"
            "        seconds = times[0] + (PAPER.metrics.n_rotation_images - 8) * per_image",
)


def run(tree: Path, code: dict[str, str]) -> dict[str, float]:
    script = KINDS_SCRIPT.format(**code)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tree, env={"PYTHONPATH": str(tree), "KAG_QUIET": "1",
                          "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark in {tree} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def grid_minutes(per_kind: dict[str, float], seeds: int = 5) -> float:
    return sum(per_kind.values()) * seeds / WORKERS / 60


def whole_grid() -> None:
    """Evaluate the whole paper grid on the cached models in a scratch KAG_HOME; compare with reports/paper."""
    sys.path.insert(0, str(ROOT))
    from kag.experiments.paths import data_dir
    from kag.experiments.store import Store

    models = Store().root / "models"
    if not models.is_dir() or len(list(models.iterdir())) < 40:
        raise SystemExit(f"{models} does not hold the 40 paper models: run `pytest claims --kag-profile paper` once")
    with tempfile.TemporaryDirectory(prefix="kag-eval-bench-") as home:
        shutil.copytree(models, Path(home) / "store" / "models", copy_function=os.link)  # read-only: links suffice
        env = {**os.environ, "KAG_HOME": home, "KAG_DATA": str(data_dir())}
        report = Path(home) / "report"
        cmd = [sys.executable, "-m", "pytest", "claims", "-q", "-p", "no:cacheprovider", "-n", str(WORKERS),
               "--kag-profile", "paper", "--kag-device", "cpu", "--kag-not-reproduced=xfail",
               "--kag-report-dir", str(report)]
        print("$ " + " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        seconds = time.perf_counter() - t0
        trained = [e for e in Store(Path(home) / "store").events() if e["kind"] == "train"]
        print(f"paper grid, whole evaluation measured: {seconds / 60:.1f} min on {WORKERS} workers "
              f"(goal <= 45 min; {len(trained)} training events, expected 0)")
        diff = subprocess.run([sys.executable, "-m", "kag.repro.report.diff", str(ROOT / "reports/paper/results.json"),
                               str(report / "results.json"), "--rtol", "0"], cwd=ROOT, env=env)
        print("same verdicts and numbers as reports/paper: " + ("yes" if diff.returncode == 0 else "NO"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="git revision to compare with (e.g. b19fc60)")
    parser.add_argument("--whole-grid", action="store_true",
                        help="measure the whole grid's evaluation on the cached models instead of extrapolating")
    args = parser.parse_args()
    if args.whole_grid:
        return whole_grid()
    print("now (this checkout), one table of each kind, 1 thread:", flush=True)
    t0 = time.perf_counter()
    now = run(ROOT, NOW)
    print(f"paper grid, whole evaluation: {grid_minutes(now):.1f} min on {WORKERS} cores "
          f"(sum {sum(now.values()):.0f} s per seed; goal with the multiverse: <= 40 min)")
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.baseline], cwd=ROOT, check=True,
                           capture_output=True)
            try:
                print(f"baseline {args.baseline}, one table of each kind, 1 thread:", flush=True)
                # a revision with today's layout (kag.repro) runs today's measurement code as it is
                before = run(tree, NOW if (tree / "kag" / "repro" / "profiles.py").is_file() else BEFORE)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
        print(f"baseline paper grid, whole evaluation: {grid_minutes(before):.1f} min on {WORKERS} cores")
        print(f"benchmark wall time {time.perf_counter() - t0:.0f} s")
        print(f"ratio {grid_minutes(before) / grid_minutes(now):.2f}")


if __name__ == "__main__":
    main()
