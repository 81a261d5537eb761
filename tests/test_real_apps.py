"""``podsec trace`` and ``podsec fix --trace`` on real apps: Debian bookworm's nginx-light, redis-server and
postgresql, in images built the way a user would (``tests/debimage.py``: debootstrap minbase with the package,
one layer, the package's usual foreground command), each a plain Deployment.

The promise checked is the one a user relies on: ``fix --trace`` turns the Deployment into one that passes
``check --level restricted``, keeps ``readOnlyRootFilesystem: true``, runs as a non-root user, and still works:
the pod runs (no restart), the server listens (its socket, read from the host side of the pod's network
namespace) and answers a client inside the pod.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

import debimage
from conftest import Podsec

pytestmark = pytest.mark.runtime

DURATION = "10s"


@pytest.fixture(scope="session")
def apps(podsec: Podsec) -> Podsec:
    """podsec's test store with the three Debian images (built once, then from the cache)."""
    try:
        layouts = debimage.build()
    except debimage.MirrorUnreachable as e:
        pytest.skip(f"the Debian mirror is unreachable, so the real-app images cannot be built: {e}")
    out = podsec.run("image", "load", *(str(p) for p in layouts.values()), timeout=600)
    assert out.returncode == 0, out.stderr
    return podsec


def deployment(name: str, image: str, container: dict, extra: dict | None = None) -> str:
    spec = {"containers": [container], **(extra or {})}
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }, sort_keys=False)


REPO = Path(__file__).resolve().parents[1]
NGINX = (REPO / "examples" / "nginx.yaml").read_text()  # the README's example: a plain Deployment
README = (REPO / "README.md").read_text()


def pod_of(manifest: str, name: str) -> str:
    """The Deployment's pod template as a Pod (what its ReplicaSet would create)."""
    d = yaml.safe_load(manifest)
    tmpl = d["spec"]["template"]
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "labels": tmpl["metadata"].get("labels", {})},
                           "spec": tmpl["spec"]}, sort_keys=False)


def listening(podsec: Podsec, pod: str, container: str) -> set[int]:
    """TCP ports listened on in the pod's network namespace, from /proc/PID/net/tcp{,6} of the container's
    process on the host (parsed here, independently of podsec)."""
    pid = int(next((podsec.state / "pods").glob(f"default_{pod}/containers/{container}/bundle/pid")).read_text())
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            local, st = line.split()[1], line.split()[3]
            if st == "0A":
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


@contextmanager
def running(podsec: Podsec, path: Path, name: str, ready: int, timeout: float = 60) -> Iterator[dict]:
    """``podsec apply`` the pod and wait until it listens on port ``ready``; yields its status; deletes it."""
    out = podsec.run("apply", "-f", str(path))
    assert out.returncode == 0, out.stderr
    try:
        end = time.monotonic() + timeout
        status: dict = {}
        while time.monotonic() < end:
            got = podsec.run("get", "pod", name, "-o", "json")
            status = json.loads(got.stdout)["status"] if got.returncode == 0 else {}
            states = [c.get("state", {}) for c in status.get("containerStatuses", [])]
            if states and all("running" in s for s in states):
                try:
                    if ready in listening(podsec, name, status["containerStatuses"][0]["name"]):
                        break
                except (StopIteration, OSError):
                    pass
            time.sleep(0.3)
        else:
            logs = podsec.run("logs", name)
            raise AssertionError(f"pod {name} did not come up: {json.dumps(status)}\n{logs.stdout}{logs.stderr}")
        yield status
    finally:
        podsec.run("delete", "pod", name, "--now")


def in_pod(podsec: Podsec, pod: str, *argv: str) -> str:
    out = podsec.run("exec", pod, "--", *argv)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


HTTP_GET = 'exec 3<>/dev/tcp/127.0.0.1/80; printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3; cat <&3'


