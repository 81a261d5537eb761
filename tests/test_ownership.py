"""fsGroup / fsUser ownership walks on real trees (kubelet-semantics §3.2, §3.3, vectors 41–42)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from podsec.errors import RuntimeFailure
from podsec.volumes.ownership import (
    ON_ROOT_MISMATCH,
    change_owner_uid,
    change_ownership,
    chmod_nofollow,
    requires_permission_change,
    walk_order,
    walk_tree,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")

G = 2000


def mode(p: Path) -> int:
    return os.lstat(p).st_mode & 0o7777


def gid(p: Path) -> int:
    return os.lstat(p).st_gid


def mkfile(p: Path, m: int, g: int = 0) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    os.chown(p, 0, g)  # before chmod: a chown clears setuid/setgid
    os.chmod(p, m)
    return p


def mkdir(p: Path, m: int, g: int = 0) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    os.chown(p, 0, g)
    os.chmod(p, m)
    return p


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """Something outside every volume that no walk may ever touch."""
    c = mkdir(tmp_path / "canary", 0o700)
    mkfile(c / "secret", 0o600)
    return c


def assert_canary_untouched(c: Path) -> None:
    assert (mode(c), gid(c)) == (0o700, 0)
    assert (mode(c / "secret"), gid(c / "secret")) == (0o600, 0)


# --------------------------------------------------------------------------------------------------


def test_vector_42_walk_over_file_dir_and_symlink(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    f = mkfile(root / "f", 0o600)
    d = mkdir(root / "d", 0o755)
    os.symlink("f", root / "l")
    n = change_ownership(root, G, read_only=False)
    assert n == 4
    assert (mode(f), gid(f)) == (0o660, G)
    assert (mode(d), gid(d)) == (0o2775, G)
    assert gid(root / "l") == G  # the link itself was lchown'ed
    assert stat.S_ISLNK(os.lstat(root / "l").st_mode)
    assert os.readlink(root / "l") == "f"
    assert (mode(root), gid(root)) == (0o2775, G)


def test_walk_is_post_order_and_root_last(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    mkfile(root / "d" / "e" / "x", 0o644)
    mkfile(root / "d" / "y", 0o644)
    mkfile(root / "z", 0o644)
    order = walk_order(root)
    assert order[-1] == "."
    assert set(order) == {".", "d", "d/e", "d/e/x", "d/y", "z"}
    for child, parent in [("d/e/x", "d/e"), ("d/e", "d"), ("d/y", "d"), ("z", ".")]:
        assert order.index(child) < order.index(parent)


@pytest.mark.parametrize(
    ("kind", "before", "read_only", "after"),
    [
        ("file", 0o644, False, 0o664),
        ("file", 0o600, False, 0o660),
        ("file", 0o755, False, 0o775),
        ("dir", 0o755, False, 0o2775),
        ("dir", 0o700, False, 0o2770),
        ("dir", 0o777, False, 0o2777),
        ("dir", 0o1777, False, 0o3777),
        ("file", 0o644, True, 0o644),
        ("file", 0o600, True, 0o640),
        ("file", 0o400, True, 0o440),
        ("dir", 0o755, True, 0o2755),
        ("file", 0o4755, False, 0o4775),  # setuid survives the chown (the kubelet re-chmods it)
        ("file", 0o2750, False, 0o2770),  # setgid with group exec too
    ],
)
def test_mode_table(tmp_path: Path, kind: str, before: int, read_only: bool, after: int) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    p = mkfile(root / "x", before) if kind == "file" else mkdir(root / "x", before)
    change_ownership(root, G, read_only=read_only)
    assert (oct(mode(p)), gid(p)) == (oct(after), G)


def test_bits_are_only_added_never_removed(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    p = mkfile(root / "x", 0o607)
    change_ownership(root, G, read_only=True)
    assert mode(p) == 0o647


def test_no_fs_group_is_a_no_op(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    f = mkfile(root / "f", 0o600)
    assert change_ownership(root, None, read_only=False) == 0
    assert (mode(f), gid(f), mode(root), gid(root)) == (0o600, 0, 0o755, 0)


# vector 41 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root_mode", "root_gid", "read_only", "skip"),
    [
        (0o2770, G, False, True),
        (0o770, G, False, False),  # no setgid
        (0o2775, G + 1, False, False),  # other group
        (0o2750, G, False, False),  # 0770 not contained in 0750
        (0o2550, G, True, True),  # read-only wants 0550 only
        (0o2777, G, False, True),
    ],
)
def test_vector_41_on_root_mismatch(tmp_path: Path, root_mode: int, root_gid: int, read_only: bool, skip: bool) -> None:
    root = mkdir(tmp_path / "vol", root_mode, root_gid)
    f = mkfile(root / "f", 0o600)
    assert requires_permission_change(root, G, read_only) is not skip
    n = change_ownership(root, G, read_only=read_only, policy=ON_ROOT_MISMATCH)
    if skip:
        assert n == 0
        assert (mode(f), gid(f)) == (0o600, 0)  # not walked
    else:
        assert n == 2
        assert gid(f) == G
        assert mode(root) & 0o2000


def test_on_root_mismatch_stats_through_a_root_symlink(tmp_path: Path) -> None:
    real = mkdir(tmp_path / "real", 0o2770, G)
    link = tmp_path / "link"
    os.symlink(real, link)
    assert requires_permission_change(link, G, False) is False


def test_always_policy_walks_even_when_root_matches(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o2770, G)
    f = mkfile(root / "f", 0o600)
    assert change_ownership(root, G, read_only=False, policy="Always") == 2
    assert gid(f) == G


# symlinks and escapes ----------------------------------------------------------------------------


def test_symlinks_to_outside_are_not_followed(tmp_path: Path, canary: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    os.symlink(canary, root / "to-dir")
    os.symlink(canary / "secret", root / "to-file")
    os.symlink("../../../../../../" + str(canary).lstrip("/"), root / "relative")
    os.symlink("/nonexistent/dangling", root / "dangling")
    change_ownership(root, G, read_only=False)
    assert_canary_untouched(canary)
    for name in ("to-dir", "to-file", "relative", "dangling"):
        assert gid(root / name) == G
        assert stat.S_ISLNK(os.lstat(root / name).st_mode)


def test_root_that_is_a_symlink_is_treated_as_a_leaf(tmp_path: Path, canary: Path) -> None:
    link = tmp_path / "vol"
    os.symlink(canary, link)
    assert change_ownership(link, G, read_only=False) == 1
    assert gid(link) == G
    assert_canary_untouched(canary)


def test_chmod_nofollow_refuses_symlinks(tmp_path: Path, canary: Path) -> None:
    os.symlink(canary / "secret", tmp_path / "l")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as e:
            chmod_nofollow(fd, "l", 0o666)
        assert e.value.errno == errno.EOPNOTSUPP
        chmod_nofollow(fd, "canary", 0o711)
    finally:
        os.close(fd)
    assert mode(canary / "secret") == 0o600
    assert mode(canary) == 0o711


def test_concurrent_symlink_swaps_never_reach_outside(tmp_path: Path, canary: Path) -> None:
    """A 'container' keeps swapping files and directories for links to the canary during walks."""
    root = mkdir(tmp_path / "vol", 0o777)
    for d in range(20):
        for f in range(50):
            mkfile(root / f"d{d}" / f"f{f}", 0o600)
    stop = threading.Event()

    def racer() -> None:
        i = 0
        while not stop.is_set():
            d, f = i % 20, (i * 7) % 50
            target = root / f"d{d}" / f"f{f}"
            tmp = root / f"d{d}" / f".swap{f}"
            try:
                os.symlink(canary / "secret", tmp)
                os.rename(tmp, target)  # atomic swap file -> symlink
                if i % 13 == 0:
                    sub = root / f"d{(d + 1) % 20}"
                    os.rename(sub, root / f"moved{i}")
                    os.symlink(canary, sub)
            except OSError:
                pass
            i += 1

    t = threading.Thread(target=racer)
    t.start()
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for dirpath, dirnames, filenames in os.walk(root):  # reset, tolerating the racer
                for n in dirnames + filenames:
                    with contextlib.suppress(OSError):
                        os.chown(os.path.join(dirpath, n), 0, 0, follow_symlinks=False)
            # A path vanishing mid-walk aborts it (as in the kubelet); that is fine here.
            with contextlib.suppress(RuntimeFailure):
                change_ownership(root, G, read_only=False)
    finally:
        stop.set()
        t.join()
    assert_canary_untouched(canary)


# depth, progress, parallel split ------------------------------------------------------------------


def test_deep_tree_beyond_open_fd_window(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    p = root
    depth = 300
    for _ in range(depth):
        p = p / "a"
        os.mkdir(p, 0o755)
    mkfile(p / "leaf", 0o600)
    assert change_ownership(root, G, read_only=False, workers=1) == depth + 2
    assert (mode(p / "leaf"), gid(p / "leaf")) == (0o660, G)
    assert mode(root / "a") == 0o2775
    assert mode(root) == 0o2775


def test_progress_reports_counts(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    for i in range(3000):
        (root / f"f{i}").touch()
    seen: list[int] = []
    n = change_ownership(root, G, False, None, seen.append, first_progress_after=0, progress_every=0, workers=1)
    assert n == 3001
    assert seen and seen == sorted(seen) and seen[-1] <= n


def test_parallel_split_gives_the_same_result(tmp_path: Path, canary: Path) -> None:
    roots = []
    for name in ("seq", "par"):
        root = mkdir(tmp_path / name, 0o755)
        for d in range(12):
            for f in range(40):
                mkfile(root / f"d{d}" / f"s{d % 3}" / f"f{f}", 0o640)
            os.symlink(canary, root / f"d{d}" / "out")
        for f in range(30):
            mkfile(root / f"top{f}", 0o600)
        roots.append(root)
    n_seq = change_ownership(roots[0], G, read_only=False, workers=1)
    seen: list[int] = []
    n_par = change_ownership(
        roots[1],
        G,
        False,
        None,
        seen.append,
        workers=2,
        parallel_after=0.0,
        first_progress_after=0,
        progress_every=0,
    )
    assert n_seq == n_par == 1 + 30 + 12 * (1 + 1 + 40 + 1)
    for a in sorted(roots[0].rglob("*")):
        b = roots[1] / a.relative_to(roots[0])
        assert (mode(a), gid(a)) == (mode(b), gid(b)), a
    assert (mode(roots[1]), gid(roots[1])) == (0o2775, G)
    assert_canary_untouched(canary)


def test_long_walks_really_fork_and_keep_post_order(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    for d in range(8):
        for f in range(20):
            mkfile(root / f"d{d}" / f"f{f}", 0o644)
    log = tmp_path / "visits"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def leaf(dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        os.write(fd, f"{os.getpid()} {dir_path}/{name}\n".encode())

    def directory(dfd: int, st: os.stat_result, path: str) -> None:
        os.write(fd, f"{os.getpid()} {path}\n".encode())

    try:
        n = walk_tree(root, leaf, directory, workers=2, parallel_after=0.0)
    finally:
        os.close(fd)
    lines = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert n == len(lines) == 1 + 8 * 21
    assert len({pid for pid, _ in lines}) >= 2  # worker processes did part of the walk
    paths = [p for _, p in lines]
    assert paths[-1] == str(root)
    for d in range(8):
        assert max(paths.index(f"{root}/d{d}/f{f}") for f in range(20)) < paths.index(f"{root}/d{d}")


def test_worker_errors_abort_the_walk(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    for d in range(6):
        mkfile(root / f"d{d}" / "f", 0o644)

    def leaf(dir_fd: int, name: str, st: os.stat_result, dir_path: str) -> None:
        if dir_path.endswith("d4"):
            os.unlink(dir_path + "/" + name)
            os.stat(name, dir_fd=dir_fd)  # raises in whichever process handles d4

    with pytest.raises(FileNotFoundError):
        walk_tree(root, leaf, lambda *a: None, workers=1)
    mkfile(root / "d4" / "f", 0o644)
    with pytest.raises(RuntimeFailure, match="cannot walk volume"):
        walk_tree(root, leaf, lambda *a: None, workers=2, parallel_after=0.0)


def test_vanished_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="cannot walk volume"):
        change_ownership(tmp_path / "missing", G, read_only=False)


# fsUser ---------------------------------------------------------------------------------------------


def test_change_owner_uid_files_only(tmp_path: Path, canary: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    f = mkfile(root / "d" / "f", 0o640, G)
    os.symlink(canary / "secret", root / "l")
    n = change_owner_uid(root, 1000)
    assert n == 4
    assert os.lstat(f).st_uid == 1000 and gid(f) == G and mode(f) == 0o640
    assert os.lstat(root / "d").st_uid == 0
    assert os.lstat(root / "l").st_uid == 0
    assert os.lstat(canary / "secret").st_uid == 0


def test_change_owner_uid_with_dirs(tmp_path: Path) -> None:
    root = mkdir(tmp_path / "vol", 0o755)
    mkfile(root / "d" / "f", 0o640)
    change_owner_uid(root, 1000, include_dirs=True)
    assert os.lstat(root / "d").st_uid == 1000
    assert os.lstat(root).st_uid == 1000


def test_chmod_fallback_without_fchmodat2(tmp_path: Path, canary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels before 6.6 have no fchmodat2: the O_PATH + /proc/self/fd path must be as safe."""
    import podsec.volumes.ownership as own

    monkeypatch.setattr(own, "_fchmodat2", None)
    monkeypatch.setattr(own, "_fchmodat2_probed", True)
    root = mkdir(tmp_path / "vol", 0o755)
    f = mkfile(root / "f", 0o600)
    os.symlink(canary / "secret", root / "l")
    change_ownership(root, G, read_only=False, workers=1)
    assert (mode(f), gid(f)) == (0o660, G)
    assert_canary_untouched(canary)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as e:
            chmod_nofollow(fd, "l", 0o666)
        assert e.value.errno == errno.EOPNOTSUPP
    finally:
        os.close(fd)
