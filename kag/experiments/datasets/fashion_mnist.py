"""Fashion-MNIST, offline and verified: torchvision's raw layout, else Debian's ``dataset-fashion-mnist``.

:func:`load_fashion_mnist` serves the four arrays from ``<root>/FashionMNIST/raw`` (torchvision's
layout, so ``torchvision.datasets.FashionMNIST(root, download=False)`` reads the same data) when it
exists. Otherwise it unpacks the four gzipped IDX files from Debian's package
``dataset-fashion-mnist`` (a ``.deb``: an ``ar`` archive whose ``data.tar.xz`` holds them under
``usr/share/datasets/fashion-mnist``; read in memory and never installed), found in
``$KAG_FASHION_DEB``, kept in ``<root>/downloads``, or fetched from Debian's archive (digest
pinned); where none works and a network exists, torchvision's own download. Every decoded array is
checked against a pinned SHA-256 digest, whatever its source.
"""

from __future__ import annotations

import functools
import hashlib
import io
import lzma
import os
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from kag.experiments.data import (FILES, ImageDataset, check_digest, combined_digest, gunzip, parse_idx, read_layout,
                                  read_or_convert, tensors, write_idx)
from kag.errors import CorruptDataError, DataUnavailableError
from kag.files import write_atomically
from kag.experiments.paths import data_dir
from kag.experiments.datasets import DatasetEntry

NAME = "fashion-mnist"
MEAN = 0.2860405969887955  # train pixel mean of x/255, computed from the pinned arrays
STD = 0.35302424451492254  # and its standard deviation

DEB_FILE = "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb"
DEB_URL = f"http://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist/{DEB_FILE}"
DEB_SHA256 = "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"
DEB_ENV = "KAG_FASHION_DEB"
DEB_FOLDER = "usr/share/datasets/fashion-mnist"
MAX_DEB_BYTES = 64 * 2**20  # the package is 30.9 MB; anything much larger is not it

# sha256 of np.ascontiguousarray(a, dtype=np.uint8).tobytes(), canonical order, labels as uint8;
# pinned from the Debian package (zalandoresearch/fashion-mnist at 55506a9).
SHA256 = {
    "train_images": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    "train_labels": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "test_images": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    "test_labels": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}


def raw_dir(root: str | Path) -> Path:
    """torchvision's raw folder for Fashion-MNIST under ``root``."""
    return Path(root) / "FashionMNIST" / "raw"


def ar_members(data: bytes, where: str) -> dict[str, bytes]:
    """The members of an ``ar`` archive (a ``.deb``), by name; CorruptDataError naming ``where`` if it is not one."""
    if not data.startswith(b"!<arch>\n"):
        raise CorruptDataError(f"{where}: not a Debian package (no ar archive header)")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise CorruptDataError(f"{where}: ar member header at byte {pos} has no size") from None
        if header[58:60] != b"`\n" or pos + 60 + size > len(data):
            raise CorruptDataError(f"{where}: ar member {name!r} at byte {pos} is truncated or malformed")
        members[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)  # members are 2-byte aligned
    if pos < len(data):
        raise CorruptDataError(f"{where}: ar archive is truncated at byte {pos} (a partial member header)")
    return members


def arrays_from_deb(data: bytes, where: str) -> dict[str, np.ndarray]:
    """The four verified arrays inside the package's bytes (read in memory, nothing written)."""
    members = ar_members(data, where)
    payload = next((members[n] for n in members if n.startswith("data.tar")), None)
    if payload is None:
        raise CorruptDataError(f"{where}: the package has no data.tar member")
    wanted = {f"{DEB_FOLDER}/{name}.gz": key for key, (name, _) in FILES.items()}
    arrays = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
            for member in tar:
                key = wanted.get(member.name.lstrip("./"))
                if key is None or not member.isfile():
                    continue
                shape = FILES[key][1]
                raw = gunzip(tar.extractfile(member).read(), 4 + 4 * len(shape) + int(np.prod(shape)),
                             f"{where}!{member.name}")
                arrays[key] = parse_idx(raw, FILES[key][1], f"{where}!{member.name}")
    except (tarfile.TarError, lzma.LZMAError, OSError, EOFError) as e:
        raise CorruptDataError(f"{where}: unreadable data.tar ({type(e).__name__}: {e})") from None
    missing = sorted(set(FILES) - set(arrays))
    if missing:
        raise CorruptDataError(f"{where}: the package lacks {', '.join(missing)} under {DEB_FOLDER}")
    for key, array in arrays.items():
        _verify(key, array, f"{where} ({key})")
    return arrays


