"""CIFAR-10 for the proxy: sources, a download on first use, a decoded uint8 cache, fixed
splits and tensor batches.

Two sources give the same arrays: the python batches folder (``cifar-10-batches-py``, what
torchvision downloads) and an ImageFolder tree of images (``train/<class>/*.jpg``,
``test/<class>/*.jpg``, labels in sorted folder order). The data is read from the folder the
caller names, else from ``NAS_DATA``, else from ``downloads/`` in the cache directory
(``NAS_CACHE``, else ``~/.cache/nas``), where the first load downloads the official archive,
checks its MD5 and unpacks it. A folder the user names is downloaded into only when asked.
``NAS_CIFAR10_URL`` replaces the archive's address (a mirror) and ``NAS_CIFAR10_MD5`` its
expected MD5 (another archive, such as the tests' own). A source is decoded once into ``.npy``
arrays under the cache directory, keyed by the source's path and its files' sizes and
modification times; later loads memory-map them, and a changed source's new entry replaces its
old one.

Proxy-train and proxy-validation subsets are both drawn, stratified and seeded, from the
training split: the test split stays untouched for final reporting. Batches are cut from
in-memory tensors and augmented on tensors (padded random crop, horizontal flip).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nas.errors import NasError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
OLD_ENTRY = re.compile(r"cifar10-[0-9a-f]{16}")  # the cache's names before WHERE-WHAT
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
TIMEOUT = 60  # seconds without a byte before a download gives up
HOW_TO_SUPPLY = (f"give a copy ('{BATCHES}' or an ImageFolder tree of train/ and test/) with "
                 "--data DIR or the NAS_DATA environment variable")


class DataError(NasError):
    """A missing or corrupt data set; the message says how to supply it."""


@dataclass(frozen=True)
class Cifar10:
    """Images as (N, 32, 32, 3) uint8 arrays (possibly memory-mapped) and int64 labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def load(root: str | Path | None = None, download: bool = False) -> Cifar10:
    """CIFAR-10 from ``root``, else ``NAS_DATA``, else the download folder (filled on first use;
    ``download`` fills a given folder too), decoded through the cache."""
    given = root or os.environ.get("NAS_DATA")
    root = Path(given).expanduser() if given else download_dir()
    if _find(root) is None and (download or not given):
        fetch(root)
    found = _find(root)
    if found is None:
        raise DataError(f"{root}: no CIFAR-10 found there; {HOW_TO_SUPPLY}, or give neither to "
                        "download it into the cache")
    source, kind = found
    files = _source_files(source, kind)
    key = _key(source, files)
    entry = cache_dir() / f"cifar10-{key}"
    if entry.exists():
        try:
            return _read_cache(entry)
        except (OSError, ValueError, EOFError):  # damaged (truncated, emptied): decode again
            shutil.rmtree(entry, ignore_errors=True)
    decode = _decode_batches if kind == "batches" else _decode_folder
    arrays = decode(source, files)
    _write_cache(entry, arrays)
    if _key(source, _source_files(source, kind)) == key:  # (about 1 s for 60,000 files)
        _drop_stale(entry)  # only while the source is still what was decoded
    try:
        return _read_cache(entry)
    except (OSError, ValueError, EOFError):  # removed meanwhile by a process with newer files
        return Cifar10(**arrays)


def _read_cache(entry: Path) -> Cifar10:
    """The cached arrays, memory-mapped; OSError, ValueError or EOFError if any is missing or
    damaged."""
    arrays = [np.load(entry / f"{f.name}.npy", mmap_mode="r") for f in fields(Cifar10)]
    if len(arrays[0]) != len(arrays[1]) or len(arrays[2]) != len(arrays[3]):
        raise ValueError(f"{entry}: images and labels differ in number")
    return Cifar10(*arrays)


def cache_dir() -> Path:
    return Path(os.environ.get("NAS_CACHE") or Path.home() / ".cache" / "nas")


