"""Run a sweep grid on Dask distributed, then judge every point's claims (SPEC §8).

A grid's points need two kinds of task:

* **training**: one per (width, regime, training config), the models of all seeds
  (:func:`kag.experiments.pipeline.ensure_models`);
* **metric tables**: one per (width, regime, evaluation images, metric config), the tables of all
  seeds (:func:`kag.experiments.analysis.ensure_metrics`); it takes its training tasks' futures as an argument,
  so Dask runs it after the models exist.

A model is trained by one task only. Where a group's seeds are partly those of a training already
planned with the same config (the fidelity check's reference, SPEC's 5 seeds, beside a 200-epoch point
of 3), its own training task holds only the other seeds and waits for the first (both would take
the same training lock, so running them side by side would leave a worker waiting for an hour).

A task's Dask key is derived from the cache keys of what it produces, so a task that two points
share (the same keys) is submitted once, and a task whose entries are all in the store is not
submitted at all. Tasks are idempotent by construction of the store, not by anything here: its
file locks make a process that finds a key being computed elsewhere wait for it, a finished key is
never recomputed, and entries are written under a temporary name and renamed, so nothing
half-written is ever served. Dask retries a task whose worker died (``allowed-failures``) or that
raised (``retries=2``); the retry finds whatever its first run finished.

The default engine is an embedded ``LocalCluster``: one single-threaded worker process per
physical core, or on CUDA one worker per GPU (``resources={"GPU": 1}``; GPU tasks ask for one).
``scheduler="tcp://host:8786"`` attaches to an existing cluster instead. Every worker must see the
same store: the engine passes the store's path to each task and ``KAG_HOME``/``KAG_DATA`` to the
workers it starts; on a cluster of several machines, ``KAG_HOME`` (the store) and ``KAG_DATA``
must lie on a shared filesystem with file locks (NFS v4, Lustre, GPFS) at the same path everywhere.

:func:`run_sweep` returns, per point, the :class:`~kag.repro.results.Results` read from the store
with ``compute=False``; :func:`judge_point` judges every claim's cells on them with the registry
(:data:`kag.repro.claims.CLAIMS`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import queue
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from kag.experiments.allocator import ENVIRONMENT as ALLOCATOR_ENVIRONMENT
from kag.experiments.analysis import effective_config, ensure_metrics, metric_key, table_kind
from kag.experiments.config import MetricConfig, TrainConfig
from kag.experiments.data import MNIST, load_mnist
from kag.errors import KagError
from kag.experiments.paths import data_dir, kag_home
from kag.experiments.pipeline import ensure_models, model_key
from kag.progress import Progress, running_trainings, trainings_text
from kag.repro.profiles import PROFILES, Profile
from kag.repro.results import Group, Results, groups_needed
from kag.repro.sweep import eta
from kag.repro.sweep.grid import REFERENCE, Grid, Point
from kag.experiments.keys import make_key
from kag.experiments.store import Store

RETRIES = 2  # a task that raised runs at most twice more
ALLOWED_FAILURES = 3  # a task whose worker died runs again until it has killed this many workers
PROGRESS_EVERY_S = 10.0
PRICE_EVERY_S = 60.0  # the longest the time-left estimate goes without reading the event log again
HEARTBEAT_S = 1.0  # the progress loop's longest sleep; it wakes at once when a task ends


class SweepError(KagError):
    """Some tasks of a sweep failed even after their retries (the message names them)."""


# -- the plan: which tasks, with which keys ---------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One unit of work, named by the cache keys it produces (``keys``: models or metric tables)."""

    key: str  # the Dask key
    kind: str  # "train" or "metrics"
    width: int
    regime: str
    seeds: tuple[int, ...]
    train: TrainConfig
    metrics: MetricConfig  # the point's metric config for this group (its eval_shift_seed feeds training too)
    keys: tuple[str, ...]
    eval_images: str = "clean"
    spatial: bool = False
    depends: tuple[str, ...] = ()  # the training tasks this one waits for (a metric task: those of its models)
    label: str = ""  # the first point that needs it (recorded in the metric entries, never in a key)

    @functools.cached_property
    def table_kind(self) -> str:
        """What a metric task's tables measure, at which sizes (:func:`kag.experiments.analysis.table_kind`);
        computed once, as the progress loop prices every task left each heartbeat."""
        return table_kind(self.metrics, self.regime, self.spatial)

    def cached(self, store: Store) -> bool:
        has = store.has_model if self.kind == "train" else store.has_metrics
        return all(has(k) for k in self.keys)

    def __str__(self) -> str:
        what = "train" if self.kind == "train" else f"metrics (eval {self.eval_images})"
        return f"{what} width {self.width} {self.regime} [{self.key}]"


