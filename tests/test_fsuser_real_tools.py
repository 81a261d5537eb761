"""The same proof as test_fsuser_runtime.py, judged by the real programs instead of re-implemented rules:
Debian's own ``sshd``, ``ssh``, ``ssh-keygen`` and ``psql`` (libpq) run in a real runc container as
uid 1000, with a Secret mounted (subPath, ``defaultMode: 0600``) as ``~/.ssh/authorized_keys`` and
``~/.pgpass``.

The image is built here from /bin/busybox plus the host's binaries and every shared library ``ldd``
names for them (the dynamic loader included). The host key and the client key pair are made on the host
with ssh-keygen and baked into the image owned by uid 1000, mode 0600, so only the Secret's files differ
between the cases.

In the pod:

* ``sshd`` runs as uid 1000 itself (non-root: it can only log in its own user, which is the case here)
  on 127.0.0.1:2222 with ``StrictModes=yes``, and ``ssh`` logs in as ``app`` with the key; sshd's log
  says why it refuses when it does.
* a fake PostgreSQL server (busybox ``nc -e`` and a shell script) reads the StartupMessage, asks for a
  cleartext password (``AuthenticationCleartextPassword``: ``'R'``, Int32 8, Int32 3) and records every
  byte the client sends; ``psql -w`` (never prompts) answers with a PasswordMessage only if libpq took a
  password from ``~/.pgpass``.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Podsec
from imagebuild import FIXTURE_ENV, D, F, L, build_image_layout, busybox_applets, shared_libraries, with_parents
from test_fsuser_runtime import FILES, FS_USER, ITEMS, SUBPATH_MOUNTS, USER_FIELDS

pytestmark = pytest.mark.runtime

IMAGE = "podsec-test:real-tools"
PASSWORD = "s3cret"
PGPASS = f"127.0.0.1:5432:app:app:{PASSWORD}"
AUTHORIZED_KEYS, PGPASS_FILE = FILES

SSHD_CONFIG = """\
ListenAddress 127.0.0.1
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
"""

# One connection on stdin/stdout (busybox ``nc -e``). ``dd bs=1`` reads byte by byte so that no read
# takes bytes of the next message; everything read is appended to /tmp/got.
SERVER = r"""#!/bin/sh
take() { dd bs=1 count="$1" 2>/dev/null | tee -a /tmp/got; }
int32() { od -An -tu1 | { read -r a b c d; echo $(( (a << 24) | (b << 16) | (c << 8) | d )); }; }
n=$(take 4 | int32)                            # StartupMessage: Int32 length (itself included), ...
take $((n - 4)) >/dev/null                     # ... protocol 3.0 and the name/value parameters
printf 'R\000\000\000\010\000\000\000\003'     # AuthenticationCleartextPassword
[ "$(take 1)" = p ] || exit 0                  # PasswordMessage, or nothing: without a password libpq hangs up
n=$(take 4 | int32)
take $((n - 4)) >/dev/null
"""

SSHD = ("/usr/sbin/sshd -D -e -f /opt/sshd/sshd_config -h /opt/sshd/host_key -p 2222"
        " -o StrictModes=yes -o UsePAM=no -o PidFile=none")
SSH = ("ssh -i /opt/client/id_ed25519 -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
       " -o BatchMode=yes app@127.0.0.1 echo SSH-OK")
PSQL = "psql -h 127.0.0.1 -p 5432 -U app -w app"

# Each step prints "--- NAME RC" and then its output.
SCRIPT = textwrap.dedent(
    f"""\
    out() {{ name=$1; shift; "$@" >/tmp/out 2>&1; rc=$?; echo "--- $name $rc"; cat /tmp/out; }}
    listening() {{ i=0; until netstat -ltn | grep -q ":$1 "; do
      i=$((i + 1)); [ $i -lt 250 ] || return 1; sleep 0.02; done; }}
    out stat stat -L -c '%n %u %g %a' {AUTHORIZED_KEYS} {PGPASS_FILE}
    out fingerprint ssh-keygen -l -f {AUTHORIZED_KEYS}
    {SSHD} 2>/tmp/sshd.log &
    sshd=$!
    listening 2222
    out ssh {SSH}
    kill $sshd; wait $sshd
    echo "--- sshd-log 0"; cat /tmp/sshd.log
    : >/tmp/got
    timeout 10 nc -l -p 5432 -e /opt/pg/server.sh &
    nc=$!
    listening 5432
    out psql {PSQL}
    wait $nc
    echo "--- got 0"; od -An -tx1 -v /tmp/got
    """
)


# --- the image -----------------------------------------------------------------------------------


def host_tools() -> dict[str, Path] | str:
    """Image path → host binary, or why they are not all there."""
    psqls = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"),
                   key=lambda p: [int(n) for n in re.findall(r"\d+", p.split("/")[4])])
    tools = {
        "usr/sbin/sshd": Path("/usr/sbin/sshd"),
        "usr/bin/ssh": Path("/usr/bin/ssh"),
        "usr/bin/ssh-keygen": Path("/usr/bin/ssh-keygen"),
        # /usr/bin/psql is postgresql-common's perl wrapper; this is the program itself.
        "usr/bin/psql": Path(psqls[-1]) if psqls else Path("/usr/lib/postgresql/N/bin/psql"),
    }
    missing = [str(p) for p in tools.values() if not p.is_file()]
    if missing or shutil.which("ldd") is None:
        return (f"needs {', '.join(missing) or 'ldd'} (Debian openssh-server, openssh-client, postgresql-client;"
                " scripts/dev.sh installs them)")
    return tools


@dataclass(frozen=True)
class Tools:
    podsec: Podsec
    public_key: str
    fingerprint: str


@pytest.fixture(scope="session")
def tools(podsec: Podsec, tmp_path_factory: pytest.TempPathFactory) -> Tools:
    """The session store plus ``podsec-test:real-tools``; the keys are made here on the host."""
    found = host_tools()
    if isinstance(found, str):
        pytest.skip(found)
    base = tmp_path_factory.mktemp("real-tools")
    for key in ("host_key", "id_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "app@podsec", "-f", str(base / key)],
                       check=True, capture_output=True)
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(base / "id_ed25519.pub")], check=True,
                                 capture_output=True, text=True).stdout.strip()

    busybox = Path("/bin/busybox")
    libs = shared_libraries(list(found.values()))
    binaries = {**found, **{lib.lstrip("/"): Path(lib).resolve() for lib in libs}}
    files = [
        D("bin"), D("dev"), D("etc"), D("home"), D("home/app", uid=1000, gid=1000), D("proc"),
        D("root", mode=0o700), D("sys"), D("tmp", mode=0o1777), D("run"),
        F("bin/busybox", busybox.read_bytes(), mode=0o755),
        F("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
                        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        F("etc/group", "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"),
        F("etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files\n"),
        *with_parents(list(binaries)),
        *(F(name, path.read_bytes(), mode=0o755) for name, path in sorted(binaries.items())),
        D("opt"),
        D("opt/sshd", uid=1000, gid=1000, mode=0o700),
        F("opt/sshd/sshd_config", SSHD_CONFIG, uid=1000, gid=1000),
        F("opt/sshd/host_key", (base / "host_key").read_bytes(), uid=1000, gid=1000, mode=0o600),
        F("opt/sshd/host_key.pub", (base / "host_key.pub").read_bytes(), uid=1000, gid=1000),
        D("opt/client", uid=1000, gid=1000, mode=0o700),
        F("opt/client/id_ed25519", (base / "id_ed25519").read_bytes(), uid=1000, gid=1000, mode=0o600),
        D("opt/pg"),
        F("opt/pg/server.sh", SERVER, mode=0o755),
    ]
    files += [L(f"bin/{a}", "/bin/busybox") for a in busybox_applets(busybox)]
    layout = build_image_layout(base / "layout", {"real-tools": {"Env": list(FIXTURE_ENV), "Cmd": ["sh"]}}, files,
                                name="podsec-test")
    out = podsec.run("image", "load", str(layout))
    assert out.returncode == 0, out.stderr
    return Tools(podsec, (base / "id_ed25519.pub").read_text().strip(), fingerprint)


# --- the pod -------------------------------------------------------------------------------------


def manifest(
    public_key: str,
    secret_extra: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    pod_sc: dict[str, Any] | None = None,
    mounts: list[dict[str, Any]] | None = None,
) -> str:
    secret = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "app-creds"},
              "stringData": {"authorized_keys": public_key + "\n", "pgpass": PGPASS + "\n"}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "real-tools"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, **(pod_sc or {})},
            "containers": [{
                "name": "app", "image": IMAGE, "command": ["sh", "-c", SCRIPT],
                # A plain connection: no SSLRequest or GSSENCRequest before the StartupMessage.
                "env": [{"name": "PGSSLMODE", "value": "disable"}, {"name": "PGGSSENCMODE", "value": "disable"}],
                "volumeMounts": mounts or SUBPATH_MOUNTS,
            }],
            "volumes": [{"name": "creds", "secret": {"secretName": "app-creds", "defaultMode": 0o600,
                                                      **(secret_extra or {}), "items": items or ITEMS}}],
        },
    }
    return yaml.safe_dump_all([secret, pod], sort_keys=False)


@dataclass
class Step:
    rc: int
    output: str


class Result:
    """What each step in the pod printed, and the bytes psql sent to the fake server."""

    def __init__(self, stdout: str) -> None:
        self.steps: dict[str, Step] = {}
        name = None
        for line in stdout.splitlines():
            if line.startswith("--- "):
                name, rc = line[4:].rsplit(" ", 1)
                self.steps[name] = Step(int(rc), "")
            elif name is not None:
                self.steps[name].output += line + "\n"
        self.got = bytes.fromhex("".join(self.steps["got"].output.split()))

    def __getitem__(self, name: str) -> Step:
        return self.steps[name]

    def stat(self) -> dict[str, tuple[int, int, int]]:
        rows = [line.split() for line in self["stat"].output.splitlines()]
        return {r[0]: (int(r[1]), int(r[2]), int(r[3], 8)) for r in rows}

    @property
    def sshd_log(self) -> str:
        return self["sshd-log"].output


def run(tools: Tools, tmp_path: Path, gate: str | None = None, **fields: Any) -> Result:
    path = tmp_path / "pod.yaml"
    path.write_text(manifest(tools.public_key, **fields))
    gates = ["--feature-gates", gate] if gate else []
    proc = tools.podsec.run("run", "--rm", "--timeout", "60", *gates, "-f", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Result(proc.stdout)


PASSWORD_MESSAGE = b"p" + (4 + len(PASSWORD) + 1).to_bytes(4, "big") + PASSWORD.encode() + b"\0"
NO_PASSWORD = 'connection to server at "127.0.0.1", port 5432 failed: fe_sendauth: no password supplied'


def logged_in(result: Result) -> bool:
    """ssh ran the command on the server (after its "Permanently added ... to the list of known hosts")."""
    return result["ssh"].rc == 0 and result["ssh"].output.splitlines()[-1:] == ["SSH-OK"]


def assert_psql_asked(result: Result) -> None:
    """The fake server got psql's StartupMessage (so it asked for a password: the case is not vacuous)."""
    assert b"\0user\0app\0database\0app\0" in result.got, result.got


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "gate"),
    [(FS_USER, "PodSecurityContextFSUser=true"), (USER_FIELDS, "AtomicWriteVolumeUserFields=true")],
    ids=["fsUser", "defaultUser-user"],
)
def test_with_the_gate_sshd_accepts_the_key_and_psql_sends_the_pgpass_password(
    tools: Tools, tmp_path: Path, fields: dict[str, Any], gate: str
) -> None:
    result = run(tools, tmp_path, gate, **fields)
    assert result.stat() == {AUTHORIZED_KEYS: (1000, 0, 0o600), PGPASS_FILE: (1000, 0, 0o600)}
    assert result["fingerprint"] == Step(0, tools.fingerprint + "\n")  # the key arrived whole and readable
    assert logged_in(result), result.sshd_log
    assert re.search(r"Accepted publickey for app from 127\.0\.0\.1 port \d+ ssh2: ED25519 SHA256:",
                     result.sshd_log), result.sshd_log
    assert_psql_asked(result)
    assert result.got.endswith(PASSWORD_MESSAGE), result.got
    # libpq sent the password and waited for the answer; the fake server hung up instead.
    assert result["psql"].rc == 2
    assert result["psql"].output.startswith(
        'psql: error: connection to server at "127.0.0.1", port 5432 failed: server closed the connection unexpectedly'
    ), result["psql"].output


