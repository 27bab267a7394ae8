"""load(): name dispatch, root resolution (root=, $CNNKIT_DATA, ~/.cache/cnnkit), download=True through a
local file:// mirror, and the offline failure that says where to put the files. No network is used."""

import dataclasses
import hashlib
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
from data_helpers import make_cifar, write_mnist_like

from cnnkit.data import SOURCES, DownloadError, data_root, load


def test_root_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CNNKIT_DATA", raising=False)
    assert data_root() == tmp_path / "home" / ".cache" / "cnnkit"
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "given") == tmp_path / "given"


def test_environment_variable_is_used_by_load(tmp_path, monkeypatch):
    labels = np.array([1, 2, 3], np.uint8)
    write_mnist_like(tmp_path / "mnist", np.zeros((3, 28, 28), np.uint8), labels, "test")
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path))
    assert load("mnist", "test").labels.tolist() == [1, 2, 3]


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mnist: the train files are not in .*mnist or .*; put "
                                                r"train-images-idx3-ubyte.gz, .* in .*mnist, or point root= "
                                                r"or the CNNKIT_DATA environment variable"):
        load("mnist", "train", root=tmp_path)


@pytest.mark.parametrize("name, split, message", [
    ("imagenet", "train", r"load: received name='imagenet'; expected one of \('mnist', 'fashion-mnist', "),
    ("mnist", "validation", r"load\('mnist'\): received split='validation'; expected one of \('train', "),
])
def test_bad_arguments(name, split, message):
    with pytest.raises(ValueError, match=message):
        load(name, split)


def _mirror(monkeypatch, name, served: dict):
    """Serve files from a local folder through file:// URLs in place of the official ones."""
    folder = next(iter(served.values())).parent
    files = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in served.values()}
    source = dataclasses.replace(SOURCES[name], mirrors=(folder.as_uri() + "/",), files=files)
    monkeypatch.setitem(SOURCES, name, source)


def test_download_through_a_file_mirror(tmp_path, monkeypatch, rng):
    images, labels = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), np.array([9, 8, 7, 6], np.uint8)
    served = {}
    for split in ("train", "test"):
        for path in write_mnist_like(tmp_path / "mirror", images, labels, split):
            served[path.name] = path
    _mirror(monkeypatch, "fashion-mnist", served)
    ds = load("fashion-mnist", "test", root=tmp_path / "cache", download=True)
    np.testing.assert_array_equal(ds.images[:, 0], images)
    assert ds.classes[9] == "Ankle boot"
    kept = sorted(p.name for p in (tmp_path / "cache" / "fashion-mnist").iterdir())
    assert kept == sorted(served)  # exactly the four files, no temporary leftovers


def test_cifar_archive_download_is_unpacked(tmp_path, monkeypatch):
    expected = make_cifar(tmp_path / "build", 10, "binary", per_batch=2)
    archive = tmp_path / "mirror" / "cifar-10-binary.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "build" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    _mirror(monkeypatch, "cifar10", {archive.name: archive})
    ds = load("cifar10", "train", root=tmp_path / "cache", download=True)
    np.testing.assert_array_equal(ds.images, expected["train"][0])
    assert [p.name for p in (tmp_path / "cache" / "cifar10").iterdir()] == ["cifar-10-batches-bin"]


def test_offline_download_fails_with_where_to_put_the_files(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # the official https URLs, never reached
    with pytest.raises(DownloadError, match=r"(?s)could not download https://ossci-datasets.s3.amazonaws.com/"
                                            r"mnist/train-images-idx3-ubyte.gz: .*name resolution.*Without a "
                                            r"network, put train-images-idx3-ubyte.gz, .* in .*cache/mnist"):
        load("mnist", "train", root=tmp_path / "cache", download=True)


def test_unreachable_mirror_override(tmp_path, monkeypatch):
    source = dataclasses.replace(SOURCES["cifar100"], mirrors=("file:///nonexistent-cnnkit-mirror/",))
    monkeypatch.setitem(SOURCES, "cifar100", source)
    with pytest.raises(DownloadError, match=r"(?s)could not download file:///nonexistent-cnnkit-mirror/"
                                            r"cifar-100-binary.tar.gz.*Without a network, put "
                                            r"cifar-100-binary.tar.gz .* and unpack it there"):
        load("cifar100", "test", root=tmp_path, download=True)
    assert not any(tmp_path.rglob("*.part"))


def test_corrupt_download_is_not_kept(tmp_path, monkeypatch):
    served = tmp_path / "mirror" / "train-images-idx3-ubyte.gz"
    served.parent.mkdir()
    served.write_bytes(b"not what the checksum promises")
    source = dataclasses.replace(SOURCES["mnist"], mirrors=(served.parent.as_uri() + "/",))
    monkeypatch.setitem(SOURCES, "mnist", source)  # the official MD5s stay: this file does not match them
    with pytest.raises(DownloadError, match="checksum mismatch .* the file was not kept"):
        load("mnist", "train", root=tmp_path / "cache", download=True)
    assert list((tmp_path / "cache" / "mnist").iterdir()) == []

