"""The store: atomic writes, keys recomputed from what each entry records, verify/repair, and a
safe import that takes only the store's own layout (malicious archives are built here)."""

from __future__ import annotations

import dataclasses
import errno
import json
import multiprocessing as mp
import os
import pickle
import tarfile
import time
import types

import pytest
import torch

import kag.experiments.store as store_module
from kag.experiments.config import TrainConfig
from kag.errors import CorruptEntryError, StoreWriteError
from kag.experiments.archive import export_archive, import_archive
from kag.experiments.sealed_json import seal
from kag.experiments.keys import metric_key_of, model_key_of
from kag.experiments.pipeline import ensure_models, model_key
from kag.experiments.store import Store, file_sha256

from entries import entry_files, metric_entry, model_meta, model_tensors, save_metrics, save_model, write_tar_gz

TINY = TrainConfig(epochs=1, train_subset=512, checkpoint_every=1)


def test_save_and_load_round_trip(tmp_path):
    store = Store(tmp_path)
    key, meta = model_meta(width=3)
    tensors = model_tensors(3)
    store.save_model(key, tensors, meta)
    loaded, manifest = store.load_model(key)
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert manifest["width"] == 3 and set(manifest["files"]) == {"weights.safetensors"}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EROFS])
def test_failed_write_is_one_line_naming_the_path_and_leaves_nothing_half_written(tmp_path, monkeypatch, code):
    store = Store(tmp_path)

    def exploding_write(path, data):
        open(path, "wb").write(data[:10])
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(store_module, "write_file", exploding_write)
    key, meta = model_meta()
    with pytest.raises(StoreWriteError, match=f"cannot write {tmp_path}/models/.*weights.safetensors.*"
                                              f"{errno.errorcode[code]}") as caught:
        store.save_model(key, model_tensors(), meta)
    assert "\n" not in str(caught.value)
    assert not store.has_model(key)
    assert list(store.models_dir.iterdir()) == []  # no temporary directory left behind


def test_an_entry_is_never_stored_under_a_key_its_inputs_do_not_give(tmp_path):
    store = Store(tmp_path)
    _, meta = model_meta(seed=0)
    other, _ = model_meta(seed=1)
    with pytest.raises(ValueError, match="refusing to store it under another key"):
        store.save_model(other, model_tensors(), meta)
    key, payload, meta = metric_entry(other)
    with pytest.raises(ValueError, match="refusing"):
        store.save_metrics(model_meta(seed=2)[0], payload, meta)
    assert store.keys() == []


def test_keys_recomputed_from_real_entries_match(tmp_path, mnist):
    """The manifest and metric entry the pipeline writes describe exactly their keys."""
    from kag.experiments.analysis import ensure_metrics
    from kag.repro.profiles import SMOKE

    store = Store(tmp_path)
    (record,) = ensure_models(8, (0,), "standard", TINY, device="cpu", store=store, mnist=mnist)
    assert model_key_of(store.read_manifest(record.key)) == record.key
    (table,) = ensure_metrics(8, "standard", (0,), TINY, SMOKE.metrics, device="cpu", store=store, mnist=mnist)
    assert metric_key_of(store.load_metrics(table.key)) == table.key


def test_a_standard_model_is_trained_once_whatever_augmentation_is_named(tmp_path, mnist):
    """Grid points that differ only in augmentation share their standard models (kag.experiments.config.regime_config)."""
    store = Store(tmp_path)
    (first,) = ensure_models(8, (0,), "standard", TINY, device="cpu", store=store, mnist=mnist)
    affine = dataclasses.replace(TINY, translate_px=6, rotate_deg=15.0, scale_range=(0.9, 1.1))
    (again,) = ensure_models(8, (0,), "standard", affine, device="cpu", store=store, mnist=mnist)
    assert again.cached and again.key == first.key and store.keys() == [first.key]
    manifest = store.read_manifest(first.key)
    assert (manifest["train_config"]["translate_px"], manifest["train_config"]["rotate_deg"]) == (4, 0.0)
    assert model_key_of(manifest) == first.key
    (augmented,) = ensure_models(8, (0,), "augmented", affine, device="cpu", store=store, mnist=mnist)
    assert not augmented.cached and augmented.key != first.key


