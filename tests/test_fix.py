"""``podsec fix``: what it changes, where it puts it, what it leaves for a human, and that the result passes
``podsec check --level restricted`` (the library in-process; the command line through real subprocesses)."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from podsec.fix import fix_text
from podsec.fix.apply import workloads
from podsec.fix.plan import NEEDS_HUMAN
from podsec.image.model import ImageInfo, PasswdEntry
from podsec.policy.pss import evaluate

PSA = Path("/work/shared/psa-testdata/restricted/v1.37")
if not PSA.exists():
    PSA = Path(__file__).resolve().parents[2] / "shared" / "psa-testdata" / "restricted" / "v1.37"
PODSEC = [sys.executable, "-m", "podsec.cli"]

PASSWD = (PasswdEntry("root", 0, 0), PasswdEntry("web", 101, 101), PasswdEntry("app", 1000, 1000))
IMAGES = {
    "img:root": ImageInfo("img:root", user=None, passwd=PASSWD),
    "img:uid0": ImageInfo("img:uid0", user="0", passwd=PASSWD),
    "img:1000": ImageInfo("img:1000", user="1000", passwd=PASSWD),
    "img:1000-gid": ImageInfo("img:1000-gid", user="1000:2222", passwd=PASSWD),
    "img:web": ImageInfo("img:web", user="web", passwd=PASSWD),
    "img:ghost": ImageInfo("img:ghost", user="ghost", passwd=PASSWD),
    "img:rootname": ImageInfo("img:rootname", user="root", passwd=PASSWD),
}


def images(ref: str) -> ImageInfo | None:
    return IMAGES.get(ref)


def pod(*containers: str, spec: str = "") -> str:
    """A Pod manifest; each container is 'name image [extra yaml lines…]'."""
    out = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n" + textwrap.indent(textwrap.dedent(spec), "  ")
    out += "  containers:\n"
    for c in containers:
        first, *rest = c.split("\n")
        name, image = first.split()
        out += f"  - name: {name}\n    image: {image}\n" + "".join(f"    {line}\n" for line in rest)
    return out


def fixed_spec(text: str, **kw: object) -> tuple[dict, object]:
    r = fix_text("p.yaml", text, images, **kw)  # type: ignore[arg-type]
    assert not r.leftovers, r.leftovers
    return workloads("p.yaml", r.fixed)[0].spec, r


def sc(spec: dict, i: int = 0, key: str = "containers") -> dict:
    return spec[key][i].get("securityContext", {})


def restricted_failures(text: str) -> set[str]:
    return {f.id for wl in workloads("x.yaml", text) for f in evaluate(wl.metadata, wl.spec, "restricted").failures}


# ------------------------------------------------------------------------------------------- identity


@pytest.mark.parametrize(("image", "pod_uid"), [
    ("img:root", 65532),  # no USER: root
    ("img:uid0", 65532),  # USER 0
    ("img:rootname", 65532),  # USER root: a name the kubelet cannot verify, and root anyway
    ("img:ghost", 65532),  # a name missing from /etc/passwd: containerd could not start it either
    ("img:web", 101),  # a named non-root user: its uid, which the kubelet can verify
    ("img:1000", None),  # numeric non-root USER: runAsNonRoot alone passes the kubelet
    ("img:1000-gid", None),
    ("not/loaded:1", 65532),  # not in the store: a concrete uid so the pod surely starts
])
def test_run_as_user_is_only_added_where_the_kubelet_needs_it(image: str, pod_uid: int | None) -> None:
    spec, r = fixed_spec(pod(f"app {image}"))
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc.get("runAsUser") == pod_uid
    assert "runAsUser" not in sc(spec)
    assert r.plans[0].unknown_images == (["not/loaded:1"] if image == "not/loaded:1" else [])


def test_containers_that_disagree_get_their_own_uid_and_the_uid_option_is_used() -> None:
    spec, _ = fixed_spec(pod("a img:root", "b img:web", "c img:1000"), uid=4242)
    assert "runAsUser" not in spec["securityContext"]
    assert [sc(spec, i).get("runAsUser") for i in range(3)] == [4242, 101, None]


def test_init_and_app_containers_that_agree_share_a_pod_level_uid() -> None:
    text = pod("app img:root", spec="initContainers:\n- name: init\n  image: img:uid0\n")
    spec, r = fixed_spec(text)
    assert spec["securityContext"]["runAsUser"] == 65532
    assert "runAsUser" not in sc(spec, 0, "initContainers") and "runAsUser" not in sc(spec)
    assert r.plans[0].changes[0].what[1] == "runAsUser: 65532 (image img:root runs as root; image img:uid0 runs as root)"


def test_run_as_user_zero_is_replaced_where_it_is_set() -> None:
    text = pod("a img:root", "b img:web\nsecurityContext:\n  runAsUser: 0\n  runAsNonRoot: false",
               spec="securityContext:\n  runAsUser: 0\n")
    spec, _ = fixed_spec(text)
    assert spec["securityContext"] == {"runAsUser": 65532, "runAsNonRoot": True,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert sc(spec, 1)["runAsUser"] == 101 and sc(spec, 1)["runAsNonRoot"] is True


def test_an_author_who_set_run_as_non_root_is_trusted_about_an_unknown_image() -> None:
    spec, r = fixed_spec(pod("a not/loaded:2", spec="securityContext:\n  runAsNonRoot: true\n"))
    assert "runAsUser" not in spec["securityContext"]
    assert r.plans[0].notes and "numeric non-zero USER" in r.plans[0].notes[0]


# --------------------------------------------------------------------------------------- capabilities


def test_capabilities_drop_all_and_forbidden_adds_go_and_net_bind_service_is_never_added() -> None:
    text = pod("web img:1000\nports: [{containerPort: 80}, {containerPort: 8080}]\n"
               "securityContext: {capabilities: {add: [NET_ADMIN, SYS_ADMIN]}}",
               "api img:1000\nports: [{containerPort: 8080}]\nsecurityContext:\n  capabilities:\n"
               "    add: [NET_BIND_SERVICE, CHOWN]\n    drop: [NET_RAW]",
               "low img:1000\nports: [{containerPort: 443}]\nsecurityContext:\n  capabilities:\n"
               "    drop: [NET_BIND_SERVICE]",
               "cap img:1000\nports: [{containerPort: 25}]\nsecurityContext:\n  capabilities:\n"
               "    add: [CAP_NET_BIND_SERVICE]\n    drop: [all]",
               "lower img:1000\nports: [{containerPort: 25}]\nsecurityContext:\n  capabilities:\n"
               "    add: [net_bind_service]")
    spec, r = fixed_spec(text)
    # port 80 as the non-root user fix ensures: the capability would only be in the bounding set, and containerd
    # lets the pod bind ports below 1024 anyway
    assert sc(spec, 0)["capabilities"] == {"drop": ["ALL"]}
    # an explicit NET_BIND_SERVICE is allowed by restricted: kept even without a low port
    assert sc(spec, 1)["capabilities"] == {"add": ["NET_BIND_SERVICE"], "drop": ["NET_RAW", "ALL"]}
    # a container that dropped it never gets it back (never loosen)
    assert sc(spec, 2)["capabilities"] == {"drop": ["NET_BIND_SERVICE", "ALL"]}
    # CAP_ spelling never worked (containerd makes it CAP_CAP_…) and "all" dropped everything: nothing to keep;
    # "all" becomes the exact "ALL" restricted wants
    assert sc(spec, 3)["capabilities"] == {"drop": ["ALL"]}
    # lower case works at runtime, but never effective for the non-root user: removed, saying why
    assert sc(spec, 4)["capabilities"] == {"drop": ["ALL"]}
    assert all(sc(spec, i)["allowPrivilegeEscalation"] is False for i in range(5))
    web = next(c for c in r.plans[0].changes if c.where == 'container "web"')
    assert "removed capabilities.add NET_ADMIN, SYS_ADMIN (restricted allows only NET_BIND_SERVICE)" in web.what
    assert not any("add: [NET_BIND_SERVICE]" in w for w in web.what)
    lower = next(c for c in r.plans[0].changes if c.where == 'container "lower"')
    assert ("removed capabilities.add net_bind_service (never effective for a non-root user; ports below 1024 bind "
            "without it: containerd sets net.ipv4.ip_unprivileged_port_start=0)") in lower.what


# ------------------------------------------------------------------------------ what is left alone


def test_a_restricted_pod_is_left_byte_for_byte() -> None:
    text = pod("a img:1000\nsecurityContext:\n  allowPrivilegeEscalation: false\n  readOnlyRootFilesystem: true\n"
               "  capabilities: {drop: [ALL]}",
               spec="securityContext:\n  runAsNonRoot: true\n  seccompProfile: {type: Localhost, "
               "localhostProfile: p.json}\n")
    r = fix_text("p.yaml", text, images)
    assert r.fixed == text and not r.changed and r.plans[0].changes == []


def test_never_loosens_and_never_duplicates_what_containers_already_set() -> None:
    text = pod("a img:root\nsecurityContext:\n  runAsUser: 1000\n  runAsNonRoot: true\n"
               "  seccompProfile: {type: RuntimeDefault}\n  capabilities: {drop: [ALL]}",
               "b img:root\nsecurityContext:\n  runAsUser: 2000\n  runAsNonRoot: true\n"
               "  seccompProfile: {type: Unconfined}\n  capabilities: {drop: [ALL]}")
    spec, _ = fixed_spec(text)
    assert "securityContext" not in spec  # every container covers itself: nothing at pod level
    assert sc(spec, 0) == {"runAsUser": 1000, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
                           "capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": False}
    assert sc(spec, 1)["seccompProfile"] == {"type": "RuntimeDefault"} and sc(spec, 1)["runAsUser"] == 2000


def test_what_changes_what_the_app_does_is_reported_with_lines_and_left_in_place() -> None:
    text = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  template:
    spec:
      hostNetwork: true
      volumes:
      - name: logs
        hostPath: {path: /var/log}
      containers:
      - name: agent
        image: img:root
        ports: [{containerPort: 9100, hostPort: 9100}]
        securityContext: {privileged: true}
      - name: lsio
        image: img:root
        env: [{name: PUID, value: "1000"}]
"""
    r = fix_text("ds.yaml", text, images)
    humans = {(h.line, h.field): h.message for h in r.plans[0].humans}
    assert set(humans) == {
        (7, "spec.template.spec.hostNetwork"),
        (9, "spec.template.spec.volumes[0]"),
        (14, "spec.template.spec.containers[0].ports[0].hostPort"),
        (15, "spec.template.spec.containers[0].securityContext.privileged"),
        (18, "spec.template.spec.containers[1].env"),
    }
    assert humans[(18, "spec.template.spec.containers[1].env")].startswith('container "lsio" sets PUID/PGID')
    spec = workloads("ds.yaml", r.fixed)[0].spec
    assert spec["hostNetwork"] is True and spec["volumes"][0]["hostPath"] == {"path": "/var/log"}
    # no allowPrivilegeEscalation: false (invalid together with privileged)
    assert sc(spec, 0) == {"privileged": True, "runAsNonRoot": True, "runAsUser": 65532,
                           "capabilities": {"drop": ["ALL"]}}
    assert "securityContext" not in spec["containers"][1]  # its s6 init would break
    # so the user settings go per container: the PUID container must not inherit them
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert not r.leftovers
    assert restricted_failures(r.fixed) == {"hostNamespaces", "restrictedVolumes", "hostPorts", "privileged",
                                            "allowPrivilegeEscalation", "capabilities_restricted", "runAsNonRoot"}


