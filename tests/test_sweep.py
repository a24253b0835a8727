"""The assumption sweep (SPEC §8): grid files, the plan of tasks, and the Dask engine at smoke scale.

The Dask tests share one 2-worker ``LocalCluster`` (processes, one thread each) and run
``sweeps/smoke.toml`` (width 8, 3 seeds, 1 epoch on 2,048 images; two points).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from kag.experiments.analysis import metric_key
from kag.cli import main
from kag.experiments.allocator import ENVIRONMENT as ALLOCATOR_ENVIRONMENT
from kag.experiments.config import TrainConfig
from kag.experiments.pipeline import model_key
from kag.repro.profiles import PAPER
from kag.repro.sweep import engine
from kag.repro.sweep.grid import AXES, REFERENCE, load_grid, parse_grid
from kag.experiments.data import load_mnist
from kag.experiments.store import Store
from kag.progress import format_duration

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "sweeps" / "smoke.toml"
ASSUMPTIONS = ROOT / "sweeps" / "assumptions.toml"
SOURCE = "sweeps/x.toml"
HAS_AFFINE = {"rotate_deg", "scale_range"} <= {f.name for f in dataclasses.fields(TrainConfig)}
NO_AFFINE = "TrainConfig has no rotate_deg/scale_range yet (the affine augmentation lands with kag.experiments.augment)"

FIDELITY = 'widths = [8]\nseeds = [0, 1, 2]\nepochs = 1\ntrain_subset = 2048\nmetrics = "smoke"'


def grid_text(fidelity: str = FIDELITY, axes: str = "lr = [1e-3, 3e-3]", design: str = "", extra: str = "") -> str:
    text = f"[fidelity]\n{fidelity}\n\n[axes]\n{axes}\n"
    if design:
        text += f"\n[design]\n{design}\n"
    return text + extra


# -- grid files ---------------------------------------------------------------------------------
BAD_GRIDS = [
    (grid_text(axes="lr = []"), "axes.lr = [] is empty: give at least one value"),
    (grid_text(axes="lr = 1e-3"), "axes.lr = 1e-3 is not a list"),
    (grid_text(axes="lr = [0.0, 1e-3]"), "axes.lr = [0, 1e-3] is out of range: lr=0 must lie in (0, 1]"),
    (grid_text(axes="lr = [3.0]"), "axes.lr = [3] is out of range"),
    (grid_text(axes='lr = ["fast"]'), 'axes.lr = ["fast"] holds "fast", not a finite number'),
    (grid_text(axes="lr = [nan]"), "axes.lr = [nan] holds nan, not a finite number"),
    (grid_text(axes="weight_decay = [inf]"), "axes.weight_decay = [inf] holds inf, not a finite number"),
    (grid_text(axes="lr = [1e-3, 1e-3]"), "axes.lr = [1e-3, 1e-3] repeats 1e-3"),
    (grid_text(axes="weight_decay = [-1e-4]"), "axes.weight_decay = [-1e-4] is out of range"),
    (grid_text(axes='augmentation = ["translate3"]'), 'axes.augmentation = ["translate3"] holds "translate3"'),
    (grid_text(axes='eval_images = ["blurred"]'), 'axes.eval_images = ["blurred"] holds "blurred"'),
    (grid_text(axes='augmentation = [["affine"]]'), 'axes.augmentation = [["affine"]] holds ["affine"]'),
    (grid_text(axes="momentum = [0.9]"), "axes.momentum is not a key of [axes]"),
    (grid_text(axes=""), "[axes] is empty"),
    (grid_text(extra="[bogus]\nx = 1\n"), "[bogus] is not a section of a grid file"),
    ("[fidelity]\n" + FIDELITY + "\n", "[axes] is missing"),
    (grid_text(fidelity=FIDELITY + "\nbatch = 128"), "fidelity.batch is not a key of [fidelity]"),
    (grid_text(fidelity="widths = [8]\nseeds = [0, 1]"), "fidelity.epochs is missing"),
    (grid_text(fidelity="widths = [0]\nseeds = [0, 1]\nepochs = 1"), "fidelity.widths = [0]: width=0 is not allowed"),
    (grid_text(fidelity="widths = []\nseeds = [0, 1]\nepochs = 1"), "fidelity.widths = [] is empty"),
    (grid_text(fidelity="widths = [8]\nseeds = [1, 1]\nepochs = 1"), "fidelity.seeds = [1, 1]"),
    (grid_text(fidelity="widths = [8]\nseeds = [0, 1]\nepochs = 0"), "fidelity.epochs = 0: epochs=0 is not allowed"),
    (grid_text(fidelity="widths = [8]\nseeds = [0, 1]\nepochs = 1\ntrain_subset = 70000"),
     "fidelity.train_subset = 70000 is more than the 60,000 MNIST training images"),
    (grid_text(fidelity='widths = [8]\nseeds = [0, 1]\nepochs = 1\nmetrics = "huge"'),
     'fidelity.metrics = "huge" is not a profile'),
    (grid_text(fidelity='widths = [2]\nseeds = [0, 1]\nepochs = 1\nmetrics = "smoke"'),
     "[fidelity] cannot be measured at the smoke profile's sizes: ks asks for k=3, more than width=2"),
    (grid_text(fidelity='widths = [8]\nseeds = [0, 1]\nepochs = 1\nmetrics = ["smoke"]'),
     'fidelity.metrics = ["smoke"] is not a profile'),
    (grid_text(fidelity=FIDELITY + '\ncheck = "yes"'), 'fidelity.check = "yes" is not true or false'),
    (grid_text(design='kind = "latin"'), 'design.kind = "latin" is not a design: use one-factor or full'),
    (grid_text(design="foo = 1"), "design.foo is not a key of [design]"),
    (grid_text(design='pairs = [["lr"]]'), 'design.pairs = [["lr"]] holds ["lr"]: each pair names two different axes'),
    (grid_text(axes="lr = [1e-3, 3e-3]\nweight_decay = [0.0]", design='pairs = [["lr", "momentum"]]'),
     'names "momentum", which is not an axis'),
    (grid_text(axes="lr = [1e-3, 3e-3]\nweight_decay = [1e-4]", design='pairs = [["lr", "weight_decay"]]'),
     "pairs weight_decay, but axes.weight_decay has no value besides the default"),
    (grid_text(axes="lr = [1e-3, 3e-3]\nweight_decay = [0.0]",
               design='kind = "full"\npairs = [["lr", "weight_decay"]]'),
     "design.pairs = [[\"lr\", \"weight_decay\"]] is only for the one-factor design"),
    ("[fidelity\nwidths = [8]", "not valid TOML"),
]


BAD_GRID_IDS = [
    "axes.lr-empty",
    "axes.lr-not-a-list",
    "axes.lr-zero",
    "axes.lr-too-large",
    "axes.lr-not-a-number",
    "axes.lr-nan",
    "axes.weight_decay-inf",
    "axes.lr-repeated",
    "axes.weight_decay-negative",
    "axes.augmentation-unknown",
    "axes.eval_images-unknown",
    "axes.augmentation-not-a-name",
    "axes.momentum-unknown-key",
    "axes-empty",
    "bogus-section",
    "axes-missing",
    "fidelity.batch-unknown-key",
    "fidelity.epochs-missing",
    "fidelity.widths-zero",
    "fidelity.widths-empty",
    "fidelity.seeds-repeated",
    "fidelity.epochs-zero",
    "fidelity.train_subset-too-large",
    "fidelity.metrics-unknown",
    "fidelity-k-exceeds-width",
    "fidelity.metrics-not-a-name",
    "fidelity.check-not-a-bool",
    "design.kind-unknown",
    "design.foo-unknown-key",
    "design.pairs-one-axis",
    "design.pairs-unknown-axis",
    "design.pairs-adds-no-point",
    "design.pairs-with-full",
    "invalid-toml",
]


@pytest.mark.parametrize("text, fragment", BAD_GRIDS, ids=BAD_GRID_IDS)
def test_a_bad_grid_file_gives_one_line_error_naming_the_key(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_grid(text, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: ") and fragment in message, message
    assert "\n" not in message


def test_a_missing_grid_file_is_named():
    with pytest.raises(ValueError, match=r"nope\.toml: no such grid file"):
        load_grid("sweeps/nope.toml")


def test_the_default_point_at_paper_fidelity_is_the_paper_profile():
    grid = parse_grid("[fidelity]\nwidths = [64, 128, 256, 512]\nseeds = [0, 1, 2, 3, 4]\nepochs = 200\n"
                      "[axes]\nlr = [3e-4, 1e-3]\n", SOURCE)
    default = grid.points()[0]
    assert grid.at_paper_fidelity and default.name == "default" and default.changed == {}
    p = default.profile
    assert p.train == PAPER.train and p.metrics == PAPER.metrics
    assert (p.widths, p.seeds, p.spatial_widths, p.reductions) == (PAPER.widths, PAPER.seeds, PAPER.spatial_widths, ())
    data = "0" * 64
    for regime in ("standard", "augmented"):
        key = model_key(512, 3, regime, p.train, data)
        assert key == model_key(512, 3, regime, PAPER.train, data)
        assert metric_key(key, p.metrics, regime, True) == metric_key(key, PAPER.metrics, regime, True)
    assert engine.stands_for(p) == "paper"
    other = grid.points()[1]
    assert other.name == "lr=3e-4" and other.profile.train == dataclasses.replace(PAPER.train, lr=3e-4)


def test_the_smoke_grid_has_the_default_and_one_learning_rate():
    grid = load_grid(SMOKE)
    assert [p.name for p in grid.points()] == ["default", "lr=3e-3"]
    default, fast = (p.profile for p in grid.points())
    assert (default.widths, default.seeds) == ((8,), (0, 1, 2))
    assert (default.train.epochs, default.train.train_subset) == (1, 2048)
    assert fast.train == dataclasses.replace(default.train, lr=3e-3) and fast.metrics == default.metrics
    assert default.reductions and engine.stands_for(default) == "quick"


def test_one_factor_varies_each_axis_around_the_default_plus_the_pairs():
    if not HAS_AFFINE:
        pytest.skip(NO_AFFINE)
    grid = load_grid(ASSUMPTIONS)  # one factor at a time around the default, plus augmentation x weight decay
    one_factor = ["default", "epochs=200", "lr=3e-4", "lr=3e-3", "weight_decay=0", "weight_decay=0.01",
                  "augmentation=translate2", "augmentation=translate6", "augmentation=affine", "eval_images=shifted"]
    assert grid.pairs == (("augmentation", "weight_decay"),)
    names = [p.name for p in grid.points()]
    assert names[:10] == one_factor
    assert names[-2:] == ["epochs=200,weight_decay=0.01", "epochs=200,lr=3e-3"]  # design.points
    assert len(names) == 10 + 2 * 3 + 2 and len(set(names)) == len(names)
    by_name = {p.name: p.profile for p in grid.points()}
    affine = by_name["augmentation=affine"].train
    assert (affine.translate_px, affine.rotate_deg, tuple(affine.scale_range)) == (4, 15.0, (0.9, 1.1))
    assert by_name["augmentation=translate6"].train.translate_px == 6
    assert by_name["eval_images=shifted"].metrics.eval_images == "augmented"
    assert by_name["weight_decay=0.01,augmentation=affine"].train.weight_decay == 0.01


def test_points_that_differ_in_augmentation_only_share_their_standard_tasks(mnist, tmp_path):
    if not HAS_AFFINE:
        pytest.skip(NO_AFFINE)
    plan = engine.plan_sweep(load_grid(ASSUMPTIONS).points(), mnist, Store(tmp_path / "store"))

    def tasks(point: str, regime: str) -> set[str]:
        return {k for k in plan.needs[point] if plan.tasks[k].regime == regime}

    default = tasks("default", "standard")
    assert default and tasks("augmentation=translate6", "standard") == tasks("augmentation=affine", "standard") == default
    assert tasks("weight_decay=0,augmentation=affine", "standard") == tasks("weight_decay=0", "standard") != default
    assert tasks("augmentation=translate6", "augmented").isdisjoint(tasks("default", "augmented"))


def test_full_design_crosses_every_axis():
    axes = 'lr = [1e-3, 3e-3]\nweight_decay = [0.0, 1e-4]\neval_images = ["clean", "shifted"]'
    grid = parse_grid(grid_text(axes=axes, design='kind = "full"'), SOURCE)
    points = grid.points()
    assert len(points) == 8 and points[0].name == "weight_decay=0"
    assert {p.name for p in points} >= {"default", "lr=3e-3,weight_decay=0,eval_images=shifted"}
    assert all(set(p.values) == set(AXES) for p in points)


# -- the plan -----------------------------------------------------------------------------------
def test_identical_tasks_of_different_points_are_planned_once(mnist, tmp_path):
    grid = load_grid(SMOKE)
    store = Store(tmp_path / "store")
    plan = engine.plan_sweep(grid.points(), mnist, store)
    kinds = [t.kind for t in plan.tasks.values()]
    assert (kinds.count("train"), kinds.count("metrics")) == (4, 6)  # 2 points x 2 regimes; 3 table groups each
    assert kinds == ["train"] * 2 + ["metrics"] * 3 + ["train"] * 2 + ["metrics"] * 3  # point by point
    default = grid.points()[0]
    twin = dataclasses.replace(default, name="twin", profile=dataclasses.replace(default.profile, name="twin"))
    twice = engine.plan_sweep([default, twin], mnist, store)
    assert len(twice.tasks) == 5 and twice.needs["twin"] == twice.needs["default"]
    assert plan.cached(store) == set()


def test_points_are_planned_one_after_another_the_longest_training_first(mnist, tmp_path):
    """Dask starts ready tasks in submission order. Point by point, so a stopped sweep leaves whole
    points (a partial report shows them); the points with the longest training first, so a 200-epoch
    model is never the one left running alone at the end; among equals the point nearest completion."""
    grid = load_grid(ASSUMPTIONS)
    plan = engine.plan_sweep(grid.points(), mnist, Store(tmp_path / "store"))
    order = list(plan.tasks.values())
    assert (order[0].kind, order[0].train.epochs, order[0].width) == ("train", 200, 512)
    owner = [t.label for t in order]
    blocks = [label for i, label in enumerate(owner) if i == 0 or owner[i - 1] != label]
    assert len(blocks) == len(set(blocks))  # each point's own tasks in one run
    assert [b.split(",")[0] for b in blocks[:3]] == ["epochs=200"] * 3  # the 200-epoch points first
    for label in blocks:
        mine = [t for t in order if t.label == label]
        kinds = [t.kind for t in mine]
        assert kinds == sorted(kinds, key=lambda k: k != "train")  # a point's trainings, then its tables
        trainings = [t.train.epochs * t.width for t in mine if t.kind == "train"]
        assert trainings == sorted(trainings, reverse=True)
    # with its augmented 512-unit training done, lr=3e-3 at 200 epochs is the 200-epoch point nearest completion
    point = "epochs=200,lr=3e-3"
    done = {k for k in plan.needs[point] if (plan.tasks[k].kind, plan.tasks[k].width, plan.tasks[k].regime)
            == ("train", 512, "augmented")}
    first = next(t for t in engine._submission_order(plan.tasks, plan.needs, done) if t.key not in done)
    assert (first.label, first.width, first.regime, first.train.epochs) == (point, 512, "standard", 200)


# -- the CLI ------------------------------------------------------------------------------------
def test_cli_bad_grid_exits_2_with_one_line(capsys, tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text(grid_text(axes="lr = []"))
    assert main(["sweep", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"kag: error: {bad}: axes.lr = [] is empty: give at least one value"
    assert main(["sweep", str(SMOKE), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]) == 2
    assert "--workers sizes the embedded cluster" in capsys.readouterr().err


def test_a_grid_of_one_seed_is_refused_before_any_work(capsys, tmp_path):
    """One seed gives SD 0 and a verdict with no error bar (issue 17): exit 2, one line, nothing run."""
    one = tmp_path / "one.toml"
    one.write_text(grid_text(fidelity='widths = [8]\nseeds = [0]\nepochs = 1\nmetrics = "smoke"'))
    assert main(["sweep", str(one)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kag: error: {one}: fidelity.seeds = [0] holds 1 seed: a verdict needs at least 2")
    assert "\n" not in err
    assert not (tmp_path / "store").exists()


def test_cli_dry_run_lists_points_and_tasks(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KAG_HOME", str(tmp_path))
    assert main(["sweep", str(SMOKE), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["default", "5", "tasks", "(0", "cached)"] and out[1].startswith("lr=3e-3 ")
    assert out[2].startswith("2 points, 10 tasks (4 training, 6 metric tables), 0 cached; fidelity: widths 8 instead")
    assert out[3] == "compute left: unknown (this store has timed no task of these kinds yet)"
    assert not (tmp_path / "store" / "models").exists()
    checked = tmp_path / "checked.toml"  # the same grid with the fidelity check's reference in its plan
    checked.write_text(SMOKE.read_text().replace('metrics = "smoke"', 'metrics = "smoke"\ncheck = true'))
    assert main(["sweep", str(checked), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].split() == [REFERENCE.split()[0], REFERENCE.split()[1], "5", "tasks", "(0", "cached)"]
    assert out[3].startswith("2 points and the fidelity check's reference, 15 tasks (6 training, 9 metric tables)")


def test_dry_run_prices_the_work_left_by_the_pace_the_store_recorded(capsys, tmp_path, monkeypatch):
    """Trainings of width 8 took 2 s per epoch and seed, standard tables 3 s each: the smoke grid's
    trainings (3 seeds, 1 epoch: 6 s each) and standard table groups (3 seeds: 9 s each) are priced; its
    augmented table groups, a kind this store never timed, are counted and named, not priced."""
    monkeypatch.setenv("KAG_HOME", str(tmp_path))
    store = Store(tmp_path / "store")
    store.log_event("train", width=8, regime="standard", seeds=[0], epochs=1, seconds=2.0)
    store.log_event("train", width=8, regime="augmented", seeds=[0], epochs=1, seconds=2.0)
    grid_tasks = engine.plan_sweep(load_grid(SMOKE).points(), load_mnist(), store).tasks.values()
    (standard,) = {t.table_kind for t in grid_tasks if t.kind == "metrics" and t.regime == "standard"}
    store.log_event("metrics", width=8, regime="standard", seed=0, seconds=3.0, table_kind=standard)
    assert main(["sweep", str(SMOKE), "--dry-run"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    augmented_tables = sum(t.kind == "metrics" and t.regime == "augmented" for t in grid_tasks)
    priced = sum(6.0 if t.kind == "train" else 9.0 for t in grid_tasks
                 if not (t.kind == "metrics" and t.regime == "augmented"))
    assert last == (f"compute left: ~{format_duration(priced)} of one worker at the pace this store recorded "
                    f"({augmented_tables} task{'s' if augmented_tables > 1 else ''} of a kind it never timed not counted)")


# -- the Dask engine ----------------------------------------------------------------------------
def _executing(dask_worker) -> list[str]:
    return [ts.key for ts in dask_worker.state.executing]


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    cluster = engine.local_cluster(workers=2, device="cpu")
    with Client(cluster) as c:
        yield c
    cluster.close()


def _allocator_environment() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in (*ALLOCATOR_ENVIRONMENT, "OMP_NUM_THREADS")}


def test_workers_start_with_the_tables_allocator_settings(client):
    """Dask's default MALLOC_TRIM_THRESHOLD_=65536 would make every large CPU tensor a fresh mmap
    (training 1.4x slower), and glibc's defaults map a table's large temporaries afresh each time: the
    embedded cluster's workers start with kag.experiments.allocator's settings instead, and keep Dask's
    one thread each."""
    for env in client.run(_allocator_environment).values():
        assert env == {**ALLOCATOR_ENVIRONMENT, "OMP_NUM_THREADS": "1"}
        assert env["MALLOC_TRIM_THRESHOLD_"] != "65536"


def test_the_cluster_leaves_the_environment_of_the_process_that_starts_it_as_it_was(monkeypatch):
    """Dask's nanny writes its pre-spawn environment (one thread, the workers' allocator) into the
    process that starts the cluster too; local_cluster puts it back once the workers are up (a worker
    that Dask restarts later writes it again: the nanny's doing, harmless to this process's own heap)."""
    import dask
    import distributed

    def nanny_like(**kwargs):
        spawn = dask.config.get("distributed.nanny.pre-spawn-environ")
        os.environ.update({name: str(value) for name, value in spawn.items() if value is not None})
        return "cluster"

    monkeypatch.setattr(distributed, "LocalCluster", nanny_like)
    for name in ALLOCATOR_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    before = dict(os.environ)
    assert engine.local_cluster(workers=1, device="cpu") == "cluster"
    assert dict(os.environ) == before


@pytest.fixture(scope="module")
def swept(client, tmp_path_factory):
    home = tmp_path_factory.mktemp("sweep_home")
    store = Store(home / "store")
    printed = io.StringIO()  # the progress lines, every one of them
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(printed):
        mp.setenv("KAG_QUIET", "0")
        mp.setattr(engine, "PROGRESS_EVERY_S", 0.0)
        run = engine.run_sweep(load_grid(SMOKE), client=client, store=store)
    lines = [line for line in printed.getvalue().splitlines() if line.startswith("[kag] sweep ")]
    return home, store, run, lines


def _every_point_judged(run) -> None:
    for point in run.points:
        rows = engine.judge_point(point.profile, run.results[point.name])
        assert rows and {r["outcome"] for r in rows} <= {"judged", "skipped"}, point.name
        judged = [r for r in rows if r["outcome"] == "judged"]
        assert judged and all(r["verdict"] in ("supported", "contradicted", "inconclusive", "invalid") for r in judged)
        # C9: paper fidelity only; C2-depth: networks of 3+ hidden layers only; FM1: the xor3d study only
        assert {r["claim"] for r in rows if r["outcome"] == "skipped"} == {"C9", "C2-depth", "FM1"}
        assert engine.verdict_line(point.name, rows).startswith(f"{point.name}: ")


def _entry_times(store: Store) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in store.root.rglob("*") if p.is_file() and "locks" not in p.parts}


@pytest.mark.xdist_group("sweep")
@pytest.mark.slow
def test_a_two_worker_cluster_runs_the_smoke_grid_and_every_point_gets_verdicts(swept):
    _, store, run, lines = swept
    assert run.failed == {} and run.summary.ran == 10 and run.summary.cached == 0
    assert run.summary.computed == 4 * 3 + 6 * 3  # every model and table of 3 seeds, each once
    kinds = [e["kind"] for e in store.events()]
    assert (kinds.count("train"), kinds.count("metrics")) == (4, 18)
    assert [p.name for p in run.points] == ["default", "lr=3e-3"]
    _every_point_judged(run)
    # the time left is priced per task (kag/repro/sweep/eta.py), and the last progress line says nothing is left
    steps = [line for line in lines if "/10 tasks" in line]
    assert steps and ": 10/10 tasks, nothing left" in steps[-1]
    assert all(re.search(r"tasks, (~\S+ .* left|at least ~|time left: estimated once|nothing left)", line)
               for line in steps), steps


@pytest.mark.xdist_group("sweep")
@pytest.mark.slow  # trains real models
def test_a_second_sweep_on_the_same_store_computes_nothing(swept, client, capsys, monkeypatch):
    home, store, _, _ = swept
    events, times = store.events(), _entry_times(store)
    again = engine.run_sweep(load_grid(SMOKE), client=client, store=store)
    assert again.summary.ran == 0 and again.summary.cached == 10 and again.failed == {}
    _every_point_judged(again)
    monkeypatch.setenv("KAG_HOME", str(home))  # the command line, on the same store: verdicts, nothing run
    monkeypatch.chdir(home)  # the report lands in reports/sweep/ under the working directory
    assert main(["sweep", str(SMOKE)]) == 0
    assert (home / "reports" / "sweep" / "index.html").is_file()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("default: ") and out[1].startswith("lr=3e-3: ") and "0 tasks run" in out[2]
    assert store.events() == events and _entry_times(store) == times


@pytest.mark.xdist_group("sweep")
@pytest.mark.slow  # trains real models
def test_a_group_partly_trained_by_another_task_trains_only_the_rest_after_it(client, tmp_path):
    """Two points of one training config, seeds 0-2 and 0-3 (as the fidelity check's reference beside a
    200-epoch point): seed 3 is trained by a task of its own that waits for the first, every model
    once, and both points get every table."""
    store = Store(tmp_path / "store")
    default = load_grid(SMOKE).points()[0]
    four = dataclasses.replace(default, name="four seeds", profile=dataclasses.replace(default.profile,
                                                                                        seeds=(0, 1, 2, 3)))
    submitted = []

    class Recording:  # the cluster's client, noting the priority each task is submitted with
        def __getattr__(self, name):
            return getattr(client, name)

        def submit(self, *args, **kwargs):
            submitted.append((kwargs["key"], kwargs["priority"]))
            return client.submit(*args, **kwargs)

    run = engine.run_sweep([default, four], client=Recording(), store=store)
    assert run.failed == {}
    # the plan's order is the priorities' (Dask keeps submission order only for submissions 100 ms apart)
    assert [k for k, _ in submitted] == list(run.plan.tasks)
    assert [p for _, p in submitted] == sorted((p for _, p in submitted), reverse=True)
    later = [t for t in run.plan.tasks.values() if t.kind == "train" and t.depends]
    assert sorted(t.regime for t in later) == ["augmented", "standard"] and all(t.seeds == (3,) for t in later)
    trained: dict[str, list[int]] = {}
    for e in store.events():
        if e["kind"] == "train":
            trained.setdefault(e["regime"], []).extend(e["seeds"])
    assert {r: sorted(s) for r, s in trained.items()} == {"standard": [0, 1, 2, 3], "augmented": [0, 1, 2, 3]}
    tables = [e["key"] for e in store.events() if e["kind"] == "metrics"]
    assert len(tables) == len(set(tables)) == 3 * 4  # 3 groups x seeds 0-3, each once
    _every_point_judged(run)


@pytest.mark.xdist_group("sweep")
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.slow
def test_killing_a_worker_mid_training_loses_nothing(client, tmp_path):
    store = Store(tmp_path / "store")
    points = load_grid(SMOKE).points()[:1]  # the default point: 2 training and 3 metric tasks
    outcome: dict = {}

    def sweep() -> None:
        try:
            outcome["run"] = engine.run_sweep(points, client=client, store=store)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=sweep)
    thread.start()
    killed, deadline = None, time.monotonic() + 60
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        for address, keys in client.run(_executing).items():
            if any(k.startswith("train-") for k in keys):
                pid = client.run(os.getpid, workers=[address])[address]
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
        time.sleep(0.05)
    thread.join(timeout=180)
    assert killed is not None, "no training task was seen running"
    assert "error" not in outcome, outcome.get("error")
    run = outcome["run"]
    assert run.failed == {} and run.summary.retried >= 1
    _every_point_judged(run)
    trained: dict[tuple, list[int]] = {}
    for e in store.events():
        if e["kind"] == "train":
            trained.setdefault((e["width"], e["regime"]), []).extend(e["seeds"])
    assert {k: sorted(v) for k, v in trained.items()} == {(8, "standard"): [0, 1, 2], (8, "augmented"): [0, 1, 2]}
    tables = [e["key"] for e in store.events() if e["kind"] == "metrics"]
    assert len(tables) == len(set(tables)) == 9  # 3 groups x 3 seeds, each computed once
    events = store.events()
    rerun = engine.run_sweep(points, client=client, store=store)
    assert rerun.summary.ran == 0 and store.events() == events


# -- training length as an axis (issue 17) ----------------------------------------------------------
def test_training_length_is_an_axis_and_single_points_add_settings_at_another_length():
    text = grid_text(fidelity='widths = [8]\nseeds = [0, 1, 2]\nepochs = 20\ncheckpoint_every = 2\nmetrics = "smoke"',
                     axes="epochs = [20, 200]\nlr = [1e-3, 3e-3]\nweight_decay = [1e-4, 1e-2]",
                     design="points = [{epochs = 200, weight_decay = 1e-2}]")
    grid = parse_grid(text, SOURCE)
    by_name = {p.name: p for p in grid.points()}
    assert list(by_name) == ["default", "epochs=200", "lr=3e-3", "weight_decay=0.01", "epochs=200,weight_decay=0.01"]
    assert by_name["default"].changed == {} and by_name["default"].profile.train.epochs == 20
    long = by_name["epochs=200,weight_decay=0.01"]
    assert long.changed == {"epochs": 200, "weight_decay": 0.01}
    train = long.profile.train
    assert (train.epochs, train.weight_decay, train.checkpoint_every) == (200, 0.01, PAPER.train.checkpoint_every)
    assert not any("epochs instead" in r for r in long.profile.reductions)  # 200 is the paper's length
    assert "20 epochs instead of 200" in by_name["default"].profile.reductions
    # the default trained 200 epochs is the paper's model: the same cache keys, so it is reused
    data = "0" * 64
    for regime in ("standard", "augmented"):
        assert model_key(8, 1, regime, by_name["epochs=200"].profile.train, data) == \
            model_key(8, 1, regime, PAPER.train, data)


def test_a_length_other_than_the_paper_s_keeps_the_number_of_timeline_points():
    grid = parse_grid(grid_text(fidelity='widths = [8]\nseeds = [0, 1]\nepochs = 20\ncheckpoint_every = 2\n'
                                         'metrics = "smoke"', axes="epochs = [20, 40]"), SOURCE)
    assert [len(p.profile.train.checkpoint_epochs()) for p in grid.points()] == [11, 11]


@pytest.mark.parametrize("design, fragment", [
    ("points = [{epochs = 300}]", "holds epochs = 300, which axes.epochs does not list"),
    ("points = [{momentum = 0.9}]", "holds momentum = 0.9, and momentum is not an axis"),
    ("points = [{epochs = 20}]", "holds {epochs = 20}, which is the default point"),
    ("points = [{epochs = 200}, {epochs = 200}]", "repeats {epochs = 200}"),
    ("points = 200", "design.points = 200 is not a list of points"),
    ('kind = "full"\npoints = [{epochs = 200}]', "is only for the one-factor design"),
])
def test_a_bad_single_point_is_named(design, fragment):
    text = grid_text(fidelity='widths = [8]\nseeds = [0, 1]\nepochs = 20\nmetrics = "smoke"',
                     axes="epochs = [20, 200]", design=design)
    with pytest.raises(ValueError) as info:
        parse_grid(text, SOURCE)
    assert str(info.value).startswith(f"{SOURCE}: design.points") and fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("axes, fragment", [("epochs = [0]", "epochs=0 is not allowed"),
                                            ("epochs = [2.5]", "holds 2.5, not a whole number of epochs"),
                                            ("epochs = [true]", "holds true, not a whole number of epochs")])
def test_a_bad_training_length_is_named(axes, fragment):
    with pytest.raises(ValueError) as info:
        parse_grid(grid_text(axes=axes), SOURCE)
    assert str(info.value).startswith(f"{SOURCE}: axes.epochs") and fragment in str(info.value), str(info.value)


def test_weight_decay_is_a_tested_axis_only_where_the_decay_can_act():
    grid = load_grid(ASSUMPTIONS)
    short, shrink_short = grid.weight_decay_tested(20)
    long, shrink_long = grid.weight_decay_tested(200)
    assert (short, long) == (False, True)
    assert shrink_short == pytest.approx(0.954, abs=5e-4) and shrink_long == pytest.approx(0.625, abs=5e-4)
    names = {p.name for p in grid.points()}
    assert {"epochs=200", "epochs=200,weight_decay=0.01", "epochs=200,lr=3e-3"} <= names


def _values(n: int) -> str:
    return "[" + ", ".join(f"{1e-4 * (1 + i / 1000):.6g}" for i in range(n)) + "]"


def test_a_grid_too_large_is_refused_before_any_point_is_built(monkeypatch):
    """The issue's 14 KB grid of a million points: counted, not expanded (building one point fails the test)."""
    import kag.repro.sweep.grid as grid_module

    monkeypatch.setattr(grid_module.Grid, "_point", lambda *a: pytest.fail("a point was built"))
    text = grid_text(axes=f"lr = {_values(100)}\nweight_decay = {_values(100)}\nepochs = [1, 2, 3]",
                     design='kind = "full"')
    with pytest.raises(ValueError, match=r"asks for 180,000 trained models .* more than the limit of 10,000: .*"
                                         r"--max-tasks"):
        parse_grid(text, SOURCE)
    with pytest.raises(ValueError, match="lists 101 values, more than the 100 an axis may hold"):
        parse_grid(grid_text(axes=f"lr = {_values(101)}"), SOURCE)


def test_max_tasks_raises_or_lowers_the_limit():
    text = grid_text(axes="lr = [1e-3, 3e-3, 1e-2]")  # 3 points x 1 width x 3 seeds x 2 regimes = 18
    assert len(parse_grid(text, SOURCE, max_tasks=18).points()) == 3
    with pytest.raises(ValueError, match="asks for 18 trained models"):
        parse_grid(text, SOURCE, max_tasks=17)


def test_a_hostile_grid_file_is_one_line_naming_it(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text(grid_text(axes="lr = " + "[" * 100_000 + "]" * 100_000))
    with pytest.raises(ValueError, match=r"deep\.toml: nested too deeply to be a grid file"):
        load_grid(deep)
    big = tmp_path / "big.toml"
    big.write_text(grid_text() + "#" * (1 << 20))
    with pytest.raises(ValueError, match=r"big\.toml: .* bytes, more than the 1,048,576 a grid file may have"):
        load_grid(big)
