"""The scan of real trees (one process or split across forked workers) and the pure fix transform."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import pytest

from podsec.kernel.access import Inode
from podsec.kernel.acl import Acl
from podsec.perms import scan as scan_mod
from podsec.perms.fixes import TreeFix

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, ACLs)")


def tree(root: Path) -> Path:
    root.mkdir()
    for d in range(12):
        sub = root / f"d{d:02d}"
        sub.mkdir()
        for f in range(30):
            p = sub / f"f{f:02d}"
            p.write_bytes(b"")
            os.chown(p, 1000 + f % 3, 2000)
        (sub / "deeper").mkdir()
        (sub / "deeper" / "x").write_bytes(b"")
    os.symlink("/etc", root / "d00" / "escape")
    os.mkfifo(root / "d01" / "fifo")
    os.link(root / "d02" / "f00", root / "d02" / "hard")
    (root / "top").write_bytes(b"")
    os.setxattr(root / "d03" / "f01", "system.posix_acl_access",
                Acl.parse("u::rw-,u:1001:rw-,g::r--,m::rw-,o::---").to_xattr())
    os.setxattr(root / "d04", "system.posix_acl_default", Acl.parse("u::rwx,g::rwx,o::r-x").to_xattr())
    return root


def signature(s: scan_mod.Scan) -> list[tuple]:
    return sorted((n.rel, n.inode, n.nfiles, n.nsymlinks, n.nother, n.tdirs, n.tfiles,
                   tuple((f.inode, f.count, f.example) for f in n.files)) for n in s.preorder())


def test_parallel_scan_equals_the_sequential_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path / "t")
    one = scan_mod.scan(str(root), workers=1)
    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_ENTRIES", 0)
    split = scan_mod.scan(str(root), workers=3)
    assert signature(one) == signature(split)
    assert (one.dirs, one.files, one.symlinks, one.others, one.hardlinked) == (25, 12 * 31 + 2, 1, 1, 2)
    assert (split.dirs, split.files, split.symlinks, split.others, split.hardlinked) == (25, 12 * 31 + 2, 1, 1, 2)
    assert one.has_acls and split.has_acls
    d03 = split.find("d03")
    assert d03 is not None and any(f.inode.acl is not None and f.inode.acl.users == {1001: 6} for f in d03.files)
    assert split.find("d04").inode.default_acl == Acl.parse("u::rwx,g::rwx,o::r-x")  # type: ignore[union-attr]
    # files are grouped by attributes: owners 1000/1001/1002 in d05 → three groups of ten
    assert sorted(f.count for f in split.find("d05").files) == [10, 10, 10]  # type: ignore[union-attr]


def test_ancestors_are_read_from_the_root_down(tmp_path: Path) -> None:
    root = tree(tmp_path / "t")
    s = scan_mod.scan(str(root))
    assert [p for p, _ in s.ancestors] == ["/", *[str(p) for p in reversed(root.parents[:-1])]]


MODES = (0o000, 0o644, 0o600, 0o755, 0o750, 0o1777, 0o2700, 0o4755, 0o604)
ACLS = (None, "u::rw-,u:5:r--,g::r--,m::r--,o::---", "u::rwx,g::---,g:7:rwx,m::---,o::r-x")


@pytest.mark.parametrize("fix", [TreeFix(1000, 7, 6, True, True, ()), TreeFix(None, 0, 0, False, True, ((1001, 7),)),
                                 TreeFix(2000, 5, 4, True, False, ((1001, 5),))])
def test_fixes_only_add_and_never_touch_owner_or_others(fix: TreeFix) -> None:
    for mode, text, kind in itertools.product(MODES, ACLS, (stat.S_IFREG, stat.S_IFDIR)):
        acl = Acl.parse(text) if text else None
        before = Inode(4, 9, kind | (mode & 0o7000) | (acl.mode_bits() if acl else mode & 0o777), acl)
        after = fix(before)
        assert after.uid == before.uid
        assert after.mode & 0o7 == before.mode & 0o7 and after.mode & 0o700 == before.mode & 0o700
        kept = before.mode
        if kind == stat.S_IFREG and after.gid != before.gid:
            kept &= ~stat.S_ISUID & ~(stat.S_ISGID if before.mode & stat.S_IXGRP else 0)  # as chgrp does
        assert after.mode & kept == kept  # bits only added
        assert not (after.mode & ~before.mode & 0o7000 and kind == stat.S_IFREG)  # never a new setuid/setgid
        if after.acl is not None:
            after.acl.validate()
            assert after.acl.mode_bits() == after.mode & 0o777
            for uid, perm in (before.acl.users if before.acl else {}).items():
                assert after.acl.users[uid] & perm == perm
        if after.default_acl is not None:
            assert not after.default_acl.other & 2  # new files never world-writable
        assert fix(after) == after  # idempotent
