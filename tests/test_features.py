"""Feature gates: the registry, ``--feature-gates`` parsed like the Kubernetes flag, the API server's
treatment of gated fields (dropped when off, validated when on), and what check/explain/run say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from podsec.api.types import check_types
from podsec.api.validation import ValidationOptions, validate_pod
from podsec.features import (
    ATOMIC_WRITE_VOLUME_USER_FIELDS,
    GATES,
    POD_SECURITY_CONTEXT_FS_USER,
    FeatureGateError,
    FeatureGates,
    disabled_fields,
    drop_disabled_fields,
    gated_fields,
    parse_bool,
    parse_feature_gates,
)

PODSEC = [sys.executable, "-m", "podsec.cli"]
BOTH = frozenset({ATOMIC_WRITE_VOLUME_USER_FIELDS, POD_SECURITY_CONTEXT_FS_USER})


# -- the registry ----------------------------------------------------------------------------------


def test_registry_names_stages_and_who_named_them() -> None:
    kep5936 = GATES[ATOMIC_WRITE_VOLUME_USER_FIELDS]
    assert (kep5936.stage, kep5936.default, kep5936.upstream, kep5936.since, kep5936.kep) == (
        "Alpha", False, True, "1.37", "KEP-5936"
    )
    assert "spec.volumes[*].secret.items[*].user" in kep5936.fields
    fs = GATES[POD_SECURITY_CONTEXT_FS_USER]
    assert (fs.stage, fs.default, fs.upstream, fs.since, fs.fields) == (
        "Alpha", False, False, None, ("spec.securityContext.fsUser",)
    )


# -- parsing (component-base featureGate.Set) ------------------------------------------------------


def test_parse_like_the_kubernetes_flag() -> None:
    g = parse_feature_gates([" AtomicWriteVolumeUserFields = true ,, PodSecurityContextFSUser=T"])
    assert g.enabled(ATOMIC_WRITE_VOLUME_USER_FIELDS) and g.enabled(POD_SECURITY_CONTEXT_FS_USER)
    assert str(g) == "AtomicWriteVolumeUserFields=true,PodSecurityContextFSUser=true"
    assert parse_feature_gates([]).enabled_names == frozenset()
    assert str(parse_feature_gates([])) == "AtomicWriteVolumeUserFields=false,PodSecurityContextFSUser=false"


def test_repeated_flags_later_wins() -> None:
    g = parse_feature_gates(["AtomicWriteVolumeUserFields=true", "AtomicWriteVolumeUserFields=0"])
    assert not g.enabled(ATOMIC_WRITE_VOLUME_USER_FIELDS)


def test_all_alpha_sets_gates_not_named_explicitly() -> None:
    g = parse_feature_gates(["PodSecurityContextFSUser=false,AllAlpha=true"])
    assert g.enabled_names == {ATOMIC_WRITE_VOLUME_USER_FIELDS}
    assert parse_feature_gates(["AllBeta=true"]).enabled_names == frozenset()  # both gates are alpha


@pytest.mark.parametrize("word", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_parse_bool_true(word: str) -> None:
    assert parse_bool(word) is True


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("AtomicWriteVolumeUserFields", "missing bool value for AtomicWriteVolumeUserFields"),
        ("AtomicWriteVolumeUserFields=yes",
         'invalid value of AtomicWriteVolumeUserFields=yes, err: strconv.ParseBool: parsing "yes": invalid syntax'),
        ("SELinuxMount=true", "unrecognized feature gate: SELinuxMount"),
        # every value is parsed before any name is looked up
        ("Bogus=true,AtomicWriteVolumeUserFields=on",
         'invalid value of AtomicWriteVolumeUserFields=on, err: strconv.ParseBool: parsing "on": invalid syntax'),
    ],
)
def test_parse_errors_in_upstreams_words(value: str, message: str) -> None:
    with pytest.raises(FeatureGateError) as e:
        parse_feature_gates([value])
    assert e.value.message.startswith(message)


def test_unknown_gate_lists_the_known_ones() -> None:
    with pytest.raises(FeatureGateError, match=r"\(podsec knows AtomicWriteVolumeUserFields, "
                                               r"PodSecurityContextFSUser, AllAlpha and AllBeta\)"):
        parse_feature_gates(["FSUser=true"])


# -- gated fields in a spec ------------------------------------------------------------------------


SPEC: dict[str, Any] = {
    "securityContext": {"fsUser": 1000, "runAsUser": 1000},
    "containers": [{"name": "a", "image": "i"}],
    "volumes": [
        {"name": "s", "secret": {"secretName": "x", "defaultUser": 1000,
                                 "items": [{"key": "k", "path": "k"}, {"key": "p", "path": "p", "user": 1001}]}},
        {"name": "d", "emptyDir": {}},
        {"name": "p", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "user": 1002}},
            {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}, "user": None}]}},
        ]}},
    ],
}


def test_gated_fields_in_document_order() -> None:
    found = [(f.gate, f.path, f.value) for f in gated_fields(SPEC)]
    assert found == [
        (POD_SECURITY_CONTEXT_FS_USER, ("spec", "securityContext", "fsUser"), 1000),
        (ATOMIC_WRITE_VOLUME_USER_FIELDS, ("spec", "volumes", 0, "secret", "defaultUser"), 1000),
        (ATOMIC_WRITE_VOLUME_USER_FIELDS, ("spec", "volumes", 0, "secret", "items", 1, "user"), 1001),
        (ATOMIC_WRITE_VOLUME_USER_FIELDS, ("spec", "volumes", 2, "projected", "sources", 0, "serviceAccountToken",
                                           "user"), 1002),
    ]  # a YAML null is no value: the API server decodes it as an absent pointer


def test_drop_disabled_fields_is_pure_and_keeps_enabled_ones() -> None:
    before = json.dumps(SPEC, sort_keys=True)
    gates = FeatureGates({POD_SECURITY_CONTEXT_FS_USER: True})
    out = drop_disabled_fields(SPEC, gates)
    assert json.dumps(SPEC, sort_keys=True) == before
    assert out["securityContext"] == {"fsUser": 1000, "runAsUser": 1000}
    assert "defaultUser" not in out["volumes"][0]["secret"]
    assert out["volumes"][0]["secret"]["items"][1] == {"key": "p", "path": "p"}
    assert out["volumes"][1] is SPEC["volumes"][1]  # untouched parts are shared, not copied
    assert gated_fields(out) == gated_fields(SPEC)[:1]
    assert disabled_fields(out, gates) == []
    assert drop_disabled_fields(SPEC, FeatureGates.from_names(BOTH)) == SPEC


# -- API validation --------------------------------------------------------------------------------


def errors(spec: dict[str, Any], gates: frozenset[str] = frozenset(), pod: bool = True) -> list[str]:
    opts = ValidationOptions(feature_gates=gates, resource_is_pod=pod)
    return [e.render() for e in validate_pod({"name": "x"}, spec, opts)]


BAD: dict[str, Any] = {
    "securityContext": {"fsUser": -1, "fsGroup": 2147483648},
    "containers": [{"name": "a", "image": "i"}],
    "volumes": [
        {"name": "s", "secret": {"secretName": "x", "defaultUser": -2, "items": [{"key": "k", "path": "k", "user": -3}]}},
        {"name": "c", "configMap": {"name": "x", "defaultUser": 2147483648}},
        {"name": "d", "downwardAPI": {"defaultUser": 0, "items": [
            {"path": "n", "fieldRef": {"fieldPath": "metadata.name"}, "user": -4}]}},
        {"name": "p", "projected": {"defaultUser": -5, "sources": [
            {"secret": {"name": "x", "items": [{"key": "a", "path": "b", "user": -6}]}},
            {"serviceAccountToken": {"path": "t", "user": -7}},
        ]}},
    ],
}
RANGE = "must be between 0 and 2147483647, inclusive"


def test_gated_fields_are_validated_like_run_as_user_when_on() -> None:
    assert errors(BAD, BOTH) == [
        f"spec.volumes[0].secret.defaultUser: Invalid value: -2: {RANGE}",
        f"spec.volumes[0].secret.items[0].user: Invalid value: -3: {RANGE}",
        f"spec.volumes[1].configMap.defaultUser: Invalid value: 2147483648: {RANGE}",
        f"spec.volumes[2].downwardAPI.user: Invalid value: -4: {RANGE}",  # unindexed, like its mode
        f"spec.volumes[3].projected.defaultUser: Invalid value: -5: {RANGE}",
        f"spec.volumes[3].projected.sources[0].secret.items[0].user: Invalid value: -6: {RANGE}",
        f"spec.volumes[3].projected.sources[1].serviceAccountToken.user: Invalid value: -7: {RANGE}",
        f"spec.securityContext.fsUser: Invalid value: -1: {RANGE}",
        f"spec.securityContext.fsGroup: Invalid value: 2147483648: {RANGE}",
    ]


def test_gated_fields_are_dropped_not_validated_when_off() -> None:
    assert errors(BAD) == [f"spec.securityContext.fsGroup: Invalid value: 2147483648: {RANGE}"]


def test_zero_is_a_valid_owner() -> None:
    ok = {"securityContext": {"fsUser": 0}, "containers": [{"name": "a", "image": "i"}],
          "volumes": [{"name": "s", "secret": {"secretName": "x", "defaultUser": 0}}]}
    assert errors(ok, BOTH) == []


def test_types_default_user_decodes_always_fs_user_only_with_its_gate() -> None:
    spec = {"securityContext": {"fsUser": "1000"},
            "volumes": [{"name": "s", "secret": {"secretName": "x", "defaultUser": "1000"}}]}
    assert [e.render() for e in check_types({}, spec)] == [
        'spec.volumes[0].secret.defaultUser: Invalid value: "1000": expected integer, got string'
    ]
    assert len(check_types({}, spec, fs_user=True)) == 2


# -- the CLI: check, explain, run's option ---------------------------------------------------------


POD = textwrap.dedent(
    """\
    apiVersion: v1
    kind: Secret
    metadata: {name: creds}
    stringData: {pgpass: "db:5432:app:app:pw"}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          securityContext: {runAsUser: 1000, runAsNonRoot: true, fsUser: 1000, fsGroup: 2000,
                            seccompProfile: {type: RuntimeDefault}}
          containers:
          - name: app
            image: busybox
            securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
            volumeMounts: [{name: creds, mountPath: /creds}, {name: tmp, mountPath: /tmp}]
          volumes:
          - name: creds
            secret: {secretName: creds, defaultMode: 0600, defaultUser: 1000,
                     items: [{key: pgpass, path: .pgpass, user: 1001}]}
          - name: tmp
            emptyDir: {}
    """
)


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "web.yaml"
    path.write_text(POD)
    env = {**os.environ, "PODSEC_ROOT": "/nonexistent-podsec-root"}
    return subprocess.run([*PODSEC, *args, str(path)], capture_output=True, text=True, env=env, timeout=60)


def test_check_reports_each_field_a_stock_cluster_ignores(tmp_path: Path) -> None:
    r = cli(tmp_path, "check", "-o", "json")
    assert r.returncode == 1, r.stderr  # fsUser: kubectl apply fails under --validate=strict (high)
    found = [f for f in json.loads(r.stdout)["results"][0]["findings"] if f["id"] == "PS011"]
    assert [(f["severity"], f["field"]) for f in found] == [
        ("high", "spec.template.spec.securityContext.fsUser"),
        ("medium", "spec.template.spec.volumes[0].secret.defaultUser"),
        ("medium", "spec.template.spec.volumes[0].secret.items[0].user"),
    ]
    fs, default_user, user = found
    assert fs["message"].startswith("fsUser is not a Kubernetes field (KEP-5280 was never merged): an API server "
                                    "rejects the object under kubectl's default --validate=strict (strict decoding "
                                    "error: unknown field)")
    assert "PodSecurityContextFSUser=true" in fs["fix"] and "defaultUser" in fs["fix"]
    assert default_user["message"].startswith('defaultUser 1000 of volume "creds" is alpha in Kubernetes 1.37 behind '
                                              "feature gate AtomicWriteVolumeUserFields, off on a stock cluster: the "
                                              "API server drops it when the Pod is created")
    assert user["message"].startswith('user 1001 of volume "creds"')
    assert "root" in fs["why"] and "StrictModes" in fs["why"]


def test_check_with_the_gates_has_no_such_finding(tmp_path: Path) -> None:
    r = cli(tmp_path, "check", "-o", "json", "--feature-gates", "AllAlpha=true")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not [f for f in json.loads(r.stdout)["results"][0]["findings"] if f["id"] == "PS011"]
    r = cli(tmp_path, "check", "-o", "json", "--feature-gates", "PodSecurityContextFSUser=true")
    assert r.returncode == 0  # only the medium defaultUser/user findings remain
    assert {f["severity"] for f in json.loads(r.stdout)["results"][0]["findings"] if f["id"] == "PS011"} == {"medium"}


def test_check_with_the_gate_validates_the_fields(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(POD.replace("fsUser: 1000", "fsUser: -1"))
    env = {**os.environ, "PODSEC_ROOT": "/nonexistent-podsec-root"}
    r = subprocess.run([*PODSEC, "check", "--feature-gates", "PodSecurityContextFSUser=true", "-o", "json",
                        str(tmp_path / "bad.yaml")], capture_output=True, text=True, env=env, timeout=60)
    api = [f for f in json.loads(r.stdout)["results"][0]["findings"] if f["id"] == "API"]
    assert [f["message"] for f in api] == [
        f"spec.template.spec.securityContext.fsUser: Invalid value: -1: {RANGE}"
    ]


@pytest.mark.parametrize("command", ["check", "explain", "run", "apply"])
def test_a_bad_gate_is_a_usage_error(tmp_path: Path, command: str) -> None:
    args = [command, "--feature-gates", "FSUser=true"] + (["-f"] if command in ("run", "apply") else [])
    r = cli(tmp_path, *args)
    assert r.returncode == 2
    assert "Invalid value for '--feature-gates': unrecognized feature gate: FSUser" in r.stderr
    assert "Traceback" not in r.stderr


def test_explain_shows_who_owns_the_files(tmp_path: Path) -> None:
    plain = cli(tmp_path, "explain").stdout
    assert ('volume "creds" (secret): files owned by root; defaultUser/user ignored (gate AtomicWriteVolumeUserFields '
            "off, as on a stock cluster); fsUser ignored (gate PodSecurityContextFSUser off)") in plain
    assert 'volume "tmp" (emptyDir): fsUser ignored (gate PodSecurityContextFSUser off): directory owned by root' in plain
    on = cli(tmp_path, "explain", "--feature-gates", "AllAlpha=true").stdout
    assert ('    - volume "creds" (secret): files owned by uid 1000 [defaultUser]; items .pgpass: uid 1001 [user]; '
            "group 2000 [fsGroup], read-only mask: mode 0600 becomes 0640; directories and links owned by uid 1000 "
            "[fsUser]") in on
    assert ('    - volume "tmp" (emptyDir): directory owned by uid 1000 [fsUser], group 2000 [fsGroup], mode 02777; '
            "files the containers create belong to their own uid") in on
    doc = json.loads(cli(tmp_path, "explain", "-o", "json", "--feature-gates", "AllAlpha=true").stdout)
    assert doc["pods"][0]["volumeOwnership"][1].startswith('volume "tmp" (emptyDir): directory owned by uid 1000')


def test_explain_without_owner_fields_or_gates_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: b}]\n"
                    "  volumes: [{name: v, emptyDir: {}}]\n")
    env = {**os.environ, "PODSEC_ROOT": "/nonexistent-podsec-root"}
    r = subprocess.run([*PODSEC, "explain", str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert "volume files" not in r.stdout and r.stdout.startswith("Pod/p (namespace default)")


def test_explain_says_who_cannot_read_the_files() -> None:
    """examples/creds.yaml: without the gate its 0600 Secret files are root's and uid 1000 cannot read them."""
    example = Path(__file__).resolve().parents[1] / "examples" / "creds.yaml"
    env = {**os.environ, "PODSEC_ROOT": "/nonexistent-podsec-root"}
    off = subprocess.run([*PODSEC, "explain", str(example)], capture_output=True, text=True, env=env, timeout=60)
    assert 'container "app" (uid 1000) cannot read them: owner 0:0, mode 0600' in off.stdout, off.stdout
    on = subprocess.run([*PODSEC, "explain", "--feature-gates", "PodSecurityContextFSUser=true", str(example)],
                        capture_output=True, text=True, env=env, timeout=60)
    assert "files owned by uid 1000 [fsUser]" in on.stdout and "cannot read" not in on.stdout