@dataclass
class Plan:
    """Every task of a set of points (point by point, see :func:`_submission_order`, each after the tasks it waits
    for), and which tasks each point needs (the fidelity check's reference among them when planned)."""

    points: list[Point]
    tasks: dict[str, Task]
    needs: dict[str, list[str]]  # point name -> task keys
    reference: Point | None = None  # the fidelity check's reference (SPEC §8), when the grid asks for it

    def cached(self, store: Store) -> set[str]:
        return {k for k, t in self.tasks.items() if t.cached(store)}


def point_groups(profile: Profile) -> list[Group]:
    """The metric-table groups the claims read under ``profile`` (those of the report, and every cell's needs)."""
    from kag.repro.claims import CLAIMS

    groups = list(groups_needed(profile))
    role = dataclasses.replace(profile, name=stands_for(profile))
    for claim in (c for c in CLAIMS if c.judged_under(role)):
        for cell in claim.cells(profile):
            groups += [g for g in claim.needs(cell, profile) if g not in groups]
    return sorted(groups, key=lambda g: (-g.width, g.regime, g.eval_images))


def plan_sweep(points: Sequence[Point], mnist: MNIST, store: Store | None = None,
               reference: Point | None = None) -> Plan:
    """The tasks of ``points`` (and of the fidelity check's ``reference``, when given), each once; the
    same arguments as :class:`~kag.repro.results.Results` would pass, so the tasks fill exactly the
    entries that the points' results read. Each model is trained by one task (see the module docstring)."""
    store = store or Store()
    tasks: dict[str, Task] = {}
    needs: dict[str, list[str]] = {}
    trained_by: dict[str, str] = {}  # model key -> the training task that trains it
    for point in [*points, *([reference] if reference is not None else [])]:
        view = Results(point.profile, store=store, mnist=mnist, compute=False)
        needs[point.name] = []
        for group in point_groups(point.profile):
            profile = view.profile_for(group.eval_images)
            w, regime, seeds = group.width, group.regime, profile.seeds
            models = tuple(model_key(w, s, regime, profile.train, mnist.sha256) for s in seeds)
            earlier = tuple(dict.fromkeys(trained_by[m] for m in models if m in trained_by))
            new = [(s, m) for s, m in zip(seeds, models) if m not in trained_by]
            trainings = list(earlier)
            if new:
                own = tuple(m for _, m in new)
                train_key = f"train-w{w}-{regime}-{make_key('sweep-task', keys=own)[:16]}"
                tasks[train_key] = Task(train_key, "train", w, regime, tuple(s for s, _ in new), profile.train,
                                        profile.metrics, own, depends=earlier, label=point.name)
                trained_by.update((m, train_key) for m in own)
                trainings.append(train_key)
            spatial = w in profile.spatial_widths
            tables = tuple(metric_key(m, profile.metrics, regime, spatial) for m in models)
            images = effective_config(profile.metrics, regime).eval_images  # standard models: always clean
            key = f"metrics-w{w}-{regime}-{images}-{make_key('sweep-task', keys=tables)[:16]}"
            tasks.setdefault(key, Task(key, "metrics", w, regime, seeds, profile.train, profile.metrics, tables,
                                       images, spatial, tuple(trainings), point.name))
            needs[point.name] += [k for k in (*trainings, key) if k not in needs[point.name]]
    cached = {k for k, t in tasks.items() if t.cached(store)}
    return Plan(list(points), {t.key: t for t in _submission_order(tasks, needs, cached)}, needs, reference)


