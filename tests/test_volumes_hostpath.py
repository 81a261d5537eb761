"""hostPath ``type`` checks on real files, sockets and devices, with the kubelet's messages."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from podsec.errors import InputError, RuntimeFailure
from podsec.volumes.claims import claim_dir, parse_volume_dirs
from podsec.volumes.hostpath import check_host_path, validate_host_path, validate_type

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mknod and device checks need root")


@pytest.fixture
def things(tmp_path: Path) -> Iterator[dict[str, Path]]:
    d = tmp_path / "dir"
    d.mkdir()
    f = tmp_path / "file"
    f.write_text("x")
    sock_path = tmp_path / "sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_path))
    blk = tmp_path / "blk"
    os.mknod(blk, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    link = tmp_path / "link-to-dir"
    os.symlink(d, link)
    try:
        yield {"dir": d, "file": f, "sock": sock_path, "chr": Path("/dev/null"), "blk": blk, "link": link}
    finally:
        s.close()


@pytest.mark.parametrize(
    ("type_", "ok"),
    [
        ("Directory", ("dir", "link")),
        ("DirectoryOrCreate", ("dir", "link")),
        ("File", ("file",)),
        ("FileOrCreate", ("file",)),
        ("Socket", ("sock",)),
        ("CharDevice", ("chr",)),
        ("BlockDevice", ("blk",)),
        ("", ("dir", "file", "sock", "chr", "blk", "link")),
    ],
)
def test_type_matrix(things: dict[str, Path], type_: str, ok: tuple[str, ...]) -> None:
    words = {
        "Directory": "a directory",
        "DirectoryOrCreate": "a directory",
        "File": "a file",
        "FileOrCreate": "a file",
        "Socket": "a socket file",
        "CharDevice": "a character device",
        "BlockDevice": "a block device",
    }
    for name, path in things.items():
        if name in ok:
            check_host_path(str(path), type_, "v")
        else:
            with pytest.raises(RuntimeFailure) as e:
                check_host_path(str(path), type_, "v")
            assert e.value.message == (
                f'MountVolume.SetUp failed for volume "v" : hostPath type check failed: {path} is not {words[type_]}'
            )


@pytest.mark.parametrize("type_", ["Directory", "File", "Socket", "CharDevice", "BlockDevice"])
def test_missing_path_fails_the_strict_types(tmp_path: Path, type_: str) -> None:
    with pytest.raises(RuntimeFailure, match="hostPath type check failed"):
        check_host_path(str(tmp_path / "missing"), type_, "v")
    assert not (tmp_path / "missing").exists()


def test_unset_type_checks_nothing(tmp_path: Path) -> None:
    check_host_path(str(tmp_path / "missing"), "", "v")
    check_host_path(str(tmp_path / "missing"), None, "v")
    assert not (tmp_path / "missing").exists()


def test_directory_or_create_makes_0755_dirs(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        target = tmp_path / "a" / "b"
        check_host_path(str(target), "DirectoryOrCreate", "v")
    finally:
        os.umask(old)
    assert target.is_dir()
    assert os.stat(target).st_mode & 0o7777 == 0o755
    assert os.stat(tmp_path / "a").st_mode & 0o7777 == 0o755


def test_file_or_create_makes_an_empty_0644_file(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        check_host_path(str(tmp_path / "f"), "FileOrCreate", "v")
    finally:
        os.umask(old)
    st = os.stat(tmp_path / "f")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 0 and st.st_mode & 0o7777 == 0o644


def test_file_or_create_without_parent_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="No such file or directory"):
        check_host_path(str(tmp_path / "nope" / "f"), "FileOrCreate", "v")


def test_invalid_type_and_path() -> None:
    with pytest.raises(InputError, match=r"^Sometimes is an invalid volume type$"):
        validate_type("Sometimes")
    with pytest.raises(InputError) as e:
        validate_host_path("/var/../etc", "v")
    assert e.value.message == "invalid HostPath `/var/../etc`: must not contain '..'"
    assert validate_host_path("/var/..data", "v") == "/var/..data"


def test_claim_flags() -> None:
    dirs = parse_volume_dirs(["data=/srv/data", "logs=relative/logs"], must_exist=False)
    assert dirs["data"] == Path("/srv/data") and dirs["logs"].is_absolute()
    with pytest.raises(InputError, match="expected CLAIM=DIR"):
        parse_volume_dirs(["nodir"])
    with pytest.raises(InputError) as e:
        claim_dir("pg-data", dirs, "storage")
    assert "pg-data" in e.value.message and "--volume-dir pg-data=" in e.value.message
    assert 'volume "storage"' in e.value.message