def _verify(key: str, array: np.ndarray, where: str) -> None:
    check_digest(key, array, where, SHA256, "Fashion-MNIST", "Fashion-MNIST")


def _read_layout(root: Path) -> dict[str, np.ndarray] | None:
    return read_layout(raw_dir(root), _verify)


def _fetch_deb(dest: Path) -> Path:
    """Download the package from Debian's archive into ``dest`` (digest checked); RuntimeError with the reason."""
    try:
        with urllib.request.urlopen(DEB_URL, timeout=60) as response:
            data = response.read(MAX_DEB_BYTES + 1)
    except OSError as e:
        raise RuntimeError(f"{type(e).__name__}: {e}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != DEB_SHA256:
        raise RuntimeError(f"the download's sha256 is {actual}, expected {DEB_SHA256}")
    dest.mkdir(parents=True, exist_ok=True)
    write_atomically(dest / DEB_FILE, data)
    return dest / DEB_FILE


def _torchvision_download(root: Path) -> None:
    """torchvision's own download of Fashion-MNIST into ``root`` (where a network exists)."""
    from torchvision.datasets import FashionMNIST

    for train in (True, False):
        FashionMNIST(str(root), train=train, download=True)


def _convert(root: Path) -> str:
    """Write torchvision's layout under ``root`` from the first source that works; the source's name."""
    tried = [f"torchvision layout: no complete set of IDX files in {raw_dir(root)}"]
    candidates = [Path(os.environ[DEB_ENV]).expanduser()] if os.environ.get(DEB_ENV) else []
    candidates.append(root / "downloads" / DEB_FILE)
    deb = next((c for c in candidates if c.is_file()), None)
    tried += [f"package file: {c} does not exist" for c in candidates if c is not deb]
    if deb is None:
        try:
            deb = _fetch_deb(root / "downloads")
        except RuntimeError as e:
            tried.append(f"download of {DEB_URL} failed: {e}")
    if deb is not None:
        if deb.stat().st_size > MAX_DEB_BYTES:
            raise CorruptDataError(f"{deb}: {deb.stat().st_size:,} bytes, more than the package can be "
                                   f"({MAX_DEB_BYTES:,}): not {DEB_FILE}")
        arrays = arrays_from_deb(deb.read_bytes(), str(deb))
        raw_dir(root).mkdir(parents=True, exist_ok=True)
        for key, (name, _) in FILES.items():
            write_idx(raw_dir(root) / name, arrays[key])
        return "Debian dataset-fashion-mnist"
    try:
        _torchvision_download(root)
        return "torchvision download"
    except Exception as e:  # noqa: BLE001 - any failure of the last source is reported in the one line
        tried.append(f"torchvision's download failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    raise DataUnavailableError(
        f"Fashion-MNIST is not available (tried: {'; '.join(tried)}). Supply it by hand, any one of: place the four "
        f"IDX files ({', '.join(n for n, _ in FILES.values())}) under {raw_dir(root)}; or download {DEB_FILE} "
        f"(`apt-get download dataset-fashion-mnist`) and set {DEB_ENV} to its path")


@functools.lru_cache(maxsize=None)
def _load(root: Path) -> ImageDataset:
    arrays, source = read_or_convert(root, ".fashion-mnist.lock", _read_layout, _convert)
    return ImageDataset(**tensors(arrays), source=source, root=root, sha256=combined_digest(SHA256), name=NAME,
                        mean=MEAN, std=STD)


def load_fashion_mnist(root: str | Path | None = None) -> ImageDataset:
    """Fashion-MNIST from ``<root>/FashionMNIST/raw`` (default root: ``kag.experiments.paths.data_dir()``), unpacking
    Debian's package into that layout first if needed. Cached per process and root.

    Raises DataUnavailableError when no source works and CorruptDataError when a file is corrupt."""
    return _load(Path(root if root is not None else data_dir()).expanduser().resolve())


DATASETS_HERE = (DatasetEntry(name=NAME, load=load_fashion_mnist, sha256=SHA256,
                              description="Fashion-MNIST clothing images, 28 x 28 grey-scale, 10 classes (Zalando)"),)
