"""fetch and extract_tar: MD5 checks, atomic writes (nothing half-written survives), safe unpacking.
Only file:// URLs and monkeypatched openers: these tests never touch the network."""

import hashlib
import io
import tarfile
import urllib.request

import pytest

from cnnkit.data import DownloadError, fetch
from cnnkit.data.download import extract_tar, md5sum


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_fetch_verifies_and_writes(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"official bytes" * 1000)
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    target = tmp_path / "cache" / "file.bin"
    assert fetch(source.as_uri(), target, md5) == target
    assert target.read_bytes() == source.read_bytes() and md5sum(target) == md5
    assert _leftovers(target.parent) == []


def test_checksum_mismatch_keeps_the_previous_file(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"tampered")
    target = tmp_path / "file.bin"
    target.write_bytes(b"previous good copy")
    with pytest.raises(DownloadError, match=r"checksum mismatch for file://.*served.bin: MD5 [0-9a-f]{32}, "
                                            r"expected 0{32}; the file was not kept"):
        fetch(source.as_uri(), target, "0" * 32)
    assert target.read_bytes() == b"previous good copy" and _leftovers(tmp_path) == []


def test_unreachable_url_fails_quickly(tmp_path):
    with pytest.raises(DownloadError, match="could not download file:///nonexistent-cnnkit/x.gz"):
        fetch("file:///nonexistent-cnnkit/x.gz", tmp_path / "x.gz", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_transfer_leaves_nothing(tmp_path, monkeypatch):
    class Dropping(io.BytesIO):
        """Serves one chunk, then the connection drops."""

        def read(self, size=-1):
            if self.tell():
                raise ConnectionResetError("connection reset by peer")
            return super().read(1024)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Dropping(b"x" * 4096))
    with pytest.raises(DownloadError, match="connection reset by peer"):
        fetch("https://example.invalid/data.gz", tmp_path / "data.gz", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_tar(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", {"folder/one.bin": b"1", "folder/two.bin": b"22"})
    (tmp_path / "out").mkdir()
    extract_tar(archive, tmp_path / "out")
    assert (tmp_path / "out" / "folder" / "two.bin").read_bytes() == b"22"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["folder"]  # no staging folder left


@pytest.mark.parametrize("members", [{"../escape.bin": b"x"}, {"/abs.bin": b"x"}, {"link": None}])
def test_extract_tar_refuses_unsafe_members(tmp_path, members):
    archive = _tar(tmp_path / "evil.tar.gz", members)
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="refusing to extract"):
        extract_tar(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == [] and not (tmp_path / "escape.bin").exists()
