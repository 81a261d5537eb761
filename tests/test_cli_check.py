"""`podsec check` and `podsec explain` through real subprocess calls, as users and CI run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PODSEC = [sys.executable, "-m", "podsec.cli"]
EXAMPLES = REPO / "examples"


def run(*args: str, stdin: str | None = None, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODSEC_ROOT": str(root or "/nonexistent-podsec-root")}
    return subprocess.run([*PODSEC, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)


def test_check_examples_table_and_exit_code():
    r = run("check", str(EXAMPLES / "security-demo.yaml"))
    assert r.returncode == 1, r.stderr
    assert "PS001" in r.stdout and "container's runAsUser breaks non-root policy" in r.stdout
    assert 'PodSecurity "restricted:latest" DENIED' in r.stdout
    assert "Traceback" not in r.stderr


def test_check_json_contract():
    r = run("check", "-o", "json", str(EXAMPLES / "security-demo.yaml"))
    data = json.loads(r.stdout)
    assert [x["name"] for x in data["results"]] == ["security-demo", "container-security", "web"]
    web = data["results"][2]
    assert set(web) >= {"file", "line", "kind", "namespace", "name", "pss", "findings"}
    assert web["kind"] == "Deployment" and web["line"] == 39
    assert set(web["pss"]) >= {"level", "version", "allowed", "message"}
    assert web["pss"]["message"].startswith('violates PodSecurity "restricted:latest": ')
    ps001 = next(f for f in web["findings"] if f["id"] == "PS001")
    assert ps001["field"] == "spec.template.spec.containers[0].securityContext.runAsUser"
    text = (EXAMPLES / "security-demo.yaml").read_text().splitlines()
    assert text[ps001["line"] - 1].strip() == "runAsUser: 0"
    for f in web["findings"]:
        assert set(f) >= {"id", "severity", "message", "field", "line"}


def test_check_stdin_multi_document_helm_sources():
    text = (
        "---\n# Source: chart/templates/pod.yaml\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"
        "spec:\n  containers:\n  - name: c\n    image: x\n    securityContext:\n      privileged: true\n"
    )
    r = run("check", "-o", "json", "--level", "baseline", "-", stdin=text)
    res = json.loads(r.stdout)["results"][0]
    assert res["file"] == "chart/templates/pod.yaml"
    assert res["pss"]["message"] == (
        'violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)'
    )
    priv = next(f for f in res["findings"] if f["id"] == "PSS:privileged")
    assert priv["line"] == 11


def test_level_version_and_namespace_labels(tmp_path):
    f = tmp_path / "ns.yaml"
    f.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels:\n"
        "    pod-security.kubernetes.io/enforce: baseline\n    pod-security.kubernetes.io/enforce-version: v1.30\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team}\nspec:\n  containers: [{name: c, image: x}]\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: q, namespace: other}\nspec:\n  containers: [{name: c, image: x}]\n"
    )
    res = json.loads(run("check", "-o", "json", str(f)).stdout)["results"]
    assert (res[0]["pss"]["level"], res[0]["pss"]["version"], res[0]["pss"]["allowed"]) == ("baseline", "v1.30", True)
    assert (res[1]["pss"]["level"], res[1]["pss"]["allowed"]) == ("restricted", False)
    res = json.loads(run("check", "-o", "json", "--level", "privileged", str(f)).stdout)["results"]
    assert all(r["pss"]["allowed"] for r in res)
    r = run("check", "--version", "v2.0", str(f))
    assert r.returncode == 2 and 'must be "latest" or "v1.x"' in r.stderr


def test_sarif_is_valid_for_code_scanning():
    r = run("check", "-o", "sarif", str(EXAMPLES / "security-demo.yaml"))
    sarif = json.loads(r.stdout)
    assert sarif["version"] == "2.1.0" and "$schema" in sarif
    run0 = sarif["runs"][0]
    rules = {rule["id"] for rule in run0["tool"]["driver"]["rules"]}
    assert run0["results"]
    for res in run0["results"]:
        assert res["ruleId"] in rules
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"].endswith("examples/security-demo.yaml")
        assert loc["region"]["startLine"] >= 1
        assert res["level"] in ("error", "warning", "note")


def test_junit_and_yaml_outputs():
    r = run("check", "-o", "junit", str(EXAMPLES / "security-demo.yaml"))
    import xml.etree.ElementTree as ET

    root = ET.fromstring(r.stdout)
    assert root.get("tests") == "3" and root.get("failures") == "3"
    import yaml

    data = yaml.safe_load(run("check", "-o", "yaml", str(EXAMPLES / "security-demo.yaml")).stdout)
    assert len(data["results"]) == 3


def test_clean_workload_exits_zero(tmp_path):
    f = tmp_path / "good.yaml"
    f.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: good}\nspec:\n"
        "  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}\n"
        "  containers:\n  - name: c\n    image: x\n    securityContext:\n      allowPrivilegeEscalation: false\n"
        "      capabilities: {drop: [ALL]}\n"
    )
    r = run("check", str(f))
    assert r.returncode == 0, r.stdout + r.stderr


def test_api_validation_errors_are_findings(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - name: c\n"
                 "    image: x\n    securityContext:\n      runAsUser: -1\n")
    res = json.loads(run("check", "-o", "json", str(f)).stdout)["results"][0]
    api = [x for x in res["findings"] if x["id"] == "API"]
    assert api[0]["message"] == (
        "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive"
    )
    assert api[0]["line"] == 9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: Pod\nmetadata: {name: x}\nspec: {containers: [}\n", ":3: document 1: invalid YAML"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  securityContext:\n    runAsUser: \"abc\"\n"
         "  containers: [{name: c, image: i}]\n",
         ':6: document 1 (Pod/x): spec.securityContext.runAsUser: '),
        ("- just\n- a list\n", ":1: document 1: expected a Kubernetes object"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, text, expected):
    f = tmp_path / "in.yaml"
    f.write_text(text)
    for cmd in ("check", "explain"):
        r = run(cmd, str(f))
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"podsec: {f}") and expected in lines[0], lines
        assert "Traceback" not in r.stderr


def test_missing_file_exit_2(tmp_path):
    r = run("check", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and r.stderr.startswith("podsec: ") and "no such file" in r.stderr


def test_explain_words_and_json():
    r = run("explain", str(EXAMPLES / "security-demo.yaml"))
    assert r.returncode == 0
    assert "runs as uid 1000 [pod], gid 3000 [pod], groups 2000,3000 (2000 from pod fsGroup)" in r.stdout
    assert "seccomp: none (Unconfined, the Kubernetes default)" in r.stdout
    assert "writable: /data (emptyDir)" in r.stdout
    assert "WILL NOT START (CreateContainerConfigError): container's runAsUser breaks non-root policy" in r.stdout
    data = json.loads(run("explain", "-o", "json", str(EXAMPLES / "security-demo.yaml")).stdout)
    c = data["pods"][1]["containers"][0]
    assert c["name"] == "app"
    assert c["user"]["uid"] == 2000
    assert c["runAsNonRoot"]["ok"] is True
    assert c["capabilities"] == {"effective": [], "bounding": [], "unknown": []}
    assert c["noNewPrivileges"] is True and c["seccomp"]["type"] == "Unconfined"
    assert c["readOnlyRootFilesystem"] is True and c["writableMounts"] == []
    assert "/proc/kcore" in c["maskedPaths"] and "/proc/sys" in c["readonlyPaths"]
    web = data["pods"][2]["containers"][0]
    assert web["capabilities"]["unknown"] == ["CAP_CAP_NET_ADMIN"]
    assert web["capabilities"]["bounding"] == sorted(web["capabilities"]["bounding"])


def test_kubectl_plugin_name_is_installed():
    exe = Path(sys.executable).parent / "kubectl-podsec"
    assert exe.exists()
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "podsec" in r.stdout


def test_explain_reads_puid_from_a_configmap_in_the_same_input(tmp_path: Path) -> None:
    """envFrom a ConfigMap given in the same file: explain knows the values; one not given stays unknown."""
    cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ids}\ndata: {PUID: "1001", PGID: "1002"}\n---\n'
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: sonarr}\nspec:\n  containers:\n  - name: sonarr\n"
           "    image: lscr.io/linuxserver/sonarr:latest\n    envFrom: [{configMapRef: {name: ids}}]\n")
    (tmp_path / "with.yaml").write_text(cm + pod)
    (tmp_path / "without.yaml").write_text(pod)
    known = json.loads(run("explain", "-o", "json", str(tmp_path / "with.yaml")).stdout)
    [c] = known["pods"][0]["containers"]
    assert c["puid"]["app"]["uid"] == 1001 and c["puid"]["app"]["gid"] == 1002
    assert c["puid"]["PUID"] == {"value": "1001", "source": "envFrom configMapRef ids"}
    unknown = json.loads(run("explain", "-o", "json", str(tmp_path / "without.yaml")).stdout)
    [c] = unknown["pods"][0]["containers"]
    assert c["puid"]["PUID"]["value"] is None and c["puid"]["app"]["uid"] is None


def test_no_workload_is_said_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    for command in ("check", "explain"):
        r = run(command, str(path))
        assert r.returncode == 0 and r.stdout == "", r.stdout
        assert r.stderr.startswith("podsec: note: no workload (Pod, Deployment"), r.stderr
