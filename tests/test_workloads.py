"""run/apply/delete of workload kinds: the pod each controller would create first, run for real.

The pure part (names, hashes, labels) is checked against the controllers' rules; the runtime part
runs the pods with runc from the fixture image and looks at what ``get``, ``logs`` and the
claim directories show.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import Podsec
from podsec.api.controllers import ALPHANUMS, fnv32a, generate_name, pod_for, safe_encode, template_hash

FAST_BACKOFF = {"PODSEC_BACKOFF_SECONDS": "0.2"}


def write(tmp_path: Path, text: str, name: str = "w.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# -- pure: the controllers' naming rules ------------------------------------------------------------


def test_fnv32a_matches_the_reference_vectors() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert fnv32a(b"foobar") == 0xBF9CF968


def test_safe_encode_maps_each_digit_by_its_code_point() -> None:
    # '0' is 48, 48 % 27 = 21; '9' is 57, 57 % 27 = 3
    assert safe_encode("0") == ALPHANUMS[21]
    assert safe_encode("9") == ALPHANUMS[3]
    assert safe_encode("90") == ALPHANUMS[3] + ALPHANUMS[21]


def test_template_hash_is_stable_and_changes_with_the_template() -> None:
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    h = template_hash(t)
    assert h == template_hash(json.loads(json.dumps(t)))
    assert set(h) <= set(ALPHANUMS) and 1 <= len(h) <= 10
    assert h != template_hash({**t, "spec": {"containers": [{"name": "c", "image": "j"}]}})
    assert template_hash(t, 1) != h  # a collision count gives a new hash


def test_generate_name_cuts_the_base_to_58() -> None:
    assert generate_name("web-", lambda s: s[0]) == "web-bbbbb"
    assert len(generate_name("x" * 80 + "-")) == 63


def _obj(kind: str, spec: dict[str, Any], name: str = "w") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


TEMPLATE = {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}


def test_deployment_pod_is_named_after_its_replicaset() -> None:
    ctl = pod_for(_obj("Deployment", {"replicas": 3, "template": TEMPLATE}, "web"), TEMPLATE)
    h = ctl.metadata["labels"]["pod-template-hash"]
    assert re.fullmatch(rf"web-{h}-[{ALPHANUMS}]{{5}}", ctl.metadata["name"])
    assert ctl.metadata["labels"]["app"] == "w"
    assert ctl.metadata["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert ctl.metadata["ownerReferences"][0]["name"] == f"web-{h}"
    assert ctl.notes == ["deployment.apps/web asks for replicas: 3; podsec runs one pod on this machine"]


def test_statefulset_pod_is_ordinal_zero_with_its_claims() -> None:
    tmpl = {"spec": {"containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "data",
                                                                                   "mountPath": "/d"}]}]}}
    obj = _obj("StatefulSet", {"serviceName": "db-svc", "template": tmpl,
                               "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}, "db")
    ctl = pod_for(obj, tmpl)
    assert ctl.metadata["name"] == "db-0"
    labels = ctl.metadata["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert labels["apps.kubernetes.io/pod-index"] == "0"
    assert labels["controller-revision-hash"].startswith("db-")
    assert ctl.spec["hostname"] == "db-0" and ctl.spec["subdomain"] == "db-svc"
    assert ctl.spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]
    assert ctl.notes == []


def test_job_labels_and_cronjob_name() -> None:
    job = pod_for({"kind": "Job", "metadata": {"name": "mig", "uid": "u-1"},
                   "spec": {"backoffLimit": 2, "activeDeadlineSeconds": 30, "template": TEMPLATE}}, TEMPLATE)
    assert job.metadata["labels"]["batch.kubernetes.io/job-name"] == "mig"
    assert job.metadata["labels"]["batch.kubernetes.io/controller-uid"] == "u-1"
    assert job.metadata["labels"]["job-name"] == "mig"
    assert re.fullmatch(rf"mig-[{ALPHANUMS}]{{5}}", job.metadata["name"])
    assert (job.job.backoff_limit, job.job.active_deadline) == (2, 30.0)
    assert job.retry_metadata()["name"] != job.metadata["name"]
    cron = pod_for({"kind": "CronJob", "metadata": {"name": "nightly"},
                    "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": TEMPLATE}}}},
                   TEMPLATE, now=60 * 29_000_000 + 5)
    assert cron.metadata["labels"]["job-name"] == "nightly-29000000"
    assert cron.metadata["name"].startswith("nightly-29000000-")
    assert cron.job is not None and cron.job.backoff_limit == 6


# -- runtime ----------------------------------------------------------------------------------------


def _pods(podsec: Podsec, namespace: str) -> list[dict[str, Any]]:
    out = podsec.run("get", "pods", "-n", namespace, "-o", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    return doc["items"] if doc.get("kind") == "List" else [doc]


@pytest.mark.runtime
def test_deployment_apply_get_unchanged_delete(podsec: Podsec, tmp_path: Path) -> None:
    f = write(tmp_path, """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: wl-deploy}
        spec:
          replicas: 3
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - {name: web, image: "podsec-fixture:root", command: [sh, -c, "hostname; sleep 60"]}
        """)
    out = podsec.run("apply", "-f", f)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "deployment.apps/web created\n"
    assert out.stderr.count("replicas: 3") == 1
    again = podsec.run("apply", "-f", f)
    assert again.stdout == "deployment.apps/web unchanged\n", again.stderr
    pods = _pods(podsec, "wl-deploy")
    assert len(pods) == 1
    name = pods[0]["metadata"]["name"]
    h = pods[0]["metadata"]["labels"]["pod-template-hash"]
    assert re.fullmatch(rf"web-{h}-[{ALPHANUMS}]{{5}}", name)
    table = podsec.run("get", "pods", "-n", "wl-deploy").stdout
    assert name in table
    deleted = podsec.run("delete", "-f", f)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == f'pod "{name}" deleted\ndeployment.apps "web" deleted\n'
    assert not (podsec.state / "pods" / f"wl-deploy_{name}").exists()
    gone = podsec.run("delete", "-f", f)
    assert gone.returncode == 1 and 'deployments.apps "web" not found' in gone.stderr


@pytest.mark.runtime
def test_statefulset_claim_template_is_mapped_with_volume_dir(podsec: Podsec, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    f = write(tmp_path, """\
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db, namespace: wl-sts}
        spec:
          serviceName: db
          selector: {matchLabels: {app: db}}
          template:
            metadata: {labels: {app: db}}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: db
                image: "podsec-fixture:root"
                command: [sh, -c, "hostname > /var/lib/db/who; exec sleep 60"]
                volumeMounts: [{name: data, mountPath: /var/lib/db}]
          volumeClaimTemplates:
          - metadata: {name: data}
            spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
        """)
    missing = podsec.run("run", "--rm", "--timeout", "20", "-f", f)
    assert missing.returncode == 1
    assert "--volume-dir data-db-0=" in missing.stderr
    out = podsec.run("apply", "--volume-dir", f"data-db-0={data}", "-f", f)
    assert (out.returncode, out.stdout) == (0, "statefulset.apps/db created\n"), out.stderr
    try:
        deadline = time.monotonic() + 60
        while not (data / "who").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (data / "who").read_text() == "db-0\n"  # the claim's directory, and the pod's hostname
        [pod] = _pods(podsec, "wl-sts")
        assert pod["metadata"]["name"] == "db-0"
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-0"
        vols = pod["spec"]["volumes"]
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in vols
    finally:
        assert podsec.run("delete", "-f", f).returncode == 0


@pytest.mark.runtime
def test_job_retries_up_to_backoff_limit(podsec: Podsec, tmp_path: Path) -> None:
    f = write(tmp_path, """\
        apiVersion: batch/v1
        kind: Job
        metadata: {name: migrate, namespace: wl-job}
        spec:
          backoffLimit: 2
          template:
            spec:
              restartPolicy: Never
              containers:
              - {name: m, image: "podsec-fixture:root", command: [sh, -c, "echo try $(hostname); exit 3"]}
        """)
    out = podsec.run("run", "-f", f, env=FAST_BACKOFF)
    assert out.returncode == 3, out.stderr
    tries = out.stdout.split()
    assert tries[0::2] == ["try", "try", "try"]
    names = tries[1::2]
    assert len(set(names)) == 3 and all(re.fullmatch(rf"migrate-[{ALPHANUMS}]{{5}}", n) for n in names)
    assert "BackoffLimitExceeded: Job has reached the specified backoff limit" in out.stderr
    pods = _pods(podsec, "wl-job")
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(names)
    assert {p["metadata"]["labels"]["batch.kubernetes.io/job-name"] for p in pods} == {"migrate"}
    assert {p["status"]["phase"] for p in pods} == {"Failed"}
    deleted = podsec.run("delete", "-f", f)
    assert deleted.returncode == 0 and deleted.stdout.endswith('job.batch "migrate" deleted\n')
    assert podsec.run("get", "pods", "-n", "wl-job").stdout == ""


@pytest.mark.runtime
def test_job_active_deadline_stops_it(podsec: Podsec, tmp_path: Path) -> None:
    f = write(tmp_path, """\
        apiVersion: batch/v1
        kind: Job
        metadata: {name: slow, namespace: wl-deadline}
        spec:
          activeDeadlineSeconds: 2
          template:
            spec:
              restartPolicy: OnFailure
              terminationGracePeriodSeconds: 1
              containers:
              - {name: s, image: "podsec-fixture:root", command: [sleep, "60"]}
        """)
    start = time.monotonic()
    out = podsec.run("run", "--rm", "-f", f)
    assert time.monotonic() - start < 15
    assert out.returncode == 1, out.stderr
    assert "DeadlineExceeded: Job was active longer than specified deadline" in out.stderr


@pytest.mark.runtime
def test_cronjob_runs_one_job_now(podsec: Podsec, tmp_path: Path) -> None:
    f = write(tmp_path, """\
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: report, namespace: wl-cron}
        spec:
          schedule: "0 3 * * *"
          jobTemplate:
            spec:
              template:
                spec:
                  restartPolicy: OnFailure
                  containers:
                  - {name: r, image: "podsec-fixture:root", command: [hostname]}
        """)
    out = podsec.run("run", "--rm", "-f", f)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(rf"report-\d+-[{ALPHANUMS}]{{5}}\n", out.stdout)


@pytest.mark.runtime
def test_parallel_apply_of_one_pod_creates_it_once(podsec: Podsec, tmp_path: Path) -> None:
    """Ten ``apply`` at once: one says created, nine unchanged, none fails (was: already exists)."""
    f = write(tmp_path, """\
        apiVersion: v1
        kind: Pod
        metadata: {name: racer, namespace: wl-race}
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - {name: c, image: "podsec-fixture:root", command: [sleep, "60"]}
        """)
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: podsec.run("apply", "-f", f), range(10)))
    assert [r.returncode for r in results] == [0] * 10, [r.stderr for r in results]
    outs = sorted(r.stdout for r in results)
    assert outs == ["pod/racer created\n"] + ["pod/racer unchanged\n"] * 9
    assert podsec.run("delete", "-n", "wl-race", "racer").returncode == 0


@pytest.mark.runtime
def test_readme_deployment_example(podsec: Podsec) -> None:
    """The README's ``podsec run -f examples/hello-deployment.yaml``: its lines, with the pod's random suffix."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = Path(__file__).resolve().parents[1] / "examples" / "hello-deployment.yaml"
    out = podsec.run("run", "--rm", "--timeout", "5s", "-f", str(example))
    assert out.returncode == 124, out.stderr
    lines = out.stdout.splitlines()
    name = lines[0].split()[2].rstrip(",")
    h = name.split("-")[1]
    assert h == "65c5555c86"  # the README shows this hash: the same template always gives it
    assert re.fullmatch(rf"hello-{h}-[{ALPHANUMS}]{{5}}", name)
    assert lines == [f"I am {name}, uid 1000", 'app="hello"', f'pod-template-hash="{h}"']
    note = "podsec: deployment.apps/hello asks for replicas: 3; podsec runs one pod on this machine"
    assert out.stderr.splitlines() == [note, f"podsec: pod {name} stopped after --timeout 5s"]
    for line in (note, 'app="hello"', "I am hello-65c5555c86-4ql9x, uid 1000"):
        assert line in readme