def test_a_training_records_its_epochs_in_the_store_while_it_runs(tmp_path, mnist, monkeypatch):
    """A process waiting on the store (the progress monitor) sees how far a training has come; the
    record goes when the training ends, and a record whose process has ended is not shown."""
    import kag.experiments.pipeline as pipeline

    store = Store(tmp_path)
    seen = []
    real = store.report_training
    monkeypatch.setattr(pipeline, "TRAINING_REPORT_EVERY_S", 0.0)
    monkeypatch.setattr(store, "report_training", lambda name, info: (real(name, info), seen.append(store.trainings())))
    config = dataclasses.replace(TINY, epochs=3)
    ensure_models(8, (0, 1), "standard", config, device="cpu", store=store, mnist=mnist)
    assert [[(r["label"], r["epoch"], r["epochs"], r["seeds"]) for r in now] for now in seen] == \
        [[("width 8 standard", e, 3, [0, 1])] for e in (1, 2, 3)]
    # each record names an epoch its pace is measured from (kag.progress.epoch_seconds): here, 3 short
    # epochs, this process's first
    assert all(r["since_epoch"] == 1 and r["since_seconds"] == seen[0][0]["seconds"] for now in seen for r in now)
    assert store.trainings() == [] and list((tmp_path / "training").iterdir()) == []

    def record(name, **fields):
        (tmp_path / "training" / f"{name}.json").write_text(json.dumps({"label": name, "epoch": 1, "epochs": 2,
                                                                        "updated": time.time(), **fields}))

    record("alive", pid=os.getpid(), host=store_module.HOST)
    record("ended", pid=2**22 + 12345, host=store_module.HOST)  # no such process
    record("elsewhere", pid=1, host="another-host")
    record("stale", pid=1, host="another-host", updated=time.time() - store_module.STALE_TRAINING_S - 1)
    (tmp_path / "training" / "garbled.json").write_text("{not json")
    assert sorted(r["label"] for r in store.trainings()) == ["alive", "elsewhere"]
    # cache verify names the records of trainings that no longer run; --repair removes them, no other
    assert {p.path.name: p.reason for p in store.problems()} == {
        "ended.json": "the record of a training by process 4206649, which has ended",
        "garbled.json": "a training record that does not parse",
        "stale.json": "the record of a training on another-host not updated for over 15 min"}
    store.repair()
    assert sorted(p.name for p in (tmp_path / "training").iterdir()) == ["alive.json", "elsewhere.json"]


def test_a_failed_progress_write_does_not_stop_the_training(tmp_path, mnist, monkeypatch):
    store = Store(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.files, "write_atomically", full)
    (record,) = ensure_models(8, (0,), "standard", TINY, device="cpu", store=store, mnist=mnist)
    assert not record.cached and store.trainings() == []


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_weights_are_named_in_the_error(tmp_path, damage):
    store = Store(tmp_path)
    key = save_model(store)
    path = store.models_dir / key / "weights.safetensors"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-5] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptEntryError, match="weights.safetensors.*kag cache verify --repair"):
        store.load_model(key)


def test_corrupt_manifest_and_metrics_are_named_in_the_error(tmp_path):
    store = Store(tmp_path)
    key = save_model(store)
    (store.models_dir / key / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptEntryError, match="manifest.json.*not JSON"):
        store.load_model(key)
    mkey = save_metrics(store, key)
    path = store.metrics_path(mkey)
    path.write_text(path.read_text().replace("1.0", "3.0"))
    with pytest.raises(CorruptEntryError, match=mkey):
        store.load_metrics(mkey)


def _rename(store: Store, key: str, new: str) -> None:
    os.replace(store.models_dir / key, store.models_dir / new)


