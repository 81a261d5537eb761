"""The proof: a Secret mounted as an ssh ``authorized_keys`` and a ``.pgpass`` (mode 0600) in a real runc
container, owned by the container's non-root user through KEP-5936 ``defaultUser``/``user`` or KEP-5280
``fsUser`` with their feature gates, and root-owned (so refused by ssh and psql) without them.

Inside the container ``stat`` shows owner, group and mode of each file (``-L``: the atomic writer's
files are symlinks into ``..data``; subPath mounts bind the resolved file), of every directory above
it and of the home directory; ``cat`` as uid 1000 shows the user can read the file. The rules sshd
and libpq apply (test_fsuser_rules.py, from their sources) are then run on exactly those facts.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Podsec
from test_fsuser_rules import Stat, libpq_password_file, sshd_authorized_keys

pytestmark = pytest.mark.runtime

KEYS = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFsPodsecTestKeyNotARealOne app@podsec"
PGPASS = "db.example:5432:app:app:s3cret"
FILES = ("/home/app/.ssh/authorized_keys", "/home/app/.pgpass")
HOME = "/home/app"

# Prints, for each file: its realpath, whether uid 1000 can read it (and what), and the stat of the
# file (-L, what fstat of the opened file sees) and of every directory of its canonical path.
PROBE = textwrap.dedent(
    r"""
    id -u
    for f in FILES; do
      r=$(realpath "$f")
      echo "REAL $f $r"
      if c=$(cat "$f" 2>/dev/null); then echo "OPEN $f ok $c"; else echo "OPEN $f denied"; fi
      stat -L -c "STAT $f %f %u %g" "$f"
      d=$r
      while [ "$d" != / ]; do d=$(dirname "$d"); stat -c "STAT $d %f %u %g" "$d"; done
    done
    echo "REAL HOME $(realpath HOME)"
    """
).replace("FILES", " ".join(FILES)).replace("HOME", HOME)


SUBPATH_MOUNTS = [
    {"name": "creds", "mountPath": FILES[0], "subPath": "authorized_keys"},
    {"name": "creds", "mountPath": FILES[1], "subPath": ".pgpass"},
]
ITEMS = [{"key": "authorized_keys", "path": "authorized_keys"}, {"key": "pgpass", "path": ".pgpass"}]


def manifest(
    secret_extra: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    pod_sc: dict[str, Any] | None = None,
    mounts: list[dict[str, Any]] | None = None,
) -> str:
    """The Secret and a pod reading it as uid 1000 (``podsec-fixture:root``: /home/app is 1000's, 0755)."""
    secret = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "app-creds"},
              "stringData": {"authorized_keys": KEYS, "pgpass": PGPASS}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "creds"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, **(pod_sc or {})},
            "containers": [{"name": "app", "image": "podsec-fixture:root", "command": ["sh", "-c", PROBE],
                            "volumeMounts": mounts or SUBPATH_MOUNTS}],
            "volumes": [{"name": "creds", "secret": {"secretName": "app-creds", "defaultMode": 0o600,
                                                      **(secret_extra or {}), "items": items or ITEMS}}],
        },
    }
    return yaml.safe_dump_all([secret, pod], sort_keys=False)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pod.yaml"
    path.write_text(text)
    return str(path)


class Probe:
    """What the container saw, with the sshd and libpq verdicts on it."""

    def __init__(self, stdout: str) -> None:
        self.stats: dict[str, Stat] = {}
        self.real: dict[str, str] = {}
        self.opened: dict[str, str | None] = {}
        lines = stdout.splitlines()
        self.uid = int(lines[0])
        for line in lines[1:]:
            kind, rest = line.split(" ", 1)
            if kind == "REAL":
                name, real = rest.split(" ", 1)
                self.real[name] = real
            elif kind == "OPEN":
                name, verdict = rest.split(" ", 1)
                self.opened[name] = verdict[3:] if verdict.startswith("ok ") else None
            elif kind == "STAT":
                name, mode, uid, gid = rest.rsplit(" ", 3)
                self.stats.setdefault(name, Stat(int(mode, 16), int(uid), int(gid)))

    def owner_mode(self, name: str) -> tuple[int, int, int]:
        st = self.stats[name]
        return st.uid, st.gid, st.mode & 0o7777

    def sshd(self) -> str | None:
        f = FILES[0]
        return sshd_authorized_keys(
            f, "app", HOME, self.uid, self.opened[f] is not None, self.stats.get, self.real.get
        )

    def libpq(self) -> str | None:
        f = FILES[1]
        return libpq_password_file(f, self.opened[f] is not None, self.stats.get)


