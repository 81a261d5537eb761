"""Helpers for the ``podsec perms`` tests (no tests here): a directory other users can reach, and running
checks as another user with ``setpriv`` (util-linux) so the real kernel decides."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SETPRIV = shutil.which("setpriv")
SYSTEM_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), None)
"""An interpreter every uid can execute (the dev venv lives under /root, which others cannot enter)."""

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, setpriv)")
needs_setpriv = pytest.mark.skipif(SETPRIV is None or SYSTEM_PYTHON is None,
                                   reason="needs setpriv (util-linux) and a system python3")


def reachable_dir() -> Iterator[Path]:
    """A fresh 0755 directory under /tmp (pytest's tmp_path sits in a 0700 directory other uids cannot enter)."""
    d = Path(tempfile.mkdtemp(prefix="podsec-perms-", dir="/tmp"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def setpriv_args(uid: int, gid: int, groups: tuple[int, ...] = (), caps: tuple[str, ...] | None = None) -> list[str]:
    """``setpriv`` options for a process with these ids; root keeps only ``caps`` (bounding set, then execve)."""
    assert SETPRIV is not None
    args = [SETPRIV]
    if uid != 0:
        args += ["--reuid", str(uid), "--regid", str(gid)]
        args += ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    else:
        args += ["--regid", str(gid)]
        args += ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
        keep = ",".join("+" + c.removeprefix("CAP_").lower() for c in caps or ())
        args += ["--bounding-set", "-all" + ("," + keep if keep else "")]
    return args


ACCESS_CHECKER = (
    "import os,sys,json\n"
    "ps=json.load(sys.stdin)\n"
    "print(json.dumps([[os.access(p,m,effective_ids=True) for m in (4,2,1)] for p in ps]))\n"
)


def kernel_access(paths: list[str], uid: int, gid: int, groups: tuple[int, ...] = (),
                  caps: tuple[str, ...] | None = None) -> list[tuple[bool, bool, bool]]:
    """(read, write, exec/search) as the running kernel decides them for that process (faccessat AT_EACCESS)."""
    assert SYSTEM_PYTHON is not None
    out = subprocess.run([*setpriv_args(uid, gid, groups, caps), SYSTEM_PYTHON, "-c", ACCESS_CHECKER],
                         input=json.dumps(paths), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [tuple(x) for x in json.loads(out.stdout)]


def run_as(uid: int, gid: int, script: str, groups: tuple[int, ...] = (), cwd: str | None = None,
           umask: int = 0o022) -> subprocess.CompletedProcess[str]:
    """A shell script as that user (``setpriv --reuid --regid --clear-groups``), with the given umask."""
    return subprocess.run([*setpriv_args(uid, gid, groups), "/bin/sh", "-c", f"umask {umask:03o}; {script}"],
                          capture_output=True, text=True, cwd=cwd, timeout=60)
