"""``podsec trace`` end to end on real runc containers: the proof that a traced manifest runs read-only, the
JSON contract on a multi-container Deployment, stopping (early, after --duration, Ctrl-C, kill -9 + gc), and
bad input.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Podsec, runtime_containers
from imagebuild import FIXTURE_ENV, D, F, L, build_image_layout, busybox_applets

pytestmark = pytest.mark.runtime
NGINX_LIKE = "podsec-test:nginx-like"
BARE = "podsec-test:bare"


@pytest.fixture(scope="module")
def images(podsec: Podsec, tmp_path_factory: pytest.TempPathFactory) -> Podsec:
    """Two more images: ``nginx-like`` (config in /etc/nginx, empty /var/cache/nginx and /var/log/nginx, no
    /run) and ``bare`` (only /bin: no /etc, /dev, /proc, /sys or /tmp, so the runtime must create them)."""
    busybox = Path("/bin/busybox")
    bins = [D("bin"), F("bin/busybox", busybox.read_bytes(), mode=0o755)]
    bins += [L(f"bin/{a}", "/bin/busybox") for a in busybox_applets(busybox)]
    nginx = [
        *bins,
        D("etc"), F("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101::/:/bin/sh\n"),
        F("etc/group", "root:x:0:\nnginx:x:101:\n"), D("etc/nginx"), F("etc/nginx/nginx.conf", "events {}\n"),
        D("etc/nginx/conf.d"), F("etc/nginx/conf.d/default.conf", "server { listen 80; }\n"),
        D("tmp", mode=0o1777), D("var"), D("var/cache"), D("var/cache/nginx"), D("var/lib"),
        F("var/lib/status", "installed\n"), D("var/log"), D("var/log/nginx"), F("var/log/dpkg.log", "ok\n"),
        D("dev"), D("proc"), D("sys"),
    ]
    base = tmp_path_factory.mktemp("trace-images")
    for tag, files in (("nginx-like", nginx), ("bare", bins)):
        layout = build_image_layout(base / tag, {tag: {"Env": list(FIXTURE_ENV), "Cmd": ["sh"]}}, files,
                                    name="podsec-test")
        out = podsec.run("image", "load", str(layout))
        assert out.returncode == 0, out.stderr
    return podsec


def write(tmp_path: Path, text: str, name: str = "pod.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def trace_pods(podsec: Podsec) -> list[str]:
    pods = podsec.state / "pods"
    return sorted(p.name for p in pods.iterdir()) if pods.exists() else []


def assert_clean(podsec: Podsec) -> None:
    """No trace pod directory, runtime container or mount is left."""
    assert not [p for p in trace_pods(podsec) if "-trace-" in p]
    assert not [c for c in runtime_containers(podsec.state) if "-trace-" in c]
    mounts = [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines()
              if "-trace-" in ln and str(podsec.state) in ln]  # other test sessions on the machine have their own
    assert not mounts, mounts


def as_json(out: subprocess.CompletedProcess[str], code: int = 0) -> dict[str, Any]:
    assert out.returncode == code, out.stderr
    return json.loads(out.stdout)


# -- the proof ---------------------------------------------------------------------------------------------

WRITER = """\
    apiVersion: v1
    kind: Pod
    metadata:
      name: writer  # an app that writes to several places
    spec:
      restartPolicy: Never
      volumes:
      - name: data
        emptyDir: {}
      containers:
      - name: app
        image: podsec-fixture:root
        command:
        - sh
        - -c
        - |
          set -e
          echo hello > /tmp/x
          mkdir -p /var/cache/app/sub
          head -c 5000 /dev/zero > /var/cache/app/sub/blob
          mkdir -p /run && echo $$ > /run/app.pid
          echo out > /data/out.txt
          cat /tmp/x /data/out.txt
          wc -c < /var/cache/app/sub/blob
          test -s /run/app.pid && echo pid-ok
        securityContext:
          readOnlyRootFilesystem: true
        volumeMounts:
        - name: data
          mountPath: /data
