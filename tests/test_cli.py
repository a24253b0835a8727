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
    monkeypatch.setenv("KAG_HOME", str(tmp_path))
    code, out, _ = run(capsys, "train", "--width", "8", "--seeds", "0", "--epochs", "1", "--profile", "smoke",
                       "--device", "cpu", "--json")
    key = json.loads(out)[0]["key"]
    manifest = tmp_path / "store" / "models" / key / "manifest.json"
    body = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**body, "source_sha256": "0" * 64}))
    code, out, _ = run(capsys, "cache", "ls")
    assert code == 0 and "[made by other source code]" in out and "unreachable" not in out
    manifest.write_text(json.dumps({**body, "versions": {**body["versions"], "trainer": 0}}))
    code, out, _ = run(capsys, "cache", "ls")
    assert "[other versions: unreachable" in out
    weights = tmp_path / "store" / "models" / key / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    manifest.write_text(json.dumps(body))
    code, _, err = run(capsys, "cache", "verify")
    assert code == 1 and "weights.safetensors" in err and err.startswith("kag: error:")
