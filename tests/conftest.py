"""Shared fixtures: one image store with the conformance fixture image and one pod state directory for
every runtime test of the session, and a way to call the real ``podsec`` command on them.

Runtime tests are marked ``runtime``; they need root, runc and /bin/busybox and are skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PODSEC_BIN = Path(sys.executable).with_name("podsec")
_SHIM = (
    "import sys\nfrom podsec.cli import cli\nfrom podsec.cli_runtime import register\n"
    "'run' in cli.commands or register(cli)\ncli(prog_name='podsec')\n"
)


def podsec_argv() -> list[str]:
    """The installed ``podsec`` when its group has the runtime commands, else the same group with them
    registered (until cli.py calls ``cli_runtime.register``)."""
    from podsec.cli import cli

    if "run" in cli.commands and PODSEC_BIN.exists():
        return [str(PODSEC_BIN)]
    return [sys.executable, "-c", _SHIM]


@dataclass
class Podsec:
    """``podsec --root R --state S …`` as a subprocess."""

    root: Path
    state: Path
    argv: list[str]

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, "--root", str(self.root), "--state", str(self.state), *args]

    def run(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.cmd(*args), capture_output=True, text=True, timeout=timeout, input=input,
                              env=None if env is None else {**os.environ, **env},
                              stdin=None if input is not None else subprocess.DEVNULL)

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, env=None if env is None else {**os.environ, **env})


def _runtime_ready() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("runc") is None:
        return "needs runc"
    if not Path("/bin/busybox").exists():
        return "needs /bin/busybox (busybox-static)"
    return None


@pytest.fixture(scope="session")
def podsec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podsec]:
    """A store holding the five ``podsec-fixture`` tags and an empty state dir; checks at the end that
    the session left no pod, runtime container or mount behind."""
    why = _runtime_ready()
    if why:
        pytest.skip(why)
    from imagebuild import build_fixture_layout

    base = tmp_path_factory.mktemp("podsec")
    layout = build_fixture_layout(base / "layout")
    env = Podsec(base / "root", base / "state", podsec_argv())
    load = env.run("image", "load", str(layout))
    assert load.returncode == 0, load.stderr
    yield env
    env.run("delete", "--all", "-A", "--now")
    env.run("gc")
    leftovers = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(env.state) in line]
    assert not leftovers, leftovers
    pods = {p.name for p in (env.state / "pods").iterdir()} if (env.state / "pods").exists() else set()
    assert not pods, pods
    assert not runtime_containers(env.state), runtime_containers(env.state)


def runtime_containers(state: Path) -> list[str]:
    """runc/crun containers whose bundle lies under ``state`` (other sessions' pods are not ours)."""
    import json

    found = []
    for rt in ("runc", "crun"):
        if shutil.which(rt) is None:
            continue
        for _ in range(10):  # a container of another session vanishing mid-listing fails the whole list
            proc = subprocess.run([rt, "list", "--format", "json"], capture_output=True, text=True)
            if proc.returncode == 0:
                break
        assert proc.returncode == 0, f"{rt} list: {proc.stderr}"
        for entry in json.loads(proc.stdout or "null") or []:
            if str(entry.get("bundle", "")).startswith(str(state)):
                found.append(f"{rt}:{entry.get('id')}")
    return found
