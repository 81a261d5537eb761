"""Strict decoding: unknown fields found from the official schemas and worded as the API server words them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from podsec.api.strict import kubectl_error, parse_mode, schema, unknown_fields
from podsec.check import analyze
from podsec.manifest.loader import load

TYPO = """apiVersion: v1
kind: Pod
metadata:
  name: typo
spec:
  securityContex:
    fsgroup: 2000
  containers:
  - name: app
    image: busybox
    securityContext:
      runAsUsr: 1000
"""
PODSEC = [sys.executable, "-m", "podsec.cli"]


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*PODSEC, "--root", str(tmp_path / "root"), "--state", str(tmp_path / "state"), *args],
                          capture_output=True, text=True, cwd=tmp_path)


def test_the_table_is_generated_from_the_installed_kubernetes_validate_schemas() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import gen_fields

    committed = json.loads(gen_fields.OUT.read_text())
    assert committed == gen_fields.build(gen_fields.schema_root())


def test_the_servers_sentence_in_the_decoders_order(tmp_path: Path) -> None:
    import yaml

    obj = yaml.safe_load(TYPO)
    unknown = unknown_fields(obj)
    assert kubectl_error(obj, unknown, "pod.yaml") == (
        'Error from server (BadRequest): error when creating "pod.yaml": Pod in version "v1" cannot be handled as '
        'a Pod: strict decoding error: unknown field "spec.containers[0].securityContext.runAsUsr", '
        'unknown field "spec.securityContex"')
    assert [u.hint() for u in unknown] == ['did you mean "runAsUser"?', 'did you mean "securityContext"?']


def test_case_matters_and_a_lower_case_name_is_suggested_back() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "lables": {}},
           "spec": {"template": {"spec": {"securityContext": {"fsgroup": 1}, "containers": []}}}}
    unknown = unknown_fields(obj)
    assert [u.field for u in unknown] == ["metadata.lables", "spec.template.spec.securityContext.fsgroup"]
    assert unknown[1].hint() == 'did you mean "fsGroup"?'


def test_maps_and_opaque_values_are_not_looked_into() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"anything": "x"},
                                                          "annotations": {"a/b": "c"}},
           "spec": {"nodeSelector": {"k": "v"}, "containers": [{"name": "c", "image": "i",
                                                                "resources": {"limits": {"cpu": "1"}}}]}}
    assert unknown_fields(obj) == []
    assert unknown_fields({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": 1}}) is None


def test_the_selected_kubernetes_version_decides_which_fields_exist() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i",
                                    "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}}}]}}
    assert unknown_fields(obj, "v1.37") == []
    (u,) = unknown_fields(obj, "v1.29")  # appArmorProfile came in 1.30
    assert u.field == "spec.containers[0].securityContext.appArmorProfile"
    assert schema("v1.3").version == schema("v1.25").version  # older than the schemas: the oldest


def test_validate_is_spelled_as_kubectl_spells_it() -> None:
    assert [parse_mode(v) for v in ("strict", "true", "warn", "ignore", "false")] == \
        ["strict", "strict", "warn", "ignore", "ignore"]
    with pytest.raises(ValueError, match='invalid - validate option "yes"'):
        parse_mode("yes")


def test_check_reports_each_unknown_field_at_its_line(tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(TYPO)
    (report,) = analyze(load([str(f)])).reports
    api = [x for x in report.findings if x.id == "API"]
    assert [(x.severity, x.line, x.message) for x in api] == [
        ("critical", 12, 'strict decoding error: unknown field "spec.containers[0].securityContext.runAsUsr"'),
        ("critical", 6, 'strict decoding error: unknown field "spec.securityContex"'),
    ]
    assert api[0].why.startswith('did you mean "runAsUser"?')


def test_check_warn_prints_kubectls_warning_and_ignore_is_silent(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(TYPO)
    warn = _run(["check", "--validate=warn", "-o", "json", "pod.yaml"], tmp_path)
    assert 'Warning: unknown field "spec.securityContex" (pod.yaml:6 Pod/typo)' in warn.stderr
    assert not [x for x in json.loads(warn.stdout)["results"][0]["findings"] if x["id"] == "API"]
    ignore = _run(["check", "--validate=ignore", "pod.yaml"], tmp_path)
    assert "unknown field" not in ignore.stderr + ignore.stdout


def test_run_and_apply_refuse_with_the_servers_line(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(TYPO)
    for cmd in (["run", "--rm", "-f", "pod.yaml"], ["apply", "-f", "pod.yaml"]):
        r = _run(cmd, tmp_path)
        assert r.returncode == 2, r.stderr
        assert r.stderr == (
            'podsec: Error from server (BadRequest): error when creating "pod.yaml": Pod in version "v1" cannot be '
            'handled as a Pod: strict decoding error: unknown field "spec.containers[0].securityContext.runAsUsr", '
            'unknown field "spec.securityContex"\n')
    warn = _run(["run", "--validate=warn", "--rm", "-f", "pod.yaml"], tmp_path)
    assert warn.stderr.startswith('Warning: unknown field "spec.containers[0].securityContext.runAsUsr"\n'
                                  'Warning: unknown field "spec.securityContex"\n')
    assert "not in the local store" in warn.stderr  # it went on, without the fields


def test_fix_leaves_a_document_with_unknown_fields_alone_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(TYPO)
    r = _run(["fix", "--no-images", "pod.yaml"], tmp_path)
    assert r.returncode == 1
    assert r.stdout == TYPO
    assert ('pod.yaml:6: Pod/typo: needs a human: spec.securityContex: strict decoding error: unknown field '
            '"spec.securityContex" (did you mean "securityContext"?): the document is left unchanged') in r.stderr


def test_fields_behind_podsecs_feature_gates_are_left_to_ps011(tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(TYPO.replace("  securityContex:\n    fsgroup: 2000\n", "  securityContext:\n    fsUser: 1000\n")
                 .replace("runAsUsr", "runAsUser"))
    (report,) = analyze(load([str(f)])).reports
    ids = [x.id for x in report.findings]
    assert "API" not in ids and "PS011" in ids