"""


def test_traced_manifest_runs_read_only(podsec: Podsec, tmp_path: Path) -> None:
    pod = write(tmp_path, WRITER)
    broken = podsec.run("run", "--rm", "-f", str(pod))
    assert broken.returncode == 1
    assert "can't create /tmp/x: Read-only file system" in broken.stdout + broken.stderr

    traced = podsec.run("trace", "-f", str(pod), "-o", "yaml")
    assert traced.returncode == 0, traced.stderr
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(traced.stdout)
    assert "readOnlyRootFilesystem: true" in traced.stdout
    assert "# an app that writes to several places" in traced.stdout  # the rest of the file is kept
    mount_paths = [ln.split("mountPath:")[1].strip() for ln in traced.stdout.splitlines() if "mountPath:" in ln]
    assert mount_paths == ["/data", "/run", "/tmp", "/var/cache"]

    ok = podsec.run("run", "--rm", "-f", str(fixed))
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "hello\nout\n5000\npid-ok\n", "")
    assert_clean(podsec)


def test_text_report(podsec: Podsec, tmp_path: Path) -> None:
    out = podsec.run("trace", "-f", str(write(tmp_path, WRITER)))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith(f"Pod/writer ({tmp_path / 'pod.yaml'}:1) — traced ")
    assert "  container 'app': exited 0 after " in text
    assert "; read-only root in the manifest, traced writable\n" in text
    assert ("    mount an emptyDir at:\n"
            "      /run        1 file, 2 B   not in the image\n"
            "      /tmp        1 file, 6 B   empty in the image\n"
            "      /var/cache  1 file, 5 kB  not in the image\n") in text
    assert ("    writes inside mounted volumes (already writable, 1):\n"
            "      created  file    /data/out.txt  4 B\n") in text
    assert "      created  file    /var/cache/app/sub/blob  5 kB\n" in text
    assert text.endswith("1 of 1 container(s) can run with readOnlyRootFilesystem: true given 3 emptyDir "
                         "mount(s) (checked by running them again under the mounts); podsec trace -o yaml prints "
                         "the manifest patched that way.\n")


# -- a Deployment with init, app and sidecar containers ---------------------------------------------------

DEPLOYMENT = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          volumes:
          - {name: shared, emptyDir: {}}
          - {name: host, hostPath: {path: HOSTDIR, type: Directory}}
          - {name: claim, persistentVolumeClaim: {claimName: data}}
          initContainers:
          - name: seed
            image: podsec-test:nginx-like
            command: [sh, -c, "echo seeded > /shared/seed; rm /host/old; mkdir /claim/d; echo c > /claim/d/c"]
            volumeMounts:
            - {name: shared, mountPath: /shared}
            - {name: host, mountPath: /host}
            - {name: claim, mountPath: /claim}
          containers:
          - name: web
            image: podsec-test:nginx-like
            command:
            - sh
            - -c
            - |
              trap 'rm -f /run/nginx.pid; exit 0' TERM
              mkdir -p /run /var/cache/nginx/client_temp
              echo $$ > /run/nginx.pid
              head -c 2048 /dev/zero > /var/cache/nginx/client_temp/0000000001
              echo 'GET /' >> /var/log/nginx/access.log
              sed -i 's/80/8080/' /etc/nginx/conf.d/default.conf
              echo up > /etc/web.state
              echo web >> /shared/seed
              while true; do sleep 0.05; done
            volumeMounts: [{name: shared, mountPath: /shared}]
          - name: sidecar
            image: podsec-fixture:root
            command: [sh, -c, "cat /etc/passwd > /dev/null"]
"""


