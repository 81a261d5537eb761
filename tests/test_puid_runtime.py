"""PUID/PGID (linuxserver.io / s6-overlay) images on real pods: what ``podsec explain`` predicts is what
``podsec run`` does.

The image is built here from static busybox plus Debian's ``s6`` package. Its ``/init`` is a shell
stand-in for the parts of a linuxserver image that matter for identity, in their order and with their
messages. These parts are s6-overlay's and linuxserver's own scripts and helpers, which Debian does not
package, so they are mimicked:

- s6-overlay v3's ``s6-overlay-suexec``: PID 1 or ``fatal: can only run as pid 1`` (exit 100); started
  non-root it warns and goes on unprivileged;
- s6-overlay's ``preinit``: an unprivileged start needs a usable ``/run`` (same rules, same messages);
- the ``docker-mods`` hook's ``LSIO_READ_ONLY_FS`` / ``LSIO_NON_ROOT_USER`` detection;
- linuxserver's ``init-adduser`` (skipped under either variable): abc's uid/gid in /etc/passwd and
  /etc/group set to PUID/PGID, then ``lsiown abc:abc /config`` (a failed chown prints lsiown's message and
  goes on).

The privilege drop itself is real: a service's run script (``exec s6-setuidgid abc app``, or the app
alone under ``LSIO_NON_ROOT_USER``) runs Debian's skarnet ``s6-setuidgid``, which execs
``/usr/bin/s6-envuidgid`` (abc's ids and groups from the image's /etc/passwd and /etc/group) and
``/usr/bin/s6-applyuidgid`` (setgroups, setgid, setuid). The three binaries, every library ``ldd`` names
for them and the dynamic loader are copied from the host (``apt-get install s6``; scripts/dev.sh does it);
without them the tests skip and say so.

Everything that fails here fails for real (the kernel's EPERM, the real PID namespace, the real /run,
s6-applyuidgid's own messages).
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Podsec
from imagebuild import FIXTURE_ENV, D, F, L, build_image_layout, busybox_applets, shared_libraries, with_parents

pytestmark = pytest.mark.runtime
IMAGE = "podsec-test:lsio"

INIT = r"""#!/bin/sh
# s6-overlay-suexec (v3): PID 1 only.
if [ "$$" != 1 ]; then
  echo "s6-overlay-suexec: fatal: can only run as pid 1" >&2
  exit 100
fi
uid=$(id -u); gid=$(id -g)
prog=/package/admin/s6-overlay/libexec/preinit
preinit_fatal() {
  echo "$prog: fatal: $*" >&2
  echo "s6-overlay-suexec: fatal: child failed with exit code 100" >&2
  exit 100
}
# preinit, unprivileged: /run must be ours, or usable without fixing it.
if [ "$uid" != 0 ]; then
  echo "s6-overlay-suexec: warning: unable to gain root privileges (is the suid bit set?)" >&2
  ruid=$(stat -c %u /run); rgid=$(stat -c %g /run); m=$((0$(stat -c %a /run)))
  if [ "$uid" != "$ruid" ]; then
    if [ "$gid" = 0 ] && [ "$rgid" = 0 ]; then
      if [ $((m & 070)) != 56 ] || [ $((m & 2)) != 0 ]; then
        preinit_fatal "wrong permissions on /run for a gid 0 setup"
      fi
    else
      if [ "$rgid" = "$gid" ]; then bits=$(((m >> 3) & 7)); need=$((03000)); else bits=$((m & 7)); need=$((01000)); fi
      if [ "$ruid" = 0 ] && [ "$bits" = 7 ] && [ $((m & need)) = "$need" ]; then
        :
      elif [ "$ruid" = 0 ] && [ $((m & 0777)) = 511 ] && [ "0$S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES" -ne 0 ]; then
        echo "$prog: warning: /run belongs to uid $ruid instead of $uid, IS WORLD WRITABLE, and we're lacking the privileges to fix it, but we have been instructed to accept it." >&2
      else
        preinit_fatal "/run belongs to uid $ruid instead of $uid, has insecure and/or unworkable permissions, and we're lacking the privileges to fix it."
      fi
    fi
  fi