def test_windows_pods_and_user_namespaces_get_only_what_applies() -> None:
    win, _ = fixed_spec(pod("a img:root", spec="os: {name: windows}\n"))
    assert win["securityContext"] == {"runAsNonRoot": True} and "securityContext" not in win["containers"][0]
    userns, _ = fixed_spec(pod("a img:root", spec="hostUsers: false\n"))
    assert userns["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert sc(userns) == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def test_legacy_seccomp_and_apparmor_annotations_are_made_to_agree() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    seccomp.security.alpha.kubernetes.io/pod: unconfined
    container.apparmor.security.beta.kubernetes.io/a: unconfined
spec:
  containers:
  - {name: a, image: img:1000, securityContext: {appArmorProfile: {type: Unconfined}}}
"""
    r = fix_text("p.yaml", text, images)
    assert not r.leftovers  # the API server would reject a field that contradicts its annotation
    wl = workloads("p.yaml", r.fixed)[0]
    assert wl.metadata["annotations"] == {"seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
                                          "container.apparmor.security.beta.kubernetes.io/a": "runtime/default"}
    assert sc(wl.spec)["appArmorProfile"] == {"type": "RuntimeDefault"}
    assert restricted_failures(r.fixed) == set()


def test_a_document_podsec_cannot_edit_is_left_as_it_is_and_the_others_are_fixed() -> None:
    text = pod("a img:root\nsecurityContext: &sc {runAsUser: 1000}", "b img:root\nsecurityContext: *sc")
    text += "---\n" + pod("c img:root")
    r = fix_text("p.yaml", text, images)
    first = text.split("---\n")[0]
    assert r.fixed.startswith(first + "---\n") and r.fixed != text
    assert [lo.message[:31] for lo in r.leftovers] == ["left unchanged: this value is a"]
    assert r.leftovers[0].line == 12  # the line of the alias
    assert restricted_failures(r.fixed.split("---\n")[1]) == set()


# ------------------------------------------------------------------------------------ formatting


MESSY = """\
# Everything a real repository has: comments, odd indentation, flow style, quoting, other kinds.
---
apiVersion: v1
kind: ConfigMap   # not a workload: untouched
metadata: {name: cfg}
data:
    app.conf: |
        listen 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
    name: "web"            # quoted on purpose
spec:
    template:
        metadata: {labels: {app: web}}
        spec:

            # the app
            containers:
                -   name: 'nginx'
                    image: img:root
                    ports: [{containerPort: 80}]
                    securityContext:
                        allowPrivilegeEscalation: true   # legacy
                        capabilities: {add: ["NET_ADMIN"]}
                    # env comes later
---
kind: List
apiVersion: v1
items:
- kind: Service
  apiVersion: v1
  metadata: {name: svc}
- kind: Job
  apiVersion: batch/v1
  metadata: {name: once}
  spec: {template: {spec: {restartPolicy: Never, containers: [{name: job, image: img:1000}]}}}
"""

MESSY_FIXED = """\
# Everything a real repository has: comments, odd indentation, flow style, quoting, other kinds.
---
apiVersion: v1
kind: ConfigMap   # not a workload: untouched
metadata: {name: cfg}
data:
    app.conf: |
        listen 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
    name: "web"            # quoted on purpose
spec:
    template:
        metadata: {labels: {app: web}}
        spec:

            securityContext:
                runAsNonRoot: true
                runAsUser: 65532
                seccompProfile:
                    type: RuntimeDefault
            # the app
            containers:
                -   name: 'nginx'
                    image: img:root
                    ports: [{containerPort: 80}]
                    securityContext:
                        allowPrivilegeEscalation: false   # legacy
                        capabilities: {drop: ["ALL"]}
                    # env comes later
---
kind: List
apiVersion: v1
items:
- kind: Service
  apiVersion: v1
  metadata: {name: svc}
- kind: Job
  apiVersion: batch/v1
  metadata: {name: once}
  spec: {template: {spec: {restartPolicy: Never, securityContext: {runAsNonRoot: true, seccompProfile: {type: \
RuntimeDefault}}, containers: [{name: job, image: img:1000, securityContext: {allowPrivilegeEscalation: false, \
capabilities: {drop: [ALL]}}}]}}}
"""


def test_comments_indentation_flow_style_and_other_documents_stay_as_they_were() -> None:
    r = fix_text("messy.yaml", MESSY, images)
    assert r.fixed == MESSY_FIXED
    assert restricted_failures(r.fixed) == set() and not r.leftovers
    # every line not edited is byte-identical and in place
    a, b = MESSY.splitlines(), r.fixed.splitlines()
    changed = [a[i1:i2] for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=a, b=b).get_opcodes() if tag != "equal"]
    assert [line for block in changed for line in block] == [
        "                        allowPrivilegeEscalation: true   # legacy",
        '                        capabilities: {add: ["NET_ADMIN"]}',
        "  spec: {template: {spec: {restartPolicy: Never, containers: [{name: job, image: img:1000}]}}}",
    ]
    assert fix_text("messy.yaml", r.fixed, images).fixed == r.fixed  # idempotent


def test_json_input_stays_json_in_its_own_layout_and_crlf_stays_crlf() -> None:
    obj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
           "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
               "restartPolicy": "OnFailure", "containers": [{"name": "backup", "image": "img:web"}]}}}}}}
    text = json.dumps(obj, indent=2) + "\n"
    r = fix_text("cron.json", text, images)
    out = json.loads(r.fixed)
    assert r.fixed == json.dumps(out, indent=2) + "\n"  # the same layout json.dumps(indent=2) gives
    spec = out["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 101,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert list(spec) == ["restartPolicy", "securityContext", "containers"]
    crlf = pod("a img:1000").replace("\n", "\r\n")
    fixed = fix_text("p.yaml", crlf, images).fixed
    assert "\r\n" in fixed and "\n" not in fixed.replace("\r\n", "")


def test_upstream_restricted_fixtures_are_fixed_or_left_for_a_human_and_passing_ones_untouched() -> None:
    files = sorted(PSA.glob("*/*.yaml"))
    assert len(files) > 90
    for f in files:
        text = f.read_text()
        r = fix_text(str(f), text)
        assert not r.leftovers, (f, r.leftovers)
        if f.parent.name == "pass":
            assert r.fixed == text, f
            continue
        left = restricted_failures(r.fixed) - set(NEEDS_HUMAN)
        if "privileged" in restricted_failures(r.fixed):
            left -= {"allowPrivilegeEscalation"}  # cannot be false while privileged
        assert not left, (f, left)
        assert fix_text(str(f), r.fixed).fixed == r.fixed, f


# ------------------------------------------------------------------------------------ command line

INSECURE = {
    "pod.yaml": """\
# A single pod, written for root
apiVersion: v1
kind: Pod
metadata:
  name: nginx
  labels: {app: nginx}
spec:
  containers:
  - name: nginx
    image: nginx:1.27
    ports:
    - containerPort: 80   # http
""",
    "app.yaml": """\
# The app: namespace, config, deployment and service in one file
apiVersion: v1
kind: ConfigMap
metadata:
    name: app-config
data:
    LOG_LEVEL: debug
---
apiVersion: apps/v1
kind: Deployment
metadata:
    name: api
spec:
    replicas: 3
    selector:
        matchLabels: {app: api}
    template:
        metadata:
            labels: {app: api}
        spec:
            securityContext:
                fsGroup: 2000          # keep
            containers:
            -   name: api
                image: ghcr.io/example/api:2.1
                envFrom: [{configMapRef: {name: app-config}}]
                securityContext:
                    allowPrivilegeEscalation: true
                    capabilities:
                        add: ["SYS_PTRACE", "NET_RAW"]
            -   name: proxy
                image: envoyproxy/envoy:v1.30
                securityContext: {runAsUser: 0}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {selector: {app: api}, ports: [{port: 80}]}
""",
    "cron.yml": """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  annotations: {owner: team-a}
spec:
  schedule: "*/15 * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            container.apparmor.security.beta.kubernetes.io/report: unconfined
        spec:
          restartPolicy: OnFailure
          securityContext:
            runAsNonRoot: false
            seccompProfile: {type: Unconfined}
          initContainers:
          - name: wait
            image: busybox:1.36
            command: [sh, -c, "sleep 1"]
          containers:
          - name: report
            image: python:3.12
            securityContext:
              privileged: false
""",
    "workers.json": json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
         "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                  "template": {"metadata": {"labels": {"app": "db"}},
                               "spec": {"containers": [{"name": "db", "image": "postgres:16",
                                                        "ports": [{"containerPort": 5432}]}]}}}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
         "spec": {"template": {"spec": {"restartPolicy": "Never",
                                        "containers": [{"name": "migrate", "image": "ghcr.io/example/api:2.1",
                                                        "securityContext": {"capabilities": {"add": ["ALL"]}}}]}}}},
    ]}, indent=4) + "\n",
}


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODSEC_ROOT": "/nonexistent-podsec-root"}
    return subprocess.run([*PODSEC, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120,
                          cwd=cwd)


@pytest.fixture
def insecure(tmp_path: Path) -> Path:
    d = tmp_path / "manifests"
    d.mkdir()
    for name, text in INSECURE.items():
        (d / name).write_text(text)
    os.chmod(d / "app.yaml", 0o640)
    return d


def test_fixed_manifests_pass_check_restricted(insecure: Path, tmp_path: Path) -> None:
    before = run("check", "--level", "restricted", str(insecure))
    assert before.returncode == 1 and before.stdout.count("DENIED") == 5, before.stdout
    r = run("fix", str(insecure))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    out = tmp_path / "fixed.yaml"
    out.write_text(r.stdout)
    after = run("check", "--level", "restricted", str(out))
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout.count('PodSecurity "restricted:latest" allowed') == 5
    # one summary line per changed pod / container, with file:line
    assert f"{insecure}/app.yaml:31: Deployment/api: container \"proxy\": allowPrivilegeEscalation: false, " \
           "runAsUser: 65532 (was 0) (image not in podsec's store), capabilities.drop: [ALL]" in r.stderr.splitlines()
    assert "podsec fix: fixed 5 of 5 workloads (4 files)" in r.stderr
    assert "readOnlyRootFilesystem was not set (7 containers)" in r.stderr


def test_diff_then_write_in_place_then_nothing_left(insecure: Path) -> None:
    originals = {p.name: p.read_text() for p in insecure.iterdir()}
    d = run("fix", "--diff", "-f", str(insecure / "app.yaml"), "-f", str(insecure / "cron.yml"))
    assert d.returncode == 1, d.stderr  # changes to make, as kubectl diff and ruff format --diff
    assert d.stdout.startswith(f"--- {insecure}/app.yaml\n+++ {insecure}/app.yaml\n@@ ")
    assert "-                    allowPrivilegeEscalation: true\n+                    allowPrivilegeEscalation: false\n" \
        in d.stdout
    assert {p.name: p.read_text() for p in insecure.iterdir()} == originals  # --diff writes nothing

    ino = (insecure / "app.yaml").stat().st_ino
    w = run("fix", "--write", str(insecure))
    assert w.returncode == 0, w.stderr
    assert "podsec fix: fixed 5 of 5 workloads (4 files changed)" in w.stderr
    assert (insecure / "app.yaml").stat().st_mode & 0o777 == 0o640
    assert (insecure / "app.yaml").stat().st_ino != ino  # replaced by rename, not rewritten in place
    assert sorted(p.name for p in insecure.iterdir()) == sorted(INSECURE)  # no temp file left
    assert run("check", "--level", "restricted", str(insecure)).returncode == 0

    stats = {p.name: p.stat().st_mtime_ns for p in insecure.iterdir()}
    again = run("fix", "--diff", str(insecure))
    assert again.returncode == 0 and again.stdout == ""
    assert run("fix", "--write", str(insecure)).returncode == 0
    assert {p.name: p.stat().st_mtime_ns for p in insecure.iterdir()} == stats  # nothing to fix: untouched


def test_stdin_needs_a_human_and_bad_input(tmp_path: Path) -> None:
    text = pod("a busybox", spec="hostPID: true\n")
    r = run("fix", "-", stdin=text)
    assert r.returncode == 1  # hostPID is left for a human
    assert r.stdout.startswith("apiVersion: v1\nkind: Pod\n") and "runAsNonRoot: true" in r.stdout
    assert "<stdin>:6: Pod/p: needs a human: spec.hostPID: host namespaces (hostPID=true)" in r.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: {name: x\n")
    e = run("fix", str(bad))
    assert e.returncode == 2 and e.stdout == ""
    assert e.stderr.startswith(f"podsec: {bad}:") and "invalid YAML" in e.stderr
    assert len(e.stderr.strip().splitlines()) == 1
    u = run("fix", "--write", "-", stdin=text)
    assert u.returncode == 2 and "--write cannot write to stdin" in u.stderr


def test_quiet_prints_only_what_needs_a_human(insecure: Path, tmp_path: Path) -> None:
    q = run("fix", "-q", "--write", str(insecure))
    assert q.returncode == 0 and q.stderr == "", q.stderr
    assert run("check", "--level", "restricted", str(insecure)).returncode == 0
    host = tmp_path / "host.yaml"
    host.write_text(pod("a busybox", spec="hostNetwork: true\n"))
    h = run("fix", "-q", str(host))
    assert h.returncode == 1
    lines = h.stderr.splitlines()
    assert len(lines) == 2 and "needs a human: spec.hostNetwork" in lines[0], h.stderr
    assert lines[1] == "podsec fix: fixed 1 of 1 workload (1 file); 1 left for a human"