def _submission_order(tasks: dict[str, Task], needs: dict[str, list[str]], cached: set[str]) -> list[Task]:
    """The order of the plan, which :func:`_execute` hands to Dask as task priorities.

    Point by point, so that each point's verdicts are complete as early as possible (a stopped sweep
    leaves whole points, which a partial report shows), in this order:

    * the points with the longest training left first (epochs x width), so that no 200-epoch model is
      left running alone at the end;
    * among those, the point nearest completion (least training left), then the grid's order;
    * the fidelity check's reference last: a check of the points, not a point.

    Within a point come its trainings, the longest first; a training that waits for another comes after
    the ones that wait for none; its metric tables come last. A task that several points need goes with
    the first of them, so whatever it waits for is always submitted before it."""
    def rank(index_and_point: tuple[int, str]) -> tuple:
        index, point = index_and_point
        left = [tasks[k] for k in needs[point] if tasks[k].kind == "train" and k not in cached]
        longest = max((t.train.epochs * t.width for t in left), default=0)
        work = sum(t.train.epochs * t.width * len(t.seeds) for t in left)
        return point == REFERENCE, -longest, work, index

    names = list(needs)
    first: dict[str, tuple] = {}
    for point_rank in sorted(map(rank, enumerate(names))):
        for key in needs[names[point_rank[-1]]]:
            first.setdefault(key, point_rank)
    return sorted(tasks.values(), key=lambda t: (first[t.key], t.kind != "train", bool(t.depends),
                                                 -t.train.epochs * t.width, t.key))


# -- the tasks, as they run on a worker ---------------------------------------------------------------
_MNIST: dict[str, MNIST] = {}  # per worker process: read once, not once per task


def _mnist() -> MNIST:
    root = str(data_dir())
    if root not in _MNIST:
        _MNIST[root] = load_mnist()
    return _MNIST[root]


def _device(device: str | None, pin_gpu: bool) -> str | None:
    """The device a task runs on: on a LocalCluster with one worker per GPU (``pin_gpu``), worker i uses GPU i."""
    if not pin_gpu:
        return device
    from distributed import get_worker

    import torch

    name = get_worker().name
    index = int(name) if isinstance(name, int) or str(name).isdigit() else 0
    return f"cuda:{index % max(torch.cuda.device_count(), 1)}"


def train_task(task: Task, store_root: str, device: str | None, pin_gpu: bool, after: Any = None) -> dict[str, Any]:
    """Train (or find) the models of ``task``; returns how many were trained, never the weights.
    ``after``: the results of the trainings it waits for (a dependency only)."""
    t0, store = time.perf_counter(), Store(store_root)
    if task.cached(store):
        return {"key": task.key, "computed": 0, "seconds": 0.0, "pid": os.getpid()}
    records = ensure_models(task.width, task.seeds, task.regime, task.train, device=_device(device, pin_gpu),
                            store=store, mnist=_mnist(), eval_shift_seed=task.metrics.eval_shift_seed, wait=True)
    return {"key": task.key, "computed": sum(not r.cached for r in records), "seconds": time.perf_counter() - t0,
            "pid": os.getpid()}


def metrics_task(task: Task, store_root: str, device: str | None, pin_gpu: bool, trained: Any = None
                 ) -> dict[str, Any]:
    """Compute (or find) the metric tables of ``task``; ``trained``: its training tasks' results (a dependency)."""
    t0, store = time.perf_counter(), Store(store_root)
    missing = sum(not store.has_metrics(k) for k in task.keys)
    if missing:
        ensure_metrics(task.width, task.regime, task.seeds, task.train, task.metrics, spatial=task.spatial,
                       device=_device(device, pin_gpu), store=store, mnist=_mnist(), compute=True, wait=True,
                       label=task.label)
    return {"key": task.key, "computed": missing, "seconds": time.perf_counter() - t0, "pid": os.getpid()}


# -- clusters ---------------------------------------------------------------------------------------
def physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


# Dask starts worker processes with MALLOC_TRIM_THRESHOLD_=65536 (to hand memory back to the OS
# sooner). Set so, it also turns off glibc's adaptive mmap threshold, so every tensor above 128 KiB
# that torch allocates on the CPU is mapped and unmapped again at each training step: measured, a
# third of a training's time went to page faults in the kernel, and one training step took 1.4x as
# long (benchmarks/train_throughput.py --allocator). The workers start instead with the settings of
# kag.experiments.allocator (large blocks from the heap, freed memory kept, one arena, as Dask runs
# tasks in a thread): a metric table's temporaries are then reused, not mapped afresh (a quarter of
# a width-512 table's CPU time, benchmarks/table_allocator.py). The rest of Dask's pre-spawn
# environment (OMP_NUM_THREADS=1, ...) is kept.
WORKER_ALLOCATOR = {f"distributed.nanny.pre-spawn-environ.{name}": value for name, value in ALLOCATOR_ENVIRONMENT.items()}