def test_trace_nginx_hides_only_empty_entries_and_checks_it_by_running_again(apps: Podsec, tmp_path: Path) -> None:
    """The case the issue starts from: /run holds lock/ and mount/, /var/log/nginx ships two empty logs. Hiding
    them is harmless, and a second run under the mounts shows it (still serving, nothing else written)."""
    src = tmp_path / "nginx.yaml"
    src.write_text(NGINX)
    out = apps.run("trace", "-f", str(src), "--duration", DURATION)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "  listening on 80/tcp\n" in text
    assert re.search(r"^      /run            1 file, \d+ B +hides only 2 empty directories: lock, mount$", text, re.M)
    assert "      /run            1 file, 2 B           hides only 2 empty directories: lock, mount\n" in README
    assert re.search(r"^      /var/lib/nginx  temporary files only +empty in the image$", text, re.M)
    assert re.search(r"^      /var/log/nginx  2 files, \d+ B +hides only 2 empty files: access.log, error.log$",
                     text, re.M), text
    assert "    checked by another run under these mounts, as long: still running when the trace stopped it" in text
    assert text.endswith("1 of 1 container(s) can run with readOnlyRootFilesystem: true given 3 emptyDir mount(s) "
                         "(checked by running them again under the mounts); podsec trace -o yaml prints the "
                         "manifest patched that way.\n")

    patched = apps.run("trace", "-f", str(src), "--duration", DURATION, "-o", "yaml", "--no-verify")
    assert patched.returncode == 0, patched.stderr
    ro = tmp_path / "nginx-ro.yaml"
    ro.write_text(pod_of(patched.stdout, "web-ro"))
    with running(apps, ro, "web-ro", 80) as status:
        assert status["containerStatuses"][0]["restartCount"] == 0
        assert "Welcome to nginx!" in in_pod(apps, "web-ro", "bash", "-c", HTTP_GET)
        touched = apps.run("exec", "web-ro", "--", "touch", "/etc/x")
        assert "Read-only file system" in touched.stderr + touched.stdout


REDIS = deployment("cache", "debian-redis:bookworm", {
    "name": "redis", "image": "debian-redis:bookworm", "ports": [{"containerPort": 6379}]})

# The image runs as USER postgres (initdb and postgres refuse root); the data directory is an emptyDir that an
# init container initialises, as the official image's entrypoint does before it starts the server.
POSTGRES = deployment("db", "debian-postgres:bookworm", {
    "name": "postgres", "image": "debian-postgres:bookworm", "ports": [{"containerPort": 5432}],
    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
}, {
    "initContainers": [{"name": "initdb", "image": "debian-postgres:bookworm", "command": ["initdb"],
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]}],
    "volumes": [{"name": "data", "emptyDir": {}}],
})


