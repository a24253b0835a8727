from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kag.cli import main
from kag.experiments.sealed_json import seal


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_json_describes_mnist(capsys):
    code, out, _ = run(capsys, "data", "--json")
    info = json.loads(out)
    assert code == 0
    assert info["train_shape"] == [60000, 28, 28] and info["test_shape"] == [10000, 28, 28]
    assert info["mean"] == pytest.approx(0.130660, abs=1e-6) and info["std"] == pytest.approx(0.308108, abs=1e-6)
    assert {"source", "root", "sha256"} <= set(info) and info["name"] == "mnist"


def test_train_json_then_cached(capsys):
    argv = ["train", "--width", "8", "--seeds", "0", "1", "--epochs", "1", "--profile", "smoke", "--device", "cpu", "--json"]
    code, out, _ = run(capsys, *argv)
    rows = json.loads(out)
    assert code == 0 and len(rows) == 2
    assert {"width", "seed", "regime", "epochs", "test_accuracy", "key", "seconds", "cached"} <= set(rows[0])
    assert [r["cached"] for r in rows] == [False, False] and rows[0]["regime"] == "standard" and rows[0]["epochs"] == 1
    code, out, _ = run(capsys, *argv)
    assert [r["cached"] for r in json.loads(out)] == [True, True]
    code, out, _ = run(capsys, *argv[:-1], "--augment", "--json")
    assert json.loads(out)[0]["regime"] == "augmented"
    code, out, _ = run(capsys, "cache", "ls", "--json")
    assert code == 0 and sum(e["kind"] == "model" for e in json.loads(out)) >= 4


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--width", "0"], "width=0"),
    (["train", "--width", "64", "--epochs", "-1"], "epochs=-1"),
    (["train", "--width", "64", "--epochs", "1000000000000"],
     "epochs=1000000000000 is not allowed: expected an integer in 1..100,000"),
    (["train", "--width", "64", "--profile", "huge"], "huge"),
    (["train", "--width", "64", "--device", "tpu"], "device='tpu'"),
    (["cache", "import", "/nonexistent/cache.tar.gz"], "does not exist"),
    (["cache", "rm", "not-a-key"], "key='not-a-key' is not a key"),
    (["data", "--dataset", "cifar"], "invalid choice: 'cifar' (choose from 'mnist', 'fashion-mnist', 'xor3d')"),
])
def test_bad_arguments_give_one_line_error_and_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("kag: error:")


