"""Cache keys as a function of what an entry records about itself.

A key is the SHA-256 of everything that determines a result (:func:`make_key`). Each entry of the
store records those inputs (a model's manifest: data digest, width, seed, regime, training config
and versions; a metric entry: its model's key, metric config, spatial flag and versions), so the
key can be recomputed from the entry alone. The store does so on every load, ``verify`` and
import, and rejects an entry whose recomputed key is not its name: a renamed or edited entry can
never serve another key's result.

This module holds only the recipe; :func:`kag.experiments.pipeline.model_key` and :func:`kag.experiments.analysis.metric_key`
build the same parts from live configurations and the current algorithm versions, and a test pins
the two paths to the same key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Mapping

from kag.experiments.config import MetricConfig, TrainConfig
from kag.experiments.families import DEFAULT_FAMILY

SCHEMA = 1  # layout of the key recipe and of the entries; part of every key
PREFIX_LENGTH = 12  # how keys are shown, and the shortest prefix accepted where a key is taken


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def make_key(kind: str, **parts: Any) -> str:
    """SHA-256 over ``kind``, the schema version and ``parts`` (JSON-serialisable, order-free)."""
    return hashlib.sha256(canonical_json({"kind": kind, "schema": SCHEMA, **parts}).encode()).hexdigest()


def fields_for_key(values: Mapping[str, Any], neutral: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the fields whose value is their ``neutral`` one (see :func:`key_fields`);
    compared as JSON, so a tuple in a live config and the list it became in a manifest agree."""
    return {k: v for k, v in values.items() if not (k in neutral and canonical_json(v) == canonical_json(neutral[k]))}


def key_fields(config: Any) -> dict[str, Any]:
    """A configuration as it enters a cache key: every field, except a field added after models were
    cached whose value is still its ``NEUTRAL`` one (the value that reproduces the behaviour from
    before the field existed). So adding a field never invalidates a trained model or a table;
    changing any value, or any default in use, changes the key."""
    return fields_for_key(dataclasses.asdict(config), getattr(config, "NEUTRAL", {}))


def _effective_metric_fields(metric_config: Mapping[str, Any], regime: str) -> dict[str, Any]:
    """A recorded metric config as :func:`kag.experiments.analysis.effective_config` makes it: standard models are
    always measured on clean images."""
    return dict(metric_config) if regime == "augmented" else {**metric_config, "eval_images": "clean"}


def model_key_of(manifest: Mapping[str, Any]) -> str:
    """The key a model manifest describes (KeyError/TypeError when a field is missing or malformed)."""
    family = manifest.get("family", DEFAULT_FAMILY)
    named = {} if family == DEFAULT_FAMILY else {"family": {"name": family, "version": manifest["family_version"]}}
    return make_key("model", data=manifest["data_sha256"], width=manifest["width"], seed=manifest["seed"],
                    regime=manifest["regime"], train=fields_for_key(manifest["train_config"], TrainConfig.NEUTRAL),
                    versions=manifest["versions"], **named)


def metric_key_of(entry: Mapping[str, Any]) -> str:
    """The key a metric entry describes (KeyError/TypeError when a field is missing or malformed)."""
    meta = entry["payload"]["meta"]
    fields = fields_for_key(_effective_metric_fields(entry["metric_config"], entry["regime"]), MetricConfig.NEUTRAL)
    return make_key("metrics", model=meta["model_key"], metrics=fields, spatial=meta["spatial"],
                    versions=entry["versions"])


def short(key: str) -> str:
    """A key as shown to people: its first :data:`PREFIX_LENGTH` hex digits."""
    return key[:PREFIX_LENGTH]
