from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kag.cli import main


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
    assert {"source", "root", "sha256"} <= set(info)


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
    (["train", "--width", "64", "--profile", "huge"], "huge"),
    (["train", "--width", "64", "--device", "tpu"], "device='tpu'"),
    (["cache", "import", "/nonexistent/cache.tar.gz"], "does not exist"),
    (["cache", "rm", "not-a-key"], "not a cache key"),
])
def test_bad_arguments_give_one_line_error_and_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("kag: error:")


def test_python_dash_m_kag_works():
    proc = subprocess.run([sys.executable, "-m", "kag", "train", "--width", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "width=0" in proc.stderr and "Traceback" not in proc.stderr
