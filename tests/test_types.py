"""Wrong-type detection: what the API server could not even decode is reported with a clear path."""

from __future__ import annotations

import io

import pytest
import yaml

from podsec.api.fielderror import Key
from podsec.api.types import check_types
from podsec.api.validation import validate_pod


def rendered(metadata: object, spec: object) -> list[str]:
    return [e.render() for e in check_types(metadata, spec)]


POD_YAML = """
metadata:
  name: web
  namespace: default
  labels: {app: web, "1": one}
  annotations: {note: "x"}
spec:
  hostNetwork: false
  hostPID: false
  hostIPC: false
  hostUsers: true
  shareProcessNamespace: false
  terminationGracePeriodSeconds: 30
  restartPolicy: Always
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    runAsNonRoot: true
    fsGroup: 2000
    fsGroupChangePolicy: OnRootMismatch
    supplementalGroups: [4000, 5000]
    supplementalGroupsPolicy: Merge
    seLinuxOptions: {level: "s0:c1,c2"}
    seccompProfile: {type: RuntimeDefault}
    appArmorProfile: {type: RuntimeDefault}
    sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "0"}]
  volumes:
  - name: data
    emptyDir: {medium: Memory, sizeLimit: 64Mi}
  - name: big
    emptyDir: {sizeLimit: 1073741824}
  - name: cfg
    configMap: {name: cfg, defaultMode: 0644, optional: true, items: [{key: k, path: k, mode: 0400}]}
  - name: tok
    projected:
      defaultMode: 0440
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3600, audience: api}
  - name: host
    hostPath: {path: /var/log, type: Directory}
  initContainers:
  - name: init
    image: busybox
    command: [sh, -c, "true"]
  containers:
  - name: app
    image: nginx:1.27
    args: []
    env:
    - {name: A, value: "1"}
    - name: B
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    ports: [{containerPort: 8080, hostPort: 0, protocol: TCP}]
    resources: {limits: {cpu: 500m, memory: 128Mi}, requests: {cpu: 1}}
    livenessProbe: {httpGet: {path: /, port: http, host: localhost}, periodSeconds: 10}
    readinessProbe: {tcpSocket: {port: 8080}}
    lifecycle: {preStop: {exec: {command: [sleep, "5"]}}}
    securityContext:
      privileged: false
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      runAsUser: 0
      procMount: Default
      capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
      windowsOptions: {runAsUserName: x, hostProcess: false}
    volumeMounts:
    - {name: data, mountPath: /data, readOnly: false, subPath: sub}
    stdin: true
    tty: false
"""


def test_well_typed_pod_has_no_type_errors() -> None:
    doc = yaml.safe_load(POD_YAML)
    assert check_types(doc["metadata"], doc["spec"]) == []


def test_nulls_are_absent_values() -> None:
    spec = {
        "securityContext": {"runAsUser": None, "seccompProfile": None, "supplementalGroups": [None]},
        "hostPID": None,
        "containers": [None, {"name": None, "env": [{"name": "X", "value": None}], "securityContext": None}],
        "volumes": None,
    }
    assert check_types({"labels": {"a": None}, "name": None}, spec) == []


def test_ruamel_round_trip_types_are_accepted() -> None:
    from ruamel.yaml import YAML

    doc = YAML().load(
        io.StringIO(POD_YAML.replace("0644", "420").replace("0400", "256").replace("0440", "288"))
    )
    assert check_types(doc["metadata"], doc["spec"]) == []
    assert validate_pod(doc["metadata"], doc["spec"]) == []


# ---------------------------------------------------------------------------------------------
# Pod level

