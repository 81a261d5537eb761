"""kubectl habits on the runtime side, and warnings a user running pods on their own machine needs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import Podsec

pytestmark = pytest.mark.runtime


def write(tmp_path: Path, text: str, name: str = "pod.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_run_warns_once_before_a_host_changing_capability(podsec: Podsec, tmp_path: Path) -> None:
    f = write(tmp_path, """\
        apiVersion: v1
        kind: Pod
        metadata: {name: hab-clock}
        spec:
          restartPolicy: Never
          containers:
          - name: c
            image: "podsec-fixture:root"
            command: [sh, -c, "echo started"]
            securityContext: {capabilities: {add: [SYS_TIME]}}
          - name: plain
            image: "podsec-fixture:root"
            command: ["true"]
        """)
    out = podsec.run("run", "--rm", "-f", f)
    assert out.returncode == 0, out.stderr
    warnings = [ln for ln in out.stderr.splitlines() if "can change this machine" in ln]
    assert len(warnings) == 1, out.stderr
    assert warnings[0].startswith('podsec: warning: container "c" can change this machine')
    assert "SYS_TIME sets the host's clock" in warnings[0]
    assert out.stdout == "[c] started\n"


def test_no_warning_for_a_non_root_container_with_the_capability(podsec: Podsec, tmp_path: Path) -> None:
    """A non-root container's added capabilities stay in its bounding set: not effective, no warning."""
    f = write(tmp_path, """\
        apiVersion: v1
        kind: Pod
        metadata: {name: hab-nonroot}
        spec:
          restartPolicy: Never
          containers:
          - name: c
            image: "podsec-fixture:root"
            command: ["true"]
            securityContext: {runAsUser: 1000, capabilities: {add: [SYS_TIME]}}
        """)
    out = podsec.run("run", "--rm", "-f", f)
    assert out.returncode == 0, out.stderr
    assert "can change this machine" not in out.stderr


def test_run_timeout_takes_a_duration(podsec: Podsec, tmp_path: Path) -> None:
    f = write(tmp_path, """\
        apiVersion: v1
        kind: Pod
        metadata: {name: hab-timeout}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - {name: c, image: "podsec-fixture:root", command: [sleep, "60"]}
        """)
    out = podsec.run("run", "--rm", "--timeout", "1s", "-f", f)
    assert out.returncode == 124, out.stderr
    assert "stopped after --timeout 1s" in out.stderr
    bad = podsec.run("run", "--rm", "--timeout", "5x", "-f", f)
    assert bad.returncode == 2
    assert "'5x': not a duration" in bad.stderr


def test_exec_exit_codes_and_messages_as_kubectl(podsec: Podsec, tmp_path: Path) -> None:
    from test_runtime_lifecycle import status_of, wait_for

    f = write(tmp_path, """\
        apiVersion: v1
        kind: Pod
        metadata: {name: hab-exec}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - {name: c, image: "podsec-fixture:root", command: [sleep, "600"]}
        """)
    assert podsec.run("apply", "-f", f).returncode == 0
    try:
        wait_for(lambda: status_of(podsec, "hab-exec") == "Running", what="Running")
        missing = podsec.run("exec", "hab-exec", "--", "no-such-command")
        assert missing.returncode == 127
        assert missing.stderr == ('podsec: OCI runtime exec failed: exec failed: unable to start container process: '
                                  'exec: "no-such-command": executable file not found in $PATH\n')
        not_exec = podsec.run("exec", "hab-exec", "--", "/etc/passwd")
        assert not_exec.returncode == 126
        assert not_exec.stderr.count("\n") == 1 and "permission denied" in not_exec.stderr
        # the command's own stderr and exit code pass through untouched, even a line that looks like runc's
        own = podsec.run("exec", "hab-exec", "--", "sh", "-c", "echo out; echo 'exec failed: mine' >&2; exit 5")
        assert (own.returncode, own.stdout, own.stderr) == (5, "out\n", "exec failed: mine\n")
        no_tty = podsec.run("exec", "-it", "hab-exec", "--", "sh", "-c", "test -t 0 || echo no terminal")
        assert no_tty.returncode == 0
        assert no_tty.stderr == "Unable to use a TTY - input is not a terminal or the right kind of file\n"
        assert no_tty.stdout == "no terminal\n"
        piped = podsec.run("exec", "-i", "hab-exec", "--", "cat", input="hello\n")
        assert piped.stdout == "hello\n"
    finally:
        assert podsec.run("delete", "hab-exec", "--now").returncode == 0


def test_describe_tells_effective_from_bounding_capabilities(podsec: Podsec, tmp_path: Path) -> None:
    f = write(tmp_path, """\
        apiVersion: v1
        kind: Pod
        metadata: {name: hab-caps}
        spec:
          restartPolicy: Never
          containers:
          - name: user
            image: "podsec-fixture:root"
            command: ["true"]
            securityContext: {runAsUser: 1000, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}
          - name: root
            image: "podsec-fixture:root"
            command: ["true"]
            securityContext: {capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}
        """)
    assert podsec.run("run", "-f", f).returncode == 0
    try:
        out = podsec.run("describe", "pod", "hab-caps")
        assert out.returncode == 0, out.stderr
        caps = [ln.split(":", 1)[1].strip() for ln in out.stdout.splitlines() if ln.strip().startswith("Capabilities:")]
        assert caps == ["<none> (effective); bounding: NET_BIND_SERVICE", "NET_BIND_SERVICE (effective and bounding)"]
    finally:
        assert podsec.run("delete", "hab-caps").returncode == 0
