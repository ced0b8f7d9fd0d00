"""CIFAR-10 sources, cache, splits and tensor augmentation, on small data written here."""

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from nas.evaluate import data

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


def random_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (NHWC uint8), each a flat colour (so JPEG keeps it), labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (n, 1, 1, 3), dtype=np.uint8)
    return np.broadcast_to(colours, (n, 32, 32, 3)).copy(), np.arange(n) % 10


def write_batches(root, per_batch: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """The python batches format (five training batches and a test batch) under root."""
    folder = root / data.BATCHES
    folder.mkdir(parents=True)
    parts = {}
    for i, name in enumerate((*data.TRAIN_FILES, "test_batch")):
        images, labels = random_images(per_batch, seed + i)
        flat = images.transpose(0, 3, 1, 2).reshape(per_batch, -1)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": flat, b"labels": labels.tolist()}, f)
        parts[name] = (images, labels)
    train = [parts[name] for name in data.TRAIN_FILES]
    return {"train_images": np.concatenate([p[0] for p in train]),
            "train_labels": np.concatenate([p[1] for p in train]),
            "test_images": parts["test_batch"][0], "test_labels": parts["test_batch"][1]}


def write_folder(root, per_class: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """An ImageFolder tree of JPEGs, train/<class>/ and test/<class>/, under root."""
    arrays = {}
    for split, offset in (("train", 0), ("test", 100)):
        images, labels = random_images(10 * per_class, seed + offset)
        order = np.argsort(labels, kind="stable")  # files are read in class-folder order
        for i, (image, label) in enumerate(zip(images[order], labels[order])):
            folder = root / split / CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:04d}.jpg", quality=95)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images[order], labels[order]
    return arrays


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NAS_DATA", raising=False)
    return tmp_path / "cache"


def test_python_batches_load_exactly(tmp_path):
    expected = write_batches(tmp_path / "cifar")
    loaded = data.load(tmp_path / "cifar")
    for name, array in expected.items():
        np.testing.assert_array_equal(getattr(loaded, name), array)


def test_batches_folder_itself_and_nas_data_work(tmp_path, monkeypatch):
    expected = write_batches(tmp_path)
    monkeypatch.setenv("NAS_DATA", str(tmp_path / data.BATCHES))
    np.testing.assert_array_equal(data.load().test_images, expected["test_images"])


def test_image_folder_loads_with_labels_in_folder_order(tmp_path):
    expected = write_folder(tmp_path / "cifar")
    loaded = data.load(tmp_path / "cifar")
    for split in ("train", "test"):
        np.testing.assert_array_equal(getattr(loaded, f"{split}_labels"),
                                      expected[f"{split}_labels"])
        error = np.abs(getattr(loaded, f"{split}_images").astype(int)
                       - expected[f"{split}_images"])
        assert error.max() <= 3  # JPEG keeps flat colours nearly exactly


def test_cache_is_reused_memory_mapped(tmp_path, cache, monkeypatch):
    write_batches(tmp_path / "cifar")
    first = data.load(tmp_path / "cifar")
    monkeypatch.setattr(data, "_decode_batches", lambda *a: pytest.fail("decoded again"))
    second = data.load(tmp_path / "cifar")
    assert isinstance(second.train_images, np.memmap)
    np.testing.assert_array_equal(first.train_images, second.train_images)
    assert len(list(cache.iterdir())) == 1


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b"", lambda b: b"\0" * 64])
def test_a_damaged_cache_entry_is_decoded_again(tmp_path, cache, damage):
    write_batches(tmp_path / "cifar")
    expected = np.array(data.load(tmp_path / "cifar").train_images)  # a copy, not the map
    [entry] = cache.iterdir()
    damaged = entry / "train_images.npy"
    damaged.write_bytes(damage(damaged.read_bytes()))
    np.testing.assert_array_equal(data.load(tmp_path / "cifar").train_images, expected)
    assert len(list(cache.iterdir())) == 1


def test_cache_is_invalidated_when_the_source_changes(tmp_path, cache):
    write_folder(tmp_path / "cifar")
    before = data.load(tmp_path / "cifar")
    changed = tmp_path / "cifar" / "test" / "truck" / "0029.jpg"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(changed)
    os.utime(changed, ns=(0, 12345))
    after = data.load(tmp_path / "cifar")
    np.testing.assert_array_equal(before.train_images, after.train_images)
    assert np.abs(after.test_images[-1].astype(int) - (1, 2, 3)).max() <= 3
    assert np.abs(before.test_images[-1].astype(int) - (1, 2, 3)).max() > 3
    assert len(list(cache.iterdir())) == 2


@pytest.mark.parametrize("where", [None, "empty"])
def test_missing_data_is_one_clear_error(tmp_path, where):
    root = None if where is None else tmp_path / where
    with pytest.raises(data.DataError, match="--data DIR or the NAS_DATA .* --download"):
        data.load(root)


def test_corrupt_batch_is_a_data_error(tmp_path):
    write_batches(tmp_path)
    (tmp_path / data.BATCHES / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(data.DataError, match="data_batch_3: corrupt"):
        data.load(tmp_path)


def test_stratified_split_is_balanced_disjoint_and_nested():
    labels = np.arange(1000) % 10
    train, val = data.stratified_split(labels, 200, 100, seed=3)
    assert np.bincount(labels[train]).tolist() == [20] * 10
    assert np.bincount(labels[val]).tolist() == [10] * 10
    assert not set(train) & set(val)
    bigger, same_val = data.stratified_split(labels, 500, 100, seed=3)
    assert set(train) <= set(bigger)
    assert set(val) == set(same_val)
    with pytest.raises(data.DataError, match="cannot take"):
        data.stratified_split(labels, 900, 200)


def test_augment_takes_padded_crops_and_flips():
    x = torch.randn(64, 3, 32, 32)
    out = data.augment(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for image, crop in zip(padded, out):
        windows = [image[:, i:i + 32, j:j + 32] for i in range(9) for j in range(9)]
        plain = any(torch.equal(crop, w) for w in windows)
        flipped = any(torch.equal(crop.flip(2), w) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 10 < flips < 54
    again = data.augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_batches_cover_an_epoch_once():
    x, y = torch.arange(10.0).view(10, 1, 1, 1).expand(10, 3, 32, 32), torch.arange(10)
    seen = torch.cat([yb for _, yb in data.batches(x, y, 3, torch.Generator().manual_seed(0))])
    assert len(seen) == 9 and len(set(seen.tolist())) == 9
    ordered = torch.cat([yb for _, yb in data.batches(x, y, 4)])
    assert ordered.tolist() == list(range(10))