POD_LEVEL = [
    (
        {"securityContext": {"runAsUser": "abc"}},
        'spec.securityContext.runAsUser: Invalid value: "abc": expected integer, got string',
    ),
    (
        {"securityContext": {"runAsUser": True}},
        "spec.securityContext.runAsUser: Invalid value: true: expected integer, got boolean",
    ),
    (
        {"securityContext": {"fsGroup": 2000.5}},
        "spec.securityContext.fsGroup: Invalid value: 2000.5: expected integer, got number",
    ),
    (
        {"securityContext": {"runAsGroup": [1]}},
        "spec.securityContext.runAsGroup: Invalid value: [1]: expected integer, got array",
    ),
    (
        {"securityContext": {"runAsNonRoot": 1}},
        "spec.securityContext.runAsNonRoot: Invalid value: 1: expected boolean, got integer",
    ),
    (
        {"securityContext": {"runAsNonRoot": "true"}},
        'spec.securityContext.runAsNonRoot: Invalid value: "true": expected boolean, got string',
    ),
    (
        {"securityContext": {"supplementalGroups": [1, False]}},
        "spec.securityContext.supplementalGroups[1]: Invalid value: false: expected integer, got boolean",
    ),
    (
        {"securityContext": {"supplementalGroups": 4000}},
        "spec.securityContext.supplementalGroups: Invalid value: 4000: expected array, got integer",
    ),
    (
        {"securityContext": {"fsGroupChangePolicy": 1}},
        "spec.securityContext.fsGroupChangePolicy: Invalid value: 1: expected string, got integer",
    ),
    (
        {"securityContext": {"seccompProfile": "RuntimeDefault"}},
        'spec.securityContext.seccompProfile: Invalid value: "RuntimeDefault": expected object, got string',
    ),
    (
        {"securityContext": {"seccompProfile": {"type": True}}},
        "spec.securityContext.seccompProfile.type: Invalid value: true: expected string, got boolean",
    ),
    (
        {"securityContext": {"appArmorProfile": {"localhostProfile": 5}}},
        "spec.securityContext.appArmorProfile.localhostProfile: Invalid value: 5: expected string, got "
        "integer",
    ),
    (
        {"securityContext": {"seLinuxOptions": {"level": 0}}},
        "spec.securityContext.seLinuxOptions.level: Invalid value: 0: expected string, got integer",
    ),
    (
        {"securityContext": {"windowsOptions": {"hostProcess": "yes"}}},
        'spec.securityContext.windowsOptions.hostProcess: Invalid value: "yes": expected boolean, got string',
    ),
    (
        {"securityContext": {"sysctls": {"net.core.somaxconn": "1024"}}},
        'spec.securityContext.sysctls: Invalid value: {"net.core.somaxconn":"1024"}: expected array, got '
        "object",
    ),
    (
        {"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": 1}]}},
        "spec.securityContext.sysctls[0].value: Invalid value: 1: expected string, got integer",
    ),
    ({"hostNetwork": "true"}, 'spec.hostNetwork: Invalid value: "true": expected boolean, got string'),
    ({"hostPID": 1}, "spec.hostPID: Invalid value: 1: expected boolean, got integer"),
    ({"hostIPC": 0}, "spec.hostIPC: Invalid value: 0: expected boolean, got integer"),
    ({"hostUsers": "false"}, 'spec.hostUsers: Invalid value: "false": expected boolean, got string'),
    (
        {"shareProcessNamespace": [True]},
        "spec.shareProcessNamespace: Invalid value: [true]: expected boolean, got array",
    ),
    ({"restartPolicy": False}, "spec.restartPolicy: Invalid value: false: expected string, got boolean"),
    (
        {"terminationGracePeriodSeconds": "30"},
        'spec.terminationGracePeriodSeconds: Invalid value: "30": expected integer, got string',
    ),
    ({"os": "linux"}, 'spec.os: Invalid value: "linux": expected object, got string'),
    ({"os": {"name": 1}}, "spec.os.name: Invalid value: 1: expected string, got integer"),
    (
        {"containers": {"name": "c"}},
        'spec.containers: Invalid value: {"name":"c"}: expected array, got object',
    ),
    ({"containers": ["c"]}, 'spec.containers[0]: Invalid value: "c": expected object, got string'),
    ({"volumes": [["v"]]}, 'spec.volumes[0]: Invalid value: ["v"]: expected object, got array'),
]


@pytest.mark.parametrize(("spec", "expected"), POD_LEVEL, ids=[e.split(":")[0] for _, e in POD_LEVEL])
def test_pod_level_wrong_types(spec: dict, expected: str) -> None:
    assert rendered(None, spec) == [expected]


# ---------------------------------------------------------------------------------------------
# Container level

