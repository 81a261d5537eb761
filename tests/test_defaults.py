"""API defaulting before validation: source-less volumes are emptyDirs, StatefulSet claims are volumes."""

from __future__ import annotations

from pathlib import Path

from podsec.api.defaults import default_volumes, pod_spec_as_created
from podsec.check import analyze
from podsec.manifest.loader import load

STS = """apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  selector: {matchLabels: {app: db}}
  serviceName: db
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: postgres
        volumeMounts:
        - {name: data, mountPath: /var/lib/postgresql/data}
        - {name: scratch, mountPath: /scratch}
      volumes:
      - name: scratch
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""


def _api(tmp_path: Path, text: str) -> list[str]:
    f = tmp_path / "x.yaml"
    f.write_text(text)
    (report,) = analyze(load([str(f)])).reports
    return [x.message for x in report.findings if x.id == "API"]


def test_statefulset_mounting_its_claim_and_a_name_only_volume_is_valid(tmp_path: Path) -> None:
    assert _api(tmp_path, STS) == []


def test_a_mount_of_a_volume_that_is_nowhere_is_still_not_found(tmp_path: Path) -> None:
    text = STS.replace("- {name: scratch, mountPath: /scratch}", "- {name: cache, mountPath: /cache}")
    assert _api(tmp_path, text) == [
        'spec.template.spec.containers[0].volumeMounts[1].name: Not found: "cache"']


def test_replication_controller_with_a_name_only_volume(tmp_path: Path) -> None:
    rc = """apiVersion: v1
kind: ReplicationController
metadata: {name: rc}
spec:
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
      - {name: c, image: i, volumeMounts: [{name: data, mountPath: /data}]}
      volumes: [{name: data}]
"""
    assert _api(tmp_path, rc) == []


def test_claims_replace_a_template_volume_of_the_same_name_and_keep_indices() -> None:
    obj = {"kind": "StatefulSet", "metadata": {"name": "web"},
           "spec": {"volumeClaimTemplates": [{"metadata": {"name": "www"}}]}}
    spec = {"volumes": [{"name": "www", "hostPath": {"path": "/x"}}, {"name": "tmp"}]}
    out = pod_spec_as_created("StatefulSet", obj, spec)
    assert out["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}},
                              {"name": "tmp", "emptyDir": {}}]
    assert spec["volumes"][1] == {"name": "tmp"}  # the input is left alone


def test_a_null_source_is_no_source() -> None:
    assert default_volumes({"volumes": [{"name": "a", "emptyDir": None}]})["volumes"] == [
        {"name": "a", "emptyDir": {}}]
    spec = {"volumes": [{"name": "a", "secret": {"secretName": "s"}}]}
    assert default_volumes(spec) is spec