def download_dir() -> Path:
    """Where CIFAR-10 is downloaded when no folder is given."""
    return cache_dir() / "downloads"


def fetch(root: Path) -> None:
    """Download the archive, check its MD5 and unpack the python batches into ``root``.

    Everything happens in a temporary folder of this process inside ``root`` and the batches
    folder is renamed into place at the end: an interrupted download leaves nothing that counts
    as data, and concurrent downloads do not mix."""
    url = os.environ.get("NAS_CIFAR10_URL") or URL
    md5 = os.environ.get("NAS_CIFAR10_MD5") or MD5
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        archive = Path(tmp) / Path(URL).name
        digest = _download(url, archive)
        if digest != md5:
            raise DataError(f"download of {url} is corrupt (MD5 {digest}, expected {md5}) and "
                            "was removed; run again to retry")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        try:
            (Path(tmp) / BATCHES).rename(root / BATCHES)
        except OSError:  # a concurrent download finished first, or a broken copy is in the way
            if _find(root) is None:
                raise DataError(f"{root / BATCHES}: incomplete; {_mend(root / BATCHES)}") \
                    from None
    print(f"CIFAR-10 downloaded to {root / BATCHES} (MD5 checked)", file=sys.stderr)


def _download(url: str, path: Path) -> str:
    """Copy ``url`` to ``path`` with a progress bar on stderr; the MD5 of what arrived."""
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(path, "wb") as out:
            size = int(response.headers.get("Content-Length", 0)) or None
            with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                      desc="downloading CIFAR-10", leave=False, file=sys.stderr) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    md5.update(chunk)
                    bar.update(len(chunk))
    except (OSError, ValueError, http.client.HTTPException) as e:
        reason = e.reason if type(e) is urllib.error.URLError else e  # not "<urlopen error ...>"
        raise DataError(f"could not download CIFAR-10 from {url} ({reason}); {HOW_TO_SUPPLY}") \
            from None
    return md5.hexdigest()


def _find(root: Path) -> tuple[Path, str] | None:
    """The folder holding the data under ``root`` and its format, if there is one."""
    for folder in (root / BATCHES, root):
        if (folder / "test_batch").exists():
            return folder, "batches"
    if (root / "train").is_dir() and (root / "test").is_dir():
        return root, "folder"
    return None


def _source_files(source: Path, kind: str) -> list[Path]:
    if kind == "batches":
        files = [source / name for name in (*TRAIN_FILES, "test_batch")]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise DataError(f"{source}: missing {', '.join(missing)}; {_mend(source)}")
        return files
    return sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _mend(path: Path) -> str:
    """How to mend a missing or corrupt file of the data: download again or replace it."""
    if path.is_relative_to(download_dir()):
        return f"delete {download_dir()} to download CIFAR-10 again"
    return "replace it with an intact copy"


