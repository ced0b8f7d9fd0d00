"""CIFAR-10 sources, download, cache, splits and tensor augmentation, on small data written
here; downloads come from a server on 127.0.0.1, never from the internet."""

import hashlib
import http.server
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import CLASSES, TINY, random_images, write_batches
from PIL import Image

from nas.cli import main
from nas.evaluate import data


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
    assert len(list(cache.iterdir())) == 1  # the stale entry is gone


def test_a_source_copied_again_replaces_its_entry_and_keeps_the_others(tmp_path, cache,
                                                                       monkeypatch):
    write_folder(tmp_path / "cifar")
    write_batches(tmp_path / "other")
    first = data.load(tmp_path / "cifar")
    data.load(tmp_path / "other")
    for image in (tmp_path / "cifar").rglob("*.jpg"):  # a copy with new modification times
        os.utime(image, ns=(0, 12345))
    again = data.load(tmp_path / "cifar")
    np.testing.assert_array_equal(first.train_images, again.train_images)  # still readable
    assert len(list(cache.iterdir())) == 2
    monkeypatch.setattr(data, "_decode_batches", lambda *a: pytest.fail("decoded again"))
    data.load(tmp_path / "other")  # the other source's entry is still there


def test_entries_of_the_earlier_naming_go_when_an_entry_is_written(tmp_path, cache):
    old, unrelated = cache / "cifar10-0123456789abcdef", cache / "cifar10-notes"
    old.mkdir(parents=True)
    unrelated.mkdir()
    write_batches(tmp_path / "cifar")
    data.load(tmp_path / "cifar")
    assert not old.exists() and unrelated.exists()
    assert len([p for p in cache.iterdir() if p != unrelated]) == 1


def test_an_entry_removed_before_it_is_read_gives_the_decoded_arrays(tmp_path, monkeypatch):
    """Another process, with newer files, may remove the entry this one just wrote."""
    expected = write_batches(tmp_path / "cifar")
    write = data._write_cache
    monkeypatch.setattr(data, "_write_cache",
                        lambda entry, arrays: write(entry, arrays) or shutil.rmtree(entry))
    np.testing.assert_array_equal(data.load(tmp_path / "cifar").train_images,
                                  expected["train_images"])


def test_a_source_that_changes_while_decoded_leaves_the_other_entries(tmp_path, cache,
                                                                       monkeypatch):
    write_batches(tmp_path / "cifar")
    data.load(tmp_path / "cifar")
    batches = list((tmp_path / "cifar" / data.BATCHES).iterdir())
    for batch in batches:
        os.utime(batch, ns=(0, 1))
    decode = data._decode_batches

    def changed_meanwhile(source, files):
        for batch in batches:
            os.utime(batch, ns=(0, 2))
        return decode(source, files)

    monkeypatch.setattr(data, "_decode_batches", changed_meanwhile)
    data.load(tmp_path / "cifar")
    assert len(list(cache.iterdir())) == 2  # not this process's to judge which is stale


def archive_of(folder: Path) -> bytes:
    """``folder`` as a .tar.gz holding it under the official archive's folder name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=data.BATCHES)
    return buffer.getvalue()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A small CIFAR-10 archive served on 127.0.0.1, with NAS_CIFAR10_URL and NAS_CIFAR10_MD5
    pointing at it. ``requests`` counts the downloads; ``halfway`` runs in the server when half
    the archive is sent."""
    expected = write_batches(tmp_path / "made")
    archive = archive_of(tmp_path / "made" / data.BATCHES)
    state = SimpleNamespace(expected=expected, requests=[], halfway=lambda: None)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            state.requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(archive)))
            self.end_headers()
            half = len(archive) // 2
            self.wfile.write(archive[:half])
            state.halfway()
            try:
                self.wfile.write(archive[half:])
            except (BrokenPipeError, ConnectionResetError):  # the client was interrupted
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_port}/{Path(data.URL).name}"
    monkeypatch.setenv("NAS_CIFAR10_URL", state.url)
    monkeypatch.setenv("NAS_CIFAR10_MD5", hashlib.md5(archive).hexdigest())
    yield state
    server.shutdown()
    server.server_close()


def test_without_a_folder_the_first_load_downloads_and_later_ones_do_not(served, capsys):
    loaded = data.load()
    for name, array in served.expected.items():
        np.testing.assert_array_equal(getattr(loaded, name), array)
    assert "CIFAR-10 downloaded to" in capsys.readouterr().err
    again = data.load()
    assert isinstance(again.train_images, np.memmap)
    assert len(served.requests) == 1
    assert [p.name for p in data.download_dir().iterdir()] == [data.BATCHES]