@pytest.mark.parametrize("fields", [FS_USER, USER_FIELDS], ids=["fsUser", "defaultUser-user"])
def test_without_the_gate_sshd_cannot_read_authorized_keys_and_psql_has_no_password(
    tools: Tools, tmp_path: Path, fields: dict[str, Any]
) -> None:
    result = run(tools, tmp_path, None, **fields)
    assert result.stat() == {AUTHORIZED_KEYS: (0, 0, 0o600), PGPASS_FILE: (0, 0, 0o600)}
    assert result["fingerprint"].rc != 0
    assert "Permission denied" in result["fingerprint"].output
    assert result["ssh"].rc == 255
    assert "app@127.0.0.1: Permission denied (publickey)." in result["ssh"].output
    assert f"Could not open user 'app' authorized keys '{AUTHORIZED_KEYS}': Permission denied" in result.sshd_log
    assert "Accepted publickey" not in result.sshd_log
    assert_psql_asked(result)
    assert PASSWORD.encode() not in result.got
    assert result["psql"] == Step(2, f"psql: error: {NO_PASSWORD}\n")


def test_fs_group_makes_pgpass_0640_so_libpq_ignores_it_but_sshd_still_accepts(
    tools: Tools, tmp_path: Path
) -> None:
    result = run(tools, tmp_path, "PodSecurityContextFSUser=true", pod_sc={"fsUser": 1000, "fsGroup": 2000})
    assert result.stat() == {AUTHORIZED_KEYS: (1000, 2000, 0o640), PGPASS_FILE: (1000, 2000, 0o640)}
    assert logged_in(result), result.sshd_log  # sshd minds only group/world write bits
    assert_psql_asked(result)
    assert PASSWORD.encode() not in result.got
    assert result["psql"] == Step(2, (
        f'WARNING: password file "{PGPASS_FILE}" has group or world access; permissions should be u=rw (0600) or less\n'
        f"psql: error: {NO_PASSWORD}\n"
    ))


def test_a_secret_volume_as_the_ssh_directory_is_refused_by_sshd_strict_modes_even_with_fs_user(
    tools: Tools, tmp_path: Path
) -> None:
    """Mounted whole at ~/.ssh, the volume root is a 1777 tmpfs: sshd refuses the directory, whoever owns it."""
    mounts = [{"name": "creds", "mountPath": "/home/app/.ssh"}, SUBPATH_MOUNTS[1]]
    result = run(tools, tmp_path, "PodSecurityContextFSUser=true", mounts=mounts, **FS_USER)
    assert result.stat()[AUTHORIZED_KEYS] == (1000, 0, 0o600)
    assert result["fingerprint"].rc == 0  # the user can read the key: only sshd's StrictModes says no
    assert result["ssh"].rc == 255
    assert "Authentication refused: bad ownership or modes for directory /home/app/.ssh" in result.sshd_log
    assert result.got.endswith(PASSWORD_MESSAGE)
