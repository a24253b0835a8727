"""A killed training goes on from its last saved state and ends exactly where an uninterrupted one does:
the same weights, timeline, loss and accuracy, bit for bit. A state that cannot be used is ignored with
one line, and the training starts again from its beginning."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kag.cli import main
from kag.experiments import resume
from kag.experiments.config import TrainConfig
from kag.experiments.pipeline import RESUME_ENV, ensure_models, resume_every_s
from kag.experiments.store import Store
from kag.experiments.train import train_seeds
from kag.files import write_atomically

TINY = TrainConfig(epochs=4, train_subset=1024, checkpoint_every=1, batch_size=128,
                   timeline_regimes=("standard", "augmented"))
CONFIGS = {
    "standard": ("standard", TINY),
    "translation": ("augmented", TINY),
    "affine": ("augmented", dataclasses.replace(TINY, rotate_deg=15.0, scale_range=(0.9, 1.1))),
}


class Killed(Exception):
    """Stands for a kill: the training stops between two epochs, after its state was saved."""


def _file(tmp_path: Path, identity: str = "a" * 64) -> resume.ResumeFile:
    return resume.ResumeFile(tmp_path / "state.safetensors", identity, write_atomically, every_s=0.0)


def _die_after(epoch: int):
    def on_epoch(done: int, seconds: float) -> None:
        if done == epoch + 1:  # the state of `epoch` was saved at its end; this epoch's work is lost
            raise Killed

    return on_epoch


def _assert_same(a, b) -> None:
    for sa, sb in zip(a.final_states, b.final_states):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [sorted(c) for c in a.checkpoints] == [sorted(c) for c in b.checkpoints]
    for ca, cb in zip(a.checkpoints, b.checkpoints):
        assert all(torch.equal(ca[e][k], cb[e][k]) for e in ca for k in ca[e])
    assert a.final_loss == b.final_loss and a.test_accuracy == b.test_accuracy
    assert a.shifted_test_accuracy == b.shifted_test_accuracy


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_killed_training_resumed_ends_bit_for_bit_where_an_uninterrupted_one_does(mnist, tmp_path, name):
    regime, config = CONFIGS[name]
    whole = train_seeds(8, (0, 1), regime, config, mnist, "cpu")
    saved = _file(tmp_path)
    with pytest.raises(Killed):
        train_seeds(8, (0, 1), regime, config, mnist, "cpu", resume=saved, on_epoch=_die_after(2))
    state = resume.read(saved.path, saved.identity, _expected(mnist, config), config.epochs, _keep(config))
    assert state.epoch == 2 and sorted(state.checkpoints[0]) == [0, 1, 2]
    resumed = train_seeds(8, (0, 1), regime, config, mnist, "cpu", resume=saved)
    _assert_same(resumed, whole)
    assert resumed.seconds >= state.seconds  # the time of the killed attempt counts


def _keep(config: TrainConfig) -> set[int]:
    return set(config.checkpoint_epochs())


def _expected(mnist, config: TrainConfig, width: int = 8, m: int = 2):
    from kag.experiments.families import get_family
    from kag.experiments.train import stream_generator

    fam = get_family("mlp2")
    params = fam.init_params(width, [stream_generator(s, "init") for s in range(m)])
    gen_bytes = stream_generator(0, "order").get_state().numel()
    snapshot = {n: tuple(params[n].shape[1:]) for n in fam.checkpoint_params()}
    return resume.expected_tensors(params, m, gen_bytes, snapshot, _keep(config))


def _killed_state(mnist, tmp_path, identity: str = "a" * 64) -> resume.ResumeFile:
    saved = _file(tmp_path, identity)
    with pytest.raises(Killed):
        train_seeds(8, (0, 1), "standard", TINY, mnist, "cpu", resume=saved, on_epoch=_die_after(2))
    return saved


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, why", [
    (_flip_last_byte, "do not match the digest it records"),
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), "not a safetensors file"),
    (lambda p: p.write_bytes(b"\x80\x04pickle"), "not a safetensors file"),
])
def test_a_damaged_state_is_ignored_with_one_line_and_training_starts_again(mnist, tmp_path, capfd, monkeypatch,
                                                                             damage, why):
    saved = _killed_state(mnist, tmp_path)
    damage(saved.path)
    monkeypatch.setenv("KAG_QUIET", "1")  # progress silenced: the work thrown away is still said
    group = train_seeds(8, (0, 1), "standard", TINY, mnist, "cpu", resume=saved)
    err = capfd.readouterr().err
    assert f"ignored the saved training state {saved.path}" in err and why in err and "training from the start" in err
    assert "resumed" not in err
    _assert_same(group, train_seeds(8, (0, 1), "standard", TINY, mnist, "cpu"))


def test_a_state_is_used_only_by_its_own_training(mnist, tmp_path):
    saved = _killed_state(mnist, tmp_path)
    with pytest.raises(resume.UnusableState, match="belongs to another training"):
        resume.read(saved.path, "b" * 64, _expected(mnist, TINY), TINY.epochs, _keep(TINY))
    with pytest.raises(resume.UnusableState, match="not those of this training"):  # another width
        resume.read(saved.path, saved.identity, _expected(mnist, TINY, width=16), TINY.epochs, _keep(TINY))
    with pytest.raises(resume.UnusableState, match="out of range"):  # a state at or past the last epoch
        resume.read(saved.path, saved.identity, _expected(mnist, TINY), 2, _keep(TINY))


def test_the_store_removes_the_state_once_the_models_are_in(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv(RESUME_ENV, "0")
    store = Store(tmp_path / "store")
    config = dataclasses.replace(TINY, epochs=2)
    ensure_models(8, (0,), "standard", config, device="cpu", store=store, mnist=mnist)
    assert store.has_model(ensure_models(8, (0,), "standard", config, device="cpu", store=store, mnist=mnist)[0].key)
    assert not list((store.root / "resume").glob("*"))  # the state of epoch 1 was written, then removed
    assert store.problems() == []


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_a_bad_save_interval_is_a_one_line_error(monkeypatch, capsys, value):
    monkeypatch.setenv(RESUME_ENV, value)
    with pytest.raises(ValueError, match=f"{RESUME_ENV}='{value}' is not allowed: expected a number of seconds"):
        resume_every_s()
    assert main(["train", "--width", "8", "--seeds", "0", "--epochs", "1", "--profile", "smoke"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


TRAIN = ["train", "--width", "8", "--seeds", "0", "1", "--epochs", "40", "--profile", "smoke", "--device", "cpu"]


def _kag(home: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kag", *TRAIN], env={**os.environ, "KAG_HOME": str(home),
                            "OMP_NUM_THREADS": "1", "KAG_QUIET": "0", **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _weights(home: Path) -> dict[str, dict[str, torch.Tensor]]:
    store = Store(home / "store")
    return {key: store.load_model(key)[0] for key in store.keys() if store.has_model(key)}


@pytest.mark.slow
def test_kill_minus_9_mid_training_then_the_same_command_resumes_and_matches_a_clean_run(tmp_path):
    clean = _kag(tmp_path / "clean")
    assert clean.wait(timeout=300) == 0, clean.stderr.read()
    home = tmp_path / "killed"
    proc = _kag(home, **{RESUME_ENV: "0"})
    deadline = time.monotonic() + 120
    while not list((home / "store" / "resume").glob("*.safetensors")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few epochs more, so the state on disk is a later one
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the training ended before it could be killed: raise its epochs"
    again = _kag(home, **{RESUME_ENV: "0"})
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "resumed at epoch" in err
    resumed_at = int(re.search(r"resumed at epoch (\d+)", err).group(1))
    (event,) = [e for e in Store(home / "store").events() if e["kind"] == "train"]  # the killed run logged none
    # what this process did, for the sweep's pace (kag.repro.sweep.eta): a resumed training's own epochs
    assert event["epochs_run"] == event["epochs"] - resumed_at and 0 < event["seconds_run"] < event["seconds"]
    clean_weights, resumed_weights = _weights(tmp_path / "clean"), _weights(home)
    assert sorted(clean_weights) == sorted(resumed_weights) and len(clean_weights) == 2
    for key, tensors in clean_weights.items():
        assert all(torch.equal(tensors[name], resumed_weights[key][name]) for name in tensors)
    assert not list((home / "store" / "resume").glob("*.safetensors"))
    # left behind by the kill: the dead process's progress record, and perhaps a state it was writing
    assert all(p.path.parent.name == "training" or p.path.name.startswith(".tmp-")
               for p in Store(home / "store").problems())
