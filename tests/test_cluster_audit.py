"""``podsec audit`` against a Kubernetes API emulator (kmock, extended in tests/kube_emulator.py with paging
and TLS) through the official client, as a user runs it: the command, its output and exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
import yaml

from cluster_objects import demo, deployment, namespace, template
from kube_emulator import Emulator, running

pytest_plugins = ["conftest_image"]

PODSEC = [sys.executable, "-m", "podsec.cli"]


def audit(kubeconfig: Path, *args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    env_root = ["--root", str(root)] if root else ["--root", "/nonexistent-podsec-root"]
    return subprocess.run([*PODSEC, *env_root, "audit", "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, Path]]:
    """A TLS emulator that returns at most 3 items per page, whatever limit is asked."""
    with running(tls=trustme.CA(), max_page=3) as emu:
        demo(emu)
        yield emu, emu.kubeconfig(tmp_path_factory.mktemp("kube") / "config")


def by_name(results: list[dict]) -> dict[str, dict]:
    return {f"{r['namespace']}/{r['kind']}/{r['name']}": r for r in results}


def test_each_workload_once_under_its_top_owner(cluster: tuple[Emulator, Path]) -> None:
    _, kc = cluster
    out = audit(kc, "-A", "-o", "json")
    assert out.returncode == 1, out.stderr
    results = json.loads(out.stdout)["results"]
    got = by_name(results)
    assert sorted(got) == ["dev/CronJob/backup", "dev/Pod/debug", "kube-system/Pod/etcd-node-1",
                           "legacy/Pod/orphan", "legacy/Pod/rollout-pod", "prod/Deployment/idle",
                           "prod/Deployment/web"]
    web = got["prod/Deployment/web"]
    assert (web["file"], web["line"], web["pods"]) == (None, None, 4)  # the Succeeded pod is not live
    assert web["pss"]["level"] == "restricted" and web["pss"]["version"] == "v1.30"
    assert web["pss"]["message"] == ('violates PodSecurity "restricted:v1.30": runAsUser=0 (container "app" must '
                                     'not set runAsUser=0)')
    assert any("1 of 4 live pods run an older template" in n and "ReplicaSet/web-old1" in n for n in web["notes"])
    assert {f["id"] for f in web["findings"]} >= {"PS001", "PSS:runAsUser"}
    assert all(f["line"] is None for f in web["findings"])
    assert got["prod/Deployment/idle"]["pods"] == 0 and got["prod/Deployment/idle"]["pss"]["allowed"]
    backup = got["dev/CronJob/backup"]
    assert backup["pods"] == 1
    assert backup["pss"]["audit"]["level"] == "restricted" and not backup["pss"]["audit"]["allowed"]
    assert backup["pss"]["audit"]["message"].startswith('would violate PodSecurity "restricted:latest": privileged')
    assert "was not found" in got["legacy/Pod/orphan"]["notes"][0]
    assert "custom resource" in got["legacy/Pod/rollout-pod"]["notes"][0]
    assert "static pod of node node-1" in got["kube-system/Pod/etcd-node-1"]["notes"][0]
    # no namespace label: privileged, as Pod Security Admission
    assert got["legacy/Pod/orphan"]["pss"]["level"] == "privileged"
    assert "API" not in {f["id"] for r in results for f in r["findings"]}


def test_every_list_is_paged(cluster: tuple[Emulator, Path]) -> None:
    emu, kc = cluster
    before = len(emu.requests)
    out = audit(kc, "-A", "-o", "json", "--chunk-size", "2")
    assert out.returncode == 1, out.stderr
    lists = [r for r in emu.requests[before:] if r.method == "GET" and r.url.path != "/version"]
    assert lists and all(r.params.get("limit") == "2" for r in lists)
    pods = [r for r in lists if r.url.path == "/api/v1/pods"]
    assert len(pods) == 5  # 9 pods, 2 per page
    assert "continue" not in pods[0].params and all("continue" in r.params for r in pods[1:])


def test_namespace_and_table(cluster: tuple[Emulator, Path]) -> None:
    _, kc = cluster
    out = audit(kc, "-n", "prod")
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["WORKLOAD", "SEVERITY", "ID", "FIELD", "MESSAGE"]
    assert any(line.startswith('prod/Deployment/web: 4 live pod(s); PodSecurity "restricted:v1.30" (namespace prod) '
                               "DENIED; ") for line in lines), out.stdout
    assert all(not line.startswith("dev/") for line in lines)


def test_policyreport(cluster: tuple[Emulator, Path]) -> None:
    _, kc = cluster
    out = audit(kc, "-A", "-o", "policyreport")
    docs = list(yaml.safe_load_all(out.stdout))
    assert [d["metadata"]["namespace"] for d in docs] == ["dev", "kube-system", "legacy", "prod"]
    prod = docs[-1]
    assert prod["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and prod["kind"] == "PolicyReport"
    fails = [r for r in prod["results"] if r["result"] == "fail"]
    assert {r["rule"] for r in fails} >= {"PS001", "PSS:runAsUser"}
    assert fails[0]["resources"][0] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                        "namespace": "prod"}
    assert prod["summary"]["fail"] == len(fails)
    passed = [r for r in prod["results"] if r["result"] == "pass"]
    assert prod["summary"]["pass"] == len(passed)
    assert [r["resources"][0]["name"] for r in passed] == ["idle"]  # no finding: one pass for the workload


def test_level_override_and_other_formats(cluster: tuple[Emulator, Path]) -> None:
    _, kc = cluster
    out = audit(kc, "-n", "legacy", "--level", "restricted", "-o", "json")
    r = json.loads(out.stdout)["results"][0]
    assert (r["pss"]["level"], r["pss"]["source"], r["pss"]["allowed"]) == ("restricted", "--level", False)
    sarif = json.loads(audit(kc, "-n", "prod", "-o", "sarif").stdout)
    uris = {res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for res in sarif["runs"][0]["results"]}
    assert "prod/Deployment/web" in uris and uris <= {"prod/Deployment/web", "prod/Deployment/idle"}
    junit = audit(kc, "-n", "prod", "-o", "junit").stdout
    assert 'classname="prod/Deployment/web"' in junit


def test_unreachable_and_unauthorized(tmp_path: Path) -> None:
    with running() as emu:
        kc = emu.kubeconfig(tmp_path / "config")
        url = emu.url
    out = audit(kc, "-A")  # the emulator is gone: connection refused
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"podsec: {url}: cannot reach the API server: connection refused"]

    with running(tls=trustme.CA()) as emu:
        kc = emu.kubeconfig(tmp_path / "config2")
        emu.tls = None
        (tmp_path / "emulator-ca.pem").write_bytes(trustme.CA().cert_pem.bytes())  # the wrong CA
        out = audit(kc, "-A")
        assert out.returncode == 2
        assert "TLS certificate verification failed" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr

    with running(token="s3cret") as emu:
        out = audit(emu.kubeconfig(tmp_path / "config3", token="wrong"), "-A")
        assert out.returncode == 2
        assert out.stderr.strip().splitlines() == [
            f"podsec: {emu.url}: GET /api/v1/namespaces: 401 Unauthorized: Unauthorized"]
        assert audit(emu.kubeconfig(tmp_path / "config4", token="s3cret"), "-A").returncode == 0

    bad = tmp_path / "bad-config"
    bad.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    out = audit(bad, "-A")
    assert out.returncode == 2 and out.stderr.startswith(f"podsec: {bad}: kubeconfig: ")


def test_missing_namespace(cluster: tuple[Emulator, Path]) -> None:
    _, kc = cluster
    out = audit(kc, "-n", "nope")
    assert (out.returncode, out.stderr.strip()) == (2, 'podsec: namespaces "nope" not found')


def test_inspect_images_predicts_will_not_start(tmp_path: Path, fixture_layout: Path, registry: str) -> None:
    """The image's USER comes from the registry's config (skopeo, no layers): root there means PS001."""
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{fixture_layout}:root",
                    f"docker://{registry}/app:root"], check=True, capture_output=True)
    image = f"{registry}/app:root"
    with running() as emu:
        emu.add(namespace("apps", enforce="restricted"))
        emu.add(deployment("apps", "api", template(image=image, restricted=True)))
        kc = emu.kubeconfig(tmp_path / "config")
        without = json.loads(audit(kc, "-n", "apps", "-o", "json").stdout)["results"][0]
        assert "PS001" not in {f["id"] for f in without["findings"]}
        assert "PS002" in {f["id"] for f in without["findings"]}
        out = audit(kc, "-n", "apps", "-o", "json", "--inspect-images", "--no-image-tls-verify")
        r = json.loads(out.stdout)["results"][0]
        ps001 = [f for f in r["findings"] if f["id"] == "PS001"]
        assert ps001 and "will not start" in ps001[0]["message"], out.stderr
        assert r["pss"]["allowed"]  # Pod Security admits it; the kubelet will not start it


def test_readme_shows_real_output(cluster: tuple[Emulator, Path]) -> None:
    """The README's `podsec audit` example is this command's output on the same demo cluster."""
    _, kc = cluster
    out = audit(kc, "-A", "--min-severity", "high")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("$ podsec audit --kubeconfig /tmp/kubeconfig -A --min-severity high\n", 1)[1]
    shown = block.split("\n$ echo $?", 1)[0].splitlines()
    assert shown == out.stdout.splitlines()
    assert out.returncode == 1
