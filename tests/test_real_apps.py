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

import pytest
import yaml

import debimage
from conftest import Podsec

pytestmark = pytest.mark.runtime

DURATION = "8s"


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


NGINX = deployment("web", "debian-nginx:bookworm", {
    "name": "nginx", "image": "debian-nginx:bookworm", "ports": [{"containerPort": 80}]})


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