fi
if ! mkdir -p /run/s6/container_environment; then
  echo "s6-overlay-suexec: fatal: child failed with exit code 111" >&2
  exit 111
fi
# the docker-mods hook
if grep -qE '^[^ ]+ / [^ ]+ ro[, ]' /proc/mounts; then LSIO_READ_ONLY_FS=1; fi
if [ "$(stat -c %u /run)" != 0 ]; then LSIO_NON_ROOT_USER=1; fi
# init-adduser (skipped on a read-only root or under LSIO_NON_ROOT_USER)
if [ -z "$LSIO_READ_ONLY_FS$LSIO_NON_ROOT_USER" ]; then
  PUID=${PUID:-911}; PGID=${PGID:-911}
  case "$PGID" in
    ''|*[!0-9]*) echo "groupmod: invalid group ID '$PGID'" >&2 ;;
    *) sed -i "s/^abc:x:[0-9]*:/abc:x:$PGID:/" /etc/group 2>/dev/null &&
       sed -i "s/^\(abc:[^:]*:[0-9]*:\)[0-9]*:/\1$PGID:/" /etc/passwd 2>/dev/null ||
       { echo "groupmod: Permission denied." >&2; echo "s6-rc: warning: unable to start service init-adduser: command exited 1" >&2; exit 1; } ;;
  esac
  case "$PUID" in
    ''|*[!0-9]*) echo "usermod: invalid user ID '$PUID'" >&2 ;;
    *) sed -i "s/^abc:x:[0-9]*:/abc:x:$PUID:/" /etc/passwd 2>/dev/null ||
       { echo "usermod: cannot lock /etc/passwd; try again later." >&2; exit 1; } ;;
  esac
  # lsiown abc:abc /config
  chown -R abc:abc /config || printf '**** Permissions could not be set. This is probably because your volume mounts are remote or read-only. ****\n'
fi
# a service's run script: the app itself under LSIO_NON_ROOT_USER, else the real s6-setuidgid
if [ -n "$LSIO_NON_ROOT_USER" ]; then
  exec "$@"