def test_a_renamed_or_rekeyed_model_is_rejected(tmp_path):
    """Seed 0's weights under seed 1's key: the manifest's inputs give seed 0's key."""
    store = Store(tmp_path)
    key0 = save_model(store, seed=0)
    key1, _ = model_meta(seed=1)
    _rename(store, key0, key1)
    manifest = store.models_dir / key1 / "manifest.json"
    body = json.loads(manifest.read_text())
    body["key"] = key1  # the poisoned key: the manifest claims to be seed 1 (resealed, as an attacker would)
    manifest.write_bytes(seal(body))
    with pytest.raises(CorruptEntryError, match="renamed or its manifest edited"):
        store.load_model(key1)
    assert "renamed" in store.entries()[0]["error"]


def test_a_renamed_metric_table_is_rejected(tmp_path):
    store = Store(tmp_path)
    model = save_model(store)
    mkey = save_metrics(store, model)
    other = model_meta(seed=5)[0]
    os.replace(store.metrics_path(mkey), store.metrics_path(other))
    with pytest.raises(CorruptEntryError, match="not " + other[:12]):
        store.load_metrics(other)


def _edit_files(store: Store, key: str, **files: str) -> None:
    """Record ``files`` (name -> digest) in an entry's manifest and reseal it, as an attacker would."""
    manifest = store.models_dir / key / "manifest.json"
    body = json.loads(manifest.read_text())
    body["files"].update(files)
    manifest.write_bytes(seal(body))


def test_manifest_files_outside_the_entry_and_extra_files_are_rejected(tmp_path):
    store = Store(tmp_path)
    key = save_model(store)
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    _edit_files(store, key, **{"../../../secret.txt": file_sha256(outside)})
    with pytest.raises(CorruptEntryError, match="a model entry has exactly weights.safetensors"):
        store.verify_model(key)
    key2 = save_model(store, seed=2)
    (store.models_dir / key2 / "notes.txt").write_text("extra")
    with pytest.raises(CorruptEntryError, match="unexpected files"):
        store.verify_model(key2)


def test_a_pickle_in_place_of_the_weights_is_rejected_even_with_a_matching_digest(tmp_path):
    store = Store(tmp_path)
    key = save_model(store)
    weights = store.models_dir / key / "weights.safetensors"
    weights.write_bytes(pickle.dumps({"a": torch.ones(3)}))
    _edit_files(store, key, **{"weights.safetensors": file_sha256(weights)})
    with pytest.raises(CorruptEntryError, match="not a safetensors file"):
        store.load_model(key)


def test_verify_lists_every_problem_and_repair_removes_them(tmp_path):
    store = Store(tmp_path)
    good = save_model(store, seed=0)
    no_manifest = save_model(store, seed=1)
    (store.models_dir / no_manifest / "manifest.json").unlink()
    empty_manifest = save_model(store, seed=2)
    (store.models_dir / empty_manifest / "manifest.json").write_text("")
    bad_metrics = save_metrics(store, good)
    store.metrics_path(bad_metrics).write_text("[]")
    old_tmp = store.models_dir / ".tmp-orphan"  # named by an older kag (no owner): judged by its age
    old_tmp.mkdir()
    (old_tmp / "weights.safetensors").write_bytes(b"x" * 100)
    long_ago = time.time() - 2 * store_module.LEGACY_ORPHAN_AGE_S
    os.utime(old_tmp, (long_ago, long_ago))
    fresh_tmp = store.models_dir / ".tmp-live"  # a write in progress elsewhere: left alone
    fresh_tmp.mkdir()
    problems = store.problems()
    found = {p.path.name: p.reason for p in problems}
    assert set(found) == {no_manifest, empty_manifest, f"{bad_metrics}.json", ".tmp-orphan"}
    assert "manifest.json is missing" in found[no_manifest] and "not JSON" in found[empty_manifest]
    assert len(store.repair()) == 4
    assert store.problems() == [] and store.keys() == [good] and fresh_tmp.is_dir()


