"""podsec started by a user other than root (``setpriv`` to ``nobody``): the read-only commands work,
the ones that run containers or change owners say in one line that they need root and touch nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PODSEC = str(Path(sys.executable).with_name("podsec"))
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: nr}
spec:
  containers:
  - name: c
    image: "busybox:1.36"
    command: [sleep, "60"]
    securityContext: {runAsUser: 1000}
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - {name: data, hostPath: {path: DATA}}
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="needs root and setpriv (util-linux) to become nobody")


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory every user can read (pytest's tmp_path is root's alone), with a pod and a data dir."""
    base = Path(tempfile.mkdtemp(prefix="podsec-nonroot-"))
    base.chmod(0o755)
    (base / "pod.yaml").write_text(POD.replace("DATA", str(base / "data")))
    (base / "data").mkdir()
    (base / "root").mkdir()
    (base / "state").mkdir()
    for p in base.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def as_nobody(base: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", PODSEC,
                           "--root", str(base / "root"), "--state", str(base / "state"), *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, cwd=base)


def tree(base: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(base)), p.stat().st_mode, p.stat().st_uid) for p in base.rglob("*"))


@pytest.mark.parametrize("args", [
    ("check", "pod.yaml"),
    ("check", "-o", "json", "pod.yaml"),
    ("explain", "pod.yaml"),
    ("fix", "--no-images", "pod.yaml"),
    ("perms", "--no-images", "-f", "pod.yaml", "--path", "data"),
    ("get", "pods"),
    ("image", "ls"),
])
def test_read_only_commands_work_for_any_user(world: Path, args: tuple[str, ...]) -> None:
    before = tree(world)
    proc = as_nobody(world, *args)
    assert proc.returncode in (0, 1), proc.stderr  # 1: findings
    assert "internal error" not in proc.stderr and "needs root" not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert tree(world) == before


@pytest.mark.parametrize("args", [
    ("run", "-f", "pod.yaml"),
    ("apply", "-f", "pod.yaml"),
    ("delete", "nr"),
    ("delete", "-f", "pod.yaml"),
    ("exec", "nr", "--", "id"),
    ("gc",),
    ("image", "load", "pod.yaml"),
    ("image", "pull", "busybox:1.36"),
    ("image", "rm", "busybox:1.36"),
    ("trace", "-f", "pod.yaml"),
    ("fix", "--trace", "pod.yaml"),
    ("perms", "--no-images", "-f", "pod.yaml", "--path", "data", "--fix", "--apply"),
])
def test_commands_that_need_root_say_so_and_change_nothing(world: Path, args: tuple[str, ...]) -> None:
    before = tree(world)
    proc = as_nobody(world, *args)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and " needs root (" in lines[0] and lines[0].startswith("podsec: "), proc.stderr
    assert proc.stdout == ""
    assert tree(world) == before
