"""The owner-and-mode rules ssh and psql apply to a user's files, as their sources write them, and tests
that they pass and fail where those programs accept and refuse (real files, chown'ed and chmod'ed).

The runtime proof (test_fsuser_runtime.py) feeds these rules what ``stat`` shows inside a container.

Sources:

* OpenSSH (portable, 9.x): ``auth2-pubkeyfile.c`` ``auth_openfile()`` — ``open(file, O_RDONLY|O_NONBLOCK)``
  as the user (the caller wraps it in ``temporarily_use_uid``), ``fstat``, refuse a non-regular file
  ("User '%s' %s '%s' is not a regular file"), then with ``StrictModes`` ``safe_path_fd()`` →
  ``misc.c`` ``safe_path()``: ``realpath`` the name; the file must be owned by root
  (``platform_sys_dir_uid``: uid 0 on Linux) or the user and have no group/world write bit
  (``st_mode & 022``), "bad ownership or modes for file %s"; then every directory of the canonical
  path, walking up, must pass the same test ("bad ownership or modes for directory %s"), stopping
  after the user's home directory (its ``realpath``) or at ``/``. Refusal is logged as
  "Authentication refused: %s". (Older releases had the same code as ``auth.c``
  ``auth_secure_path``/``secure_filename``.)
* libpq (PostgreSQL 17): ``fe-connect.c`` ``passwordFromFile()`` — ``stat`` (follows symlinks); not a
  regular file → "WARNING: password file \"%s\" is not a plain file"; any group or world bit
  (``S_IRWXG | S_IRWXO``) → "WARNING: password file \"%s\" has group or world access; permissions
  should be u=rw (0600) or less"; then ``fopen(..., "r")``, whose failure silently means "no password".
  The owner is not checked. The 0640-when-owned-by-root exception is libpq's rule for the client
  SSL key (``fe-secure-openssl.c`` ``initialize_SSL``: ``st_uid == 0 ? mode & (S_IWGRP|S_IXGRP|S_IRWXO)
  : mode & (S_IRWXG|S_IRWXO)``), not for ``.pgpass``; both are here.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Stat:
    """What the rules read from ``struct stat``."""

    mode: int
    uid: int
    gid: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stat:
        return cls(st.st_mode, st.st_uid, st.st_gid)


StatFn = Callable[[str], "Stat | None"]
"""``stat(2)`` (following symlinks); None when it fails."""
RealpathFn = Callable[[str], "str | None"]


def _sys_dir_uid(uid: int) -> bool:
    """``platform_sys_dir_uid``: root (Linux defines no PLATFORM_SYS_DIR_UID)."""
    return uid == 0


def safe_path(name: str, st: Stat, pw_dir: str | None, uid: int, stat_of: StatFn, realpath_of: RealpathFn) -> str | None:
    """OpenSSH ``misc.c`` ``safe_path()``: None when safe, else its error text."""
    buf = realpath_of(name)
    if buf is None:
        return f"realpath {name} failed"
    homedir = realpath_of(pw_dir) if pw_dir is not None else None
    if not stat.S_ISREG(st.mode):
        return f"{buf} is not a regular file"
    if (not _sys_dir_uid(st.uid) and st.uid != uid) or st.mode & 0o22:
        return f"bad ownership or modes for file {buf}"
    while True:
        buf = posixpath.dirname(buf)
        d = stat_of(buf)
        if d is None or (not _sys_dir_uid(d.uid) and d.uid != uid) or d.mode & 0o22:
            return f"bad ownership or modes for directory {buf}"
        if homedir is not None and homedir == buf:
            break
        if buf in ("/", "."):
            break
    return None


def sshd_authorized_keys(
    file: str, user: str, pw_dir: str, uid: int, can_open: bool, stat_of: StatFn, realpath_of: RealpathFn,
    strict_modes: bool = True,
) -> str | None:
    """OpenSSH ``auth_openfile(file, pw, strict_modes, 1, "authorized keys")``: None when sshd uses the
    file, else what it logs. ``can_open``: ``open(O_RDONLY)`` as the user succeeded."""
    if not can_open:
        return f"Could not open user '{user}' authorized keys '{file}': Permission denied"
    st = stat_of(file)  # fstat of the opened file: the link's target
    if st is None:
        return f"Could not open user '{user}' authorized keys '{file}'"
    if not stat.S_ISREG(st.mode):
        return f"User '{user}' authorized keys '{file}' is not a regular file"
    if strict_modes:
        err = safe_path(file, st, pw_dir, uid, stat_of, realpath_of)
        if err is not None:
            return f"Authentication refused: {err}"
    return None


def libpq_password_file(pgpassfile: str, can_open: bool, stat_of: StatFn) -> str | None:
    """libpq ``passwordFromFile()``: None when the file's passwords are used, else why not (its
    warning, or the silent fopen failure)."""
    st = stat_of(pgpassfile)
    if st is None:
        return "cannot stat: ignored silently"
    if not stat.S_ISREG(st.mode):
        return f'WARNING: password file "{pgpassfile}" is not a plain file'
    if st.mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f'WARNING: password file "{pgpassfile}" has group or world access; '
            "permissions should be u=rw (0600) or less"
        )
    if not can_open:
        return "fopen failed: ignored silently"
    return None


def libpq_ssl_key(keyfile: str, stat_of: StatFn) -> str | None:
    """libpq ``initialize_SSL`` (client ``sslkey``): 0600 or less, or 0640 or less when owned by root."""
    st = stat_of(keyfile)
    if st is None:
        return f'certificate present, but not private key file "{keyfile}"'
    if not stat.S_ISREG(st.mode):
        return f'private key file "{keyfile}" is not a regular file'
    bad = st.mode & (stat.S_IWGRP | stat.S_IXGRP | stat.S_IRWXO) if st.uid == 0 else st.mode & (
        stat.S_IRWXG | stat.S_IRWXO
    )
    if bad:
        return (
            f'private key file "{keyfile}" has group or world access; file must have permissions u=rw (0600) '
            "or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root"
        )
    return None


# -- the host's own files --------------------------------------------------------------------------


def host_stat(path: str) -> Stat | None:
    try:
        return Stat.of(os.stat(path))
    except OSError:
        return None


def host_realpath(path: str) -> str | None:
    try:
        return os.path.realpath(path, strict=True)
    except OSError:
        return None


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def _tree(tmp_path: Path, file_uid: int, file_mode: int, ssh_mode: int = 0o700) -> Path:
    """``<tmp>/home/app/.ssh/authorized_keys``: the directories above home are root's (like /, /home)."""
    os.chmod(tmp_path, 0o755)
    home = tmp_path / "home" / "app"
    home.mkdir(parents=True)
    for d in (tmp_path / "home", home):
        os.chmod(d, 0o755)
    os.chown(home, 1000, 1000)
    ssh = home / ".ssh"
    ssh.mkdir(mode=ssh_mode)
    os.chmod(ssh, ssh_mode)
    os.chown(ssh, 1000, 1000)
    f = ssh / "authorized_keys"
    f.write_text("ssh-ed25519 AAAA test\n")
    os.chmod(f, file_mode)
    os.chown(f, file_uid, 0)
    return f