fi
exec /command/s6-setuidgid abc "$@"
"""


S6_TOOLS = ("s6-setuidgid", "s6-envuidgid", "s6-applyuidgid")
S6_DIR = Path("/usr/bin")
"""Debian's s6 (skarnet s6 2.11): s6-setuidgid execs ``/usr/bin/s6-envuidgid``, which execs
``/usr/bin/s6-applyuidgid`` (absolute paths compiled in), so the image has them at the same place."""


def s6_tools() -> dict[str, Path]:
    """Image path → host binary for the three s6 programs and every library ``ldd`` names for them."""
    tools = {f"usr/bin/{name}": S6_DIR / name for name in S6_TOOLS}
    missing = [str(p) for p in tools.values() if not p.is_file()]
    if missing or shutil.which("ldd") is None:
        pytest.skip(f"needs {', '.join(missing) or 'ldd'} (Debian s6; scripts/dev.sh installs it)")
    setuidgid = tools["usr/bin/s6-setuidgid"].read_bytes()
    for name in S6_TOOLS[1:]:  # where s6-setuidgid looks for the other two: the image must match
        assert f"{S6_DIR}/{name}".encode() in setuidgid, f"s6-setuidgid does not exec {S6_DIR}/{name}"
    libs = shared_libraries(list(tools.values()))
    return {**tools, **{lib.lstrip("/"): Path(lib).resolve() for lib in libs}}


@pytest.fixture(scope="module")
def lsio(podsec: Podsec, tmp_path_factory: pytest.TempPathFactory) -> Podsec:
    """The session store plus ``podsec-test:lsio``: ENTRYPOINT /init, abc 911:911 (a member of users 100),
    s6-overlay v3 and docker-mods files in their places, a root-owned /run and /config, and Debian's real
    s6-setuidgid (at /usr/bin, and as /command/s6-setuidgid where s6-overlay puts it)."""
    busybox = Path("/bin/busybox")
    binaries = s6_tools()
    files = [
        D("bin"), F("bin/busybox", busybox.read_bytes(), mode=0o755), D("etc"), D("tmp", mode=0o1777),
        D("run"), D("config"), D("root", mode=0o700),
        F("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nabc:x:911:911::/config:/bin/false\n"),
        F("etc/group", "root:x:0:\nabc:x:911:\nusers:x:100:abc\n"),
        F("etc/nsswitch.conf", "passwd: files\ngroup: files\n"),  # s6-envuidgid: glibc getpwnam/getgrent
        F("init", INIT, mode=0o755),
        D("etc/s6-overlay"), D("etc/s6-overlay/s6-rc.d"), D("etc/s6-overlay/s6-rc.d/init-adduser"),
        D("package"), D("package/admin"), D("package/admin/s6-overlay-3.2.1.0"),
        L("package/admin/s6-overlay", "s6-overlay-3.2.1.0"),
        *with_parents(list(binaries)),
        *(F(name, path.read_bytes(), mode=0o755) for name, path in sorted(binaries.items())),
        D("command"), L("command/s6-setuidgid", "/usr/bin/s6-setuidgid"),
        F("docker-mods", "#!/bin/sh\n", mode=0o755),
    ]
    files += [L(f"bin/{a}", "/bin/busybox") for a in busybox_applets(busybox)]
    layout = build_image_layout(
        tmp_path_factory.mktemp("lsio") / "layout",
        {"lsio": {"Env": list(FIXTURE_ENV), "Entrypoint": ["/init"]}},
        files,
        name="podsec-test",
    )
    out = podsec.run("image", "load", str(layout))
    assert out.returncode == 0, out.stderr
    return podsec


def pod_yaml(name: str, *, sc: str = "", pod_sc: str = "", env: str = "", mounts: str = "", volumes: str = "",
             args: str = '["sh", "-c", "id; ls -lnd /config"]', spec: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}}}
        spec:
          restartPolicy: Never
          securityContext: {{{pod_sc}}}
          {spec}
          volumes: [{{name: config, emptyDir: {{}}}}{volumes}]
          containers:
          - name: app
            image: {IMAGE}
            args: {args}
            securityContext: {{{sc}}}
            env: [{{name: PUID, value: "1000"}}, {{name: PGID, value: "1000"}}{env}]
            volumeMounts: [{{name: config, mountPath: /config}}{mounts}]
        """)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pod.yaml"
    path.write_text(text)
    return str(path)


def explain(podsec: Podsec, path: str) -> tuple[str, dict[str, Any]]:
    """explain's text (wrapped bullets joined back into one line each) and the container's JSON verdict."""
    text = podsec.run("explain", path)
    assert text.returncode == 0, text.stderr
    doc = podsec.run("explain", "-o", "json", path)
    assert doc.returncode == 0, doc.stderr
    return re.sub(r"\n {6}(?=\S)", " ", text.stdout), json.loads(doc.stdout)["pods"][0]["containers"][0]["puid"]


def run(podsec: Podsec, path: str) -> Any:
    return podsec.run("run", "--rm", "-f", path, timeout=60)