def run(podsec: Podsec, tmp_path: Path, text: str, *gates: str) -> tuple[Probe, str]:
    args = ["run", "--rm", "--timeout", "60"]
    for g in gates:
        args += ["--feature-gates", g]
    proc = podsec.run(*args, "-f", write(tmp_path, text))
    assert proc.returncode == 0, proc.stderr
    return Probe(proc.stdout), proc.stderr


USER_FIELDS: dict[str, Any] = {
    "secret_extra": {"defaultUser": 1000},
    "items": [ITEMS[0], {**ITEMS[1], "user": 1000}],
}
FS_USER: dict[str, Any] = {"pod_sc": {"fsUser": 1000}}


@pytest.mark.parametrize(
    ("fields", "gate"),
    [(USER_FIELDS, "AtomicWriteVolumeUserFields=true"), (FS_USER, "PodSecurityContextFSUser=true")],
    ids=["defaultUser-user", "fsUser"],
)
def test_with_the_gate_the_user_owns_the_files_and_ssh_and_psql_accept_them(
    podsec: Podsec, tmp_path: Path, fields: dict[str, Any], gate: str
) -> None:
    probe, stderr = run(podsec, tmp_path, manifest(**fields), gate)
    assert probe.uid == 1000
    for f in FILES:
        assert probe.owner_mode(f) == (1000, 0, 0o600), f
    assert probe.opened[FILES[0]] == KEYS
    assert probe.opened[FILES[1]] == PGPASS
    assert probe.sshd() is None
    assert probe.libpq() is None
    assert "warning" not in stderr


@pytest.mark.parametrize(
    ("fields", "says"),
    [(USER_FIELDS, "behind feature gate AtomicWriteVolumeUserFields"), (FS_USER, "is not a Kubernetes field")],
    ids=["defaultUser-user", "fsUser"],
)
def test_without_the_gate_files_stay_root_owned_and_both_refuse_them(
    podsec: Podsec, tmp_path: Path, fields: dict[str, Any], says: str
) -> None:
    probe, stderr = run(podsec, tmp_path, manifest(**fields))
    for f in FILES:
        assert probe.owner_mode(f) == (0, 0, 0o600), f
        assert probe.opened[f] is None, f  # uid 1000 cannot read root's 0600 file
    assert probe.sshd() == f"Could not open user 'app' authorized keys '{FILES[0]}': Permission denied"
    assert probe.libpq() == "fopen failed: ignored silently"
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and says in warnings[0], stderr


def test_fs_group_read_mask_breaks_pgpass_but_not_ssh(podsec: Podsec, tmp_path: Path) -> None:
    """fsGroup adds g+r to atomic-writer files (0600 → 0640): psql then ignores .pgpass."""
    probe, _ = run(podsec, tmp_path, manifest(pod_sc={"fsGroup": 2000}, **USER_FIELDS),
                   "AtomicWriteVolumeUserFields=true")
    assert probe.owner_mode(FILES[1]) == (1000, 2000, 0o640)
    assert probe.sshd() is None  # sshd only minds write bits
    assert probe.libpq() == (
        f'WARNING: password file "{FILES[1]}" has group or world access; permissions should be u=rw (0600) or less'
    )


def test_a_secret_volume_as_the_ssh_directory_fails_strict_modes_even_with_fs_user(
    podsec: Podsec, tmp_path: Path
) -> None:
    """Mounted whole at ~/.ssh, the volume root is a 1777 tmpfs: sshd refuses the directory, whoever owns it."""
    mounts = [{"name": "creds", "mountPath": "/home/app/.ssh"}, SUBPATH_MOUNTS[1]]
    probe, _ = run(podsec, tmp_path, manifest(mounts=mounts, **FS_USER), "PodSecurityContextFSUser=true")
    assert probe.real[FILES[0]].startswith("/home/app/.ssh/..")  # through ..data into the timestamp dir
    assert probe.owner_mode(FILES[0]) == (1000, 0, 0o600)
    assert probe.owner_mode("/home/app/.ssh") == (1000, 0, 0o1777)
    assert probe.sshd() == "Authentication refused: bad ownership or modes for directory /home/app/.ssh"
    assert probe.libpq() is None