def _key(source: Path, files: list[Path]) -> str:
    """``WHERE-WHAT``: a hash of the host and the source's path (nodes sharing a cache folder
    keep their own entries), and one of every file's relative path, size and modification
    time."""
    where = hashlib.sha256(f"{socket.gethostname()}:{source.resolve()}".encode()).hexdigest()[:8]
    what = hashlib.sha256()
    for f in files:
        st = f.stat()
        what.update(f"{f.relative_to(source)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return f"{where}-{what.hexdigest()[:12]}"


def _drop_stale(entry: Path) -> None:
    """Remove the entries of ``entry``'s source from before it changed: a data set copied again
    (new modification times) replaces its 180 MB of arrays instead of adding to them. Entries
    named by the earlier scheme (``cifar10-`` and one 16-digit hash), which nothing reads any
    more, go too. A process still reading a removed entry keeps its memory map."""
    where = entry.name.rsplit("-", 1)[0]
    stale = [*entry.parent.glob(f"{where}-*"),
             *(p for p in entry.parent.glob("cifar10-*") if OLD_ENTRY.fullmatch(p.name))]
    for path in stale:
        if path != entry:
            shutil.rmtree(path, ignore_errors=True)


def _decode_batches(source: Path, files: list[Path]) -> dict[str, np.ndarray]:
    def read(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for path in paths:
            try:
                with open(path, "rb") as f:
                    batch = pickle.load(f, encoding="bytes")
                images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
                labels.append(np.asarray(batch[b"labels"], np.int64))
            except Exception as e:
                raise DataError(f"{path}: corrupt CIFAR-10 batch ({e}); {_mend(path)}") \
                    from None
        return np.concatenate(images).transpose(0, 2, 3, 1), np.concatenate(labels)

    train_images, train_labels = read(files[:-1])
    test_images, test_labels = read(files[-1:])
    return dict(train_images=train_images, train_labels=train_labels,
                test_images=test_images, test_labels=test_labels)


def _decode_folder(source: Path, files: list[Path]) -> dict[str, np.ndarray]:
    from PIL import Image

    classes = sorted(p.name for p in (source / "train").iterdir() if p.is_dir())
    if len(classes) != 10:
        raise DataError(f"{source / 'train'}: expected 10 class folders, found {len(classes)}; "
                        f"{HOW_TO_SUPPLY}")
    arrays = {}
    for split in ("train", "test"):
        paths = [f for f in files if f.relative_to(source).parts[0] == split]
        images = np.empty((len(paths), 32, 32, 3), np.uint8)
        for i, path in enumerate(paths):
            try:
                with Image.open(path) as im:
                    images[i] = np.asarray(im.convert("RGB"))
            except Exception as e:
                raise DataError(f"{path}: unreadable 32x32 image ({e}); {_mend(path)}") \
                    from None
        try:
            labels = [classes.index(p.parent.name) for p in paths]
        except ValueError:
            raise DataError(f"{source / split}: class folders differ from train/'s") from None
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, np.array(labels, np.int64)
    return arrays


def _write_cache(entry: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays to a temporary folder and rename it: concurrent workers never see half."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".partial-"))
    for name, array in arrays.items():
        np.save(tmp / f"{name}.npy", array)
    try:
        tmp.rename(entry)
    except OSError:  # another process finished first
        shutil.rmtree(tmp)


def stratified_split(labels: np.ndarray, n_train: int, n_val: int,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint train and validation indices, each with an equal share of every class.

    Validation images come from the end of each class's seeded order and training images from
    its start, so for one seed the validation set does not depend on ``n_train``, and a larger
    training set contains a smaller one."""
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    t, v = n_train // len(classes), n_val // len(classes)
    if any(len(idx) < t + v for idx in per_class):
        raise DataError(f"cannot take {n_train} + {n_val} images from a training split of "
                        f"{len(labels)}")
    train = np.concatenate([idx[:t] for idx in per_class])
    val = np.concatenate([idx[len(idx) - v:] for idx in per_class])
    return rng.permutation(train), rng.permutation(val)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC images to normalized float NCHW, stored channels-last."""
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float().div_(255)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop of a zero-padded (normalized mean) batch and random horizontal flip."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n, 1, 1, 1), generator=generator)
    rows = (dy + torch.arange(h).view(1, 1, h, 1)).expand(n, c, h, w + 2 * pad)
    cols = (dx + torch.arange(w).view(1, 1, 1, w)).expand(n, c, h, w)
    crops = padded.gather(2, rows).gather(3, cols)
    flip = torch.rand(n, generator=generator) < 0.5
    crops = torch.where(flip[:, None, None, None], crops.flip(3), crops)
    return crops.contiguous(memory_format=torch.channels_last)


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int,
            generator: torch.Generator | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of batches; shuffled and augmented when a generator is given, else in order.

    A last incomplete batch is dropped when shuffling (batch norm dislikes tiny batches)."""
    if generator is None:
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
        return
    order = torch.randperm(len(x), generator=generator)
    for i in range(0, len(x) - batch_size + 1, batch_size):
        idx = order[i:i + batch_size]
        yield augment(x[idx], generator), y[idx]