@pytest.fixture
def deployment(images: Podsec, tmp_path: Path) -> tuple[str, ...]:
    """``-f deploy.yaml --volume-dir data=DIR``: a hostPath with a file the init container deletes, a claim."""
    hostdir, claim = tmp_path / "hostdir", tmp_path / "claim"
    hostdir.mkdir()
    claim.mkdir()
    (hostdir / "old").write_text("old data\n")
    pod = write(tmp_path, DEPLOYMENT.replace("HOSTDIR", str(hostdir)), "deploy.yaml")
    return ("-f", str(pod), "--volume-dir", f"data={claim}")


def test_json_for_a_deployment(images: Podsec, deployment: tuple[str, ...]) -> None:
    start = time.monotonic()
    doc = as_json(images.run("trace", *deployment, "--duration", "6s", "-o", "json", "--no-verify"), code=1)
    elapsed = time.monotonic() - start
    assert elapsed < 20, elapsed  # 6s of work, then SIGTERM: the trap exits at once
    [pod] = doc["pods"]
    assert (pod["kind"], pod["name"], pod["document"], pod["line"], pod["error"]) == ("Deployment", "web", 0, 1, "")
    seed, web, sidecar = pod["containers"]

    assert (seed["name"], seed["init"], seed["ran"], seed["exitCode"]) == ("seed", True, True, 0)
    assert seed["changes"] == [] and seed["mountDirs"] == [] and seed["problems"] == []
    assert [(w["path"], w["action"], w["bytes"]) for w in seed["volumeWrites"]] == [
        ("/claim/d", "created", 0), ("/claim/d/c", "created", 2), ("/host/old", "deleted", 9),
        ("/shared/seed", "created", 7)]

    assert web["status"].startswith("still running when the trace stopped it after ")
    assert (web["ran"], web["stopped"], web["exitCode"]) == (True, True, None)
    assert web["mountDirs"] == ["/etc/nginx/conf.d", "/run", "/var/cache/nginx", "/var/log/nginx"]
    assert [(m["path"], m["reason"], m["files"], m["bytes"], m["hides"], m["seed"]) for m in web["mounts"]] == [
        # the image has cp (busybox): an init container copies default.conf in before the app changes it
        ("/etc/nginx/conf.d", "filled from the image by an init container", 1, 24, "1 file, 22 B: default.conf",
         True),
        ("/run", "not in the image", 1, len(web_pid(web)), "", False),
        ("/var/cache/nginx", "empty in the image", 1, 2048, "", False),
        ("/var/log/nginx", "empty in the image", 1, 6, "", False),
    ]
    changes = {c["path"]: (c["action"], c["type"]) for c in web["changes"]}
    assert changes["/run/nginx.pid"] == ("created", "file")  # removed at exit, seen before the stop
    assert changes["/etc/nginx/conf.d/default.conf"] == ("changed", "file")
    [problem] = web["problems"]
    assert problem.startswith("creates /etc/web.state: an emptyDir never goes over /etc (the image's group, nginx, "
                              "passwd)")
    assert web["fixable"] is False
    assert [(w["path"], w["action"]) for w in web["volumeWrites"]] == [("/shared/seed", "changed")]

    assert (sidecar["ran"], sidecar["exitCode"], sidecar["changes"], sidecar["mountDirs"]) == (True, 0, [], [])


def web_pid(container: dict[str, Any]) -> str:
    size = next(c["bytes"] for c in container["changes"] if c["path"] == "/run/nginx.pid")
    return "x" * size


def test_yaml_leaves_a_container_it_cannot_fix_alone(images: Podsec, deployment: tuple[str, ...]) -> None:
    out = images.run("trace", *deployment, "--duration", "6s", "-o", "yaml")
    assert out.returncode == 1, out.stderr  # the manifest is printed, but not every container can go read-only
    assert "podsec: Deployment/web: container 'web' left as it is (making its root read-only would break it): " \
           "creates /etc/web.state: an emptyDir never goes over /etc" in out.stderr
    import yaml

    spec = yaml.safe_load(out.stdout)["spec"]["template"]["spec"]
    by_name = {c["name"]: c for c in spec["initContainers"] + spec["containers"]}
    assert by_name["seed"]["securityContext"] == {"readOnlyRootFilesystem": True}
    assert by_name["sidecar"]["securityContext"] == {"readOnlyRootFilesystem": True}
    assert "securityContext" not in by_name["web"]
    assert [v["name"] for v in spec["volumes"]] == ["shared", "host", "claim"]  # no mount needed: seed wrote
    # only into volumes, the sidecar nowhere
    assert_clean(images)