def test_default_pod_starts_as_root_and_the_app_runs_as_puid_pgid(lsio: Podsec, tmp_path: Path) -> None:
    path = write(tmp_path, pod_yaml("lsio-default"))
    text, verdict = explain(lsio, path)
    assert "runs as uid 0 (root)" in text
    assert "PUID/PGID image: /init starts as root (uid 0) and drops the app to 1000:1000 (groups 100,1000)" in text
    assert "PUID/PGID conflicts: none with this securityContext" in text
    assert "/init is the image ENTRYPOINT" in text and "/docker-mods" in text
    assert verdict["mode"] == "drop" and verdict["conflicts"] == []
    assert verdict["start"]["uid"] == 0 and verdict["app"] == {"uid": 1000, "gid": 1000, "groups": [100, 1000],
                                                               "user": "abc"}
    out = run(lsio, path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == "uid=1000(abc) gid=1000(abc) groups=100(users),1000(abc)"
    assert out.stdout.splitlines()[1].split()[2:4] == ["1000", "1000"]  # /config chowned to PUID:PGID
    notes = [ln for ln in out.stderr.splitlines() if ln.startswith("podsec: note: app: PUID/PGID image:")]
    assert notes == ["podsec: note: app: PUID/PGID image: /init starts as root (uid 0) and drops the app to 1000:1000 "
                     "(groups 100,1000)"], out.stderr


def test_allow_privilege_escalation_false_does_not_stop_the_drop(lsio: Podsec, tmp_path: Path) -> None:
    """Root calling setgroups/setgid/setuid needs capabilities, not setuid binaries: no_new_privs is harmless."""
    path = write(tmp_path, pod_yaml("lsio-nnp", sc="allowPrivilegeEscalation: false",
                                    args='["sh", "-c", "id; grep NoNewPrivs /proc/self/status"]'))
    text, verdict = explain(lsio, path)
    assert verdict["conflicts"] == [] and "allowPrivilegeEscalation: false" in verdict["fine"][0]
    assert "PUID/PGID fine: allowPrivilegeEscalation: false: /init is root calling setgroups()" in text
    out = run(lsio, path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split("\n")[:2] == ["uid=1000(abc) gid=1000(abc) groups=100(users),1000(abc)", "NoNewPrivs:\t1"]


@pytest.mark.parametrize(("sc", "message"), [
    ("runAsUser: 1000", "preinit: fatal: wrong permissions on /run for a gid 0 setup"),
    ("runAsUser: 1000, runAsGroup: 1000",
     "preinit: fatal: /run belongs to uid 0 instead of 1000, has insecure and/or unworkable permissions, "
     "and we're lacking the privileges to fix it."),
])
def test_run_as_user_breaks_the_init_as_explain_predicts(lsio: Podsec, tmp_path: Path, sc: str, message: str) -> None:
    path = write(tmp_path, pod_yaml("lsio-nonroot", sc=sc))
    text, verdict = explain(lsio, path)
    [conflict] = verdict["conflicts"]
    assert conflict["setting"] == "spec.containers[0].securityContext.runAsUser: 1000" and conflict["fatal"]
    assert conflict["error"] == message
    assert "PUID/PGID CONFLICT: spec.containers[0].securityContext.runAsUser: 1000" in text
    assert "INSTEAD: either let /init start as root" in text
    assert "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES=1" in conflict["instead"]
    assert "LSIO_NON_ROOT_USER=true" in conflict["instead"]
    out = run(lsio, path)
    assert out.returncode == 100
    assert "s6-overlay-suexec: warning: unable to gain root privileges (is the suid bit set?)" in out.stdout
    assert conflict["error"] in out.stdout  # the container's own words, as predicted
    assert "uid=" not in out.stdout  # the app never ran


def test_the_non_root_recipe_explain_gives_works(lsio: Podsec, tmp_path: Path) -> None:
    """Following the advice: runAsUser/runAsGroup = PUID/PGID, fsGroup, an emptyDir at /run and the two env vars."""
    path = write(tmp_path, pod_yaml(
        "lsio-recipe", sc="runAsUser: 1000, runAsGroup: 1000", pod_sc="fsGroup: 1000",
        env=', {name: S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES, value: "1"}, '
            '{name: LSIO_NON_ROOT_USER, value: "true"}',
        mounts=", {name: run, mountPath: /run}", volumes=", {name: run, emptyDir: {}}"))
    text, verdict = explain(lsio, path)
    assert verdict["mode"] == "non-root"
    [conflict] = verdict["conflicts"]
    assert not conflict["fatal"] and conflict["instead"] == "remove PUID/PGID (they do nothing here)"
    assert "PUID/PGID image: /init starts as uid 1000, gid 1000, not root: PUID/PGID are ignored; the app runs as " \
           "1000:1000 (groups 1000)" in text
    out = run(lsio, path)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()  # (runc copies the container's stdout and stderr through separate pipes)
    assert "uid=1000 gid=1000 groups=1000" in lines, out.stdout
    assert any("IS WORLD WRITABLE" in ln for ln in lines)  # preinit's warning: it accepted the emptyDir


@pytest.mark.parametrize(("caps", "setting", "chown", "line"), [
    ("{drop: [ALL]}", "capabilities.drop: [ALL]", False,
     "s6-applyuidgid: fatal: unable to set supplementary group list: Operation not permitted"),
    ("{drop: [SETUID]}", "capabilities without SETUID", True,
     "s6-applyuidgid: fatal: unable to setuid: Operation not permitted"),
], ids=["drop-all", "drop-setuid"])
def test_missing_capabilities_fail_the_drop_with_the_words_explain_predicts(
    lsio: Podsec, tmp_path: Path, caps: str, setting: str, chown: bool, line: str
) -> None:
    """Root without CAP_SETGID (or CAP_SETUID): the real s6-applyuidgid dies with exactly the line explain names."""
    path = write(tmp_path, pod_yaml("lsio-caps", sc=f"capabilities: {caps}"))
    text, verdict = explain(lsio, path)
    [conflict] = verdict["conflicts"]
    assert conflict["setting"] == f"spec.containers[0].securityContext.{setting}" and conflict["fatal"]
    assert f"({line}) and the app never starts (exit 111)" in conflict["breaks"]
    assert ("chown of /config to 1000:1000 fails (Operation not permitted" in conflict["breaks"]) is not chown
    assert f"PUID/PGID CONFLICT: spec.containers[0].securityContext.{setting}:" in text
    assert "drop: [ALL], add: [CHOWN, SETGID, SETUID]" in conflict["instead"]
    out = run(lsio, path)
    assert out.returncode == 111, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert ("chown: /config: Operation not permitted" in lines) is not chown  # the kernel's EPERM, no CAP_CHOWN
    # s6-setuidgid's last words: the app never ran. runc copies the container's stdout and stderr through two
    # pipes (see OCIRuntime.run), so on a loaded machine the init script's last stdout line may come after it.
    assert line in lines[-2:], lines
    assert conflict["error"] in line


def test_read_only_root_still_drops_to_abc_s_image_ids(lsio: Podsec, tmp_path: Path) -> None:
    """A read-only root skips init-adduser (PUID/PGID ignored), but the services still run s6-setuidgid abc."""
    path = write(tmp_path, pod_yaml("lsio-readonly", sc="readOnlyRootFilesystem: true",
                                    mounts=", {name: run, mountPath: /run}", volumes=", {name: run, emptyDir: {}}"))
    text, verdict = explain(lsio, path)
    assert verdict["mode"] == "read-only" and not any(c["fatal"] for c in verdict["conflicts"])
    assert verdict["app"] == {"uid": 911, "gid": 911, "groups": [100, 911], "user": "abc"}
    assert "the app runs as abc's image ids 911:911 (groups 100,911)" in text
    out = run(lsio, path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == "uid=911(abc) gid=911(abc) groups=100(users),911(abc)"
    assert out.stdout.splitlines()[1].split()[2:4] == ["0", "0"]  # no lsiown: /config stays root's


def test_the_minimal_capabilities_explain_names_are_enough(lsio: Podsec, tmp_path: Path) -> None:
    path = write(tmp_path, pod_yaml("lsio-mincaps", sc="capabilities: {drop: [ALL], add: [CHOWN, SETGID, SETUID]}",
                                    args='["sh", "-c", "id; ls -lnd /config; grep CapEff /proc/self/status"]'))
    _, verdict = explain(lsio, path)
    assert verdict["conflicts"] == []
    out = run(lsio, path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == [
        "uid=1000(abc) gid=1000(abc) groups=100(users),1000(abc)",
        out.stdout.splitlines()[1],
        "CapEff:\t0000000000000000",
    ]
    assert out.stdout.splitlines()[1].split()[2:4] == ["1000", "1000"]


def test_fs_group_is_lost_after_the_drop_as_explain_says(lsio: Podsec, tmp_path: Path) -> None:
    path = write(tmp_path, pod_yaml("lsio-fsgroup", pod_sc="fsGroup: 2000"))
    text, verdict = explain(lsio, path)
    [conflict] = verdict["conflicts"]
    assert conflict["setting"] == "spec.securityContext.fsGroup: 2000" and not conflict["fatal"]
    assert "the app loses group(s) 2000" in conflict["breaks"]
    assert "runs as uid 0 (root) [image (no USER: root)], gid 0 [image /etc/passwd], groups 0,2000" in text
    out = run(lsio, path)
    assert out.returncode == 0, out.stdout + out.stderr
    groups = verdict["app"]["groups"]
    assert out.stdout.splitlines()[0] == "uid=1000(abc) gid=1000(abc) groups=100(users),1000(abc)"
    assert groups == [100, 1000]


def test_shared_process_namespace_is_refused_by_the_pid1_check(lsio: Podsec, tmp_path: Path) -> None:
    path = write(tmp_path, pod_yaml("lsio-sharepid", spec="shareProcessNamespace: true"))
    _, verdict = explain(lsio, path)
    [conflict] = verdict["conflicts"]
    assert conflict["setting"] == "shareProcessNamespace: true"
    assert conflict["error"] == "s6-overlay-suexec: fatal: can only run as pid 1"
    out = run(lsio, path)
    assert out.returncode == 100
    assert out.stdout.strip() == conflict["error"]


def test_apply_records_the_event_describe_shows(lsio: Podsec, tmp_path: Path) -> None:
    path = write(tmp_path, pod_yaml("lsio-event", sc="capabilities: {drop: [ALL]}", args='["sleep", "30"]'))
    assert lsio.run("apply", "-f", path).returncode == 0
    try:
        end = time.monotonic() + 20
        described = ""
        while time.monotonic() < end and "PUIDPGID" not in described:
            described = lsio.run("describe", "pod", "lsio-event").stdout
            time.sleep(0.05)
        event = [ln for ln in described.splitlines() if "PUIDPGID" in ln]
        assert len(event) == 1, described
        fields = event[0].split()
        assert fields[:2] == ["Warning", "PUIDPGID"] and "podsec" in fields
        assert ("container app: /init starts as root (uid 0) but fails before the app runs as 1000:1000 (groups "
                "100,1000) (spec.containers[0].securityContext.capabilities.drop: [ALL] → Operation not permitted); "
                "conflicts: spec.containers[0].securityContext.capabilities.drop: [ALL] (fatal)") in event[0]
    finally:
        assert lsio.run("delete", "lsio-event", "--now").returncode == 0


def test_env_from_a_config_map_in_the_manifest_is_read_by_run(lsio: Podsec, tmp_path: Path) -> None:
    """PUID/PGID from ``envFrom`` a ConfigMap: explain (no ConfigMap objects) says they are unknown; run has
    the manifest's ConfigMap, so its note names the ids the container really ends up with."""
    yaml = pod_yaml("lsio-envfrom").replace(
        '    env: [{name: PUID, value: "1000"}, {name: PGID, value: "1000"}]\n',
        "    envFrom: [{configMapRef: {name: lsio-ids}}]\n")
    assert "envFrom" in yaml
    path = write(tmp_path, yaml)
    _, verdict = explain(lsio, path)
    assert verdict["PUID"] == {"value": None, "source": "envFrom configMapRef lsio-ids"}
    assert "PUID comes from envFrom configMapRef lsio-ids: its value is known only when the pod runs" \
        in verdict["warnings"]
    path = write(tmp_path, yaml + textwrap.dedent("""\
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: lsio-ids}
        data: {PUID: "1001", PGID: "1002"}
        """))
    out = run(lsio, path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == "uid=1001(abc) gid=1002(abc) groups=100(users),1002(abc)"
    notes = [ln for ln in out.stderr.splitlines() if ln.startswith("podsec: note: app: PUID/PGID image:")]
    assert notes == ["podsec: note: app: PUID/PGID image: /init starts as root (uid 0) and drops the app to 1001:1002 "
                     "(groups 100,1002)"], out.stderr