C = "spec.containers[0]"
CONTAINER_LEVEL = [
    ({"name": 1}, f"{C}.name: Invalid value: 1: expected string, got integer"),
    ({"image": 3.1}, f"{C}.image: Invalid value: 3.1: expected string, got number"),
    ({"command": "sleep 1"}, f'{C}.command: Invalid value: "sleep 1": expected array, got string'),
    ({"args": ["sleep", 3600]}, f"{C}.args[1]: Invalid value: 3600: expected string, got integer"),
    ({"args": [True]}, f"{C}.args[0]: Invalid value: true: expected string, got boolean"),
    (
        {"env": [{"name": "X", "value": 1}]},
        f"{C}.env[0].value: Invalid value: 1: expected string, got integer",
    ),
    (
        {"env": [{"name": "X", "value": True}]},
        f"{C}.env[0].value: Invalid value: true: expected string, got boolean",
    ),
    ({"env": [{"name": 5}]}, f"{C}.env[0].name: Invalid value: 5: expected string, got integer"),
    ({"env": {"X": "1"}}, f'{C}.env: Invalid value: {{"X":"1"}}: expected array, got object'),
    (
        {"env": [{"name": "X", "valueFrom": "secret"}]},
        f'{C}.env[0].valueFrom: Invalid value: "secret": expected object, got string',
    ),
    (
        {"ports": [{"containerPort": "8080"}]},
        f'{C}.ports[0].containerPort: Invalid value: "8080": expected integer, got string',
    ),
    (
        {"ports": [{"containerPort": 80, "hostPort": True}]},
        f"{C}.ports[0].hostPort: Invalid value: true: expected integer, got boolean",
    ),
    (
        {"ports": [{"containerPort": 2**31}]},
        f"{C}.ports[0].containerPort: Invalid value: 2147483648: expected integer (int32), got integer out "
        "of range",
    ),
    (
        {"securityContext": {"privileged": "true"}},
        f'{C}.securityContext.privileged: Invalid value: "true": expected boolean, got string',
    ),
    (
        {"securityContext": {"privileged": 1}},
        f"{C}.securityContext.privileged: Invalid value: 1: expected boolean, got integer",
    ),
    (
        {"securityContext": {"allowPrivilegeEscalation": 0}},
        f"{C}.securityContext.allowPrivilegeEscalation: Invalid value: 0: expected boolean, got integer",
    ),
    (
        {"securityContext": {"readOnlyRootFilesystem": "yes"}},
        f'{C}.securityContext.readOnlyRootFilesystem: Invalid value: "yes": expected boolean, got string',
    ),
    (
        {"securityContext": {"runAsUser": False}},
        f"{C}.securityContext.runAsUser: Invalid value: false: expected integer, got boolean",
    ),
    (
        {"securityContext": {"runAsGroup": "1000"}},
        f'{C}.securityContext.runAsGroup: Invalid value: "1000": expected integer, got string',
    ),
    (
        {"securityContext": {"runAsUser": 2**63}},
        f"{C}.securityContext.runAsUser: Invalid value: 9223372036854775808: "
        "expected integer (int64), got integer out of range",
    ),
    (
        {"securityContext": {"procMount": True}},
        f"{C}.securityContext.procMount: Invalid value: true: expected string, got boolean",
    ),
    (
        {"securityContext": {"capabilities": {"add": "NET_ADMIN"}}},
        f'{C}.securityContext.capabilities.add: Invalid value: "NET_ADMIN": expected array, got string',
    ),
    (
        {"securityContext": {"capabilities": {"drop": ["ALL", 1]}}},
        f"{C}.securityContext.capabilities.drop[1]: Invalid value: 1: expected string, got integer",
    ),
    (
        {"securityContext": {"capabilities": ["ALL"]}},
        f'{C}.securityContext.capabilities: Invalid value: ["ALL"]: expected object, got array',
    ),
    (
        {"securityContext": {"seccompProfile": {"localhostProfile": ["a"]}}},
        f'{C}.securityContext.seccompProfile.localhostProfile: Invalid value: ["a"]: expected string, got '
        "array",
    ),
    (
        {"livenessProbe": {"httpGet": {"host": 10, "port": 80}}},
        f"{C}.livenessProbe.httpGet.host: Invalid value: 10: expected string, got integer",
    ),
    (
        {"readinessProbe": {"httpGet": {"port": True}}},
        f"{C}.readinessProbe.httpGet.port: Invalid value: true: expected integer or string, got boolean",
    ),
    (
        {"startupProbe": {"tcpSocket": {"host": ["h"]}}},
        f'{C}.startupProbe.tcpSocket.host: Invalid value: ["h"]: expected string, got array',
    ),
    (
        {"lifecycle": {"postStart": {"httpGet": {"host": False}}}},
        f"{C}.lifecycle.postStart.httpGet.host: Invalid value: false: expected string, got boolean",
    ),
    (
        {"volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": "true"}]},
        f'{C}.volumeMounts[0].readOnly: Invalid value: "true": expected boolean, got string',
    ),
    (
        {"volumeMounts": [{"name": "v", "mountPath": 1}]},
        f"{C}.volumeMounts[0].mountPath: Invalid value: 1: expected string, got integer",
    ),
    (
        {"volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": 2}]},
        f"{C}.volumeMounts[0].subPath: Invalid value: 2: expected string, got integer",
    ),
    (
        {"volumeMounts": [{"name": "v", "mountPath": "/v", "subPathExpr": False}]},
        f"{C}.volumeMounts[0].subPathExpr: Invalid value: false: expected string, got boolean",
    ),
    (
        {"resources": {"limits": {"cpu": True}}},
        f"{C}.resources.limits[cpu]: Invalid value: true: expected string or number, got boolean",
    ),
]


