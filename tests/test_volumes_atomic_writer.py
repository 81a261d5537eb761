"""AtomicWriter on real directories: layout, exact modes, updates, validation (kubelet-semantics §3.6)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from podsec.errors import InputError
from podsec.volumes.atomic_writer import FileProjection, validate_path, write_atomic

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")

TS_RE = re.compile(r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+$")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    t = tmp_path / "vol"
    t.mkdir()
    os.chmod(t, 0o777)
    return t


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """Modes must be exact whatever the umask (the kubelet chmods after creating)."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def ts_dir(target: Path) -> Path:
    name = os.readlink(target / "..data")
    assert TS_RE.match(name), name
    return target / name


def perm(p: Path) -> int:
    return os.lstat(p).st_mode & 0o7777


def test_layout_and_exact_modes(target: Path, strict_umask: None) -> None:
    payload = {
        "key": FileProjection(b"v1", 0o644),
        "ro": FileProjection(b"x", 0o400),
        "exe": FileProjection(b"#!", 0o755),
        "a/b/c": FileProjection(b"deep", 0o600),
    }
    assert write_atomic(target, payload, fs_group=None) is True
    ts = ts_dir(target)
    assert perm(ts) == 0o755
    assert sorted(os.listdir(target)) == sorted(["..data", ts.name, "key", "ro", "exe", "a"])
    for name in ("key", "ro", "exe", "a"):
        assert os.readlink(target / name) == f"..data/{name}"
    assert (target / "a" / "b" / "c").read_bytes() == b"deep"
    assert (perm(ts / "key"), perm(ts / "ro"), perm(ts / "exe"), perm(ts / "a/b/c")) == (
        0o644,
        0o400,
        0o755,
        0o600,
    )
    assert perm(ts / "a") == 0o755 and perm(ts / "a/b") == 0o755
    st = os.lstat(ts / "key")
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert not (target / "..data_tmp").exists()


def test_fs_group_applies_the_read_only_mask(target: Path) -> None:
    payload = {
        "a": FileProjection(b"1", 0o644),
        "b": FileProjection(b"2", 0o600),
        "c": FileProjection(b"3", 0o400),
        "d": FileProjection(b"4", 0o755),
    }
    write_atomic(target, payload, fs_group=2000)
    ts = ts_dir(target)
    got = {n: (perm(ts / n), os.lstat(ts / n).st_gid) for n in payload}
    assert got == {"a": (0o644, 2000), "b": (0o640, 2000), "c": (0o440, 2000), "d": (0o755, 2000)}
    assert (perm(ts), os.lstat(ts).st_gid) == (0o2755, 2000)
    assert (perm(target), os.lstat(target).st_gid) == (0o2777, 2000)
    # The walk runs before ..data and the visible links exist; they get the group anyway because
    # the root is setgid by then (kernel rule), as on a real node.
    assert os.lstat(target / "..data").st_gid == 2000
    assert os.lstat(target / "a").st_gid == 2000


def test_owner_uid_per_file_and_default(target: Path) -> None:
    payload = {"token": FileProjection(b"t", 0o600, uid=1000), "other": FileProjection(b"o", 0o644)}
    write_atomic(target, payload, fs_group=None)
    ts = ts_dir(target)
    assert os.lstat(ts / "token").st_uid == 1000
    assert os.lstat(ts / "other").st_uid == 0
    write_atomic(target, {"x": FileProjection(b"x", 0o644)}, fs_group=None, fs_user=1234)
    assert os.lstat(ts_dir(target) / "x").st_uid == 1234


def test_update_writes_a_new_timestamp_dir_and_removes_the_old(target: Path) -> None:
    write_atomic(target, {"key": FileProjection(b"v1", 0o644)}, fs_group=2000)
    old = ts_dir(target)
    assert write_atomic(target, {"key": FileProjection(b"v2", 0o644)}, fs_group=2000) is True
    new = ts_dir(target)
    assert new != old and not old.exists()
    assert (target / "key").read_bytes() == b"v2"
    # The second walk sees ..data and the visible links: now they carry the group too.
    assert os.lstat(target / "key").st_gid == 2000


def test_unchanged_content_is_not_rewritten(target: Path) -> None:
    payload = {"key": FileProjection(b"same", 0o644)}
    write_atomic(target, payload, fs_group=2000)
    ts = ts_dir(target)
    st = os.lstat(ts / "key")
    os.chown(ts / "key", 0, 0)  # would be "fixed" if the ownership walk ran again
    assert write_atomic(target, payload, fs_group=2000) is False
    assert ts_dir(target) == ts
    st2 = os.lstat(ts / "key")
    assert (st2.st_ino, st2.st_mtime_ns, st2.st_gid) == (st.st_ino, st.st_mtime_ns, 0)


def test_mode_change_alone_does_not_rewrite(target: Path) -> None:
    write_atomic(target, {"key": FileProjection(b"same", 0o644)}, fs_group=None)
    assert write_atomic(target, {"key": FileProjection(b"same", 0o600)}, fs_group=None) is False
    assert perm(ts_dir(target) / "key") == 0o644


def test_removed_key_is_pruned(target: Path) -> None:
    write_atomic(target, {"a": FileProjection(b"1", 0o644), "b": FileProjection(b"2", 0o644)}, None)
    assert write_atomic(target, {"a": FileProjection(b"1", 0o644)}, None) is True
    assert not os.path.lexists(target / "b")
    assert sorted(os.listdir(target)) == sorted(["..data", ts_dir(target).name, "a"])


def test_removed_nested_dir_is_pruned(target: Path) -> None:
    write_atomic(target, {"d/x": FileProjection(b"1", 0o644), "k": FileProjection(b"2", 0o644)}, None)
    write_atomic(target, {"k": FileProjection(b"2", 0o644)}, None)
    assert not os.path.lexists(target / "d")


def test_missing_visible_symlink_is_recreated_without_rewrite(target: Path) -> None:
    payload = {"key": FileProjection(b"v", 0o644)}
    write_atomic(target, payload, None)
    os.unlink(target / "key")
    assert write_atomic(target, payload, None) is False
    assert os.readlink(target / "key") == "..data/key"


def test_empty_payload(target: Path) -> None:
    write_atomic(target, {}, fs_group=None)
    assert os.listdir(ts_dir(target)) == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", 'invalid path: must not be empty: ""'),
        ("/etc/passwd", "invalid path: must be relative path: /etc/passwd"),
        ("a/../b", "invalid path: must not contain '..': a/../b"),
        ("../x", "invalid path: must not contain '..': ../x"),
        ("..data/x", "invalid path: must not start with '..': ..data/x"),
        ("..foo", "invalid path: must not start with '..': ..foo"),
        ("x" * 256, "invalid path: filenames must be less than or equal to 255 characters"),
        ("a/" * 2049, "invalid path: must be less than or equal to 4096 characters"),
    ],
)
def test_path_validation_messages(target: Path, path: str, message: str) -> None:
    with pytest.raises(InputError) as e:
        validate_path(path)
    assert e.value.message == message
    with pytest.raises(InputError):
        write_atomic(target, {path: FileProjection(b"", 0o644)}, None)
    assert os.listdir(target) == []


def test_valid_edge_paths(target: Path) -> None:
    for p in ("a..b", "x" * 255, "./a//b", "b/..c"):
        validate_path(p)
    write_atomic(target, {"./a//b": FileProjection(b"1", 0o644)}, None)
    assert (target / "a" / "b").read_bytes() == b"1"