def local_cluster(workers: int | None = None, device: str | None = None):
    """An embedded ``LocalCluster`` sized to this machine: one single-threaded worker process per
    physical core, or on CUDA one worker per GPU with ``resources={"GPU": 1}``. Workers get this
    process's ``KAG_HOME`` and ``KAG_DATA``."""
    import dask
    from distributed import LocalCluster

    from kag.devices import resolve_device

    dev = resolve_device(device)
    gpu = dev.type == "cuda"
    if gpu:
        import torch

        n = workers or torch.cuda.device_count()
    else:
        n = workers or physical_cores()
    env = {"KAG_HOME": str(kag_home()), "KAG_DATA": str(data_dir())}
    env.update({k: os.environ[k] for k in ("KAG_QUIET", "KAG_DEVICE") if k in os.environ})
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES, **WORKER_ALLOCATOR}):
        # memory_limit=0: a task's memory is torch's (training, Jacobians), which Dask cannot spill;
        # results live in the store, never in worker memory. The scheduler's HTTP server (it runs even
        # without a dashboard) takes a free port, so two sweeps on one machine do not compete for 8787.
        # Dask's nanny writes the pre-spawn environment into this process's too: put it back, so that
        # what this process starts later inherits neither one thread nor the workers' allocator
        names = set(dask.config.get("distributed.nanny.pre-spawn-environ"))
        before = {name: os.environ.get(name) for name in names}
        try:
            return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                scheduler_kwargs={"dashboard": False}, memory_limit=0, env=env,
                                resources={"GPU": 1} if gpu else None)
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


CONNECT_TIMEOUT_S = 5  # a scheduler that does not answer in this time is unreachable


class SchedulerUnreachable(KagError):
    """The ``--scheduler`` address answers no connection in :data:`CONNECT_TIMEOUT_S` seconds."""


def _check_reachable(scheduler: str) -> None:
    """Ask the scheduler at ``scheduler`` who it is, within :data:`CONNECT_TIMEOUT_S` seconds in all.
    ``Client`` alone can wait far longer on an address that accepts connections and never answers."""
    import asyncio

    from distributed.comm import connect

    async def identity() -> None:
        comm = await connect(scheduler, timeout=CONNECT_TIMEOUT_S)
        try:
            await comm.write({"op": "identity", "reply": True})
            await comm.read()
        finally:
            comm.abort()

    try:
        asyncio.run(asyncio.wait_for(identity(), CONNECT_TIMEOUT_S))
    except (OSError, asyncio.TimeoutError, ValueError, TypeError) as exc:
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise SchedulerUnreachable(f"no Dask scheduler answers at --scheduler {scheduler} within {CONNECT_TIMEOUT_S} s "
                                   f"({why}): start one (`dask scheduler`), fix the address, or leave --scheduler out "
                                   "to run on this machine") from None


@contextlib.contextmanager
def _connect(client, scheduler: str | None, workers: int | None, device: str | None) -> Iterator[tuple[Any, bool]]:
    """(client, pin_gpu): the caller's client, a client of the cluster at ``scheduler``, or an embedded cluster."""
    from distributed import Client

    if client is not None:
        yield client, False
        return
    if scheduler:
        _check_reachable(scheduler)
        with Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s") as c:
            yield c, False
        return
    cluster = local_cluster(workers, device)
    try:
        with Client(cluster) as c:
            from kag.devices import resolve_device

            yield c, resolve_device(device).type == "cuda"
    finally:
        cluster.close()


def _wants_gpu(client, device: str | None, pin_gpu: bool) -> bool:
    """Ask for a GPU resource when the workers offer one (asking on a cluster without any would hang)."""
    if pin_gpu:
        return True
    if device is not None and not str(device).startswith(("cuda", "auto")):
        return False
    workers = client.scheduler_info().get("workers", {}).values()
    return any(w.get("resources", {}).get("GPU") for w in workers)


def _slots(client) -> int:
    """How many tasks the cluster runs at once (its workers' threads; at least 1)."""
    try:
        workers = client.scheduler_info().get("workers", {}).values()
        return max(1, sum(int(w.get("nthreads", 1) or 1) for w in workers))
    except Exception:  # a cluster that cannot say: the estimate assumes one task at a time
        return 1


def _events(store: Store) -> list[dict[str, Any]]:
    try:
        return store.events()
    except (OSError, ValueError):
        return []


def _attempts(dask_scheduler=None, keys=()) -> dict[str, tuple[int, int | None]]:
    """(worker deaths during the task, retries left) per key, read on the scheduler."""
    out = {}
    for k in keys:
        ts = dask_scheduler.tasks.get(k)
        if ts is not None:
            out[k] = (int(getattr(ts, "suspicious", 0) or 0), getattr(ts, "retries", None))
    return out