@pytest.mark.parametrize(
    ("container", "expected"), CONTAINER_LEVEL, ids=[e.split(":")[0] + e[-20:] for _, e in CONTAINER_LEVEL]
)
def test_container_level_wrong_types(container: dict, expected: str) -> None:
    assert rendered(None, {"containers": [{"name": "c", "image": "x", **container}]}) == [expected]


@pytest.mark.parametrize("key", ["initContainers", "ephemeralContainers"])
def test_other_container_lists_are_checked(key: str) -> None:
    spec = {key: [{"name": "c", "securityContext": {"runAsNonRoot": "yes"}}]}
    assert rendered(None, spec) == [
        f'spec.{key}[0].securityContext.runAsNonRoot: Invalid value: "yes": expected boolean, got string'
    ]


def test_quantities_accept_strings_and_numbers() -> None:
    spec = {
        "containers": [{"resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}, "requests": {"cpu": 1}}}],
        "volumes": [{"emptyDir": {"sizeLimit": 1000}}, {"emptyDir": {"sizeLimit": "1Gi"}}],
    }
    assert check_types(None, spec) == []


def test_probe_ports_accept_int_or_string() -> None:
    spec = {
        "containers": [
            {"livenessProbe": {"httpGet": {"port": "http"}}, "readinessProbe": {"tcpSocket": {"port": 80}}}
        ]
    }
    assert check_types(None, spec) == []


# ---------------------------------------------------------------------------------------------
# Volumes

V = "spec.volumes[0]"
VOLUME_LEVEL = [
    ({"name": 1, "emptyDir": {}}, f"{V}.name: Invalid value: 1: expected string, got integer"),
    ({"emptyDir": "yes"}, f'{V}.emptyDir: Invalid value: "yes": expected object, got string'),
    ({"emptyDir": {"medium": 0}}, f"{V}.emptyDir.medium: Invalid value: 0: expected string, got integer"),
    (
        {"emptyDir": {"sizeLimit": [1]}},
        f"{V}.emptyDir.sizeLimit: Invalid value: [1]: expected string or number, got array",
    ),
    ({"hostPath": {"path": 1}}, f"{V}.hostPath.path: Invalid value: 1: expected string, got integer"),
    (
        {"hostPath": {"path": "/x", "type": True}},
        f"{V}.hostPath.type: Invalid value: true: expected string, got boolean",
    ),
    (
        {"configMap": {"name": "c", "defaultMode": "0644"}},
        f'{V}.configMap.defaultMode: Invalid value: "0644": expected integer, got string',
    ),
    (
        {"secret": {"secretName": "s", "defaultMode": True}},
        f"{V}.secret.defaultMode: Invalid value: true: expected integer, got boolean",
    ),
    (
        {"secret": {"secretName": "s", "items": {"key": "k"}}},
        f'{V}.secret.items: Invalid value: {{"key":"k"}}: expected array, got object',
    ),
    (
        {"secret": {"secretName": "s", "items": [{"key": "k", "path": "p", "mode": "0600"}]}},
        f'{V}.secret.items[0].mode: Invalid value: "0600": expected integer, got string',
    ),
    (
        {"downwardAPI": {"items": [{"path": "p", "mode": 1.5}]}},
        f"{V}.downwardAPI.items[0].mode: Invalid value: 1.5: expected integer, got number",
    ),
    (
        {"projected": {"defaultMode": "420"}},
        f'{V}.projected.defaultMode: Invalid value: "420": expected integer, got string',
    ),
    (
        {"projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": "1h"}}]}},
        f'{V}.projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: "1h": '
        "expected integer, got string",
    ),
    (
        {"persistentVolumeClaim": {"claimName": "c", "readOnly": "no"}},
        f'{V}.persistentVolumeClaim.readOnly: Invalid value: "no": expected boolean, got string',
    ),
]


