"""Layer unpacking: OCI whiteouts, metadata, and hostile tars that must not leave ``dest``."""

from __future__ import annotations

import io
import os
import shutil
import stat
from pathlib import Path

import pytest

from imagebuild import D, Entry, F, H, L, hostile_cases, make_layer, sha256_digest, tree_snapshot
from podsec.errors import ImageError
from podsec.image.unpack import unpack_layer, unpack_layers

IS_ROOT = os.geteuid() == 0


def _layers(tmp_path: Path, *layers: bytes) -> list[Path]:
    out = []
    for i, data in enumerate(layers):
        p = tmp_path / f"layer{i}.tar"
        p.write_bytes(data)
        out.append(p)
    return out


def _unpack(tmp_path: Path, *layers: bytes) -> Path:
    dest = tmp_path / "dest"
    unpack_layers(_layers(tmp_path, *layers), dest)
    return dest


def test_modes_owners_mtimes(tmp_path: Path) -> None:
    dest = _unpack(
        tmp_path,
        make_layer(
            [
                D("bin", 0o755, mtime=1000),
                F("bin/suid", b"x", 0o4755, mtime=2000),
                F("bin/sgid", b"y", 0o2711, uid=5, gid=6, mtime=3000),
                D("tmp", 0o1777, mtime=4000),
                D("home/app", 0o750, uid=1000, gid=1001, mtime=5000),  # parent created implicitly
                F("home/app/.profile", b"export A=1\n", 0o600, uid=1000, gid=1001),
                L("bin/sh", "/bin/busybox", uid=7, gid=8, mtime=6000),
                Entry("run/fifo", "fifo", mode=0o620, uid=3, gid=4),
            ]
        ),
    )
    assert stat.S_IMODE((dest / "bin" / "suid").stat().st_mode) == 0o4755
    assert stat.S_IMODE((dest / "bin" / "sgid").stat().st_mode) == 0o2711
    assert stat.S_IMODE((dest / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((dest / "home" / "app").stat().st_mode) == 0o750
    assert stat.S_IMODE((dest / "home").stat().st_mode) == 0o755
    assert (dest / "home" / "app" / ".profile").read_bytes() == b"export A=1\n"
    assert (dest / "bin" / "suid").stat().st_mtime == 2000
    assert (dest / "bin").stat().st_mtime == 1000  # directory mtimes survive their children
    assert (dest / "tmp").stat().st_mtime == 4000
    assert os.readlink(dest / "bin" / "sh") == "/bin/busybox"  # kept verbatim, not followed
    assert (dest / "bin" / "sh").lstat().st_mtime == 6000
    assert stat.S_ISFIFO((dest / "run" / "fifo").lstat().st_mode)
    assert stat.S_IMODE((dest / "run" / "fifo").lstat().st_mode) == 0o620
    if IS_ROOT:
        assert ((dest / "bin" / "sgid").stat().st_uid, (dest / "bin" / "sgid").stat().st_gid) == (5, 6)
        assert (dest / "home" / "app").stat().st_uid == 1000
        assert (dest / "home" / "app").stat().st_gid == 1001
        assert ((dest / "bin" / "sh").lstat().st_uid, (dest / "bin" / "sh").lstat().st_gid) == (7, 8)
        assert (dest / "run" / "fifo").lstat().st_uid == 3


def test_root_entry_sets_root_dir(tmp_path: Path) -> None:
    dest = _unpack(tmp_path, make_layer([D("./", 0o751), F("./a", b"1")]))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o751
    assert (dest / "a").read_bytes() == b"1"


def test_hardlinks(tmp_path: Path) -> None:
    dest = _unpack(
        tmp_path,
        make_layer([F("a/file", b"data", 0o640), H("b/link", "a/file"), H("/c", "/a/file"), L("sym", "a/file")]),
        make_layer([H("a/link-to-sym", "sym")]),
    )
    ino = (dest / "a" / "file").stat().st_ino
    assert (dest / "b" / "link").stat().st_ino == ino
    assert (dest / "c").stat().st_ino == ino
    assert (dest / "a" / "file").stat().st_nlink == 3
    assert (dest / "a" / "link-to-sym").is_symlink()  # a hardlink to a symlink is that symlink


def test_whiteouts(tmp_path: Path) -> None:
    lower = make_layer(
        [
            D("etc"),
            F("etc/keep", b"k"),
            F("etc/gone", b"g"),
            D("var/cache/deep"),
            F("var/cache/deep/x", b"x"),
            F("var/cache/top", b"t"),
            D("opq/sub"),
            F("opq/sub/old", b"o"),
            F("opq/old", b"o"),
            L("link", "/etc/keep"),
        ]
    )
    upper = make_layer(
        [
            F("etc/.wh.gone"),
            F("var/.wh.cache"),  # whole directory
            F(".wh.link"),  # a symlink itself, not its target
            F(".wh.never-existed"),
            D("opq"),
            F("opq/.wh..wh..opq"),
            D("opq/sub"),
            F("opq/new", b"n"),
            F("etc/.wh..wh.plnk"),  # aufs metadata: ignored
        ]
    )
    dest = _unpack(tmp_path, lower, upper)
    assert (dest / "etc" / "keep").read_bytes() == b"k"
    assert not (dest / "etc" / "gone").exists()
    assert not (dest / "var" / "cache").exists()
    assert (dest / "var").is_dir()
    assert not (dest / "link").is_symlink()
    assert sorted(p.name for p in (dest / "opq").iterdir()) == ["new", "sub"]
    assert list((dest / "opq" / "sub").iterdir()) == []  # lower content below an opaque dir is gone too
    assert not any(p.name.startswith(".wh.") for p in dest.rglob("*"))


def test_opaque_marker_before_entries(tmp_path: Path) -> None:
    lower = make_layer([D("d"), F("d/old", b"o")])
    upper = make_layer([F("d/.wh..wh..opq"), F("d/new", b"n")])
    dest = _unpack(tmp_path, lower, upper)
    assert [p.name for p in (dest / "d").iterdir()] == ["new"]


def test_replacing_types(tmp_path: Path) -> None:
    lower = make_layer([D("a"), F("a/x", b"1"), F("b", b"file"), L("c", "/a"), D("d"), F("d/y", b"2")])
    upper = make_layer([F("a", b"now a file"), D("b"), D("c"), F("c/z", b"3"), D("d", 0o700)])
    dest = _unpack(tmp_path, lower, upper)
    assert (dest / "a").read_bytes() == b"now a file"
    assert (dest / "b").is_dir()
    assert (dest / "c").is_dir() and not (dest / "c").is_symlink()
    assert (dest / "c" / "z").read_bytes() == b"3"
    assert (dest / "d" / "y").read_bytes() == b"2"  # dir over dir merges
    assert stat.S_IMODE((dest / "d").stat().st_mode) == 0o700


def test_file_over_existing_file_does_not_write_through_hardlink(tmp_path: Path) -> None:
    lower = make_layer([F("orig", b"original"), H("alias", "orig")])
    upper = make_layer([F("alias", b"replaced")])
    dest = _unpack(tmp_path, lower, upper)
    assert (dest / "orig").read_bytes() == b"original"
    assert (dest / "alias").read_bytes() == b"replaced"


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_compression_detected_and_diff_id_checked(tmp_path: Path, compression: str | None) -> None:
    if compression == "zstd" and shutil.which("zstd") is None:
        pytest.skip("zstd program not installed")
    plain = make_layer([D("etc"), F("etc/hostname", b"box\n")])
    data = make_layer([D("etc"), F("etc/hostname", b"box\n")], compression=compression)
    path = tmp_path / "layer"
    path.write_bytes(data)
    report = unpack_layer(path, tmp_path / "dest", diff_id=sha256_digest(plain))
    assert (tmp_path / "dest" / "etc" / "hostname").read_bytes() == b"box\n"
    assert report.entries == 2 and report.skipped == []
    with pytest.raises(ImageError, match="config expects"):
        unpack_layer(path, tmp_path / "dest2", diff_id="sha256:" + "0" * 64)


def test_file_object_source(tmp_path: Path) -> None:
    unpack_layer(io.BytesIO(make_layer([F("x", b"1")], compression="gzip")), tmp_path / "dest")
    assert (tmp_path / "dest" / "x").read_bytes() == b"1"


def test_xattrs(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.podsec", b"1")
    except OSError:
        pytest.skip("this filesystem does not support user xattrs")
    dest = _unpack(tmp_path, make_layer([F("f", b"x", pax={"SCHILY.xattr.user.test": "value"})]))
    assert os.getxattr(dest / "f", "user.test") == b"value"


def test_empty_and_broken_layers(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    unpack_layer(tmp_path / "empty", tmp_path / "dest")
    unpack_layer(io.BytesIO(b"\0" * 1024), tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []
    (tmp_path / "junk").write_bytes(b"this is not a tar file at all" * 50)
    with pytest.raises(ImageError, match="junk"):
        unpack_layer(tmp_path / "junk", tmp_path / "dest")
    (tmp_path / "trunc").write_bytes(make_layer([F("big", b"x" * 100_000)])[:5000])
    with pytest.raises(ImageError):
        unpack_layer(tmp_path / "trunc", tmp_path / "dest")
    (tmp_path / "badgz").write_bytes(b"\x1f\x8b" + b"\0" * 100)
    with pytest.raises(ImageError):
        unpack_layer(tmp_path / "badgz", tmp_path / "dest")
    with pytest.raises(ImageError, match="cannot read layer"):
        unpack_layer(tmp_path / "missing", tmp_path / "dest")


# --- hostile layers ----------------------------------------------------------------------------

CASES = sorted(hostile_cases(Path("/x/canary")))


@pytest.mark.parametrize("case", CASES)
def test_hostile_layers_stay_inside_dest(tmp_path: Path, case: str) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "secret").write_bytes(b"secret\n")
    dest = tmp_path / "dest"
    dest.mkdir()
    layers = hostile_cases(canary)[case]
    (tmp_path / "layers").mkdir()
    paths = _layers(tmp_path / "layers", *layers)
    before = tree_snapshot(tmp_path, exclude=dest)
    try:
        report = unpack_layers(paths, dest)
    except ImageError:
        report = None
    assert tree_snapshot(tmp_path, exclude=dest) == before, "something outside dest changed"
    assert (canary / "secret").read_bytes() == b"secret\n"
    assert (canary / "secret").stat().st_nlink == 1
    for p in dest.rglob("*"):  # nothing inside dest may be (a link to) the canary
        if not p.is_symlink() and p.is_file():
            assert p.stat().st_ino != (canary / "secret").stat().st_ino
    assert report is not None, "a hostile layer should be applied with skips, not refused"
    expect = {
        "dotdot": lambda: len(report.skipped) == 2 and not list(dest.iterdir()),
        "absolute": lambda: (dest / str(canary).lstrip("/") / "pwned").is_file() and (dest / "abs-ok").is_file(),
        "symlink-parent-abs": lambda: (dest / str(canary).lstrip("/") / "pwned").is_file(),
        "symlink-parent-rel": lambda: (dest / "canary" / "pwned").is_file(),
        "symlink-parent-next-layer": lambda: (dest / str(canary).lstrip("/") / "sub" / "pwned").is_file(),
        "symlink-chain": lambda: (dest / "canary" / "pwned").is_file(),
        "symlink-final-overwrite": lambda: (dest / "s").read_bytes() == b"pwned\n" and not (dest / "s").is_symlink(),
        "symlink-dir-replaced": lambda: (dest / "d" / "pwned").is_file() and not (dest / "d").is_symlink(),
        "hardlink-abs": lambda: not (dest / "h").exists() and len(report.skipped) == 1,
        "hardlink-rel": lambda: not (dest / "h").exists() and len(report.skipped) == 1,
        "hardlink-via-symlink": lambda: not (dest / "h").exists() and len(report.skipped) == 1,
        "whiteout-via-symlink": lambda: (dest / "s").is_symlink(),
        "whiteout-dotdot": lambda: (dest / "w").is_dir() and len(report.skipped) == 2,
        "devices": lambda: (dest / "dev").is_dir() and not list((dest / "dev").iterdir()) and len(report.skipped) == 2,
        "symlink-loop": lambda: (dest / "loop1").is_symlink() and len(report.skipped) == 1,
    }
    assert expect[case](), (case, report.skipped, sorted(str(p.relative_to(dest)) for p in dest.rglob("*")))


def test_every_hostile_case_is_checked() -> None:
    assert len(CASES) == 15


def test_broken_zstd_is_an_image_error(tmp_path: Path) -> None:
    if shutil.which("zstd") is None:
        pytest.skip("zstd program not installed")
    data = make_layer([F("a", b"x" * 10000)], compression="zstd")
    (tmp_path / "bad.zst").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError):
        unpack_layer(tmp_path / "bad.zst", tmp_path / "dest")
