"""The promise of ``podsec fix``: the fixed pod still runs (real runc, the fixture images), now as a non-root
user without capabilities, privilege escalation or syscalls beyond RuntimeDefault; with ``--trace`` also on a
read-only root filesystem with emptyDir mounts where the app writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Podsec

pytestmark = pytest.mark.runtime

# Written for root: no securityContext to speak of, a forbidden capability, a low port, writes to /tmp and $HOME.
APP = """\
# An app that was written for root
apiVersion: v1
kind: Pod
metadata:
  name: fixme
spec:
  restartPolicy: Never
  containers:
  - name: main          # no USER in the image: root
    image: podsec-fixture:root
    command:
    - sh
    - -c
    - |
      id
      echo hi > /tmp/scratch && cat /tmp/scratch
      grep -E '^(CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
      awk '$2 == "/" { split($4, o, ","); print "root:", o[1] }' /proc/mounts
      httpd -f -p 80 -h /tmp & sleep 0.5
      netstat -ltn | grep -q ':80 .*LISTEN' && echo "port 80: listening"; kill $! 2>/dev/null
    ports:
    - containerPort: 80
    securityContext:
      capabilities:
        add: [NET_ADMIN]
  - name: web           # USER web: a name the kubelet cannot verify
    image: podsec-fixture:web
    command: ["sh", "-c", "id; mkdir -p /home/web/cache && echo ok > /home/web/cache/f && cat /home/web/cache/f"]
