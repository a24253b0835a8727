from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest
import torch

from kag.pipeline import ensure_models, model_key
from kag.config import TrainConfig
from kag.errors import CorruptEntryError
from kag.store import Store, make_key

TINY = TrainConfig(epochs=1, train_subset=512, checkpoint_every=1)


def _key(n: int) -> str:
    return make_key("test", n=n)


def test_save_and_load_round_trip(tmp_path):
    store = Store(tmp_path)
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    store.save_model(_key(1), tensors, {"width": 3})
    loaded, manifest = store.load_model(_key(1))
    assert torch.equal(loaded["a"], tensors["a"]) and torch.equal(loaded["b"], tensors["b"])
    assert manifest["width"] == 3 and "weights.safetensors" in manifest["files"]


def test_failed_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    store = Store(tmp_path)
    import kag.store as store_module

    def exploding_save(tensors, path):
        open(path, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(store_module, "save_file", exploding_save)
    with pytest.raises(OSError, match="disk full"):
        store.save_model(_key(2), {"a": torch.ones(2)}, {})
    assert not store.has_model(_key(2))
    assert list(store.models_dir.iterdir()) == []  # no temporary directory left behind


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_weights_are_named_in_the_error(tmp_path, damage):
    store = Store(tmp_path)
    store.save_model(_key(3), {"a": torch.randn(100)}, {})
    path = store.models_dir / _key(3) / "weights.safetensors"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-5] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptEntryError, match="weights.safetensors"):
        store.load_model(_key(3))


def test_corrupt_manifest_and_metrics_are_named_in_the_error(tmp_path):
    store = Store(tmp_path)
    store.save_model(_key(4), {"a": torch.randn(2)}, {})
    (store.models_dir / _key(4) / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptEntryError, match="manifest.json"):
        store.load_model(_key(4))
    store.save_metrics(_key(5), {"pr": [1.0, 2.0]}, {})
    path = store.metrics_path(_key(5))
    path.write_text(path.read_text().replace("2.0", "3.0"))
    with pytest.raises(CorruptEntryError, match=_key(5)):
        store.load_metrics(_key(5))


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


def test_export_import_round_trip(tmp_path, mnist):
    source = Store(tmp_path / "a")
    ensure_models(8, (0,), "standard", TINY, device="cpu", store=source, mnist=mnist)
    source.save_metrics(_key(6), {"x": 1}, {"profile": "smoke"})
    archive = tmp_path / "cache.tar.gz"
    assert source.export(archive) == 2
    target = Store(tmp_path / "b")
    assert target.import_(archive) == 2
    assert target.import_(archive) == 0  # existing entries are kept
    again = ensure_models(8, (0,), "standard", TINY, device="cpu", store=target, mnist=mnist)
    assert again[0].cached
    assert target.load_metrics(_key(6))["payload"] == {"x": 1}


def test_import_of_a_corrupt_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"definitely not a tarball")
    with pytest.raises(CorruptEntryError, match="bad.tar.gz"):
        Store(tmp_path / "s").import_(bad)
    assert [p.name for p in (tmp_path / "s").iterdir()] == []


def test_entries_lists_models_and_metrics(tmp_path):
    store = Store(tmp_path)
    store.save_model(_key(7), {"a": torch.ones(1)}, {"width": 8, "seed": 0, "regime": "standard"})
    store.save_metrics(_key(8), {}, {"profile": "smoke", "width": 8})
    kinds = sorted((e["kind"], e.get("width")) for e in store.entries())
    assert kinds == [("metrics", 8), ("model", 8)]
    assert json.dumps(store.entries())  # serialisable for `kag cache ls --json`
