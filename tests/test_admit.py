"""The one admission step (podsec.admit): decode, gated fields, API validation with object metadata, defaults —
and every command agreeing on it (explain refuses exactly what check reports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from podsec.admit import AdmitOptions, admit
from podsec.errors import InputError
from podsec.features import parse_feature_gates
from podsec.manifest.loader import K8sObject, add_object, parse_documents

PODSEC = [sys.executable, "-m", "podsec.cli"]


def objects(text: str) -> list[K8sObject]:
    out: list[K8sObject] = []
    for src, obj in parse_documents("m.yaml", textwrap.dedent(text)):
        add_object(out, obj, src)
    return out


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODSEC_ROOT": "/nonexistent-podsec-root"}
    return subprocess.run([*PODSEC, *args], capture_output=True, text=True, env=env, timeout=120)


INVALID = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: Web_App
spec:
  template:
    spec:
      containers:
      - name: app
        image: busybox
        securityContext:
          runAsUser: -1
          capabilities:
            add: ["NET_ADMIN"]
---
apiVersion: v1
kind: Pod
metadata:
  name: fine
spec:
  containers:
  - name: app
    image: busybox
"""


def test_errors_are_returned_object_metadata_first_with_paths_of_the_document() -> None:
    deploy, pod = admit(objects(INVALID)).pods
    assert pod.errors == []
    msgs = deploy.messages()
    assert msgs[0].startswith('metadata.name: Invalid value: "Web_App": a lowercase RFC 1123 subdomain')
    assert msgs[1] == ("spec.template.spec.containers[0].securityContext.runAsUser: Invalid value: -1: "
                       "must be between 0 and 2147483647, inclusive")
    assert deploy.error_path(1) == ("spec", "template", "spec", "containers", 0, "securityContext", "runAsUser")
    assert pod.metadata == {"name": "fine", "namespace": "default"}  # defaulted


def test_a_wrong_type_cannot_be_decoded_and_is_raised_located() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext:\n    runAsUser: abc\n" \
           "  containers: [{name: c, image: x}]\n"
    with pytest.raises(InputError) as exc:
        admit(objects(text))
    assert exc.value.render() == ('m.yaml:6: document 1 (Pod/p): spec.securityContext.runAsUser: '
                                  'Invalid value: "abc": expected integer, got string')


def test_gated_fields_dropped_when_off_and_validated_when_on() -> None:
    text = """\
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      securityContext: {fsUser: -5}
      containers: [{name: c, image: x}]
    """
    off = admit(objects(text)).pods[0]
    assert "fsUser" not in off.spec["securityContext"] and [f.name for f in off.dropped] == ["fsUser"]
    assert off.errors == []
    assert off.workload.spec["securityContext"]["fsUser"] == -5  # the manifest itself is untouched
    on = admit(objects(text), AdmitOptions(feature_gates=parse_feature_gates(["PodSecurityContextFSUser=true"])))
    pod = on.pods[0]
    assert pod.dropped == [] and pod.spec["securityContext"]["fsUser"] == -5
    assert [m.split(":")[0] for m in pod.messages()] == ["spec.securityContext.fsUser"]


def test_create_mode_validates_the_pod_a_workload_becomes() -> None:
    deploy = admit(objects(INVALID), AdmitOptions(create=True, namespace="team")).pods[0]
    err = deploy.invalid(located=False)
    assert err is not None
    # the Pod its ReplicaSet would create: Web_App-<pod-template-hash>-<5 characters>
    assert err.message.startswith(f'The Pod "{deploy.name}" is invalid: \n* metadata.name: Invalid value: '
                                  f'"{deploy.name}"')
    assert deploy.name.startswith("Web_App-")
    assert "* spec.containers[0].securityContext.runAsUser: Invalid value: -1" in err.message
    assert deploy.metadata["namespace"] == "team"


def test_namespace_flag_must_match_the_objects() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\nspec:\n  containers: [{name: c, image: x}]\n"
    with pytest.raises(InputError, match="does not match the namespace \"b\""):
        admit(objects(text), AdmitOptions(namespace="b", create=True))


def test_explain_fails_exactly_as_check_reports(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(INVALID)
    check = run("check", "-o", "json", str(f))
    api = [x["message"] for r in json.loads(check.stdout)["results"] for x in r["findings"] if x["id"] == "API"]
    assert len(api) == 2, check.stdout
    explain = run("explain", str(f))
    assert explain.returncode == 2 and explain.stdout == ""
    assert explain.stderr == (f'podsec: {f}:1: Deployment/Web_App: The Deployment "Web_App" is invalid: \n'
                              + "".join(f"* {m}\n" for m in api))


def test_explain_of_a_valid_manifest_still_explains(tmp_path: Path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text(INVALID.split("---\n")[1])
    r = run("explain", str(f))
    assert r.returncode == 0 and "container 'app' (busybox)" in r.stdout


PUID_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: media
spec:
  containers:
  - name: app
    image: example.org/media:1
    env:
    - {name: PUID, value: "1000"}
    - {name: PGID, value: "1000"}
    securityContext:
      runAsUser: 1000
"""


def test_check_and_explain_reach_the_same_puid_verdict(tmp_path: Path) -> None:
    """One PUID/PGID decision (podsec.puid.verdicts, fed the same inputs): the image is not in the store, so both
    assume its ENTRYPOINT is /init, and both say runAsUser breaks it."""
    f = tmp_path / "media.yaml"
    f.write_text(PUID_POD)
    check = json.loads(run("check", "-o", "json", str(f)).stdout)
    [ps008] = [x for x in check["results"][0]["findings"] if x["id"] == "PS008"]
    explain = json.loads(run("explain", "-o", "json", str(f)).stdout)
    puid = explain["pods"][0]["containers"][0]["puid"]
    assert puid["warnings"] == ["the image is not in the local store: assuming its ENTRYPOINT is /init"]
    first = puid["conflicts"][0]
    assert (first["field"], f"{first['setting']}: {first['breaks']}") == (ps008["field"], ps008["why"])


def test_every_command_refuses_an_invalid_pod_with_the_errors_check_reports(tmp_path: Path) -> None:
    """One admission step: run, apply, trace and explain refuse (exit 2, before any container or image is
    touched) with exactly the API errors check reports as findings."""
    f = tmp_path / "pod.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: app\n"
                 "    image: nope:1\n    securityContext:\n      runAsUser: -1\n      runAsGroup: 4294967296\n")
    check = json.loads(run("check", "-o", "json", str(f)).stdout)
    api = [x["message"] for x in check["results"][0]["findings"] if x["id"] == "API"]
    assert len(api) == 2, api
    state = tmp_path / "state"
    for args in (["explain", str(f)], ["run", "--rm", "-f", str(f)], ["apply", "-f", str(f)],
                 ["trace", "-f", str(f)]):
        r = run("--state", str(state), *args)
        assert r.returncode == 2, (args, r.stderr)
        assert all(m in r.stderr for m in api), (args, r.stderr)
        assert 'The Pod "bad" is invalid: ' in r.stderr, (args, r.stderr)
    assert not state.exists() or not any(state.rglob("*")), "nothing may be created for an invalid pod"