"""


def lines(out: str, container: str) -> list[str]:
    prefix = f"[{container}] "
    return [line[len(prefix):] for line in out.splitlines() if line.startswith(prefix)]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    return path


def test_fixed_pod_passes_restricted_and_still_runs_as_non_root(podsec: Podsec, app: Path, tmp_path: Path) -> None:
    original = podsec.run("run", "--rm", "-f", str(app))
    assert original.returncode == 0, original.stderr
    assert lines(original.stdout, "main")[0].startswith("uid=0(root)")
    assert "root: rw" in lines(original.stdout, "main")

    fix = podsec.run("fix", str(app))
    assert fix.returncode == 0, fix.stderr
    assert f'{app}:9: Pod/fixme: container "main": allowPrivilegeEscalation: false, runAsUser: 65532 (image ' \
           "podsec-fixture:root runs as root), capabilities.drop: [ALL], removed capabilities.add NET_ADMIN " \
           "(restricted allows only NET_BIND_SERVICE)" \
           in fix.stderr.splitlines()
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(fix.stdout)
    assert fix.stdout.startswith("# An app that was written for root\n")

    check = podsec.run("check", "--level", "restricted", str(fixed))
    assert check.returncode == 0, check.stdout
    assert 'PodSecurity "restricted:latest" allowed' in check.stdout

    run = podsec.run("run", "--rm", "-f", str(fixed))
    assert run.returncode == 0, run.stdout + run.stderr
    main, web = lines(run.stdout, "main"), lines(run.stdout, "web")
    assert main[0] == "uid=65532 gid=0(root) groups=0(root)"
    assert main[1] == "hi"
    assert main[2:5] == ["CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"]  # nothing added back
    assert main[5] == "root: rw"  # no --trace: the root filesystem is left writable
    assert main[6] == "port 80: listening"  # uid 65532 without NET_BIND_SERVICE: the pod's ip_unprivileged_port_start
    assert web == ["uid=101(web) gid=101(web) groups=101(web),5000(extra)", "ok"]


def test_fix_with_trace_adds_a_read_only_root_and_the_mounts_the_app_needs(podsec: Podsec, app: Path,
                                                                           tmp_path: Path) -> None:
    fix = podsec.run("fix", "--trace", "--duration", "20s", str(app))
    assert fix.returncode == 0, fix.stderr
    out = fix.stdout
    assert out.startswith("# An app that was written for root\n")
    assert out.endswith(
        "    volumeMounts:\n"
        "    - name: home-web\n"
        "      mountPath: /home/web\n"
        "  volumes:\n"
        "  - name: tmp\n"
        "    emptyDir: {}\n"
        "  - name: home-web\n"
        "    emptyDir: {}\n"
    )
    assert out.count("      readOnlyRootFilesystem: true\n") == 2
    assert "    volumeMounts:\n    - name: tmp\n      mountPath: /tmp\n" in out
    assert 'container "main": readOnlyRootFilesystem: true, emptyDir: /tmp' in fix.stderr
    assert "readOnlyRootFilesystem was not set" not in fix.stderr
    fixed = tmp_path / "traced.yaml"
    fixed.write_text(out)

    check = podsec.run("check", "--level", "restricted", "-o", "json", str(fixed))
    assert check.returncode == 0, check.stdout
    assert '"PS006"' not in check.stdout  # read-only root, and somewhere to write

    run = podsec.run("run", "--rm", "-f", str(fixed))
    assert run.returncode == 0, run.stdout + run.stderr
    main = lines(run.stdout, "main")
    assert main[0].startswith("uid=65532 ") and main[1] == "hi" and main[5] == "root: ro"
    assert lines(run.stdout, "web")[1] == "ok"


def test_trace_shows_when_the_fixed_app_cannot_run_and_leaves_it_to_a_human(podsec: Podsec, tmp_path: Path) -> None:
    path = tmp_path / "rootonly.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: rootonly}\nspec:\n  restartPolicy: Never\n"
                    "  containers:\n  - name: app\n    image: podsec-fixture:root\n"
                    '    command: ["sh", "-c", "echo cfg > /etc/app.conf && echo started"]\n')
    fix = podsec.run("fix", "--trace", "--duration", "20s", str(path))
    assert fix.returncode == 1, fix.stderr
    assert f'{path}:1: Pod/rootonly: needs a human: container "app" under the fixed securityContext: exited 1 ' \
           "after it had exited 0: sh: can't create /etc/app.conf: Permission denied (as written: exited 0); if it " \
           "needs root or files only root may read, change the image or adjust the fix by hand" in fix.stderr
    assert "runAsUser: 65532" in fix.stdout and "readOnlyRootFilesystem" not in fix.stdout


KEEPER = """\
apiVersion: v1
kind: Pod
metadata:
  name: keeper
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: podsec-fixture:root
    command: [sh, -c, "echo row >> /data/rows && mkdir -p /var/cache/keeper && echo x > /var/cache/keeper/c && id -G"]
    volumeMounts:
    - {name: data, mountPath: /data}
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
"""


def test_trace_gives_the_new_user_its_volumes_with_fs_group(podsec: Podsec, tmp_path: Path) -> None:
    """Written for root, the app appends to a file on its claim (a root-owned directory). As uid 65532 that
    fails; fix --trace sees it fail where root did not, adds fsGroup, runs again, and keeps it."""
    claim = tmp_path / "claim"
    claim.mkdir(mode=0o755)
    path = tmp_path / "keeper.yaml"
    path.write_text(KEEPER)
    fix = podsec.run("fix", "--trace", "--duration", "10s", "--volume-dir", f"data={claim}", str(path))
    assert fix.returncode == 0, fix.stderr
    assert (f'{path}:1: Pod/keeper: container "app": fsGroup: 65532 (it wrote into its volumes as uid 0; as uid '
            "65532 it needs them group-writable)") in fix.stderr.splitlines()
    assert f'{path}:1: Pod/keeper: container "app": readOnlyRootFilesystem: true, emptyDir: /var/cache (traced: 2 ' \
           "runs as uid 65532, then read-only: exited 0 after " in fix.stderr
    assert "    fsGroup: 65532\n" in fix.stdout
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(fix.stdout)
    run = podsec.run("run", "--rm", "--volume-dir", f"data={claim}", "-f", str(fixed))
    assert (run.returncode, run.stdout) == (0, "0 65532\n"), run.stderr  # gid 0 (no passwd entry), fsGroup
    assert (claim / "rows").read_text().count("row\n") >= 3  # the original, the runs as 65532, this one