# -- stopping -----------------------------------------------------------------------------------------------


def test_stops_when_every_container_has_exited_and_copies_logs(podsec: Podsec, tmp_path: Path) -> None:
    pod = write(tmp_path, """\
        apiVersion: batch/v1
        kind: Job
        metadata: {name: quick}
        spec:
          template:
            spec:
              restartPolicy: OnFailure
              containers:
              - {name: a, image: podsec-fixture:root, command: [sh, -c, "echo from-a; exit 3"]}
              - {name: b, image: podsec-fixture:root, command: [sh, -c, "echo from-b > /tmp/b"]}
        """)
    start = time.monotonic()
    out = podsec.run("trace", "-f", str(pod), "--duration", "2m", "--logs")
    assert time.monotonic() - start < 10
    assert out.returncode == 1, out.stderr  # a failed container: what it would have written is unknown
    assert "[a] from-a\n" in out.stderr
    assert "  container 'a': exited 3 after " in out.stdout  # no restart despite OnFailure
    assert "    | from-a\n" in out.stdout  # the log tail of a failed container
    assert "  container 'b': exited 0 after " in out.stdout
    assert_clean(podsec)


LONG_RUNNER = """\
    apiVersion: v1
    kind: Pod
    metadata: {name: long}
    spec:
      terminationGracePeriodSeconds: 600
      containers:
      - name: app
        image: podsec-fixture:root
        command: [sh, -c, "echo started > /tmp/started; while true; do sleep 0.05; done"]
"""


def wait_running(podsec: Podsec, proc: subprocess.Popen[str], timeout: float = 20) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for d in (podsec.state / "pods").glob("default_long-trace-*"):
            upper = d / "containers" / "app" / "upper" / "tmp" / "started"
            if upper.exists():
                return d
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the traced container did not start")


def test_duration_bounds_the_run_and_caps_the_grace_period(podsec: Podsec, tmp_path: Path) -> None:
    start = time.monotonic()
    out = podsec.run("trace", "-f", str(write(tmp_path, LONG_RUNNER)), "--duration", "3", "--grace-period", "1",
                     "-o", "json", "--no-verify")
    elapsed = time.monotonic() - start
    assert 4 <= elapsed < 8, elapsed  # 3s, then SIGTERM (ignored by sh as pid 1) and SIGKILL after 1s, not 600s
    [c] = as_json(out)["pods"][0]["containers"]
    assert c["mountDirs"] == ["/tmp"]
    assert_clean(podsec)


