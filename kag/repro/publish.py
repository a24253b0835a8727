"""A release archive: the trained models and metric tables one profile of one study reads, ready to publish.

``kag cache release --profile paper`` exports exactly the entries the claims suite reads for that
profile (their keys computed by :func:`kag.repro.results.needed_keys`, not picked by what entries
say about themselves) into a deterministic ``kag-<study>-<profile>.tar.gz``, and pins its SHA-256
and size in ``reports/paper/published.json``. Whoever hosts the file adds its ``--url``; a user then
runs ``kag cache pull URL`` and judges the claims without training.
"""

from __future__ import annotations

from pathlib import Path

from kag.experiments.archive import export_archive
from kag.experiments.pull import Published, default_pins, write_published
from kag.experiments.store import Store, file_sha256
from kag.repro.profiles import Profile
from kag.repro.results import needed_keys


def archive_name(profile: Profile) -> str:
    return f"kag-{profile.study}-{profile.name}.tar.gz"


def release(profile: Profile, out_dir: Path, *, store: Store | None = None, pins: Path | None = None,
            url: str | None = None) -> Published:
    """Export every model and table ``profile`` needs from ``store`` into ``out_dir`` and pin the archive.

    Refuses (one-line ValueError, nothing written) when the store lacks any of them: a release that
    judges only part of the claims would be a silent half-result."""
    store = store or Store()
    models, tables = needed_keys(profile)
    missing = sorted(k for k in models if not store.has_model(k)) + sorted(k for k in tables if not store.has_metrics(k))
    if missing:
        raise ValueError(f"profile={profile.name} of study {profile.study} is not complete in {store.root}: "
                         f"{len(missing)} of {len(models) + len(tables)} entries are missing (first {missing[0][:12]});"
                         f" run `pytest claims --kag-profile {profile.name} --kag-study {profile.study}` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    file = out_dir / archive_name(profile)
    count = export_archive(store, file, sorted(models | tables))
    published = Published(name=file.name, sha256=file_sha256(file), bytes=file.stat().st_size, url=url,
                          entries=count, profile=profile.name, study=profile.study)
    write_published(pins if pins is not None else default_pins(), published)
    return published
