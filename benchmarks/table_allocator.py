"""One metric table with glibc's default allocation against :func:`kag.experiments.allocator.keep_freed_memory`.

The table is one model's full metric table at the sizes of a profile (default ``quick``) on a
synthetic model (the untrained network and a perturbed copy: a table's cost does not depend on how
well the model is trained), computed in two fresh processes, one thread each: the conventional way
(glibc maps every block above its mmap threshold fresh and unmaps it on free) and with
``keep_freed_memory`` (what the pipeline's processes do). Each process prints its wall, user and
kernel CPU seconds, page faults and peak memory; the two tables must be equal, value for value.
The last line is ``ratio <default / kept>`` on the processes' CPU seconds (user + kernel), which
another process on the machine disturbs less than the wall time.

    python benchmarks/table_allocator.py --width 512 --spatial
    python benchmarks/table_allocator.py --width 64 --profile paper
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE_TABLE = """
import json, pickle, resource, sys, time, torch
torch.set_num_threads(1)
from kag.experiments.allocator import keep_freed_memory
from kag.experiments.analysis import compute_table
from kag.experiments.data import load_mnist
from kag.experiments.pipeline import ModelRecord
from kag.experiments.train import initial_state
from kag.repro.profiles import get_profile
width, spatial, profile, keep, out = int(sys.argv[1]), sys.argv[2] == "1", get_profile(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
if keep:
    kept = keep_freed_memory()
else:  # the conventional way: compute_table asks for the allocator settings itself; here it must not
    import kag.experiments.analysis
    kag.experiments.analysis.keep_freed_memory = lambda: False
    kept = False
mnist = load_mnist()
init = initial_state(width, 0)
gen = torch.Generator().manual_seed(1)
trained = {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in init.items()}
ckpts = {e: {k: trained[k] for k in ("fc1.weight", "fc1.bias")} for e in profile.train.checkpoint_epochs()}
record = ModelRecord("0" * 64, width, 0, "standard", init, trained, ckpts,
                     {"test_accuracy": 0.5, "shifted_test_accuracy": 0.5, "epochs": profile.train.epochs}, True)
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
table, _ = compute_table(record, profile.train, profile.metrics, mnist, torch.device("cpu"), spatial)
r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
pickle.dump(list(table.rows), open(out, "wb"))
print(json.dumps({"kept": kept, "wall": wall, "user": r1.ru_utime - r0.ru_utime, "kernel": r1.ru_stime - r0.ru_stime,
                  "page_faults": r1.ru_minflt - r0.ru_minflt, "peak_mb": r1.ru_maxrss / 1024}))
"""


def one_table(width: int, spatial: bool, profile: str, keep: bool, out: Path) -> dict:
    env = dict(os.environ, KAG_QUIET="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", ONE_TABLE, str(width), "1" if spatial else "0", profile,
                           "1" if keep else "0", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the table process failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--spatial", action="store_true", help="with the spatial analyses (the spatial width's table)")
    ap.add_argument("--profile", default="quick", help="whose measurement sizes (default: quick)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for keep in (False, True):
            runs[keep] = one_table(args.width, args.spatial, args.profile, keep, Path(tmp) / f"{keep}.pkl")
            r = runs[keep]
            label = "kept freed memory" if keep else "glibc default    "
            print(f"{label}: wall {r['wall']:.1f} s, CPU {r['user']:.1f} s user + {r['kernel']:.1f} s kernel, "
                  f"{r['page_faults']:,} page faults, peak {r['peak_mb']:,.0f} MB"
                  + ("" if not keep or r["kept"] else " (not applied: not glibc)"), flush=True)
        same = pickle.loads((Path(tmp) / "False.pkl").read_bytes()) == pickle.loads((Path(tmp) / "True.pkl").read_bytes())
    print(f"tables equal: {same}")
    cpu = {k: r["user"] + r["kernel"] for k, r in runs.items()}
    print(f"ratio {cpu[False] / cpu[True]:.2f}")


if __name__ == "__main__":
    main()