def test_a_model_whose_manifest_was_deleted_is_retrained_into_place(tmp_path, mnist):
    store = Store(tmp_path)
    (first,) = ensure_models(8, (0,), "standard", TINY, device="cpu", store=store, mnist=mnist)
    (store.models_dir / first.key / "manifest.json").unlink()
    with pytest.raises(CorruptEntryError, match="manifest.json is missing"):
        store.load_model(first.key)
    (again,) = ensure_models(8, (0,), "standard", TINY, device="cpu", store=store, mnist=mnist)
    assert not again.cached and store.problems() == []
    assert [p.name for p in store.models_dir.iterdir()] == [first.key]  # the broken one set aside and deleted


def test_keys_are_taken_by_a_twelve_digit_prefix(tmp_path):
    store = Store(tmp_path)
    key = save_model(store)
    assert store.resolve_key(key[:12]) == key == store.resolve_key(key)
    with pytest.raises(ValueError, match="12 to 64 hex digits"):
        store.resolve_key(key[:6])
    with pytest.raises(KeyError, match="no cache entry"):
        store.resolve_key("0" * 12 if not key.startswith("0" * 12) else "f" * 12)
    os.makedirs(store.metrics_dir)
    twin = key[:12] + "0" * 52 if key[12:] != "0" * 52 else key[:12] + "1" * 52
    store.metrics_path(twin).write_text("{}")
    with pytest.raises(ValueError, match="ambiguous"):
        store.resolve_key(key[:12])


def test_bad_key_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="not a cache key"):
        Store(tmp_path).has_model("../../etc")


def test_key_depends_on_everything_that_determines_the_model():
    base = model_key(64, 0, "standard", TINY, "d")
    assert base == model_key(64, 0, "standard", TINY, "d")
    others = [
        model_key(128, 0, "standard", TINY, "d"),
        model_key(64, 1, "standard", TINY, "d"),
        model_key(64, 0, "augmented", TINY, "d"),
        model_key(64, 0, "standard", TrainConfig(epochs=2, train_subset=512, checkpoint_every=1), "d"),
        model_key(64, 0, "standard", TINY, "other data"),
    ]
    assert len({base, *others}) == 6


def _train_in_subprocess(home: str, queue) -> None:
    os.environ["KAG_HOME"] = home
    records = ensure_models(8, (0, 1), "standard", TINY, device="cpu")
    queue.put([r.cached for r in records])


