"""Valid store entries for tests, built without training: a manifest or metric entry that describes its key."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path
from typing import Any

import torch

from kag.experiments.analysis import measurement_versions, metric_key
from kag.experiments.config import MetricConfig, TrainConfig
from kag.experiments.pipeline import model_key, training_versions
from kag.experiments.table import COLUMNS, TABLE_VERSION
from kag.experiments.train import initial_state

DATA = "d" * 64  # a stand-in data digest


def model_meta(width: int = 4, seed: int = 0, regime: str = "standard", epochs: int = 1) -> tuple[str, dict[str, Any]]:
    """(key, manifest fields) of a model as :func:`kag.experiments.pipeline.ensure_models` records it."""
    config = TrainConfig(epochs=epochs)
    meta = {"width": width, "seed": seed, "regime": regime, "epochs": epochs, "train_config": dataclasses.asdict(config),
            "data_sha256": DATA, "versions": training_versions()}
    return model_key(width, seed, regime, config, DATA), meta


def model_tensors(width: int = 4, seed: int = 0, regime: str = "standard", epochs: int = 1) -> dict[str, torch.Tensor]:
    """The tensors the model of :func:`model_meta` has: init, final and (standard) the timeline's fc1 snapshots."""
    state = initial_state(width, seed)
    tensors = {f"init.{k}": v for k, v in state.items()} | {f"final.{k}": v.clone() for k, v in state.items()}
    config = TrainConfig(epochs=epochs)
    if regime in config.timeline_regimes:
        for epoch in config.checkpoint_epochs():
            tensors |= {f"ckpt.{epoch}.{k}": state[k].clone() for k in ("fc1.weight", "fc1.bias")}
    return tensors


def save_model(store, width: int = 4, seed: int = 0, regime: str = "standard") -> str:
    key, meta = model_meta(width, seed, regime)
    store.save_model(key, model_tensors(width, seed, regime), meta)
    return key


def metric_entry(model: str, regime: str = "standard", spatial: bool = False, value: float = 1.0
                 ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(key, payload, meta) of a metric table as :func:`kag.experiments.analysis.ensure_metrics` records it."""
    config = MetricConfig()
    row = [4, 0, regime, "clean", "L1", 3, "global", None, "trained", "pr_ratio", value]
    payload = {"table": {"columns": list(COLUMNS), "rows": [row], "schema": TABLE_VERSION},
               "meta": {"model_key": model, "spatial": spatial}}
    meta = {"profile": "test", "width": 4, "seed": 0, "regime": regime, "metric_config": dataclasses.asdict(config),
            "versions": measurement_versions()}
    return metric_key(model, config, regime, spatial), payload, meta


def save_metrics(store, model: str, **kwargs: Any) -> str:
    key, payload, meta = metric_entry(model, **kwargs)
    store.save_metrics(key, payload, meta)
    return key


def entry_files(store, key: str) -> dict[str, bytes]:
    """The archive members of entry ``key`` (a model's two files, or a metric table), by member name."""
    files = ({f"models/{key}/{p.name}": p.read_bytes() for p in (store.models_dir / key).iterdir()}
             if (store.models_dir / key).is_dir() else {})
    if store.has_metrics(key):
        files[f"metrics/{key}.json"] = store.metrics_path(key).read_bytes()
    return files


def write_tar_gz(path: Path, files: dict[str, bytes], special: list[tarfile.TarInfo] = (), level: int = 6) -> Path:
    """A ``.tar.gz`` of ``files`` (member name -> bytes, in order), then the ``special`` members (links...)."""
    with tarfile.open(path, "w:gz", compresslevel=level) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in special:
            tar.addfile(info)
    return path