def test_ctrl_c_reports_and_cleans_up(podsec: Podsec, tmp_path: Path) -> None:
    pod = write(tmp_path, LONG_RUNNER.replace('[sh, -c, "', '[sh, -c, "trap \'exit 0\' TERM; '))
    proc = podsec.popen("trace", "-f", str(pod), "--duration", "5m")
    wait_running(podsec, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Pod/long" in stdout and "(interrupted)" in stdout
    assert "      /tmp  1 file, 8 B  empty in the image\n" in stdout
    assert "podsec: interrupted: the report covers what ran until then" in stderr
    assert_clean(podsec)


def test_a_killed_trace_is_cleaned_by_gc(podsec: Podsec, tmp_path: Path) -> None:
    proc = podsec.popen("trace", "-f", str(write(tmp_path, LONG_RUNNER)), "--duration", "5m")
    pod_dir = wait_running(podsec, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert pod_dir.exists()
    gc = podsec.run("gc")
    assert gc.returncode == 0, gc.stderr
    assert f"removed {pod_dir}" in gc.stdout
    assert_clean(podsec)


# -- edge cases and bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_runtime_made_paths_are_not_reported(images: Podsec, tmp_path: Path, runtime: str) -> None:
    """An image with only /bin: the runtime creates /etc/hosts, /dev, /proc, /sys, mount points and the
    working directory in the upper directory; none of that is the app's."""
    if runtime == "crun" and subprocess.run(["which", "crun"], capture_output=True).returncode != 0:
        pytest.skip("crun is not installed")
    pod = write(tmp_path, """\
        apiVersion: v1
        kind: Pod
        metadata: {name: bare}
        spec:
          restartPolicy: Never
          volumes: [{name: cfg, configMap: {name: cfg}}, {name: scratch, emptyDir: {}}]
          containers:
          - name: app
            image: podsec-test:bare
            workingDir: /app/work
            command: [sh, -c, "cat /etc/app/cfg/key /etc/hostname > /dev/null"]
            volumeMounts: [{name: cfg, mountPath: /etc/app/cfg}, {name: scratch, mountPath: /var/scratch}]
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cfg}
        data: {key: value}
        """)
    [c] = as_json(images.run("trace", "--runtime", runtime, "-f", str(pod), "-o", "json"))["pods"][0]["containers"]
    assert (c["exitCode"], c["changes"], c["volumeWrites"], c["problems"]) == (0, [], [], [])


def test_a_container_that_never_runs(podsec: Podsec, tmp_path: Path) -> None:
    pod = write(tmp_path, """\
        apiVersion: v1
        kind: Pod
        metadata: {name: nonroot}
        spec:
          securityContext: {runAsNonRoot: true}
          containers:
          - {name: app, image: podsec-fixture:root, command: ["true"]}
        """)
    out = podsec.run("trace", "-f", str(pod), "-o", "json")
    assert out.returncode == 1
    [c] = json.loads(out.stdout)["pods"][0]["containers"]
    assert c["ran"] is False
    assert re.fullmatch(r'never ran: CreateContainerConfigError: container has runAsNonRoot and image will run as '
                        r'root \(pod: "nonroot_default\([0-9a-f-]{36}\)", container: app\)', c["status"]), c["status"]
    assert_clean(podsec)


@pytest.mark.parametrize(("args", "text", "message"), [
    (["--duration", "soon"], "", "'soon': not a duration (use e.g. 30s, 2m, 1m30s or plain seconds)"),
    (["--duration", "0s"], "", "'0s': the duration must be more than 0"),
    ([], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "no workload (Pod, Deployment"),
    ([], "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad}\nspec:\n  containers: [{name: a, image: x}]\n",
     'The Pod "Bad" is invalid: metadata.name: Invalid value: "Bad"'),
    ([], "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: nope:1}]\n",
     'container "a": image "nope:1" is not in the local store'),
    ([], "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: x, securityContext: "
         "{runAsUser: abc}}]\n", "runAsUser"),
])
def test_bad_input_exits_2_with_one_line(podsec: Podsec, tmp_path: Path, args: list[str], text: str,
                                         message: str) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text(text or "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n")
    out = podsec.run("trace", "-f", str(pod), *args)
    assert out.returncode == 2, out
    assert message in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert_clean(podsec)


# -- several workloads ----------------------------------------------------------------------------------------

SEVERAL = """\
    # two servers and a job
    apiVersion: apps/v1
    kind: StatefulSet
    metadata: {name: db}
    spec:
      selector: {matchLabels: {app: db}}
      serviceName: db
      template:
        metadata: {labels: {app: db}}
        spec:
          containers:
          - name: main
            image: podsec-fixture:root
            command: [sh, -c, "trap 'exit 0' TERM; mkdir -p /var/lib/db; echo row > /var/lib/db/data; while true; do sleep 0.05; done"]
    ---
    apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: agent}
    spec:
      selector: {matchLabels: {app: agent}}
      template:
        metadata: {labels: {app: agent}}
        spec:
          containers:
          - name: main
            image: podsec-fixture:root
            command: [sh, -c, "trap 'exit 0' TERM; echo 1 > /tmp/agent.pid; while true; do sleep 0.05; done"]
    ---
    apiVersion: batch/v1
    kind: Job
    metadata: {name: once}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {name: main, image: podsec-fixture:root, command: [sh, -c, "echo done > /home/app/done"]}
"""


def test_several_workloads_are_traced_at_once(podsec: Podsec, tmp_path: Path) -> None:
    path = write(tmp_path, SEVERAL, "all.yaml")
    start = time.monotonic()
    out = podsec.run("trace", "-f", str(path), "--duration", "5s", "-o", "yaml", "--no-verify")
    elapsed = time.monotonic() - start
    assert out.returncode == 0, out.stderr
    assert elapsed < 10.0, elapsed  # one after the other it would take over 10s
    import yaml

    docs = list(yaml.safe_load_all(out.stdout))
    assert [d["kind"] for d in docs] == ["StatefulSet", "DaemonSet", "Job"]
    mounts = [[m["mountPath"] for m in d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]] for d in docs]
    assert mounts == [["/var/lib"], ["/tmp"], ["/home/app"]]
    assert out.stdout.startswith("# two servers and a job\n")
    assert_clean(podsec)


def test_ctrl_c_stops_every_pod_of_a_parallel_trace(podsec: Podsec, tmp_path: Path) -> None:
    path = write(tmp_path, SEVERAL, "all.yaml")
    proc = podsec.popen("trace", "-f", str(path), "--duration", "5m", "-o", "json")
    end = time.monotonic() + 20
    while len(list((podsec.state / "pods").glob("default_*-trace-*/containers/main/bundle/pid"))) < 2:
        assert time.monotonic() < end and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    pods = {p["name"]: p for p in json.loads(stdout)["pods"]}
    assert pods["db"]["interrupted"] and pods["agent"]["interrupted"]
    assert pods["db"]["containers"][0]["mountDirs"] == ["/var/lib"]
    assert_clean(podsec)


def test_content_the_app_changes_is_copied_in_by_an_init_container_and_checked(images: Podsec,
                                                                             tmp_path: Path) -> None:
    """The app rewrites an image config file in a directory full of them: the emptyDir there is filled from the
    image first by an init container of the same image (it has cp), a second run under the mounts proves it,
    and the patched manifest runs read-only with the change made."""
    pod = write(tmp_path, """\
        apiVersion: v1
        kind: Pod
        metadata: {name: conf}
        spec:
          restartPolicy: Never
          containers:
          - name: app
            image: podsec-test:nginx-like
            command: [sh, -c, "sed -i s/80/8080/ /etc/nginx/conf.d/default.conf && cat /etc/nginx/conf.d/default.conf"]
        """)
    out = images.run("trace", "-f", str(pod), "--duration", "10s")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^      /etc/nginx/conf.d  1 file, 24 B  copied in from the image first \(1 file, 22 B: "
                     r"default.conf\)$", out.stdout, re.M), out.stdout
    assert "    checked by another run under these mounts, as long: exited 0 after " in out.stdout
    patched = images.run("trace", "-f", str(pod), "--duration", "10s", "-o", "yaml")
    assert patched.returncode == 0, patched.stderr
    import yaml

    spec = yaml.safe_load(patched.stdout)["spec"]
    assert spec["initContainers"] == [{
        "name": "seed-etc-nginx-conf-d", "image": "podsec-test:nginx-like",
        "command": ["cp", "-a", "/etc/nginx/conf.d/.", "/mnt/seed"],
        "securityContext": {"readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "etc-nginx-conf-d", "mountPath": "/mnt/seed"}]}]
    ro = tmp_path / "ro.yaml"
    ro.write_text(patched.stdout)
    run = images.run("run", "--rm", "-f", str(ro))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1].endswith("server { listen 8080; }")
    assert_clean(images)
