"""Fashion-MNIST from Debian's package: the ar/tar/gzip reading, the pinned digests, and one-line errors."""

from __future__ import annotations

import gzip
import io
import tarfile
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import kag.experiments.datasets.fashion_mnist as fashion
from kag.experiments.data import FILES, ImageDataset, normalize
from kag.experiments.datasets import DATASETS, load_dataset
from kag.errors import CorruptDataError, DataUnavailableError

ROOT = Path(__file__).resolve().parents[1]


def _ar(members: dict[str, bytes]) -> bytes:
    """An ar archive (the container of a .deb), written by hand from the format."""
    out = b"!<arch>\n"
    for name, data in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}".encode() + b"`\n"
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


def _idx(array: np.ndarray) -> bytes:
    magic = {3: 2051, 1: 2049}[array.ndim]
    return magic.to_bytes(4, "big") + np.asarray(array.shape, ">i4").tobytes() + array.astype(np.uint8).tobytes()


def _deb(files: dict[str, bytes], compression: str = "gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{fashion.DEB_FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return _ar({"debian-binary": b"2.0\n", "control.tar.xz": b"", f"data.tar.{compression}": buffer.getvalue()})


def test_ar_members_are_read_by_name_and_malformed_archives_are_refused():
    members = {"debian-binary": b"2.0\n", "odd": b"abc", "data.tar.xz": b"xyz!"}
    assert fashion.ar_members(_ar(members), "p.deb") == members
    with pytest.raises(CorruptDataError, match=r"^p.deb: not a Debian package"):
        fashion.ar_members(b"PK\x03\x04", "p.deb")
    with pytest.raises(CorruptDataError, match=r"ar archive is truncated at byte \d+"):
        fashion.ar_members(_ar(members)[:-20], "p.deb")  # into the last member's header
    with pytest.raises(CorruptDataError, match=r"ar member 'data.tar.xz' at byte \d+ is truncated or malformed"):
        fashion.ar_members(_ar(members)[:-2], "p.deb")  # into the last member's data


def test_a_package_with_the_wrong_arrays_is_refused_naming_the_member():
    files = {f"{name}.gz": gzip.compress(_idx(np.zeros(shape, np.uint8)), compresslevel=1)  # right shapes, wrong data
             for name, shape in FILES.values()}
    with pytest.raises(CorruptDataError, match=r"fake.deb \(\w+\): \w+ does not match the pinned Fashion-MNIST digest"):
        fashion.arrays_from_deb(_deb(files), "fake.deb")
    small = dict(files, **{"t10k-labels-idx1-ubyte.gz": gzip.compress(_idx(np.zeros(5, np.uint8)))})
    with pytest.raises(CorruptDataError, match="t10k-labels-idx1-ubyte.gz: IDX header says .* dims=\\(5,\\)"):
        fashion.arrays_from_deb(_deb(small), "fake.deb")
    with pytest.raises(CorruptDataError, match="the package lacks test_images, test_labels"):
        fashion.arrays_from_deb(_deb({k: v for k, v in files.items() if k.startswith("train")}), "fake.deb")
    with pytest.raises(CorruptDataError, match="the package lacks test_images"):  # Debian's own compression, xz
        fashion.arrays_from_deb(_deb({"t10k-labels-idx1-ubyte.gz": files["t10k-labels-idx1-ubyte.gz"]}, "xz"), "fake.deb")
    with pytest.raises(CorruptDataError, match="has no data.tar member"):
        fashion.arrays_from_deb(_ar({"debian-binary": b"2.0\n"}), "fake.deb")


def test_a_gzip_bomb_is_refused_before_it_fills_memory():
    bomb = gzip.compress(b"\0" * 10_000_000)  # 10 MB of zeros in ~10 kB
    with pytest.raises(CorruptDataError, match="inflates beyond the 7,858 bytes"):
        fashion.gunzip(bomb, 7_858, "labels.gz")
    assert fashion.gunzip(gzip.compress(b"abc"), 3, "x") == b"abc"
    with pytest.raises(CorruptDataError, match="^x: not a gzip file"):
        fashion.gunzip(b"not gzip", 3, "x")


def test_no_source_is_one_line_naming_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.delenv(fashion.DEB_ENV, raising=False)
    monkeypatch.setattr(fashion, "_fetch_deb", lambda dest: (_ for _ in ()).throw(RuntimeError("URLError: offline")))

    def no_torchvision(root):
        raise RuntimeError("no network")

    monkeypatch.setattr(fashion, "_torchvision_download", no_torchvision)
    with pytest.raises(DataUnavailableError) as info:
        fashion.load_fashion_mnist(tmp_path)
    message = str(info.value)
    assert "\n" not in message and message.startswith("Fashion-MNIST is not available (tried: torchvision layout")
    assert "download of http://deb.debian.org/" in message and "URLError: offline" in message
    assert "apt-get download dataset-fashion-mnist" in message and fashion.DEB_ENV in message


def test_the_registry_names_its_datasets_and_refuses_others():
    assert set(DATASETS) == {"mnist", "fashion-mnist", "xor3d"}
    with pytest.raises(ValueError, match="dataset='cifar10' is unknown: use one of 'mnist', 'fashion-mnist', 'xor3d'"):
        load_dataset("cifar10")


_NEW_DATASET = '''
import torch

from kag.experiments.data import ImageDataset
from kag.experiments.datasets import DatasetEntry

SHA256 = {name: "0" * 64 for name in ("train_images", "train_labels", "test_images", "test_labels")}


def load_blank(root=None):
    images, labels = torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64)
    return ImageDataset(images, labels, images, labels, "made here", root, "0", name="blank")


DATASETS_HERE = (DatasetEntry(name="blank", load=load_blank, sha256=SHA256, description="four blank images"),)
'''


def test_a_dataset_added_as_one_file_is_found_loaded_and_digested(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "kag", copy / "kag", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "kag" / "experiments" / "datasets" / "blank.py").write_text(_NEW_DATASET)
    code = ("from kag.experiments.datasets import DATASETS, load_dataset, pinned_digest\n"
            "print(list(DATASETS), load_dataset('blank').name, len(pinned_digest('blank')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=copy, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["['mnist',", "'blank',", "'fashion-mnist',", "'xor3d']", "blank", "64"]


def test_a_dataset_normalises_with_its_own_statistics():
    images = torch.full((2, 28, 28), 73, dtype=torch.uint8)
    labels = torch.zeros(2, dtype=torch.int64)
    fake = ImageDataset(images, labels, images, labels, "hand-made", Path("."), "0", name="f", mean=0.5, std=0.25)
    assert torch.allclose(fake.normalize(images), torch.full((2, 784), (73 / 255 - 0.5) / 0.25))
    mnist_like = ImageDataset(images, labels, images, labels, "hand-made", Path("."), "0")
    assert torch.equal(mnist_like.normalize(images), normalize(images))  # MNIST's statistics by default


@pytest.mark.slow
def test_fashion_mnist_loads_verified_from_the_debian_package(tmp_path, monkeypatch):
    """The real package (from the shared data folder when it is there, else Debian's archive): the
    arrays match the pinned digests, and the unpacked layout serves the next call."""
    from kag.experiments.paths import data_dir

    kept = data_dir() / "downloads" / fashion.DEB_FILE
    if kept.is_file():
        monkeypatch.setenv(fashion.DEB_ENV, str(kept))
    data = fashion.load_fashion_mnist(tmp_path)
    assert data.name == "fashion-mnist" and data.source in ("Debian dataset-fashion-mnist", "torchvision download")
    assert tuple(data.train_images.shape) == (60000, 28, 28) and tuple(data.test_labels.shape) == (10000,)
    assert data.train_labels.bincount().tolist() == [6000] * 10
    assert abs(float(data.train_images.double().div(255).mean()) - fashion.MEAN) < 1e-12
    fashion._load.cache_clear()
    assert fashion.load_fashion_mnist(tmp_path).source == "torchvision-layout"
