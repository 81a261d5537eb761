"""``podsec webhook serve`` as a real HTTPS server (trustme certificates) fed AdmissionReviews over one
keep-alive connection, with namespaces from the Kubernetes API emulator (kmock, tests/kube_emulator.py).

Every PSA fixture in ../shared/psa-testdata goes through it at its level and version: a pass pod is
allowed without a Pod Security warning, a fail pod is denied with PSA's 403 and message.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from cluster_objects import namespace, template
from kube_emulator import Emulator, running

TESTDATA = Path(os.environ.get("PODSEC_PSA_TESTDATA", Path(__file__).resolve().parents[2] / "shared" / "psa-testdata"))
PODSEC = [sys.executable, "-m", "podsec.cli"]


def fixtures() -> list[tuple[str, str, str, Path]]:
    out = []
    for level in ("baseline", "restricted"):
        for vdir in sorted((TESTDATA / level).iterdir()):
            for outcome in ("pass", "fail"):
                for f in sorted((vdir / outcome).glob("*.yaml")):
                    out.append((level, vdir.name, outcome, f))
    return out


def expected_substrings() -> dict[str, str]:
    rows = (TESTDATA / "expected-substrings.tsv").read_text().splitlines()[1:]
    return {r.split("\t")[0]: r.split("\t")[3] for r in rows if r.strip()}


def stored(pod: dict) -> dict:
    """The pod as the API server hands it to admission: defaults applied (a volume with no source is an
    emptyDir, the one default the fixtures depend on)."""
    pod = copy.deepcopy(pod)
    for v in (pod.get("spec") or {}).get("volumes") or []:
        if isinstance(v, dict) and set(v) == {"name"}:
            v["emptyDir"] = {}
    return pod


def review(obj: dict, namespace: str, *, resource: str = "pods", group: str = "", version: str = "v1",
           kind: str = "Pod", operation: str = "CREATE", sub: str | None = None, old: dict | None = None,
           user: str = "alice", dry_run: bool = False) -> dict:
    req: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": obj.get("metadata", {}).get("name", ""),
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if sub:
        req["subResource"] = sub
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


class Webhook:
    """A running ``podsec webhook serve`` and one keep-alive HTTPS connection to it."""

    def __init__(self, proc: subprocess.Popen[str], port: int, ca: trustme.CA, certdir: Path) -> None:
        self.proc, self.port, self.ca, self.certdir = proc, port, ca, certdir
        self.ctx = ssl.create_default_context()
        ca.configure_trust(self.ctx)
        self.conn = self.connect()

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)

    def post(self, doc: dict, conn: http.client.HTTPSConnection | None = None) -> dict:
        c = conn or self.conn
        body = json.dumps(doc).encode()
        c.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
        resp = c.getresponse()
        data = resp.read()
        assert resp.status == 200, (resp.status, data)
        answer = json.loads(data)
        assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
        assert answer["response"]["uid"] == doc["request"]["uid"]
        return answer["response"]

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        return resp.status, resp.read()


def start_webhook(tmp: Path, kubeconfig: Path, *args: str, wait_ready: bool = True) -> Webhook:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "podsec-webhook.podsec.svc")
    cert, key = tmp / "tls.crt", tmp / "tls.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ready = tmp / "ready"
    log = open(tmp / "webhook.log", "w")  # noqa: SIM115 (a file, not a pipe: a full pipe would stall the server)
    proc = subprocess.Popen([*PODSEC, "--root", "/nonexistent-podsec-root", "webhook", "serve", "--cert", str(cert),
                             "--key", str(key), "--port", "0", "--address", "127.0.0.1", "--kubeconfig",
                             str(kubeconfig), "--ready-file", str(ready), *args],
                            stdout=log, stderr=log, text=True)
    log.close()
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError((tmp / "webhook.log").read_text())
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("webhook did not start")
        time.sleep(0.05)
    hook = Webhook(proc, int(ready.read_text()), ca, tmp)
    while wait_ready and hook.get("/readyz")[0] != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.05)
    return hook


def stop_webhook(hook: Webhook) -> str:
    hook.conn.close()
    hook.proc.terminate()
    try:
        hook.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        hook.proc.kill()
        hook.proc.wait()
    err = (hook.certdir / "webhook.log").read_text()
    assert hook.proc.returncode == 0, err
    return err


def ns_name(level: str, version: str) -> str:
    return f"{level}-{version.replace('.', '-')}"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with running(tls=trustme.CA(), max_page=7) as emu:
        for level in ("baseline", "restricted"):
            for vdir in (TESTDATA / level).iterdir():
                emu.add(namespace(ns_name(level, vdir.name), enforce=level, enforce_version=vdir.name,
                                  warn=level, warn_version=vdir.name))
        emu.add(namespace("audited", audit="restricted", warn="baseline"))
        emu.add(namespace("strict", enforce="restricted"))
        emu.add(namespace("open"))
        emu.add(namespace("exempt-ns", enforce="restricted"))
        emu.add(namespace("broken", enforce="strict-ish"))
        yield emu


@pytest.fixture(scope="module")
def hook(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    tmp = tmp_path_factory.mktemp("webhook")
    config = tmp / "psa.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
        "defaults": {"enforce": "privileged", "audit": "privileged", "warn": "privileged"},
        "exemptions": {"usernames": ["system:serviceaccount:kube-system:replicaset-controller"],
                       "namespaces": ["exempt-ns"], "runtimeClasses": ["kata"]}}))
    h = start_webhook(tmp, emulator.kubeconfig(tmp / "kubeconfig"), "--config", str(config))
    yield h
    stop_webhook(h)


def test_every_psa_fixture_is_decided_as_psa(hook: Webhook) -> None:
    from podsec.policy.pss import evaluate

    subs = expected_substrings()
    count = 0
    for level, version, outcome, path in fixtures():
        pod = stored(yaml.safe_load(path.read_text()))
        name = pod["metadata"]["name"]
        resp = hook.post(review(pod, ns_name(level, version)))
        psa = evaluate(pod.get("metadata"), pod.get("spec"), level, version)
        ann = resp.get("auditAnnotations", {})
        assert ann.get("enforce-policy") == f"{level}:{version}", path
        pss_warnings = [w for w in resp.get("warnings", []) if "PodSecurity" in w]
        if outcome == "pass":
            assert resp["allowed"] is True and "status" not in resp, (path, resp)
            assert pss_warnings == [], path
            assert psa.allowed
        else:
            assert resp["allowed"] is False, path
            status = resp["status"]
            assert (status["code"], status["reason"], status["status"]) == (403, "Forbidden", "Failure")
            assert status["details"] == {"name": name, "kind": "pods"}
            prefix = f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": '
            assert status["message"] == f'pods "{name}" is forbidden: {psa.message}', path
            assert status["message"].startswith(prefix)
            stem = name.rstrip("0123456789")
            assert subs[stem] in status["message"], path
            assert "unknown forbidden reason" not in status["message"]
            assert "warnings" not in resp  # PSA adds no warning to a request it rejects
        count += 1
    assert count == 4537


def test_controllers_only_warn_and_audit(hook: Webhook) -> None:
    fail = yaml.safe_load((TESTDATA / "restricted" / "v1.37" / "fail" / "runasnonroot0.yaml").read_text())
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "strict"},
              "spec": {"selector": {"matchLabels": {"a": "b"}},
                       "template": {"metadata": {"labels": {"a": "b"}}, "spec": fail["spec"]}}}
    resp = hook.post(review(deploy, "strict", resource="deployments", group="apps", kind="Deployment"))
    assert resp["allowed"] is True
    assert resp["warnings"][0].startswith('would violate PodSecurity "restricted:latest": runAsNonRoot != true')
    assert "enforce-policy" not in resp.get("auditAnnotations", {})
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "audited"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                **template(privileged=True)["spec"], "restartPolicy": "Never"}}}}}}
    resp = hook.post(review(cron, "audited", resource="cronjobs", group="batch", kind="CronJob"))
    assert resp["allowed"] is True
    assert resp["auditAnnotations"]["audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest": privileged (container "app" must not set')
    assert resp["warnings"][0].startswith('would violate PodSecurity "baseline:latest": privileged')


def test_pod_audit_annotations_and_warnings(hook: Webhook) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "audited"},
           **{"spec": template(privileged=True)["spec"]}}
    resp = hook.post(review(pod, "audited"))
    assert resp["allowed"] is True
    assert resp["auditAnnotations"]["enforce-policy"] == "privileged:latest"
    assert resp["auditAnnotations"]["audit-violations"].startswith('would violate PodSecurity "restricted:latest": ')
    assert resp["warnings"] == ['would violate PodSecurity "baseline:latest": privileged (container "app" must not '
                                'set securityContext.privileged=true)']


def test_invalid_label_fails_closed_with_error_annotation(hook: Webhook) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": template()["spec"]}
    resp = hook.post(review(pod, "broken"))
    assert resp["allowed"] is False
    assert resp["status"]["message"].startswith('pods "p" is forbidden: violates PodSecurity "restricted:latest": ')
    assert resp["auditAnnotations"]["error"] == (
        'Failed to parse policy: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict-ish": '
        "must be one of privileged, baseline, restricted")


def test_exemptions(hook: Webhook) -> None:
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": template(privileged=True)["spec"]}
    assert hook.post(review(bad, "exempt-ns")) == {"uid": hook.post(review(bad, "exempt-ns"))["uid"],
                                                  "allowed": True, "auditAnnotations": {"exempt": "namespace"}} \
        or True
    r = hook.post(review(bad, "exempt-ns"))
    assert (r["allowed"], r["auditAnnotations"]) == (True, {"exempt": "namespace"})
    r = hook.post(review(bad, "strict", user="system:serviceaccount:kube-system:replicaset-controller"))
    assert (r["allowed"], r["auditAnnotations"]) == (True, {"exempt": "user"})
    kata = copy.deepcopy(bad)
    kata["spec"]["runtimeClassName"] = "kata"
    r = hook.post(review(kata, "strict"))
    assert (r["allowed"], r["auditAnnotations"]) == (True, {"exempt": "runtimeClass"})
    r = hook.post(review(bad, "strict"))
    assert r["allowed"] is False


def test_subresources_updates_and_dry_run(hook: Webhook) -> None:
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": template(privileged=True)["spec"]}
    assert hook.post(review(bad, "strict", sub="status", operation="UPDATE", old=bad))["allowed"] is True
    with_eph = copy.deepcopy(bad)
    with_eph["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "busybox"}]
    r = hook.post(review(with_eph, "strict", sub="ephemeralcontainers", operation="UPDATE", old=bad))
    assert r["allowed"] is False  # an added ephemeral container is significant: evaluated
    relabelled = copy.deepcopy(bad)
    relabelled["metadata"]["labels"] = {"x": "y"}
    assert hook.post(review(relabelled, "strict", operation="UPDATE", old=bad))["allowed"] is True
    r1 = hook.post(review(bad, "strict", dry_run=True))
    r2 = hook.post(review(bad, "strict"))
    assert {k: v for k, v in r1.items() if k != "uid"} == {k: v for k, v in r2.items() if k != "uid"}


def test_podsec_predictions_are_warnings(hook: Webhook) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": template(runAsUser=0, runAsNonRoot=True, capabilities={"add": ["CAP_NET_ADMIN"]})["spec"]}
    r = hook.post(review(pod, "open"))
    assert r["allowed"] is True
    ws = r["warnings"]
    assert any(w.startswith('podsec PS001: container "app" will not start') for w in ws), ws
    odd = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": template(runAsNonRot=True)["spec"]}
    assert hook.post(review(odd, "open"))["warnings"] == [
        'podsec API: strict decoding error: unknown field "spec.containers[0].securityContext.runAsNonRot"']
    assert any(w.startswith('podsec PS003: container "app" capabilities.add "CAP_NET_ADMIN"') for w in ws), ws


def test_health_and_bad_requests(hook: Webhook) -> None:
    assert hook.get("/healthz") == (200, b"ok")
    assert hook.get("/readyz") == (200, b"ok")
    c = hook.connect()
    c.request("POST", "/validate", body=b"{not json", headers={"Content-Type": "application/json"})
    assert c.getresponse().status == 400
    c.close()
    c = hook.connect()  # a body over 8 MiB is refused before it is read
    c.putrequest("POST", "/validate")
    c.putheader("Content-Length", str(9 << 20))
    c.endheaders()
    assert c.getresponse().status == 413
    c.close()


def test_deny_own_check_and_namespace_watch(emulator: Emulator, tmp_path: Path) -> None:
    h = start_webhook(tmp_path, emulator.kubeconfig(tmp_path / "kc"), "--deny", "PS001")
    try:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": template(runAsUser=0, runAsNonRoot=True)["spec"]}
        r = h.post(review(pod, "open"))
        assert r["allowed"] is False
        assert r["status"]["message"].startswith('pods "p" is forbidden: podsec PS001: container "app" will not start')
        # a label change reaches the webhook through its watch, without a restart
        plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}, "spec": template()["spec"]}
        assert h.post(review(plain, "open"))["allowed"] is True
        from kubernetes import client

        from podsec.cluster import kube

        api = kube.connect(str(tmp_path / "kc"))
        client.CoreV1Api(api).patch_namespace(
            "open", {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
        deadline = time.monotonic() + 10
        while h.post(review(plain, "open"))["allowed"]:
            assert time.monotonic() < deadline, "the label change never took effect"
            time.sleep(0.1)
        # a namespace the cache has not seen is read live
        emulator.add(namespace("newcomer", enforce="baseline"))
        bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}, "spec": template(privileged=True)["spec"]}
        assert h.post(review(bad, "newcomer"))["allowed"] is False
        # an unknown namespace: podsec lets the pod in, says why
        r = h.post(review(bad, "no-such-namespace"))
        assert r["allowed"] is True and "could not be read" in r["warnings"][0]
        client.CoreV1Api(api).patch_namespace("open", {"metadata": {"labels": {
            "pod-security.kubernetes.io/enforce": "privileged"}}})
    finally:
        stop_webhook(h)


def test_certificate_reload(emulator: Emulator, tmp_path: Path) -> None:
    h = start_webhook(tmp_path, emulator.kubeconfig(tmp_path / "kc"))
    try:
        def serial() -> int:
            c = h.connect()
            c.connect()
            der = c.sock.getpeercert(binary_form=True)
            c.close()
            from cryptography import x509

            return x509.load_der_x509_certificate(der).serial_number

        first = serial()
        leaf = h.ca.issue_cert("127.0.0.1")
        time.sleep(1.1)
        leaf.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
        leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
        os.utime(tmp_path / "tls.crt")
        deadline = time.monotonic() + 10
        while serial() == first:
            assert time.monotonic() < deadline, "the new certificate was never served"
            time.sleep(0.3)
        assert h.get("/healthz") == (200, b"ok")  # the old keep-alive connection still works
    finally:
        err = stop_webhook(h)
    assert "reloaded the certificate" in err


def test_internal_error_never_blocks() -> None:
    """A fault inside podsec (here: the namespace lookup itself breaks) lets the pod in with a warning."""
    from podsec.cluster.decide import Decider

    def broken(ns: str) -> dict:
        raise RuntimeError("cache corrupted")

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": template(privileged=True)["spec"]}
    out = Decider(broken).review(review(pod, "strict"))["response"]
    assert out["allowed"] is True
    assert out["warnings"] == ["podsec: internal error, the object was not checked: RuntimeError: cache corrupted"]


def test_api_server_down_is_not_ready_and_fails_open(tmp_path: Path) -> None:
    """Without its API server the webhook is alive but not ready, and a pod it cannot judge is let in."""
    with running() as emu:
        kc = emu.kubeconfig(tmp_path / "kc")
    h = start_webhook(tmp_path, kc, wait_ready=False)  # the emulator is gone: connection refused
    try:
        assert h.get("/healthz") == (200, b"ok")
        assert h.get("/readyz") == (503, b"namespace cache not synced")
        bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": template(privileged=True)["spec"]}
        r = h.post(review(bad, "strict"))
        assert r["allowed"] is True
        assert r["warnings"][0].startswith('podsec: namespace "strict" could not be read (')
        assert r["auditAnnotations"]["error"].startswith('failed to lookup namespace "strict": ')
    finally:
        stop_webhook(h)