def test_python_dash_m_kag_works():
    proc = subprocess.run([sys.executable, "-m", "kag", "train", "--width", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "width=0" in proc.stderr and "Traceback" not in proc.stderr


def test_corrupt_data_exits_1_not_2(capsys, monkeypatch, tmp_path, mnist):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in mnist.root.joinpath("MNIST", "raw").glob("*-ubyte"):
        raw.joinpath(f.name).write_bytes(f.read_bytes())
    label = raw / "t10k-labels-idx1-ubyte"
    blob = bytearray(label.read_bytes())
    blob[20] ^= 0xFF
    label.write_bytes(bytes(blob))
    monkeypatch.setenv("KAG_DATA", str(tmp_path))
    code, _, err = run(capsys, "data")
    assert code == 1 and "t10k-labels-idx1-ubyte" in err and len(err.strip().splitlines()) == 1


def test_corrupt_cache_exits_1_and_ls_flags_entries_of_other_code(capsys, monkeypatch, tmp_path):
    import kag.experiments.train

    monkeypatch.setenv("KAG_HOME", str(tmp_path))
    argv = ["train", "--width", "8", "--seeds", "0", "--epochs", "1", "--profile", "smoke", "--device", "cpu", "--json"]
    with monkeypatch.context() as m:  # an entry trained under an older trainer version: valid, but unreachable
        m.setattr(kag.experiments.train, "TRAINER_VERSION", kag.experiments.train.TRAINER_VERSION - 1)
        code, out, _ = run(capsys, *argv)
    old = json.loads(out)[0]["key"]
    code, out, _ = run(capsys, *argv)
    key = json.loads(out)[0]["key"]
    assert key != old
    manifest = tmp_path / "store" / "models" / key / "manifest.json"
    body = json.loads(manifest.read_text())
    manifest.write_bytes(seal({**body, "source_sha256": "0" * 64}))  # as if written by other code: still valid
    code, out, _ = run(capsys, "cache", "ls")
    assert out.splitlines()[0].split() == ["kind", "key", "family", "data", "width", "seed", "regime", "images",
                                           "epochs", "score", "profile"]
    lines = {line.split()[1]: line for line in out.splitlines()[1:]}
    assert code == 0 and set(lines) == {key[:12], old[:12]}
    assert "[made by other source code]" in lines[key[:12]] and "unreachable" not in lines[key[:12]]
    assert "[other versions: unreachable" in lines[old[:12]]
    weights = tmp_path / "store" / "models" / key / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    code, out, err = run(capsys, "cache", "verify")
    assert code == 1 and f"{key}/weights.safetensors" in err and "--repair" in out
    code, out, err = run(capsys, "cache", "verify", "--repair")
    assert code == 0 and err.startswith("removed:") and "1 problems removed; 1 entries verified" in out
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 0 and "1 entries verified" in out


def test_cache_rm_takes_the_prefix_ls_shows(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KAG_HOME", str(tmp_path))
    code, out, _ = run(capsys, "train", "--width", "8", "--seeds", "0", "--epochs", "1", "--profile", "smoke",
                       "--device", "cpu")
    prefix = out.splitlines()[0].split()[-1]  # the model line's last column: the key as shown
    assert len(prefix) == 12
    code, out, _ = run(capsys, "cache", "ls")
    assert out.splitlines()[1].split()[1] == prefix  # under the header
    code, out, err = run(capsys, "cache", "rm", prefix[:6])
    assert code == 2 and "12 to 64 hex digits" in err
    code, out, _ = run(capsys, "cache", "rm", prefix)
    assert code == 0 and out.strip() == f"removed {prefix}"
    code, out, err = run(capsys, "cache", "rm", prefix)
    assert code == 1 and "no cache entry" in err


def test_cache_import_lists_rejected_entries_and_exits_1(capsys, monkeypatch, tmp_path):
    import io
    import tarfile

    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    monkeypatch.setenv("KAG_HOME", str(tmp_path / "home"))
    code, out, err = run(capsys, "cache", "import", str(archive))
    assert code == 1 and "rejected ../evil.txt" in err and "0 new entries" in out and "1 rejected" in out
    assert not (tmp_path / "evil.txt").exists()


# -- arguments are validated before any work starts ---------------------------------------------
@pytest.fixture
def untouched_home(monkeypatch, tmp_path):
    """An empty KAG_HOME that a rejected command must leave uncreated; training fails the test."""
    import kag.experiments.pipeline

    def forbidden(*args, **kwargs):
        pytest.fail("trained although the arguments were bad")

    home = tmp_path / "home"
    monkeypatch.setenv("KAG_HOME", str(home))
    monkeypatch.setattr(kag.experiments.pipeline, "train_seeds", forbidden)
    return home


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--width", "1000000000"],
     "width=1000000000 is not allowed: the hidden width must be an integer in 1..65536"),
    (["train", "--width", "8", "--epochs", "0"], "epochs=0 is not allowed: expected an integer >= 1"),
    (["train", "--width", "8", "--seeds", "0", "0"], "seeds=[0, 0] repeat seed 0"),
    (["train", "--width", "8", "16", "8"], "widths=[8, 16, 8] repeat width 8"),
    (["train", "--width", "8", "--seeds", "4294967296"],
     "seed=4294967296 is not allowed: seeds are integers in 0..4294967295"),
    (["train", "--width", "8", "--seeds", "-1"], "seed=-1"),
    (["metrics", "--width", "1"], "ks asks for k=2, more than width=1"),
    (["metrics", "--width", "8", "2"], "ks asks for k=3, more than width=2"),
    (["metrics", "--width", "8", "--seeds", "0", "1250"], "seed=1250 with n_images=8 needs test images 10000..10007"),
    (["metrics", "--width", "8", "--epochs", "0"], "epochs=0"),
    (["metrics", "--width", "8", "--seeds", "1", "1"], "repeat seed 1"),
    (["metrics", "--width", "8", "8"], "repeat width 8"),
    (["metrics", "--width", "65537"], "width=65537"),
    (["metrics", "--width", "8", "--ks", "9"], "ks asks for k=9, more than width=8"),
    (["metrics", "--width", "8", "--ks", "0"], "k=0 is not allowed"),
    (["metrics", "--width", "8", "--n-samples", "0"], "n_samples=0 is not allowed"),
    (["metrics", "--width", "8", "--family", "resnet"], "invalid choice: 'resnet'"),
    (["train", "--width", "8", "--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["report", "--study", "cifar-cnn"], "study='cifar-cnn' is unknown: choose one of mnist-mlp"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_a_bad_request_fails_with_exit_2_before_any_work(capsys, untouched_home, argv, fragment):
    code, out, err = run(capsys, *argv, "--profile", "smoke", "--device", "cpu")
    assert code == 2 and out == ""
    assert fragment in err and err.startswith("kag: error:") and len(err.strip().splitlines()) == 1
    assert not untouched_home.exists()  # no store was opened, no data loaded, nothing trained


NOT_A_DIRECTORY = "is a file: it must be a directory (or a path that does not exist yet)"


def test_kag_home_or_kag_data_that_is_a_file_gives_one_line_naming_it(capsys, monkeypatch, tmp_path):
    file = tmp_path / "file"
    file.write_text("")
    monkeypatch.setenv("KAG_HOME", str(file))
    for argv in (["train", "--width", "8", "--seeds", "0", "--epochs", "1"], ["metrics", "--width", "8"]):
        code, _, err = run(capsys, *argv, "--profile", "smoke", "--device", "cpu")
        assert code == 1
        assert err == f"kag: error: KAG_HOME={file} {NOT_A_DIRECTORY}\n"
    monkeypatch.setenv("KAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAG_DATA", str(file))
    code, _, err = run(capsys, "data")
    assert code == 1 and err == f"kag: error: KAG_DATA={file} {NOT_A_DIRECTORY}\n"


def test_report_out_that_is_a_file_is_a_bad_argument(capsys, tmp_path):
    file = tmp_path / "report"
    file.write_text("")
    code, _, err = run(capsys, "report", "--profile", "smoke", "--out", str(file))
    assert code == 2 and err == f"kag: error: --out={file} {NOT_A_DIRECTORY}\n"
    code, _, err = run(capsys, "report", "--profile", "smoke", "--out", str(file / "sub"))
    assert code == 2 and err == f"kag: error: --out={file / 'sub'} cannot be a directory: {file} is a file\n"


@pytest.mark.parametrize("study, folder", [(None, "reports/smoke"), ("mnist-deep", "reports/studies/mnist-deep/smoke")])
def test_report_goes_to_its_studys_folder(capsys, monkeypatch, tmp_path, study, folder):
    import kag.repro.report

    written = {}

    def render_from_cache(profile_name, device=None, out_dir=None, study=None, not_reproduced="fail"):
        written.update(profile=profile_name, out_dir=out_dir, study=study, not_reproduced=not_reproduced)
        out_dir.mkdir(parents=True)
        (out_dir / "results.json").write_text("{}")
        return out_dir

    monkeypatch.setattr(kag.repro.report, "render_from_cache", render_from_cache)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAG_STUDY", raising=False)
    code, _, _ = run(capsys, "report", "--profile", "smoke", *(["--study", study] if study else []))
    assert code == 0 and written["out_dir"] == tmp_path / folder and written["study"] == study
    assert written["not_reproduced"] == "fail"  # pytest's default
    code, _, _ = run(capsys, "report", "--profile", "smoke", "--not-reproduced", "xfail", "--out", str(tmp_path / "x"))
    assert code == 0 and written["not_reproduced"] == "xfail"
    code, _, err = run(capsys, "report", "--profile", "smoke", "--not-reproduced", "skip")
    assert code == 2 and "invalid choice: 'skip'" in err


def test_an_os_error_is_reported_as_path_and_problem_not_errno(capsys, monkeypatch, tmp_path):
    import kag.repro.report

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/srv/reports/index.html")

    monkeypatch.setattr(kag.repro.report, "render_from_cache", denied)
    code, _, err = run(capsys, "report", "--profile", "smoke", "--out", str(tmp_path / "r"))
    assert code == 1 and err == "kag: error: /srv/reports/index.html: Permission denied\n"


def test_metrics_takes_epochs_like_train_and_says_when_it_trains(capsys, monkeypatch, tmp_path):
    import dataclasses

    import kag.experiments.analysis
    from kag.repro.profiles import SMOKE

    monkeypatch.setenv("KAG_HOME", str(tmp_path))
    asked = []

    def ensure_metrics(width, regime, seeds, train, config, **kwargs):
        asked.append((width, regime, seeds, train))
        return []

    monkeypatch.setattr(kag.experiments.analysis, "ensure_metrics", ensure_metrics)
    options = ["--width", "8", "--seeds", "0", "1", "--epochs", "1", "--profile", "smoke", "--device", "cpu"]
    code, _, err = run(capsys, "metrics", *options)
    assert code == 0 and err == "kag: training 2 models first (width 8 standard, seeds 0 1, 1 epoch)\n"
    assert asked == [(8, "standard", (0, 1), dataclasses.replace(SMOKE.train, epochs=1))]
    code, out, _ = run(capsys, "train", *options, "--json")  # the very models metrics asked for
    assert code == 0 and [r["epochs"] for r in json.loads(out)] == [1, 1]
    code, _, err = run(capsys, "metrics", *options)
    assert code == 0 and err == ""  # nothing to train
    code, _, err = run(capsys, "metrics", *options[:4], "--profile", "smoke", "--device", "cpu")
    assert err == "kag: training 1 model first (width 8 standard, seed 0, 2 epochs)\n"  # the profile's epochs


@pytest.mark.slow  # trains real models
def test_metrics_measures_any_family_with_its_flags_and_never_imports_the_reproduction(tmp_path):
    """kag metrics is a client of the core: a CNN on MNIST with the metric flags, in a fresh process
    that must not import kag.repro."""
    code = ("import sys, json\nfrom kag.cli import main\n"
            "rc = main(['metrics', '--family', 'cnn', '--width', '8', '--seeds', '0', '1', '--epochs', '1', "
            "'--profile', 'smoke', '--device', 'cpu', '--ks', '2', '--n-images', '4', '--n-samples', '60', "
            "'--sampling', 'support', '--no-spatial', '--json'])\n"
            "assert rc == 0, rc\n"
            "print('REPRO', sorted(m for m in sys.modules if m.startswith('kag.repro')))")
    env = {**os.environ, "KAG_HOME": str(tmp_path)}  # KAG_DATA: the session's data (tests/conftest.py)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out, repro = proc.stdout.rsplit("REPRO", 1)
    assert repro.strip() == "[]"
    tables = json.loads(out)
    assert len(tables) == 2 and all(t["meta"]["family"] == "cnn" for t in tables)
    layers = {row[4] for t in tables for row in t["table"]["rows"] if row[6] == "global"}
    assert layers == {"L1", "L2", "L3"}


def test_a_reader_that_goes_away_ends_the_command_quietly(capsys, monkeypatch):
    """`kag metrics --json | head`: the pipe closes mid-output; the command stops with no message, exit 0."""
    import kag.cli as cli

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_data", closed_pipe)
    assert main(["data"]) == 0
    assert capsys.readouterr().err == ""


def test_many_epochs_thin_the_timeline_instead_of_keeping_a_checkpoint_per_epoch():
    import kag.cli as cli

    args = cli.build_parser().parse_args(["train", "--width", "8", "--epochs", "5000", "--profile", "quick"])
    config = cli._training(args).config
    assert (config.epochs, config.checkpoint_every) == (5000, 6) and len(config.checkpoint_epochs()) <= 1000
    args = cli.build_parser().parse_args(["train", "--width", "8", "--epochs", "20", "--profile", "quick"])
    assert cli._training(args).config.checkpoint_every == 1  # the profile's cadence where it fits


def test_cache_ls_tells_apart_tables_that_differ_only_in_their_evaluation_images(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KAG_HOME", str(tmp_path))
    options = ["--width", "8", "--seeds", "0", "1", "--epochs", "1", "--profile", "smoke", "--device", "cpu",
               "--augment", "--no-spatial"]
    assert run(capsys, "metrics", *options)[0] == 0
    assert run(capsys, "metrics", *options, "--eval-images", "augmented")[0] == 0
    code, out, _ = run(capsys, "cache", "ls")
    header, *lines = out.splitlines()
    assert code == 0 and header.startswith("kind") and "images" in header.split()
    tables = [line.split() for line in lines if line.startswith("metrics")]
    assert len(tables) == 4 and len({" ".join(t) for t in tables}) == 4
    assert sorted(t[6] for t in tables) == ["clean", "clean", "shifted", "shifted"]
    models = [line.split() for line in lines if line.startswith("model")]
    assert len(models) == 2 and all(m[2:4] == ["mlp2", "mnist"] and m[-1].startswith("0.") for m in models)


def test_cache_ls_says_where_a_training_killed_mid_way_is_saved(capsys, monkeypatch, tmp_path):
    from kag.experiments.store import Store

    monkeypatch.setenv("KAG_HOME", str(tmp_path))
    assert run(capsys, "cache", "ls")[2] == ""
    path = Store().resume_path("train-abc", "d" * 64)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 3_000_000)
    code, out, err = run(capsys, "cache", "ls")
    assert code == 0 and out.startswith("(empty")
    assert err.strip() == (f"1 training saved mid-way in {path.parent} (3 MB): the command that started one resumes "
                           "it; delete the folder to start them over")


def test_kag_report_offers_the_same_not_reproduced_choices_as_pytest():
    """`kag report --not-reproduced` spells its choices out (the CLI imports no reproduction module to build
    its parser); they must stay those of pytest's --kag-not-reproduced."""
    import kag.cli as cli
    from kag.repro.report.assemble import NOT_REPRODUCED

    parser = cli.build_parser()
    assert parser.parse_args(["report"]).not_reproduced == "fail"
    for choice in NOT_REPRODUCED:
        assert parser.parse_args(["report", "--not-reproduced", choice]).not_reproduced == choice
    with pytest.raises(cli.UsageError) as refused:
        parser.parse_args(["report", "--not-reproduced", "skip"])
    assert str(refused.value).endswith(f"(choose from {', '.join(map(repr, NOT_REPRODUCED))})")
