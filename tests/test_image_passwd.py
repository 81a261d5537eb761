"""User databases inside an image: parsed like moby/sys/user, read without leaving the rootfs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagebuild import FIXTURE_GROUP, FIXTURE_PASSWD
from podsec.errors import ImageError
from podsec.image.model import GroupEntry, PasswdEntry
from podsec.image.passwd import parse_group, parse_passwd, read_user_db


def test_fixture_files() -> None:
    passwd = parse_passwd(FIXTURE_PASSWD)
    assert passwd == (
        PasswdEntry("root", 0, 0, "/root", "/bin/sh"),
        PasswdEntry("web", 101, 101, "/home/web", "/bin/sh"),
        PasswdEntry("app", 1000, 1000, "/home/app", "/bin/sh"),
        PasswdEntry("nobody", 65534, 65534, "/nonexistent", "/bin/false"),
    )
    group = parse_group(FIXTURE_GROUP)
    assert [g.name for g in group] == ["root", "web", "app", "extra", "nogroup"]
    assert group[3] == GroupEntry("extra", 5000, ("app", "web"))
    assert group[0].members == ()


def test_passwd_skips_comments_blank_and_malformed() -> None:
    text = "\n".join(
        [
            "# a comment",
            "   ",
            "",
            "  root:x:0:0:root:/root:/bin/sh  ",  # surrounding whitespace is trimmed
            "short:x:1",  # too few fields
            ":x:2:2::/:/bin/sh",  # no name
            "neg:x:-1:0::/:",  # not a plain number
            "word:x:abc:0::/:",
            "big:x:4294967296:0::/:",  # beyond 32 bits
            "plus:x:+5:0::/:",
            "+::::::",  # NIS include line
            "minimal:x:7:8",  # four fields are enough
            "extra:x:9:9:gecos:/home/extra:/bin/sh:more:fields",
            "nohome:x:10:10:::",
        ]
    )
    got = parse_passwd(text)
    assert [(e.name, e.uid, e.gid) for e in got] == [
        ("root", 0, 0),
        ("minimal", 7, 8),
        ("extra", 9, 9),
        ("nohome", 10, 10),
    ]
    assert got[1].home == "/" and got[1].shell == ""
    assert got[2].home == "/home/extra" and got[2].shell == "/bin/sh"
    assert got[3].home == "/"


def test_group_parsing() -> None:
    text = "\n".join(
        [
            "#c",
            "wheel:x:10:root, admin ,,",
            "nomembers:x:11",
            "bad:x:x1:",
            "short:x",
            "empty:x:12:",
        ]
    )
    assert parse_group(text) == (
        GroupEntry("wheel", 10, ("root", "admin")),
        GroupEntry("nomembers", 11, ()),
        GroupEntry("empty", 12, ()),
    )


def _rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    return root


def test_read_user_db_plain_and_missing(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    assert read_user_db(root) == (None, None)
    (root / "etc" / "passwd").write_text(FIXTURE_PASSWD)
    passwd, group = read_user_db(root)
    assert passwd is not None and len(passwd) == 4
    assert group is None
    (root / "etc" / "group").write_text("")
    assert read_user_db(root)[1] == ()  # empty file is not an absent file


def test_read_user_db_follows_symlinks_inside_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "real" / "etc").mkdir(parents=True)
    (root / "real" / "etc" / "passwd").write_text("a:x:1:1::/:\n")
    (root / "shared").mkdir()
    (root / "shared" / "group").write_text("g:x:5:a\n")
    os.symlink("/real/etc", root / "etc")  # absolute: means the rootfs's /real/etc
    os.symlink("../../../../../shared/group", root / "real" / "etc" / "group")  # climbs, clamped at /
    passwd, group = read_user_db(root)
    assert passwd == (PasswdEntry("a", 1, 1, "/", ""),)
    assert group == (GroupEntry("g", 5, ("a",)),)


def test_read_user_db_never_reads_host_files(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "passwd").write_text("hostuser:x:0:0::/:\n")
    (outside / "group").write_text("hostgroup:x:0:\n")
    root = _rootfs(tmp_path)
    os.symlink(str(outside / "passwd"), root / "etc" / "passwd")  # absolute path of a host file
    os.symlink("../../host/group", root / "etc" / "group")  # relative escape
    assert read_user_db(root) == (None, None)
    # The same absolute path recreated inside the rootfs is what gets read.
    inner = root / str(outside).lstrip("/")
    inner.mkdir(parents=True)
    (inner / "passwd").write_text("inner:x:3:3::/:\n")
    assert read_user_db(root)[0] == (PasswdEntry("inner", 3, 3, "/", ""),)


def test_read_user_db_odd_files(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    (root / "etc" / "passwd").mkdir()  # a directory is not a passwd file
    os.symlink("group", root / "etc" / "group")  # a loop
    assert read_user_db(root) == (None, None)
    (root / "etc" / "passwd").rmdir()
    os.mkfifo(root / "etc" / "passwd")  # must not block
    assert read_user_db(root)[0] is None


def test_read_user_db_etc_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    (root / "etc").write_text("not a dir")
    assert read_user_db(root) == (None, None)


def test_read_user_db_not_a_dir(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not a directory"):
        read_user_db(tmp_path / "missing")