def _sshd(f: Path, tmp_path: Path, can_open: bool = True) -> str | None:
    # tmp_path's own ancestors (/tmp: 1777) are not root-safe: stop at a home below a safe path.
    return sshd_authorized_keys(str(f), "app", str(tmp_path / "home" / "app"), 1000, can_open, host_stat, host_realpath)


@pytest.mark.parametrize("uid", [1000, 0])
def test_sshd_accepts_a_key_file_owned_by_the_user_or_root(tmp_path: Path, uid: int) -> None:
    assert _sshd(_tree(tmp_path, uid, 0o600), tmp_path) is None


def test_sshd_refuses_another_users_file(tmp_path: Path) -> None:
    f = _tree(tmp_path, 2000, 0o600)
    assert _sshd(f, tmp_path) == f"Authentication refused: bad ownership or modes for file {f}"


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_sshd_refuses_group_or_world_writable_files(tmp_path: Path, mode: int) -> None:
    f = _tree(tmp_path, 1000, mode)
    assert _sshd(f, tmp_path) == f"Authentication refused: bad ownership or modes for file {f}"


def test_sshd_ignores_group_and_world_read(tmp_path: Path) -> None:
    assert _sshd(_tree(tmp_path, 1000, 0o644), tmp_path) is None


def test_sshd_checks_every_directory_up_to_home(tmp_path: Path) -> None:
    f = _tree(tmp_path, 1000, 0o600, ssh_mode=0o777)
    assert _sshd(f, tmp_path) == f"Authentication refused: bad ownership or modes for directory {f.parent}"
    os.chmod(f.parent, 0o755)
    os.chmod(f.parent.parent, 0o775)  # home itself is checked too
    assert _sshd(f, tmp_path) == f"Authentication refused: bad ownership or modes for directory {f.parent.parent}"