def fix_trace(apps: Podsec, tmp_path: Path, name: str, manifest: str, duration: str = DURATION,
              ) -> tuple[str, list[str]]:
    """``podsec fix --trace`` of a plain Deployment: the fixed manifest and the summary lines; checks that the
    result passes restricted and makes every container read-only."""
    src = tmp_path / f"{name}.yaml"
    src.write_text(manifest)
    out = apps.run("fix", "--trace", "--duration", duration, str(src), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    fixed = tmp_path / f"{name}-fixed.yaml"
    fixed.write_text(out.stdout)
    check = apps.run("check", "--level", "restricted", str(fixed))
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'PodSecurity "restricted:latest" allowed' in check.stdout
    spec = yaml.safe_load(out.stdout)["spec"]["template"]["spec"]
    for c in spec.get("initContainers", []) + spec["containers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True, c
    return out.stdout, out.stderr.replace(str(src), f"{name}.yaml").splitlines()


def mounts(manifest: str, container: str) -> list[str]:
    spec = yaml.safe_load(manifest)["spec"]["template"]["spec"]
    c = next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == container)
    return [m["mountPath"] for m in c.get("volumeMounts", [])]


def run_fixed(apps: Podsec, tmp_path: Path, fixed: str, pod: str, port: int) -> Any:
    path = tmp_path / f"{pod}-pod.yaml"
    path.write_text(pod_of(fixed, pod))
    return running(apps, path, pod, port)


def test_fix_trace_makes_debian_nginx_restricted_read_only_and_www_data(apps: Podsec, tmp_path: Path) -> None:
    fixed, lines = fix_trace(apps, tmp_path, "web", NGINX)
    chosen = ("web.yaml:14: Deployment/web: pod: runAsNonRoot: true, runAsUser: 33 (image debian-nginx:bookworm runs "
              "as root; www-data (uid 33) is the app's own account, which its files belong to: its "
              "/etc/nginx/nginx.conf runs nginx as www-data), seccompProfile: RuntimeDefault")
    assert chosen in lines, lines
    assert chosen.replace("web.yaml", "examples/nginx.yaml") in README  # the README shows this run
    [done] = [ln for ln in lines if "readOnlyRootFilesystem: true, emptyDir:" in ln]
    assert re.fullmatch(r'web\.yaml:1: Deployment/web: container "nginx": readOnlyRootFilesystem: true, emptyDir: '
                        r"/run, /var/lib/nginx, /var/log/nginx \(traced: \d runs? as uid 33, then read-only: still "
                        r"running when the trace stopped it after [\d.]+s, listening on 80/tcp\)", done), done
    assert mounts(fixed, "nginx") == ["/run", "/var/lib/nginx", "/var/log/nginx"]
    with run_fixed(apps, tmp_path, fixed, "web", 80) as status:
        assert status["containerStatuses"][0]["restartCount"] == 0
        assert in_pod(apps, "web", "id", "-un") == "www-data\n"
        page = in_pod(apps, "web", "bash", "-c", HTTP_GET)
        assert page.startswith("HTTP/1.1 200 OK") and "Welcome to nginx!" in page
        assert "GET / HTTP/1.0" in in_pod(apps, "web", "cat", "/var/log/nginx/access.log")  # into its emptyDir


def test_fix_trace_makes_debian_redis_restricted_read_only_and_redis(apps: Podsec, tmp_path: Path) -> None:
    fixed, lines = fix_trace(apps, tmp_path, "cache", REDIS)
    assert any("runAsUser: 100 (image debian-redis:bookworm runs as root; redis (uid 100) is the app's own account, "
               "which its files belong to: its systemd unit redis-server.service runs redis-server as User=redis)"
               in ln for ln in lines), lines
    assert any(re.search(r'container "redis": readOnlyRootFilesystem: true, emptyDir: /var/lib/redis \(traced: \d '
                         r"runs? as uid 100, then read-only: still running .*, listening on 6379/tcp\)", ln)
               for ln in lines), lines
    assert mounts(fixed, "redis") == ["/var/lib/redis"]
    with run_fixed(apps, tmp_path, fixed, "cache", 6379) as status:
        assert status["containerStatuses"][0]["restartCount"] == 0
        assert in_pod(apps, "cache", "id", "-un") == "redis\n"
        assert in_pod(apps, "cache", "redis-cli", "set", "greeting", "hello") == "OK\n"
        assert in_pod(apps, "cache", "redis-cli", "get", "greeting") == "hello\n"
        assert in_pod(apps, "cache", "redis-cli", "save") == "OK\n"  # the data directory is writable
        assert "dump.rdb" in in_pod(apps, "cache", "ls", "/var/lib/redis")


def test_fix_trace_makes_debian_postgres_restricted_and_read_only(apps: Podsec, tmp_path: Path) -> None:
    fixed, lines = fix_trace(apps, tmp_path, "db", POSTGRES, "20s")  # initdb takes seconds before postgres
    assert any("runAsUser: 100 (image USER postgres is uid 100 in its /etc/passwd)" in ln for ln in lines), lines
    assert any(re.search(r'container "initdb": readOnlyRootFilesystem: true, emptyDir: nothing written \(traced: \d '
                         r"runs? as uid 100, then read-only: exited 0 after [\d.]+s\)$", ln) for ln in lines), lines
    assert any(re.search(r'container "postgres": readOnlyRootFilesystem: true, emptyDir: /run/postgresql \(traced: '
                         r"\d runs? as uid 100, then read-only: still running .*, listening on 5432/tcp\)", ln)
               for ln in lines), lines
    assert mounts(fixed, "initdb") == ["/var/lib/postgresql/data"]
    assert mounts(fixed, "postgres") == ["/var/lib/postgresql/data", "/run/postgresql"]
    with run_fixed(apps, tmp_path, fixed, "db", 5432) as status:
        assert status["containerStatuses"][0]["restartCount"] == 0
        assert in_pod(apps, "db", "id", "-un") == "postgres\n"
        sql = "create table t (x int); insert into t values (42); select x from t"
        assert in_pod(apps, "db", "psql", "-h", "127.0.0.1", "-d", "postgres", "-Atc", sql).endswith("42\n")