# -- running ------------------------------------------------------------------------------------
@dataclass
class Summary:
    """What a sweep did: tasks run, found cached, retried and failed, and the wall time."""

    planned: int = 0
    cached: int = 0  # all entries already in the store: not submitted
    ran: int = 0  # submitted and finished
    computed: int = 0  # models trained + tables computed by the tasks that ran
    retried: int = 0  # extra attempts: worker deaths and exceptions
    failed: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"{self.ran} tasks run ({self.computed} models or tables computed), {self.cached} cached, "
                f"{self.retried} retried, {self.failed} failed, in {self.seconds:.1f} s")


@dataclass
class SweepRun:
    """A finished sweep: its points, each point's results (read from the store), the plan, and a summary."""

    points: list[Point]
    results: dict[str, Results]
    plan: Plan
    summary: Summary
    failed: dict[str, str] = field(default_factory=dict)  # task key -> the error, after retries


def run_sweep(grid: Grid | Sequence[Point], *, client=None, scheduler: str | None = None, workers: int | None = None,
              device: str | None = None, store: Store | None = None, mnist: MNIST | None = None) -> SweepRun:
    """Train and measure every point of ``grid`` on Dask distributed; returns per point its ``Results``.

    ``client``: an existing ``distributed.Client`` (the caller keeps it); else ``scheduler`` (an
    address) attaches to a running cluster; else an embedded ``LocalCluster`` of ``workers``
    processes (default: sized to the machine) is started and closed. ``device`` (None = auto)
    is where tasks run. Failed tasks (after their retries) are listed in ``SweepRun.failed``;
    their points' cells are then "not run" when judged.
    """
    points = grid.points() if isinstance(grid, Grid) else list(grid)
    name = grid.source if isinstance(grid, Grid) else f"{len(points)} points"
    t0 = time.perf_counter()
    store = store or Store()
    mnist = mnist or load_mnist()
    plan = plan_sweep(points, mnist, store, grid.reference_point() if isinstance(grid, Grid) else None)
    cached = plan.cached(store)
    todo = [t for k, t in plan.tasks.items() if k not in cached]
    summary = Summary(planned=len(plan.tasks), cached=len(cached))
    failed: dict[str, str] = {}
    if todo:
        with _connect(client, scheduler, workers, device) as (c, pin_gpu):
            failed = _execute(c, todo, str(store.root), device, pin_gpu, summary, f"sweep {name}")
    summary.seconds = time.perf_counter() - t0
    summary.failed = len(failed)
    Progress(f"sweep {name}", total=1).done(str(summary))
    results = {p.name: Results(p.profile, store=store, mnist=mnist, compute=False) for p in points}
    return SweepRun(points, results, plan, summary, failed)


