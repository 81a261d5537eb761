"""POSIX ACLs read and written through the xattrs, cross-checked with the acl package's setfacl/getfacl."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from podsec.kernel import acl as acls
from podsec.kernel.acl import Acl, create_masq

pytestmark = pytest.mark.skipif(shutil.which("setfacl") is None or os.geteuid() != 0,
                                reason="needs root and the acl package (setfacl/getfacl)")

TEXTS = [
    "user::rw-,group::r--,mask::rw-,other::r--",
    "user::rwx,user:1001:rwx,group::r-x,mask::rwx,other::r-x",
    "user::rw-,user:0:r--,user:4294967294:rw-,group::---,group:2000:rw-,group:0:r--,mask::rw-,other::---",
    "user::---,user:7:--x,group::-w-,group:8:r--,mask::-wx,other::rwx",
]


def getfacl(path: Path, default: bool = False) -> str:
    """getfacl's entries (numeric, no header, no effective comments), comma separated."""
    out = subprocess.run(["getfacl", "-cnE", "-d" if default else "-a", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return ",".join(line for line in out.splitlines() if line)


@pytest.mark.parametrize("text", TEXTS)
def test_reading_what_setfacl_wrote(tmp_path: Path, text: str) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"")
    subprocess.run(["setfacl", "--set", text, str(f)], check=True)
    acl = acls.read_path(f)
    assert acl is not None
    assert acl.text() == getfacl(f)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert acls.read_at(fd, "f") == acl  # the dir-fd read (getxattrat or /proc/self/fd) agrees
    finally:
        os.close(fd)
    # the kernel keeps the group bits of the mode equal to the mask
    assert os.stat(f).st_mode & 0o777 == acl.mode_bits()


@pytest.mark.parametrize("text", TEXTS)
def test_getfacl_reads_what_podsec_wrote(tmp_path: Path, text: str) -> None:
    d = tmp_path / "d"
    d.mkdir()
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        acls.write_at(fd, "d", Acl.parse(text))
    finally:
        os.close(fd)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        acls.write_fd(dfd, Acl.parse(text), acls.DEFAULT)
    finally:
        os.close(dfd)
    assert getfacl(d) == Acl.parse(text).text()
    assert getfacl(d, default=True) == Acl.parse(text).text()


def test_minimal_acl_is_not_stored_and_reads_as_none(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"")
    os.chmod(f, 0o640)
    assert acls.read_path(f) is None
    assert getfacl(f) == Acl.from_mode(0o640).text() == "user::rw-,group::r--,other::---"


def test_write_at_never_follows_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"")
    os.symlink(target, tmp_path / "link")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError):
            acls.write_at(fd, "link", Acl.parse(TEXTS[1]))
        assert acls.read_at(fd, "link") is None
    finally:
        os.close(fd)
    assert acls.read_path(target) is None


@pytest.mark.parametrize("bad", [b"", b"\x01\x00\x00\x00", b"\x02\x00\x00\x00\x01\x00", b"\x02\x00\x00\x00" +
                                 b"\x40\x00\x07\x00\xff\xff\xff\xff"])
def test_malformed_xattrs_are_refused(bad: bytes) -> None:
    with pytest.raises(ValueError):
        Acl.from_xattr(bad)


def _raw(text: str) -> bytes:
    """The xattr for ``text`` exactly as written: no sorting, no validation."""
    entries = []
    for item in text.split(","):
        kind, qual, perm = item.split(":")
        tag = {"user": acls.USER if qual else acls.USER_OBJ, "group": acls.GROUP if qual else acls.GROUP_OBJ,
               "mask": acls.MASK, "other": acls.OTHER}[kind]
        entries.append(acls.Entry(tag, acls.parse_perm(perm), int(qual) if qual else None))
    return Acl(tuple(entries)).to_xattr()


@pytest.mark.parametrize("text", ["user::rwx,group::r-x", "user::rwx,user:5:r--,group::r-x,other::---",
                                  "group::r-x,user::rwx,other::---", "user::rwx,group::r-x,other::---,mask::rwx"])
def test_invalid_acls_are_refused_like_the_kernel(tmp_path: Path, text: str) -> None:
    """No other entry, named entries without a mask, entries out of order: refused by both."""
    f = tmp_path / "f"
    f.write_bytes(b"")
    with pytest.raises(OSError):
        os.setxattr(f, acls.ACCESS, _raw(text))
    with pytest.raises(ValueError):
        Acl.from_xattr(_raw(text))


def test_a_duplicate_named_entry_the_kernel_stores_is_read_in_its_order(tmp_path: Path) -> None:
    """The kernel accepts a uid named twice (it checks no ids) and the first entry decides."""
    text = "user::rwx,user:5:r--,user:5:rwx,group::r-x,mask::rwx,other::---"
    f = tmp_path / "f"
    f.write_bytes(b"")
    os.setxattr(f, acls.ACCESS, _raw(text))
    acl = acls.read_path(f)
    assert acl is not None and acl.text() == text
    with pytest.raises(ValueError):
        Acl.parse(text)  # podsec itself never writes one


def test_create_masq_follows_the_create_mode() -> None:
    default = Acl.parse("u::rwx,u:1001:rwx,g::rwx,m::rwx,o::r-x")
    acl, bits = create_masq(default, 0o666)
    assert acl is not None and acl.text() == "user::rw-,user:1001:rwx,group::rwx,mask::rw-,other::r--"
    assert bits == 0o664
    minimal, bits = create_masq(Acl.parse("u::rwx,g::rwx,o::r-x"), 0o666)
    assert minimal is None and bits == 0o664
