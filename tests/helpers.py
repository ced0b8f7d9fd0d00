"""Helpers the test modules share (test modules never import each other)."""

from __future__ import annotations

import pickle
import time

import numpy as np

from nas.config import Network
from nas.evaluate import data
from nas.evaluate.settings import ProxySettings

#: A two-stage network that trains in a fraction of a second, and a recipe that does so.
TINY = Network.from_dict({"stem": {"kind": "simple", "width": 8}, "stages": [
    {"block": "resnext", "depth": 1, "width": 16, "group_w": 8},
    {"block": "resnext", "depth": 2, "width": 32, "group_w": 8}]})
QUICK = ProxySettings(epochs=1, train_images=100, val_images=50, batch_size=25, threads=1,
                      bn_batches=2)


def wait_for(condition, timeout: float = 300, every: float = 0.5) -> None:
    """Return once ``condition()`` is true; fail the test when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s"
        time.sleep(every)


CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


def random_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (NHWC uint8), each a flat colour (so JPEG keeps it), labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (n, 1, 1, 3), dtype=np.uint8)
    return np.broadcast_to(colours, (n, 32, 32, 3)).copy(), np.arange(n) % 10


def write_batches(root, per_batch: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """The python batches format (five training batches, a test batch and batches.meta, pickled
    dicts with bytes keys as in the official archive) under root."""
    folder = root / data.BATCHES
    folder.mkdir(parents=True)
    parts = {}
    for i, name in enumerate((*data.TRAIN_FILES, "test_batch")):
        images, labels = random_images(per_batch, seed + i)
        flat = images.transpose(0, 3, 1, 2).reshape(per_batch, -1)
        batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": flat,
                 b"filenames": [f"{name}_{j}.png".encode() for j in range(per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        parts[name] = (images, labels)
    meta = {b"num_cases_per_batch": per_batch, b"num_vis": 3072,
            b"label_names": [c.encode() for c in CLASSES]}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f)
    train = [parts[name] for name in data.TRAIN_FILES]
    return {"train_images": np.concatenate([p[0] for p in train]),
            "train_labels": np.concatenate([p[1] for p in train]),
            "test_images": parts["test_batch"][0], "test_labels": parts["test_batch"][1]}
