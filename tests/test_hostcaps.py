"""Capabilities that act on the node (not namespaced) are named by explain and check (PS013)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from podsec.check import analyze
from podsec.manifest.loader import load
from podsec.oci.hostcaps import HOST_EFFECTS, host_effects

POD = """apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
{pod}  containers:
  - name: c
    image: busybox
    securityContext:
{sc}
"""


def _findings(tmp_path: Path, sc: str, pod: str = "") -> list:
    f = tmp_path / "p.yaml"
    f.write_text(POD.format(sc=sc, pod=pod))
    (report,) = analyze(load([str(f)])).reports
    return [x for x in report.findings if x.id == "PS013"]


def test_every_capability_in_the_table_is_a_kernel_capability() -> None:
    from podsec.oci.caps import CAPABILITY_NUMBERS

    assert {e.cap for e in HOST_EFFECTS} <= set(CAPABILITY_NUMBERS)


def test_sys_time_as_root_is_a_finding_at_the_capabilities_line(tmp_path: Path) -> None:
    (f,) = _findings(tmp_path, "      runAsUser: 0\n      capabilities: {add: [SYS_TIME]}")
    assert f.severity == "high"
    assert "SYS_TIME sets the host's clock" in f.message
    assert f.field == "spec.containers[0].securityContext.capabilities.add"
    assert f.line == 10


def test_user_namespace_keeps_capabilities_inside_the_pod(tmp_path: Path) -> None:
    sc = "      runAsUser: 0\n      capabilities: {add: [SYS_TIME, SYS_MODULE]}"
    assert _findings(tmp_path, sc, "  hostUsers: false\n") == []


def test_non_root_has_no_effective_capabilities(tmp_path: Path) -> None:
    assert _findings(tmp_path, "      runAsUser: 1000\n      capabilities: {add: [SYS_TIME]}") == []


def test_image_user_unknown_is_a_conditional_medium(tmp_path: Path) -> None:
    (f,) = _findings(tmp_path, "      capabilities: {add: [SYS_MODULE]}")
    assert f.severity == "medium"
    assert "if the image's user is root" in f.message and "kernel modules" in f.message


def test_net_admin_reaches_the_host_only_with_host_network() -> None:
    assert host_effects(["CAP_NET_ADMIN"]) == []
    (e,) = host_effects(["CAP_NET_ADMIN"], host_network=True)
    assert e.sentence().startswith("NET_ADMIN (with hostNetwork: true) changes the host's network")
    boot = [e.effect for e in host_effects(["CAP_SYS_BOOT"], host_pid=True)]
    assert any("reboots" in b for b in boot) and any("kexec" in b for b in boot)


def test_explain_names_the_effect_in_text_and_json(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(POD.format(sc="      runAsUser: 0\n      capabilities: {add: [SYS_TIME]}", pod=""))
    exe = [sys.executable, "-m", "podsec.cli", "explain", "--no-images", str(f)]
    text = subprocess.run(exe, capture_output=True, text=True, check=True).stdout
    assert "changes the node: SYS_TIME sets the host's clock" in text
    js = json.loads(subprocess.run([*exe, "-o", "json"], capture_output=True, text=True, check=True).stdout)
    (effect,) = js["pods"][0]["containers"][0]["hostEffects"]
    assert effect["capability"] == "SYS_TIME" and effect["ifImageUserIsRoot"] is False