@pytest.mark.slow  # trains real models
def test_concurrent_processes_train_each_model_once(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_train_in_subprocess, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sorted(results) == [[False, False], [True, True]]  # one trained both seeds, the other waited
    assert len(list((tmp_path / "store" / "models").glob("[0-9a-f]*"))) == 2


def test_second_request_is_served_from_the_store(tmp_path, mnist):
    store = Store(tmp_path)
    first = ensure_models(8, (0,), "standard", TINY, device="cpu", store=store, mnist=mnist)
    second = ensure_models(8, (0,), "standard", TINY, device="cpu", store=store, mnist=mnist)
    assert not first[0].cached and second[0].cached
    for name in first[0].final_state:
        assert torch.equal(first[0].final_state[name], second[0].final_state[name])
    assert sorted(second[0].checkpoints) == [0, 1]


# -- export and import ------------------------------------------------------------------------------
def test_export_import_round_trip(tmp_path, mnist):
    source = Store(tmp_path / "a")
    (record,) = ensure_models(8, (0,), "standard", TINY, device="cpu", store=source, mnist=mnist)
    mkey = save_metrics(source, record.key)
    archive = tmp_path / "cache.tar.gz"
    assert export_archive(source, archive) == 2
    target = Store(tmp_path / "b")
    report = import_archive(target, archive)
    assert len(report.added) == 2 and not report.rejected
    assert len(import_archive(target, archive).present) == 2  # existing entries are kept
    again = ensure_models(8, (0,), "standard", TINY, device="cpu", store=target, mnist=mnist)
    assert again[0].cached
    assert target.load_metrics(mkey)["payload"]["meta"]["model_key"] == record.key
    assert [p.name for p in target.root.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_failed_export_leaves_no_partial_archive(tmp_path, monkeypatch):
    store = Store(tmp_path / "s")
    save_model(store, seed=0)
    save_model(store, seed=1)
    calls = []

    def failing_verify(self, key):
        calls.append(key)
        if len(calls) == 2:
            raise CorruptEntryError("broken on purpose")
        return original(self, key)

    original = Store.verify_model
    monkeypatch.setattr(Store, "verify_model", failing_verify)
    with pytest.raises(CorruptEntryError, match="on purpose"):
        export_archive(store, tmp_path / "out.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_import_of_a_corrupt_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"definitely not a tarball")
    with pytest.raises(CorruptEntryError, match="bad.tar.gz"):
        import_archive(Store(tmp_path / "s"), bad)
    assert [p.name for p in (tmp_path / "s").iterdir()] == []


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _malicious(kind: str, good: dict[str, bytes], bad_key: str, source: Store, seed0: str):
    """(files, special members) of an archive holding one valid entry plus one attack."""
    files, special = dict(good), []
    bad = entry_files(source, bad_key)  # a valid entry of its own key, tampered with below
    renamed = {n.replace(seed0, bad_key): b for n, b in entry_files(source, seed0).items()}
    manifest_name = f"models/{bad_key}/manifest.json"
    if kind == "escape":
        files["../escaped.txt"] = b"outside"
        files["/tmp/kag-absolute-escape.txt"] = b"outside"
    elif kind == "symlink":
        special.append(_link(f"models/{bad_key}/weights.safetensors", "/etc/passwd"))
        files[manifest_name] = bad[manifest_name]
    elif kind == "hardlink":
        special.append(_link(f"metrics/{bad_key}.json", "/etc/passwd", tarfile.LNKTYPE))
    elif kind == "pickle":
        blob = pickle.dumps({"final.fc1.weight": torch.ones(2)})
        body = json.loads(bad[manifest_name])
        body["files"]["weights.safetensors"] = __import__("hashlib").sha256(blob).hexdigest()
        files[manifest_name] = seal(body)
        files[f"models/{bad_key}/weights.safetensors"] = blob
    elif kind == "poisoned-key":  # seed 0's entry renamed to seed 1's key, manifest key rewritten
        body = json.loads(renamed[manifest_name])
        body["key"] = bad_key
        files |= renamed | {manifest_name: seal(body)}
    elif kind == "extra-files":
        files |= bad | {f"models/{bad_key}/run.sh": b"rm -rf ~"}
    elif kind == "outside-files":
        body = json.loads(bad[manifest_name])
        body["files"]["../../../../etc/passwd"] = "0" * 64
        files |= bad | {manifest_name: seal(body)}
    elif kind == "renamed-metrics":
        model = seed0
        mkey, payload, meta = metric_entry(model)
        scratch = Store(source.root.parent / "scratch")
        scratch.save_metrics(mkey, payload, meta)
        files[f"metrics/{bad_key}.json"] = scratch.metrics_path(mkey).read_bytes()
    elif kind == "bomb":  # 64 MB of zeros claiming to be a width-4 model's weights (about 0.1 MB)
        files |= {manifest_name: bad[manifest_name], f"models/{bad_key}/weights.safetensors": bytes(64 << 20)}
    return files, special


ATTACKS = {"escape": "not part of the store's layout", "symlink": "is a link", "hardlink": "is a link",
           "pickle": "not a safetensors file", "poisoned-key": "renamed or its manifest edited",
           "extra-files": "run.sh' is not part of the store's layout",
           "outside-files": "a model entry has exactly weights.safetensors", "renamed-metrics": "it says it is entry",
           "bomb": "over the limit"}


@pytest.mark.parametrize("attack", ATTACKS)
def test_import_rejects_malicious_entries_and_keeps_the_valid_one(tmp_path, attack):
    source = Store(tmp_path / "source")
    good_key = save_model(source, seed=3)
    seed0 = save_model(source, seed=0)
    bad_key = save_model(source, seed=1)
    files, special = _malicious(attack, entry_files(source, good_key), bad_key, source, seed0)
    archive = tmp_path / "attack.tar.gz"
    write_tar_gz(archive, files, special, level=1)
    target = Store(tmp_path / "home" / "store")
    report = import_archive(target, archive)
    assert report.added == [f"models/{good_key}"]  # the valid entry still comes in
    assert report.rejected and all(ATTACKS[attack] in reason for _, reason in report.rejected), report.rejected
    assert target.keys() == [good_key] and target.problems() == []
    assert not (tmp_path / "home" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not os.path.exists("/tmp/kag-absolute-escape.txt")
    size = sum(p.stat().st_size for p in (tmp_path / "home").rglob("*") if p.is_file())
    assert size < 2 << 20  # the bomb never reached the disk
    assert all("tmp-" not in reason for _, reason in report.rejected)  # no deleted temporary path is named


def test_import_honours_a_total_size_limit(tmp_path):
    source = Store(tmp_path / "source")
    save_model(source, seed=0)
    save_model(source, seed=1)
    archive = tmp_path / "two.tar.gz"
    export_archive(source, archive)
    one = sum(len(b) for b in entry_files(source, source.keys()[0]).values())
    report = import_archive(Store(tmp_path / "t"), archive, max_bytes=one + 10)
    assert len(report.added) == 1 and "over the limit" in report.rejected[0][1]


def test_entries_lists_models_and_metrics(tmp_path):
    store = Store(tmp_path)
    model = save_model(store, width=8)
    save_metrics(store, model)
    kinds = sorted((e["kind"], e.get("width")) for e in store.entries())
    assert kinds == [("metrics", 4), ("model", 8)]
    assert json.dumps(store.entries())  # serialisable for `kag cache ls --json`


def test_the_recorded_source_digest_is_the_code_that_ran(tmp_path, mnist, monkeypatch):
    """Provenance is read when the modules are imported, not when an entry is saved: a long run whose
    files are edited meanwhile must not record the edited files' digest."""
    import kag.experiments.pipeline

    monkeypatch.setattr(kag.experiments.pipeline, "TRAINING_DIGEST", "a" * 64)  # as if the files changed after import
    (record,) = ensure_models(8, (0,), "standard", TINY, device="cpu", store=Store(tmp_path), mnist=mnist)
    assert record.manifest["source_sha256"] == "a" * 64


def test_a_trainings_pace_is_measured_over_its_recent_epochs(monkeypatch):
    """Ten epochs of 100 s (a busy machine, or a resumed training's first epochs here), then 10 s each:
    the record's anchor moves up to stay about PACE_WINDOW_S (600 s) behind, so the pace it gives is
    the recent 10 s, not the 28 s of all epochs."""
    import kag.experiments.pipeline as pipeline
    from kag.progress import epoch_seconds

    records = []
    store = types.SimpleNamespace(report_training=lambda name, info: records.append(dict(info)))
    monkeypatch.setattr(pipeline, "TRAINING_REPORT_EVERY_S", 0.0)
    report = pipeline._training_reporter(store, "t", 512, "standard", [0], 200, "mlp2")
    seconds = 0.0
    for epoch in range(1, 111):
        seconds += 100.0 if epoch <= 10 else 10.0
        report(epoch, seconds)
    assert records[0]["since_epoch"] == 1 and epoch_seconds(records[0]) == 100.0
    # epoch 11 (1,010 s): measured from epoch 4 (400 s), the latest at least 600 s back
    assert records[10]["since_epoch"] == 4 and epoch_seconds(records[10]) == pytest.approx(610.0 / 7)
    last = records[-1]
    assert 600.0 <= last["seconds"] - last["since_seconds"] < 610.0 and epoch_seconds(last) == pytest.approx(10.0)