def test_sshd_resolves_symlinks_first(tmp_path: Path) -> None:
    """A key reached through a link (the atomic writer's ``..data``) is judged where it really is."""
    f = _tree(tmp_path, 1000, 0o600)
    real = tmp_path / "vol" / "..2024" / "authorized_keys"
    real.parent.mkdir(parents=True)
    os.chmod(real.parent.parent, 0o1777)  # a tmpfs volume root
    os.replace(f, real)
    f.symlink_to(real)
    assert _sshd(f, tmp_path) == f"Authentication refused: bad ownership or modes for directory {real.parent.parent}"


def test_sshd_cannot_use_a_file_it_cannot_open(tmp_path: Path) -> None:
    f = _tree(tmp_path, 0, 0o600)
    assert _sshd(f, tmp_path, can_open=False) == (
        f"Could not open user 'app' authorized keys '{f}': Permission denied"
    )


@pytest.mark.parametrize(
    ("uid", "mode", "can_open", "used"),
    [
        (1000, 0o600, True, True),
        (1000, 0o400, True, True),
        (1000, 0o640, True, False),  # fsGroup's read-only mask turns 0600 into this
        (1000, 0o604, True, False),
        (0, 0o640, True, False),  # no root exception for .pgpass
        (0, 0o600, False, False),  # root's 0600 file: the check passes, fopen as the user does not
    ],
)
def test_libpq_password_file(tmp_path: Path, uid: int, mode: int, can_open: bool, used: bool) -> None:
    f = tmp_path / ".pgpass"
    f.write_text("db:5432:app:app:pw\n")
    os.chmod(f, mode)
    os.chown(f, uid, 0)
    assert (libpq_password_file(str(f), can_open, host_stat) is None) is used


def test_libpq_warns_about_group_access_in_its_words(tmp_path: Path) -> None:
    f = tmp_path / ".pgpass"
    f.write_text("x\n")
    os.chmod(f, 0o640)
    assert libpq_password_file(str(f), True, host_stat) == (
        f'WARNING: password file "{f}" has group or world access; permissions should be u=rw (0600) or less'
    )
    assert libpq_password_file(str(tmp_path), True, host_stat) == f'WARNING: password file "{tmp_path}" is not a plain file'


@pytest.mark.parametrize(("uid", "mode", "ok"), [(0, 0o640, True), (1000, 0o640, False), (0, 0o660, False),
                                                 (1000, 0o600, True)])
def test_libpq_ssl_key_allows_0640_only_for_root(tmp_path: Path, uid: int, mode: int, ok: bool) -> None:
    f = tmp_path / "client.key"
    f.write_text("k\n")
    os.chmod(f, mode)
    os.chown(f, uid, 0)
    assert (libpq_ssl_key(str(f), host_stat) is None) is ok