def test_an_unreachable_server_is_one_line_and_leaves_nothing(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/{Path(data.URL).name}"
    monkeypatch.setenv("NAS_CIFAR10_URL", url)
    with pytest.raises(data.DataError) as error:
        data.load()
    message = str(error.value)
    assert message.startswith(f"could not download CIFAR-10 from {url} (")
    assert "--data DIR or the NAS_DATA" in message and "\n" not in message
    assert list(data.download_dir().iterdir()) == []


def test_a_wrong_md5_removes_the_archive(served, monkeypatch):
    monkeypatch.setenv("NAS_CIFAR10_MD5", "0" * 32)
    with pytest.raises(data.DataError, match=f"{served.url} is corrupt .* was removed"):
        data.load()
    assert list(data.download_dir().iterdir()) == []


def test_an_interrupted_download_leaves_nothing_and_the_next_load_completes(served):
    """Ctrl-C halfway, to a process of its own as a user's is: an interrupt may land inside
    the progress bar's lock and leave it held, which only that process ever shares."""
    load = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "  # also
            "from nas.evaluate import data; data.load()")  # where the shell ignores SIGINT
    loading = subprocess.Popen([sys.executable, "-c", load], stderr=subprocess.PIPE, text=True)
    served.halfway = lambda: loading.send_signal(signal.SIGINT)
    _, err = loading.communicate(timeout=120)
    assert loading.returncode != 0 and "KeyboardInterrupt" in err, err
    assert len(served.requests) == 1
    assert list(data.download_dir().iterdir()) == []
    served.halfway = lambda: None
    np.testing.assert_array_equal(data.load().test_images, served.expected["test_images"])


def test_concurrent_first_loads_both_get_the_data(served):
    served.halfway = threading.Barrier(2, timeout=30).wait  # both downloads are under way
    results = [None, None]

    def load(i):
        results[i] = data.load()

    threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(served.requests) == 2
    for result in results:
        np.testing.assert_array_equal(result.train_images, served.expected["train_images"])
    assert [p.name for p in data.download_dir().iterdir()] == [data.BATCHES]


@pytest.mark.parametrize("how", ["argument", "NAS_DATA"])
def test_a_given_folder_without_data_is_an_error_and_not_downloaded_into(tmp_path, served,
                                                                         monkeypatch, how):
    empty = tmp_path / "empty"
    empty.mkdir()
    if how == "NAS_DATA":
        monkeypatch.setenv("NAS_DATA", str(empty))
    with pytest.raises(data.DataError) as error:
        data.load(empty if how == "argument" else None)
    message = str(error.value)
    assert message.startswith(f"{empty}: no CIFAR-10 found there; ")
    assert "--data DIR or the NAS_DATA" in message and "--download" not in message
    assert served.requests == [] and list(empty.iterdir()) == []


def test_search_with_an_empty_data_folder_does_not_suggest_an_option_it_lacks(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["search", "--signal", "proxy", "--data", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "no CIFAR-10 found there" in err and "--download" not in err
    assert not (tmp_path / "run").exists()


def test_train_downloads_into_a_given_folder_when_asked(tmp_path, served, capsys):
    TINY.save(tmp_path / "tiny.yaml")
    threads = torch.get_num_threads()
    try:
        code = main(["train", str(tmp_path / "tiny.yaml"), "--data", str(tmp_path / "cifar"),
                     "--download", "--epochs", "1", "--train-images", "50", "--val-images",
                     "20", "--batch-size", "10", "--threads", "1", "--json"])
    finally:  # training sets torch's threads process-wide; later tests compare exact outputs
        torch.set_num_threads(threads)
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "cifar" / data.BATCHES / "test_batch").exists()
    assert len(served.requests) == 1


def test_a_corrupt_batch_is_named_with_the_remedy(tmp_path):
    write_batches(tmp_path)
    (tmp_path / data.BATCHES / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(data.DataError, match="data_batch_3: corrupt .*; replace it with an "
                                             "intact copy$"):
        data.load(tmp_path)


def test_a_corrupt_image_is_named_and_no_download_is_suggested(tmp_path):
    write_folder(tmp_path / "cifar")
    bad = tmp_path / "cifar" / "train" / "cat" / "0010.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(data.DataError) as error:
        data.load(tmp_path / "cifar")
    message = str(error.value)
    assert message.startswith(f"{bad}: unreadable 32x32 image (")
    assert message.endswith("; replace it with an intact copy") and "download" not in message


def test_a_corrupt_batch_of_the_cached_copy_asks_to_delete_it(served):
    data.load()
    (data.download_dir() / data.BATCHES / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(data.DataError, match=f"; delete {data.download_dir()} to download "
                                             "CIFAR-10 again$"):
        data.load()


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
