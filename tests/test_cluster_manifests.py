"""``podsec webhook manifests``: the objects validate against Kubernetes' own schema (kubernetes-validate),
the webhook fails open and skips its own namespace, and its Deployment passes ``podsec check`` restricted."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import trustme
import yaml

PODSEC = [sys.executable, "-m", "podsec.cli"]


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[list[dict], trustme.CA, Path]:
    ca = trustme.CA()
    leaf = ca.issue_cert("podsec-webhook.podsec-system.svc")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    out = subprocess.run([*PODSEC, "webhook", "manifests", "--namespace", "podsec-system", "--image",
                          "registry.example/podsec:0.1", "--cert", str(tmp_path / "tls.crt"), "--key",
                          str(tmp_path / "tls.key"), "--ca", str(tmp_path / "ca.crt"), "--deny", "PS001,PS009"],
                         capture_output=True, text=True, check=True)
    (tmp_path / "install.yaml").write_text(out.stdout)
    return list(yaml.safe_load_all(out.stdout)), ca, tmp_path


def test_every_object_is_valid_for_the_api(rendered: tuple[list[dict], trustme.CA, Path]) -> None:
    docs, _, _ = rendered
    assert [d["kind"] for d in docs] == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret",
                                         "Deployment", "Service", "PodDisruptionBudget",
                                         "ValidatingWebhookConfiguration"]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33", strict=True)  # raises ValidationError on any schema error


def test_webhook_configuration(rendered: tuple[list[dict], trustme.CA, Path]) -> None:
    docs, ca, _ = rendered
    vwc = docs[-1]["webhooks"][0]
    assert vwc["name"] == "pod-security.kubernetes.io"
    assert (vwc["failurePolicy"], vwc["timeoutSeconds"], vwc["sideEffects"]) == ("Ignore", 5, "None")
    assert base64.b64decode(vwc["clientConfig"]["caBundle"]) == ca.cert_pem.bytes()
    assert vwc["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["podsec-system"]}]
    resources = {r for rule in vwc["rules"] for r in rule["resources"]}
    assert {"pods", "pods/ephemeralcontainers", "deployments", "cronjobs", "jobs"} <= resources
    deploy = docs[5]
    assert deploy["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--deny", "PS001,PS009"]


def test_the_webhook_itself_is_restricted(rendered: tuple[list[dict], trustme.CA, Path]) -> None:
    _, _, tmp = rendered
    out = subprocess.run([*PODSEC, "--root", "/nonexistent-podsec-root", "check", "--level", "restricted", "-o", "json",
                          str(tmp / "install.yaml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    (result,) = yaml.safe_load(out.stdout)["results"]
    assert result["kind"] == "Deployment" and result["pss"]["allowed"] is True


def test_self_signed_certificate_is_its_own_ca_bundle(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "tls.crt"))
    ca.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    out = subprocess.run([*PODSEC, "webhook", "manifests", "--image", "x", "--cert", str(tmp_path / "tls.crt"),
                          "--key", str(tmp_path / "tls.key")], capture_output=True, text=True, check=True)
    vwc = list(yaml.safe_load_all(out.stdout))[-1]
    assert base64.b64decode(vwc["webhooks"][0]["clientConfig"]["caBundle"]) == ca.cert_pem.bytes()