def _execute(client, todo: list[Task], store_root: str, device: str | None, pin_gpu: bool, summary: Summary,
             label: str) -> dict[str, str]:
    import dask

    gpu = _wants_gpu(client, device, pin_gpu)
    futures = {}
    todo_keys = {t.key for t in todo}
    with dask.annotate(resources={"GPU": 1}) if gpu else contextlib.nullcontext():
        for rank, task in enumerate(todo):  # in the plan's order: every task finds the futures of those it waits for
            if any(k in todo_keys and k not in futures for k in task.depends):  # a broken order: never run it
                raise RuntimeError(f"task {task.key} was submitted before a task it waits for")
            fn = train_task if task.kind == "train" else metrics_task
            # the futures of its dependencies (absent where their models were cached at planning)
            args = [task, store_root, device, pin_gpu, [futures[k] for k in task.depends if k in futures]]
            # The key names the result by content, so a second submission of it is the same work;
            # pure=False because the task's effect is on the store, not its return value. The plan's order
            # is given as priorities: Dask keeps submission order only between submissions more than
            # its fifo-timeout (100 ms) apart, and a sweep submits all of its tasks at once.
            futures[task.key] = client.submit(fn, *args, key=task.key, pure=False, retries=RETRIES,
                                              priority=len(todo) - rank)
    # Each future puts itself here when it ends (finished, erred or cancelled): the loop wakes at once
    # on a completion, and at least every HEARTBEAT_S to keep the progress line's ETA current.
    ended: queue.SimpleQueue = queue.SimpleQueue()
    for future in futures.values():
        future.add_done_callback(ended.put)
    progress = Progress(label, total=len(futures), unit="tasks", every=PROGRESS_EVERY_S)
    store = Store(store_root)
    tasks = {t.key: t for t in todo}
    slots = _slots(client)
    failed: dict[str, str] = {}
    done, since, rates, priced = 0, time.time(), None, 0.0
    try:
        while done < len(futures):
            try:
                batch = [ended.get(timeout=HEARTBEAT_S)]
            except queue.Empty:
                batch = []
            while not ended.empty():
                batch.append(ended.get())
            for future in batch:
                done += 1
                if future.status == "finished":
                    summary.ran += 1
                    summary.computed += int(future.result().get("computed", 0))
                elif future.status == "cancelled":
                    failed[future.key] = "cancelled"
                else:
                    exc = future.exception()
                    failed[future.key] = f"{type(exc).__name__}: {exc}"
            trainings = running_trainings(store)  # read once: priced below, and shown
            if rates is None or batch or time.time() - priced >= PRICE_EVERY_S:  # a task ended, or a while passed
                rates, priced = eta.pace(_events(store), trainings, since), time.time()
            left = [tasks[k] for k, f in futures.items() if not f.done()]
            estimate = eta.eta_text(left, rates, slots, trainings)
            running = trainings_text(store, trainings)  # the trainings on any worker: how far each has come
            note = f"{estimate}; {running}" if running else estimate
            progress.update(done, f"{len(failed)} failed, {note}" if failed else note)
        try:
            attempts = client.run_on_scheduler(_attempts, keys=list(futures))
        except Exception:  # a scheduler that refuses to run code: the retries go uncounted
            attempts = {}
        for deaths, left in attempts.values():
            summary.retried += deaths + (RETRIES - left if isinstance(left, int) else 0)
    finally:
        client.cancel(list(futures.values()))  # nothing of ours stays on the cluster
    return failed


# -- judging ------------------------------------------------------------------------------------
def stands_for(profile: Profile) -> str:
    """The named profile whose claim selection applies: itself if named, ``paper`` for a point at the
    paper's fidelity, else ``quick`` (a reduced run: claims judged only at 200 epochs, as C9, are skipped)."""
    if profile.name in PROFILES:
        return profile.name
    return "quick" if profile.reductions else "paper"


def judge_point(profile: Profile, results: Results) -> list[dict[str, Any]]:
    """Every claim's verdict on every cell of ``profile``: one row per cell with ``claim``, ``cell``,
    ``params``, ``outcome`` ("judged", "skipped" or "not run"), ``verdict`` (None unless judged),
    ``as_expected``, ``problems``, ``values`` and ``detail`` (the rows of
    :func:`kag.repro.report.assemble.claim_status`)."""
    from kag.repro.judging import judge_every_cell

    role = dataclasses.replace(profile, name=stands_for(profile))
    rows = []
    for j in judge_every_cell(results, role):
        row = {"claim": j.claim.id, "cell": j.cell.id, "params": j.cell.p, "outcome": j.outcome, "verdict": None,
               "as_expected": None, "problems": [], "values": {}, "detail": j.reason}
        if j.verdict is not None:
            v = j.verdict
            row.update(verdict=v.verdict, as_expected=v.as_expected, problems=v.problems, values=v.values,
                       detail=v.detail)
        rows.append(row)
    return rows


def claim_statuses(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """claim id -> its status over the cells of ``rows`` (reproduced, contradicted, inconclusive, not run)."""
    from kag.repro.claims import CLAIMS
    from kag.repro.report.assemble import claim_status

    return {c.id: claim_status(c, [r for r in rows if r["claim"] == c.id]) for c in CLAIMS
            if any(r["claim"] == c.id for r in rows)}


def verdict_line(name: str, rows: list[dict[str, Any]]) -> str:
    """One line per point: ``lr=3e-3: reproduced C1-PR C3 | contradicted C4 | skipped C9``
    (skipped: judged at the paper's fidelity only; not run: its tables are missing)."""
    from kag.repro.report.assemble import STATUSES

    statuses = claim_statuses(rows)
    skipped = {r["claim"] for r in rows} - {r["claim"] for r in rows if r["outcome"] != "skipped"}
    parts = []
    for status in STATUSES:
        ids = [cid for cid, s in statuses.items() if s["status"] == status and cid not in skipped]
        if ids:
            parts.append(f"{status} {' '.join(ids)}")
    if skipped:
        parts.append(f"skipped {' '.join(c for c in statuses if c in skipped)}")
    return f"{name}: {' | '.join(parts)}"