@pytest.mark.parametrize(("volume", "expected"), VOLUME_LEVEL, ids=[e.split(":")[0] for _, e in VOLUME_LEVEL])
def test_volume_wrong_types(volume: dict, expected: str) -> None:
    assert rendered(None, {"volumes": [volume]}) == [expected]


# ---------------------------------------------------------------------------------------------
# Metadata and the roots


def test_metadata_wrong_types() -> None:
    meta = {
        "name": 5,
        "namespace": ["a"],
        "labels": {"app": "web", "version": 1.0, "enabled": True},
        "annotations": {"container.apparmor.security.beta.kubernetes.io/c": 3},
    }
    errs = check_types(meta, None)
    assert [e.render() for e in errs] == [
        "metadata.name: Invalid value: 5: expected string, got integer",
        'metadata.namespace: Invalid value: ["a"]: expected string, got array',
        "metadata.labels[version]: Invalid value: 1: expected string, got number",
        "metadata.labels[enabled]: Invalid value: true: expected string, got boolean",
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]: Invalid value: 3: "
        "expected string, got integer",
    ]
    assert errs[2].path == ("metadata", "labels", Key("version"))
    assert all(e.type == "InvalidType" for e in errs)


def test_labels_must_be_a_mapping() -> None:
    assert rendered({"labels": ["a"]}, None) == [
        'metadata.labels: Invalid value: ["a"]: expected object, got array'
    ]


def test_roots_must_be_objects() -> None:
    assert rendered("x", [1]) == [
        'metadata: Invalid value: "x": expected object, got string',
        "spec: Invalid value: [1]: expected object, got array",
    ]
    assert check_types(None, None) == []


def test_unknown_fields_are_ignored() -> None:
    spec = {"containers": [{"name": "c", "futureField": 1, "securityContext": {"somethingNew": "x"}}], "x": 1}
    assert check_types({"x": 1}, spec) == []


def test_several_errors_in_document_order() -> None:
    spec = {
        "securityContext": {"runAsUser": "a"},
        "containers": [
            {"name": "a", "securityContext": {"privileged": "yes"}},
            {"name": "b", "env": [{"name": "X", "value": 1}]},
        ],
    }
    assert [e.field for e in check_types(None, spec)] == [
        "spec.securityContext.runAsUser",
        "spec.containers[0].securityContext.privileged",
        "spec.containers[1].env[0].value",
    ]


def test_yaml_boolean_words_and_octal_are_loader_decisions() -> None:
    """PyYAML (YAML 1.1, like the API server's decoder) reads ``yes`` as a boolean and ``0644`` as octal."""
    doc = yaml.safe_load(
        "spec: {containers: [{name: c, env: [{name: X, value: yes}]}],"
        " volumes: [{name: v, secret: {defaultMode: 0644}}]}"
    )
    assert rendered(None, doc["spec"]) == [
        "spec.containers[0].env[0].value: Invalid value: true: expected string, got boolean"
    ]
    assert doc["spec"]["volumes"][0]["secret"]["defaultMode"] == 0o644
