"""API-server validation: every rule renders exactly as kube-apiserver words it (kubelet-semantics §4, §7)."""

from __future__ import annotations

import copy

import pytest

from podsec.api.fielderror import FieldError, Key
from podsec.api.validation import ValidationOptions, validate_pod

RANGE = "must be between 0 and 2147483647, inclusive"
FILE_MODE = "must be a number between 0 and 0777 (octal), both inclusive"
APE_PRIV = "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
APE_SYS_ADMIN = "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"


def spec_with(
    *,
    pod: dict | None = None,
    c: dict | None = None,
    containers: list | None = None,
    **spec: object,
) -> dict:
    """A valid one-container pod spec, with a pod securityContext ``pod`` and container one ``c``."""
    base: dict = {"containers": containers or [{"name": "c", "image": "busybox"}]}
    if c is not None:
        base["containers"][0]["securityContext"] = c
    if pod is not None:
        base["securityContext"] = pod
    base.update(spec)
    return base


def messages(spec: dict, metadata: dict | None = None, **opts: bool) -> list[str]:
    return [e.render() for e in validate_pod(metadata, spec, ValidationOptions(**opts))]


def suffixes(spec: dict, **opts: bool) -> list[tuple[str, str]]:
    """(path, detail) pairs — for errors whose value is a whole struct (compare only the suffix)."""
    return [(e.field, e.detail) for e in validate_pod(None, spec, ValidationOptions(**opts))]


# ---------------------------------------------------------------------------------------------
# §7 test vectors 16–35 (API validation)

VECTORS: list[tuple[str, dict, list[str]]] = [
    (
        "16 pod runAsUser -1",
        spec_with(pod={"runAsUser": -1}),
        ["spec.securityContext.runAsUser: Invalid value: -1: " + RANGE],
    ),
    (
        "17 pod fsGroup 2^31",
        spec_with(pod={"fsGroup": 2147483648}),
        ["spec.securityContext.fsGroup: Invalid value: 2147483648: " + RANGE],
    ),
    ("17 zero ids are valid", spec_with(pod={"runAsUser": 0, "fsGroup": 0, "runAsGroup": 0}), []),
    (
        "18 containers[1] runAsGroup -5",
        spec_with(
            containers=[
                {"name": "a", "image": "x"},
                {"name": "b", "image": "x", "securityContext": {"runAsGroup": -5}},
            ]
        ),
        ["spec.containers[1].securityContext.runAsGroup: Invalid value: -5: " + RANGE],
    ),
    (
        "20 SYS_ADMIN spelling is not caught",
        spec_with(c={"allowPrivilegeEscalation": False, "capabilities": {"add": ["SYS_ADMIN"]}}),
        [],
    ),
    (
        "21 procMount Unmasked needs hostUsers false",
        spec_with(c={"procMount": "Unmasked"}),
        [
            'spec.containers[0].securityContext.procMount: Invalid value: "Unmasked": '
            "`hostUsers` must be false to use `Unmasked`"
        ],
    ),
    (
        "21 procMount Unmasked with hostUsers false",
        spec_with(c={"procMount": "Unmasked"}, hostUsers=False),
        [],
    ),
    (
        "22 procMount Foo",
        spec_with(c={"procMount": "Foo"}),
        [
            'spec.containers[0].securityContext.procMount: Unsupported value: "Foo": '
            'supported values: "Default", "Unmasked"'
        ],
    ),
    (
        "23 seccomp Localhost without profile",
        spec_with(pod={"seccompProfile": {"type": "Localhost"}}),
        [
            "spec.securityContext.seccompProfile.localhostProfile: Required value: "
            "must be set when seccomp type is Localhost"
        ],
    ),
    (
        "25 seccomp without type",
        spec_with(pod={"seccompProfile": {}}),
        [
            "spec.securityContext.seccompProfile.type: Required value: type is required when "
            "seccompProfile is set"
        ],
    ),
    (
        "25 seccomp type Bogus",
        spec_with(pod={"seccompProfile": {"type": "Bogus"}}),
        [
            'spec.securityContext.seccompProfile.type: Unsupported value: "Bogus": '
            'supported values: "Localhost", "RuntimeDefault", "Unconfined"'
        ],
    ),
    (
        "26 seccomp absolute localhostProfile",
        spec_with(pod={"seccompProfile": {"type": "Localhost", "localhostProfile": "/etc/x.json"}}),
        [
            'spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/etc/x.json": must be a '
            "relative path"
        ],
    ),
    (
        "26 seccomp localhostProfile with ..",
        spec_with(pod={"seccompProfile": {"type": "Localhost", "localhostProfile": "../x.json"}}),
        [
            'spec.securityContext.seccompProfile.localhostProfile: Invalid value: "../x.json": must not '
            "contain '..'"
        ],
    ),
    (
        "26 seccomp relative localhostProfile is valid",
        spec_with(pod={"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/a.json"}}),
        [],
    ),
    ("27 no seccompProfile anywhere", spec_with(), []),
    (
        "27 pod RuntimeDefault + container Unconfined",
        spec_with(
            pod={"seccompProfile": {"type": "RuntimeDefault"}}, c={"seccompProfile": {"type": "Unconfined"}}
        ),
        [],
    ),
    (
        "28 AppArmor profile padded with whitespace",
        spec_with(c={"appArmorProfile": {"type": "Localhost", "localhostProfile": " p "}}),
        [
            'spec.containers[0].securityContext.appArmorProfile.localhostProfile: Invalid value: " p ": '
            "must not be padded with whitespace"
        ],
    ),
    (
        "29 sysctl name not matching the regex",
        spec_with(pod={"sysctls": [{"name": "Kernel.Foo", "value": "1"}]}),
        [
            'spec.securityContext.sysctls[0].name: Invalid value: "Kernel.Foo": must have at most 253 '
            "characters "
            "and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"
        ],
    ),
    (
        "30 net sysctl with hostNetwork",
        spec_with(pod={"sysctls": [{"name": "net.core.somaxconn"}]}, hostNetwork=True),
        [
            'spec.securityContext.sysctls[0].name: Invalid value: "net.core.somaxconn": '
            "may not be specified when 'hostNetwork' is true"
        ],
    ),
    (
        "31 unsafe sysctls pass API validation",
        spec_with(
            pod={
                "sysctls": [
                    {"name": "kernel.msgmax", "value": "65536"},
                    {"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"},
                ]
            }
        ),
        [],
    ),
    (
        "32 linux pod with windowsOptions",
        spec_with(pod={"windowsOptions": {"runAsUserName": "x"}}, os={"name": "linux"}),
        ["spec.securityContext.windowsOptions: Forbidden: windows options cannot be set for a linux pod"],
    ),
    (
        "33 windows pod with fsGroup and privileged",
        spec_with(pod={"fsGroup": 2000}, c={"privileged": False}, os={"name": "windows"}),
        [
            "spec.securityContext.fsGroup: Forbidden: cannot be set for a windows pod",
            "spec.containers[0].securityContext.privileged: Forbidden: cannot be set for a windows pod",
        ],
    ),
    (
        "34 hostUsers false with hostNetwork",
        spec_with(hostUsers=False, hostNetwork=True),
        ["spec.hostNetwork: Forbidden: when `pod.Spec.HostUsers` is false"],
    ),
    (
        "34 hostUsers false with hostPID",
        spec_with(hostUsers=False, hostPID=True),
        ["spec.HostPID: Forbidden: when `pod.Spec.HostUsers` is false"],
    ),
    (
        "35 fsGroupChangePolicy Sometimes",
        spec_with(pod={"fsGroupChangePolicy": "Sometimes"}),
        [
            'spec.securityContext.fsGroupChangePolicy: Unsupported value: "Sometimes": '
            'supported values: "Always", "OnRootMismatch"'
        ],
    ),
    (
        "35 supplementalGroupsPolicy Loose",
        spec_with(pod={"supplementalGroupsPolicy": "Loose"}),
        [
            'spec.securityContext.supplementalGroupsPolicy: Unsupported value: "Loose": '
            'supported values: "Merge", "Strict"'
        ],
    ),
]


@pytest.mark.parametrize(("spec", "expected"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS])
def test_api_vectors(spec: dict, expected: list[str]) -> None:
    assert messages(spec) == expected


STRUCT_VECTORS: list[tuple[str, dict, list[tuple[str, str]]]] = [
    (
        "19 privileged with allowPrivilegeEscalation false",
        spec_with(c={"privileged": True, "allowPrivilegeEscalation": False}),
        [("spec.containers[0].securityContext", APE_PRIV)],
    ),
    (
        "20 literal CAP_SYS_ADMIN, one error per occurrence",
        spec_with(
            c={"allowPrivilegeEscalation": False, "capabilities": {"add": ["CAP_SYS_ADMIN", "CAP_SYS_ADMIN"]}}
        ),
        [("spec.containers[0].securityContext", APE_SYS_ADMIN)] * 2,
    ),
    (
        "24 localhostProfile with RuntimeDefault",
        spec_with(c={"seccompProfile": {"type": "RuntimeDefault", "localhostProfile": "a.json"}}),
        [
            (
                "spec.containers[0].securityContext.seccompProfile.localhostProfile",
                "can only be set when seccomp type is Localhost",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [v[1:] for v in STRUCT_VECTORS], ids=[v[0] for v in STRUCT_VECTORS]
)
def test_api_vectors_with_struct_values(spec: dict, expected: list[tuple[str, str]]) -> None:
    assert suffixes(spec) == expected


def test_struct_value_renders_as_compact_json() -> None:
    (err,) = validate_pod(None, spec_with(c={"privileged": True, "allowPrivilegeEscalation": False}))
    assert err.render() == (
        "spec.containers[0].securityContext: Invalid value: "
        '{"allowPrivilegeEscalation":false,"privileged":true}: ' + APE_PRIV
    )


# ---------------------------------------------------------------------------------------------
# Clean pods and rendering


def clean_pod() -> tuple[dict, dict]:
    metadata = {"name": "web", "namespace": "default", "labels": {"app": "web"}, "annotations": {"a": "b"}}
    spec = {
        "securityContext": {
            "runAsUser": 1000,
            "runAsGroup": 3000,
            "fsGroup": 2000,
            "supplementalGroups": [4000],
            "runAsNonRoot": True,
            "fsGroupChangePolicy": "OnRootMismatch",
            "supplementalGroupsPolicy": "Strict",
            "seLinuxChangePolicy": "MountOption",
            "seccompProfile": {"type": "RuntimeDefault"},
            "appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-default"},
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
        },
        "volumes": [
            {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
            {
                "name": "cfg",
                "configMap": {"name": "cfg", "defaultMode": 0o644, "items": [{"key": "k", "path": "k"}]},
            },
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
            {
                "name": "proj",
                "projected": {
                    "defaultMode": 0o440,
                    "sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                        {"configMap": {"name": "x", "items": [{"key": "a", "path": "a", "mode": 0o600}]}},
                    ],
                },
            },
            {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
        ],
        "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                    "runAsUser": 0,
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/a.json"},
                },
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data", "subPath": "sub"},
                    {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True},
                    {"name": "sec", "mountPath": "/etc/sec"},
                    {"name": "proj", "mountPath": "/var/run/proj"},
                    {"name": "host", "mountPath": "/host", "readOnly": True, "recursiveReadOnly": "Enabled"},
                ],
            },
            {"name": "sidecar", "image": "busybox", "args": ["sleep", "3600"]},
        ],
        "restartPolicy": "Always",
        "os": {"name": "linux"},
    }
    return metadata, spec


def test_clean_pod_has_no_errors() -> None:
    metadata, spec = clean_pod()
    assert validate_pod(metadata, spec) == []


def test_validation_does_not_mutate_its_input() -> None:
    metadata, spec = clean_pod()
    spec["containers"][0]["securityContext"]["privileged"] = True
    before = copy.deepcopy((metadata, spec))
    validate_pod(metadata, spec, ValidationOptions(allow_privileged=False))
    assert (metadata, spec) == before


def test_deployment_prefix_rendering() -> None:
    (err,) = validate_pod(None, spec_with(c={"runAsUser": -1}), ValidationOptions(resource_is_pod=False))
    assert err.render(prefix=("spec", "template")) == (
        "spec.template.spec.containers[0].securityContext.runAsUser: Invalid value: -1: " + RANGE
    )
    assert err.path == ("spec", "containers", 0, "securityContext", "runAsUser")


def test_fielderror_is_a_frozen_value() -> None:
    err = FieldError("Required", ("spec", "containers"))
    assert err.render() == "spec.containers: Required value"
    assert str(err) == err.render()
    with pytest.raises(AttributeError):
        err.detail = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Pod security context (§4.2)


def test_supplemental_groups_each_range_checked() -> None:
    assert messages(spec_with(pod={"supplementalGroups": [1, -1, 2147483647, 2147483648]})) == [
        "spec.securityContext.supplementalGroups[1]: Invalid value: -1: " + RANGE,
        "spec.securityContext.supplementalGroups[3]: Invalid value: 2147483648: " + RANGE,
    ]


def test_pod_run_as_group_range() -> None:
    assert messages(spec_with(pod={"runAsGroup": 2147483648})) == [
        "spec.securityContext.runAsGroup: Invalid value: 2147483648: " + RANGE
    ]


def test_share_process_namespace_with_host_pid_uses_internal_path() -> None:
    assert messages(spec_with(shareProcessNamespace=True, hostPID=True)) == [
        "spec.securityContext.shareProcessNamespace: Invalid value: true: "
        "ShareProcessNamespace and HostPID cannot both be enabled"
    ]
    assert messages(spec_with(shareProcessNamespace=False, hostPID=True)) == []


@pytest.mark.parametrize(
    ("opts", "value", "expected"),
    [
        ({}, "Recursive", []),
        ({}, "MountOption", []),
        (
            {},
            "Sometimes",
            [
                'spec.securityContext.seLinuxChangePolicy: Unsupported value: "Sometimes": '
                'supported values: "MountOption", "Recursive"'
            ],
        ),
        (
            {"allow_only_recursive_selinux_change_policy": True},
            "MountOption",
            [
                'spec.securityContext.seLinuxChangePolicy: Unsupported value: "MountOption": supported '
                'values: "Recursive"'
            ],
        ),
    ],
)
def test_selinux_change_policy(opts: dict, value: str, expected: list[str]) -> None:
    assert messages(spec_with(pod={"seLinuxChangePolicy": value}), **opts) == expected


def test_pod_security_context_rule_order() -> None:
    """validatePodSpecSecurityContext order: ids, sysctls, fsGroupChangePolicy, seccomp, windows,
    AppArmor, supplementalGroupsPolicy, seLinuxChangePolicy."""
    spec = spec_with(
        pod={
            "seLinuxChangePolicy": "X",
            "supplementalGroupsPolicy": "X",
            "appArmorProfile": {"type": "X"},
            "windowsOptions": {"runAsUserName": ""},
            "seccompProfile": {"type": "X"},
            "fsGroupChangePolicy": "X",
            "sysctls": [{"name": "X"}],
            "supplementalGroups": [-1],
            "runAsGroup": -1,
            "runAsUser": -1,
            "fsGroup": -1,
        }
    )
    assert [e.field for e in validate_pod(None, spec)] == [
        "spec.securityContext.fsGroup",
        "spec.securityContext.runAsUser",
        "spec.securityContext.runAsGroup",
        "spec.securityContext.supplementalGroups[0]",
        "spec.securityContext.sysctls[0].name",
        "spec.securityContext.fsGroupChangePolicy",
        "spec.securityContext.seccompProfile.type",
        "spec.securityContext.windowsOptions.runAsUserName",
        "spec.securityContext.appArmorProfile.type",
        "spec.securityContext.supplementalGroupsPolicy",
        "spec.securityContext.seLinuxChangePolicy",
    ]


# ---------------------------------------------------------------------------------------------
# Container security context (§4.3)


def test_container_run_as_user_range_in_every_container_list() -> None:
    spec = spec_with(
        initContainers=[{"name": "i", "image": "x", "securityContext": {"runAsUser": -1}}],
        containers=[{"name": "c", "image": "x", "securityContext": {"runAsUser": 2147483648}}],
    )
    assert messages(spec) == [
        "spec.containers[0].securityContext.runAsUser: Invalid value: 2147483648: " + RANGE,
        "spec.initContainers[0].securityContext.runAsUser: Invalid value: -1: " + RANGE,
    ]


def test_ephemeral_container_security_context_is_validated() -> None:
    spec = spec_with(
        ephemeralContainers=[{"name": "dbg", "image": "x", "securityContext": {"runAsGroup": -1}}]
    )
    assert messages(spec, on_create=False) == [
        "spec.ephemeralContainers[0].securityContext.runAsGroup: Invalid value: -1: " + RANGE
    ]


def test_privileged_forbidden_when_cluster_disallows() -> None:
    spec = spec_with(c={"privileged": True})
    assert messages(spec) == []
    assert messages(spec, allow_privileged=False) == [
        "spec.containers[0].securityContext.privileged: Forbidden: disallowed by cluster policy"
    ]
    assert messages(spec_with(c={"privileged": False}), allow_privileged=False) == []


def test_allow_privilege_escalation_true_with_privileged_is_fine() -> None:
    assert messages(spec_with(c={"privileged": True, "allowPrivilegeEscalation": True})) == []


def test_procmount_empty_string_is_unsupported() -> None:
    assert messages(spec_with(c={"procMount": ""})) == [
        'spec.containers[0].securityContext.procMount: Unsupported value: "": '
        'supported values: "Default", "Unmasked"'
    ]


def test_procmount_default_is_valid() -> None:
    assert messages(spec_with(c={"procMount": "Default"})) == []


def test_container_seccomp_localhost_rules() -> None:
    assert messages(
        spec_with(c={"seccompProfile": {"type": "Localhost", "localhostProfile": "a/../../b"}})
    ) == [
        'spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: "a/../../b": '
        "must not contain '..'"
    ]
    # An empty profile passes the API (the kubelet fails it later).
    assert messages(spec_with(c={"seccompProfile": {"type": "Localhost", "localhostProfile": ""}})) == []


def test_seccomp_absolute_with_backsteps_reports_both() -> None:
    assert messages(
        spec_with(pod={"seccompProfile": {"type": "Localhost", "localhostProfile": "/../x"}})
    ) == [
        'spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/../x": must be a relative '
        "path",
        'spec.securityContext.seccompProfile.localhostProfile: Invalid value: "/../x": must not contain '
        "'..'",
    ]


# ---------------------------------------------------------------------------------------------
# AppArmor field (§4.4)

AA = "spec.containers[0].securityContext.appArmorProfile"


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({"type": "RuntimeDefault"}, []),
        ({"type": "Unconfined"}, []),
        ({"type": "Localhost", "localhostProfile": "my-profile"}, []),
        (
            {"type": "Localhost"},
            [f"{AA}.localhostProfile: Required value: must be set when AppArmor type is Localhost"],
        ),
        (
            {"type": "Localhost", "localhostProfile": ""},
            [f"{AA}.localhostProfile: Required value: must be set when AppArmor type is Localhost"],
        ),
        (
            {"type": "Localhost", "localhostProfile": "\tp"},
            [f'{AA}.localhostProfile: Invalid value: "\\tp": must not be padded with whitespace'],
        ),
        (
            {"type": "Localhost", "localhostProfile": "p" * 4096},
            [f"{AA}.localhostProfile: Too long: may not be more than 4095 bytes"],
        ),
        ({"type": "Localhost", "localhostProfile": "p" * 4095}, []),
        (
            {"type": "Localhost", "localhostProfile": " " + "p" * 4095},
            [
                f'{AA}.localhostProfile: Invalid value: "{" " + "p" * 4095}": must not be padded with '
                "whitespace",
                f"{AA}.localhostProfile: Too long: may not be more than 4095 bytes",
            ],
        ),
        (
            {"type": "RuntimeDefault", "localhostProfile": "p"},
            [f'{AA}.localhostProfile: Invalid value: "p": can only be set when AppArmor type is Localhost'],
        ),
        (
            {"type": "Unconfined", "localhostProfile": ""},
            [f'{AA}.localhostProfile: Invalid value: "": can only be set when AppArmor type is Localhost'],
        ),
        ({}, [f"{AA}.type: Required value: type is required when appArmorProfile is set"]),
        (
            {"type": "localhost"},
            [
                f'{AA}.type: Unsupported value: "localhost": '
                'supported values: "Localhost", "RuntimeDefault", "Unconfined"'
            ],
        ),
    ],
)
def test_apparmor_profile_field(profile: dict, expected: list[str]) -> None:
    assert messages(spec_with(c={"appArmorProfile": profile})) == expected


def test_apparmor_pod_level_field() -> None:
    assert messages(spec_with(pod={"appArmorProfile": {"type": "Localhost"}})) == [
        "spec.securityContext.appArmorProfile.localhostProfile: Required value: "
        "must be set when AppArmor type is Localhost"
    ]


# ---------------------------------------------------------------------------------------------
# Seccomp and AppArmor annotations (§4.4)

SECCOMP_POD = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_C = "container.seccomp.security.alpha.kubernetes.io/c"
APPARMOR_C = "container.apparmor.security.beta.kubernetes.io/c"


@pytest.mark.parametrize("value", ["runtime/default", "docker/default", "unconfined", "localhost/a/b.json"])
def test_seccomp_annotation_valid_values(value: str) -> None:
    assert messages(spec_with(), {"annotations": {SECCOMP_POD: value, SECCOMP_C: value}}) == []


def test_seccomp_annotation_invalid_values_render_as_child_paths() -> None:
    meta = {"annotations": {SECCOMP_POD: "bogus", SECCOMP_C: "localhost//etc/x"}}
    assert messages(spec_with(), meta) == [
        'metadata.annotations.seccomp.security.alpha.kubernetes.io/pod: Invalid value: "bogus": '
        "must be a valid seccomp profile",
        'metadata.annotations.container.seccomp.security.alpha.kubernetes.io/c: Invalid value: "/etc/x": '
        "must be a relative path",
    ]


def test_apparmor_annotation_rules_render_as_key_paths() -> None:
    meta = {"annotations": {"container.apparmor.security.beta.kubernetes.io/ghost": "enforce"}}
    errs = validate_pod(meta, spec_with())
    assert [e.render() for e in errs] == [
        'metadata.annotations[container.apparmor.security.beta.kubernetes.io/ghost]: Invalid value: "ghost": '
        "container not found",
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/ghost]: Invalid value: "
        '"enforce": '
        'invalid AppArmor profile name: "enforce"',
    ]
    assert errs[0].path == (
        "metadata",
        "annotations",
        Key("container.apparmor.security.beta.kubernetes.io/ghost"),
    )


@pytest.mark.parametrize("value", ["", "runtime/default", "unconfined", "localhost/p"])
def test_apparmor_annotation_valid_values(value: str) -> None:
    assert messages(spec_with(), {"annotations": {APPARMOR_C: value}}) == []


@pytest.mark.parametrize(
    ("annotations", "pod", "c", "expected"),
    [
        (
            {SECCOMP_POD: "unconfined"},
            {"seccompProfile": {"type": "RuntimeDefault"}},
            None,
            [
                "spec.securityContext.seccompProfile.type: Forbidden: "
                "seccomp type in annotation and field must match"
            ],
        ),
        ({SECCOMP_POD: "docker/default"}, {"seccompProfile": {"type": "RuntimeDefault"}}, None, []),
        (
            {SECCOMP_C: "localhost/a.json"},
            None,
            {"seccompProfile": {"type": "Localhost", "localhostProfile": "b.json"}},
            [
                "spec.containers[0].securityContext.seccompProfile.localhostProfile: Forbidden: "
                "seccomp profile in annotation and field must match"
            ],
        ),
        (
            {SECCOMP_C: "runtime/default"},
            None,
            {"seccompProfile": {"type": "Unconfined"}},
            [
                "spec.containers[0].securityContext.seccompProfile.type: Forbidden: "
                "seccomp type in annotation and field must match"
            ],
        ),
        # the container annotation is compared with the container field only, not the pod's
        ({SECCOMP_C: "unconfined"}, {"seccompProfile": {"type": "RuntimeDefault"}}, None, []),
        (
            {APPARMOR_C: "runtime/default"},
            None,
            {"appArmorProfile": {"type": "Unconfined"}},
            [
                "spec.containers[0].securityContext.appArmorProfile.type: Forbidden: "
                "apparmor type in annotation and field must match"
            ],
        ),
        (
            # the container inherits the pod's AppArmor field for this check
            {APPARMOR_C: "localhost/other"},
            {"appArmorProfile": {"type": "Localhost", "localhostProfile": "mine"}},
            None,
            [
                "spec.containers[0].securityContext.appArmorProfile.localhostProfile: Forbidden: "
                "apparmor profile in annotation and field must match"
            ],
        ),
        ({APPARMOR_C: "unconfined"}, {"appArmorProfile": {"type": "Unconfined"}}, None, []),
    ],
)
def test_annotation_and_field_must_match_on_create(
    annotations: dict, pod: dict | None, c: dict | None, expected: list[str]
) -> None:
    spec = spec_with(pod=pod, c=c)
    assert messages(spec, {"annotations": annotations}) == expected
    # an existing pod (update) is not re-checked
    assert messages(spec, {"annotations": annotations}, on_create=False) == []


def test_apparmor_match_is_skipped_for_windows_pods() -> None:
    spec = spec_with(c={"appArmorProfile": {"type": "Unconfined"}}, os={"name": "windows"})
    assert messages(spec, {"annotations": {APPARMOR_C: "runtime/default"}}) == [
        "spec.containers[0].securityContext.appArmorProfile: Forbidden: cannot be set for a windows pod"
    ]


def test_template_annotations_paths_and_match() -> None:
    spec = spec_with(pod={"seccompProfile": {"type": "Unconfined"}})
    meta = {"annotations": {SECCOMP_POD: "runtime/default", APPARMOR_C: "bad"}}
    errs = validate_pod(meta, spec, ValidationOptions(resource_is_pod=False))
    assert [e.render(prefix=("spec", "template")) for e in errs] == [
        'spec.template.annotations[container.apparmor.security.beta.kubernetes.io/c]: Invalid value: "bad": '
        'invalid AppArmor profile name: "bad"',
        "spec.template.spec.securityContext.seccompProfile.type: Forbidden: "
        "seccomp type in annotation and field must match",
    ]


# ---------------------------------------------------------------------------------------------
# Sysctls (§4.5)


def test_sysctl_required_duplicate_and_ipc() -> None:
    spec = spec_with(
        pod={
            "sysctls": [
                {"name": ""},
                {"name": "kernel.shmmax", "value": "1"},
                {"name": "kernel.shmmax", "value": "2"},
                {"name": "net.ipv4.tcp_syncookies"},
            ]
        },
        hostIPC=True,
    )
    assert messages(spec) == [
        "spec.securityContext.sysctls[0].name: Required value",
        'spec.securityContext.sysctls[1].name: Invalid value: "kernel.shmmax": '
        "may not be specified when 'hostIPC' is true",
        'spec.securityContext.sysctls[2].name: Duplicate value: "kernel.shmmax"',
        'spec.securityContext.sysctls[2].name: Invalid value: "kernel.shmmax": '
        "may not be specified when 'hostIPC' is true",
    ]


@pytest.mark.parametrize(
    "name", ["kernel.msgmax", "kernel.sem", "fs.mqueue.msg_max", "kernel.shm_rmid_forced"]
)
def test_ipc_namespaced_sysctls_with_host_ipc(name: str) -> None:
    assert messages(spec_with(pod={"sysctls": [{"name": name}]}, hostIPC=True)) == [
        f'spec.securityContext.sysctls[0].name: Invalid value: "{name}": may not be specified when '
        "'hostIPC' is true"
    ]


def test_slash_separated_net_sysctl_with_host_network() -> None:
    assert messages(
        spec_with(pod={"sysctls": [{"name": "net/ipv4/conf/eno2.100/rp_filter"}]}, hostNetwork=True)
    ) == [
        'spec.securityContext.sysctls[0].name: Invalid value: "net/ipv4/conf/eno2.100/rp_filter": '
        "may not be specified when 'hostNetwork' is true"
    ]


def test_non_namespaced_sysctl_with_host_namespaces_is_fine() -> None:
    assert (
        messages(spec_with(pod={"sysctls": [{"name": "vm.max_map_count"}]}, hostNetwork=True, hostIPC=True))
        == []
    )


def test_sysctl_name_too_long() -> None:
    name = "a" * 254
    assert messages(spec_with(pod={"sysctls": [{"name": name}]})) == [
        f'spec.securityContext.sysctls[0].name: Invalid value: "{name}": must have at most 253 characters '
        "and "
        "match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"
    ]


# ---------------------------------------------------------------------------------------------
# spec.os (§4.6)


def test_os_name_required_and_supported() -> None:
    assert messages(spec_with(os={})) == ["spec.os.name: Required value: cannot be empty"]
    assert messages(spec_with(os={"name": "darwin"})) == [
        'spec.os: Unsupported value: "darwin": supported values: "linux", "windows"'
    ]


def test_linux_pod_forbids_container_windows_options() -> None:
    spec = spec_with(
        initContainers=[{"name": "i", "image": "x", "securityContext": {"windowsOptions": {}}}],
        c={"windowsOptions": {"hostProcess": False}},
        os={"name": "linux"},
    )
    assert messages(spec) == [
        "spec.initContainers[0].securityContext.windowsOptions: Forbidden: windows options cannot be set "
        "for a linux pod",
        "spec.containers[0].securityContext.windowsOptions: Forbidden: windows options cannot be set for a "
        "linux pod",
    ]


def test_windows_pod_forbids_every_listed_field() -> None:
    spec = spec_with(
        pod={
            "appArmorProfile": {"type": "RuntimeDefault"},
            "seLinuxOptions": {"level": "s0"},
            "seccompProfile": {"type": "RuntimeDefault"},
            "fsGroup": 1,
            "fsGroupChangePolicy": "Always",
            "sysctls": [{"name": "vm.swappiness"}],
            "runAsUser": 1,
            "runAsGroup": 1,
            "supplementalGroups": [],
            "supplementalGroupsPolicy": "Merge",
            "seLinuxChangePolicy": "Recursive",
            "runAsNonRoot": True,
            "windowsOptions": {"runAsUserName": "ContainerUser"},
        },
        c={
            "appArmorProfile": {"type": "RuntimeDefault"},
            "seLinuxOptions": {},
            "seccompProfile": {"type": "RuntimeDefault"},
            "capabilities": {},
            "readOnlyRootFilesystem": False,
            "privileged": False,
            "allowPrivilegeEscalation": True,
            "procMount": "Default",
            "runAsUser": 1,
            "runAsGroup": 1,
            "runAsNonRoot": True,
        },
        hostUsers=True,
        hostPID=True,
        hostIPC=True,
        shareProcessNamespace=False,
        os={"name": "windows"},
    )
    w = "Forbidden: cannot be set for a windows pod"
    assert messages(spec) == [
        f"spec.securityContext.appArmorProfile: {w}",
        f"spec.securityContext.seLinuxOptions: {w}",
        f"spec.hostUsers: {w}",
        f"spec.hostPID: {w}",
        f"spec.hostIPC: {w}",
        f"spec.securityContext.seccompProfile: {w}",
        f"spec.securityContext.fsGroup: {w}",
        f"spec.securityContext.fsGroupChangePolicy: {w}",
        f"spec.securityContext.sysctls: {w}",
        f"spec.shareProcessNamespace: {w}",
        f"spec.securityContext.runAsUser: {w}",
        f"spec.securityContext.runAsGroup: {w}",
        f"spec.securityContext.supplementalGroups: {w}",
        f"spec.securityContext.supplementalGroupsPolicy: {w}",
        f"spec.securityContext.seLinuxChangePolicy: {w}",
        f"spec.containers[0].securityContext.appArmorProfile: {w}",
        f"spec.containers[0].securityContext.seLinuxOptions: {w}",
        f"spec.containers[0].securityContext.seccompProfile: {w}",
        f"spec.containers[0].securityContext.capabilities: {w}",
        f"spec.containers[0].securityContext.readOnlyRootFilesystem: {w}",
        f"spec.containers[0].securityContext.privileged: {w}",
        f"spec.containers[0].securityContext.allowPrivilegeEscalation: {w}",
        f"spec.containers[0].securityContext.procMount: {w}",
        f"spec.containers[0].securityContext.runAsUser: {w}",
        f"spec.containers[0].securityContext.runAsGroup: {w}",
    ]


def test_windows_pod_allows_windows_options_and_run_as_non_root() -> None:
    spec = spec_with(
        pod={"runAsNonRoot": True, "windowsOptions": {"runAsUserName": "NT AUTHORITY\\NETWORK SERVICE"}},
        os={"name": "windows"},
    )
    assert messages(spec) == []


# ---------------------------------------------------------------------------------------------
# hostUsers (§4.7)


def test_host_users_false_with_host_ipc_and_all_three() -> None:
    assert messages(spec_with(hostUsers=False, hostIPC=True)) == [
        "spec.HostIPC: Forbidden: when `pod.Spec.HostUsers` is false"
    ]
    assert messages(spec_with(hostUsers=False, hostNetwork=True, hostPID=True, hostIPC=True)) == [
        "spec.hostNetwork: Forbidden: when `pod.Spec.HostUsers` is false",
        "spec.HostPID: Forbidden: when `pod.Spec.HostUsers` is false",
        "spec.HostIPC: Forbidden: when `pod.Spec.HostUsers` is false",
    ]
    assert messages(spec_with(hostUsers=True, hostNetwork=True, hostPID=True, hostIPC=True)) == []


# ---------------------------------------------------------------------------------------------
# windowsOptions contents and hostProcess (§4.8)

WO = "spec.securityContext.windowsOptions"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"runAsUserName": "ContainerAdministrator"}, []),
        ({"runAsUserName": "DOMAIN\\user"}, []),
        ({"runAsUserName": "corp.example.com\\user"}, []),
        (
            {"runAsUserName": ""},
            [f'{WO}.runAsUserName: Invalid value: "": runAsUserName cannot be an empty string'],
        ),
        (
            {"runAsUserName": "us\ter"},
            [
                f'{WO}.runAsUserName: Invalid value: "us\\ter": runAsUserName cannot contain control '
                "characters"
            ],
        ),
        (
            {"runAsUserName": "a\\b\\c"},
            [
                f'{WO}.runAsUserName: Invalid value: "a\\\\b\\\\c": '
                "runAsUserName cannot contain more than one backslash"
            ],
        ),
        (
            {"runAsUserName": "Domain\\"},
            [f'{WO}.runAsUserName: Invalid value: "Domain\\\\": runAsUserName\'s User cannot be empty'],
        ),
        (
            {"runAsUserName": "u" * 105},
            [
                f'{WO}.runAsUserName: Invalid value: "{"u" * 105}": '
                "runAsUserName's User length must not be longer than 104 characters"
            ],
        ),
        (
            {"runAsUserName": ". ."},
            [
                f'{WO}.runAsUserName: Invalid value: ". .": runAsUserName\'s User cannot contain only '
                "periods or spaces"
            ],
        ),
        (
            {"runAsUserName": "us@er"},
            [
                f'{WO}.runAsUserName: Invalid value: "us@er": '
                "runAsUserName's User cannot contain the following characters: \"/\\:;|=,+*?<>@[]"
            ],
        ),
        (
            {"runAsUserName": ".bad..domain\\user"},
            [
                f'{WO}.runAsUserName: Invalid value: ".bad..domain\\\\user": '
                "runAsUserName's Domain doesn't match the NetBios nor the DNS format"
            ],
        ),
        (
            {"gmsaCredentialSpec": ""},
            [f'{WO}.gmsaCredentialSpec: Invalid value: "": gmsaCredentialSpec cannot be an empty string'],
        ),
        ({"gmsaCredentialSpecName": "my-spec"}, []),
        (
            {"gmsaCredentialSpecName": "My_Spec"},
            [
                f'{WO}.gmsaCredentialSpecName: Invalid value: "My_Spec": a lowercase RFC 1123 subdomain must '
                "consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
        ),
    ],
)
def test_windows_options_contents(options: dict, expected: list[str]) -> None:
    assert messages(spec_with(pod={"windowsOptions": options})) == expected


def test_gmsa_credential_spec_size_limit() -> None:
    big = "x" * (64 * 1024 + 1)
    (err,) = validate_pod(None, spec_with(c={"windowsOptions": {"gmsaCredentialSpec": big}}))
    assert (err.field, err.detail) == (
        "spec.containers[0].securityContext.windowsOptions.gmsaCredentialSpec",
        "gmsaCredentialSpec size must be under 64 KiB",
    )


def test_host_process_rules() -> None:
    spec = spec_with(
        pod={"windowsOptions": {"hostProcess": True}},
        containers=[
            {"name": "a", "image": "x", "securityContext": {"windowsOptions": {"hostProcess": False}}},
            {"name": "b", "image": "x"},
        ],
    )
    assert messages(spec, allow_privileged=False) == [
        "spec.containers[0].securityContext.windowsOptions.hostProcess: Invalid value: false: "
        "pod hostProcess value must be identical if both are specified, was true",
        'spec: Invalid value: "": If pod contains any hostProcess containers then all containers must be '
        "HostProcess containers",
        "spec.hostNetwork: Invalid value: false: hostNetwork must be true if pod contains any hostProcess "
        "containers",
        "spec: Forbidden: hostProcess containers are disallowed by cluster policy",
    ]


def test_host_process_all_containers_with_host_network_is_valid() -> None:
    spec = spec_with(pod={"windowsOptions": {"hostProcess": True}}, hostNetwork=True, os={"name": "windows"})
    assert messages(spec) == []


# ---------------------------------------------------------------------------------------------
# Volumes and mounts


@pytest.mark.parametrize(
    ("volume", "path"),
    [
        ({"configMap": {"name": "c", "defaultMode": 0o1000}}, "spec.volumes[0].configMap.defaultMode"),
        ({"secret": {"secretName": "s", "defaultMode": -1}}, "spec.volumes[0].secret.defaultMode"),
        ({"projected": {"defaultMode": 512, "sources": []}}, "spec.volumes[0].projected.defaultMode"),
        ({"downwardAPI": {"defaultMode": 4095}}, "spec.volumes[0].downwardAPI.defaultMode"),
        (
            {"configMap": {"name": "c", "items": [{"key": "k", "path": "p", "mode": 0o1777}]}},
            "spec.volumes[0].configMap.items[0].mode",
        ),
        (
            {"secret": {"secretName": "s", "items": [{"key": "k", "path": "p", "mode": 512}]}},
            "spec.volumes[0].secret.items[0].mode",
        ),
        (
            {
                "projected": {
                    "sources": [{"secret": {"name": "s", "items": [{"key": "k", "path": "p", "mode": 512}]}}]
                }
            },
            "spec.volumes[0].projected.sources[0].secret.items[0].mode",
        ),
        # upstream reports downward API item errors at the source path, without the item index
        (
            {
                "downwardAPI": {
                    "items": [{"path": "p", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 512}]
                }
            },
            "spec.volumes[0].downwardAPI.mode",
        ),
        (
            {
                "projected": {
                    "sources": [{"downwardAPI": {"items": [{"path": "p", "fieldRef": {}, "mode": 512}]}}]
                }
            },
            "spec.volumes[0].projected.sources[0].downwardAPI.mode",
        ),
    ],
)
def test_volume_file_modes(volume: dict, path: str) -> None:
    errs = validate_pod(None, spec_with(volumes=[{"name": "v", **volume}]))
    assert [e.render() for e in errs] == [f"{path}: Invalid value: {errs[0].value}: {FILE_MODE}"]
    assert isinstance(errs[0].value, int)


@pytest.mark.parametrize("mode", [0, 0o777, 0o400])
def test_volume_file_mode_bounds_are_inclusive(mode: int) -> None:
    assert (
        messages(spec_with(volumes=[{"name": "v", "secret": {"secretName": "s", "defaultMode": mode}}])) == []
    )


def test_volume_names_required_unique_and_dns_labels() -> None:
    spec = spec_with(
        volumes=[
            {"emptyDir": {}},
            {"name": "a", "emptyDir": {}},
            {"name": "a", "emptyDir": {}},
            {"name": "B", "emptyDir": {}},
            {"name": "a.b", "emptyDir": {}},
        ]
    )
    assert messages(spec) == [
        "spec.volumes[0].name: Required value",
        'spec.volumes[2].name: Duplicate value: "a"',
        'spec.volumes[3].name: Invalid value: "B": a lowercase RFC 1123 label must consist of lower case '
        "alphanumeric characters or '-', and must start and end with an alphanumeric character "
        "(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        'spec.volumes[4].name: Invalid value: "a.b": must not contain dots',
    ]


def test_volume_source_required_and_single() -> None:
    spec = spec_with(
        volumes=[{"name": "none"}, {"name": "two", "secret": {"secretName": "s"}, "emptyDir": {}}]
    )
    assert messages(spec) == [
        "spec.volumes[0]: Required value: must specify a volume type",
        "spec.volumes[1].secret: Forbidden: may not specify more than 1 volume type",
    ]


def test_volume_source_requirements() -> None:
    spec = spec_with(
        volumes=[
            {"name": "a", "secret": {}},
            {"name": "b", "configMap": {"items": [{"key": "", "path": "/abs"}]}},
            {"name": "c", "hostPath": {"path": "/a/../b", "type": "Dir"}},
            {"name": "d", "persistentVolumeClaim": {}},
            {"name": "e", "hostPath": {}},
        ]
    )
    assert messages(spec) == [
        "spec.volumes[0].secret.secretName: Required value",
        "spec.volumes[1].configMap.name: Required value",
        "spec.volumes[1].configMap.items[0].key: Required value",
        'spec.volumes[1].configMap.items[0].path: Invalid value: "/abs": must be a relative path',
        "spec.volumes[2].hostPath.path: Invalid value: \"/a/../b\": must not contain '..'",
        'spec.volumes[2].hostPath.type: Unsupported value: "Dir": supported values: "", "BlockDevice", '
        '"CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"',
        "spec.volumes[3].persistentVolumeClaim.claimName: Required value",
        "spec.volumes[4].hostPath.path: Required value",
    ]


def test_projected_service_account_token_rules() -> None:
    spec = spec_with(
        volumes=[
            {
                "name": "p",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "t", "expirationSeconds": 60}},
                        {"serviceAccountToken": {}},
                    ]
                },
            }
        ]
    )
    assert messages(spec) == [
        "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: 60: "
        "may not specify a duration less than 10 minutes",
        "spec.volumes[0].projected.path: Required value",
    ]


def test_volume_mount_of_unknown_volume() -> None:
    spec = spec_with(
        containers=[{"name": "c", "image": "x", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}]
    )
    assert messages(spec) == ['spec.containers[0].volumeMounts[0].name: Not found: "x"']


def test_volume_with_an_error_cannot_be_mounted() -> None:
    spec = spec_with(
        volumes=[{"name": "v", "secret": {"secretName": "s", "defaultMode": 0o1000}}],
        containers=[{"name": "c", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
    )
    assert messages(spec) == [
        f"spec.volumes[0].secret.defaultMode: Invalid value: 512: {FILE_MODE}",
        'spec.containers[0].volumeMounts[0].name: Not found: "v"',
    ]


def test_volume_mount_required_unique_and_subpath() -> None:
    spec = spec_with(
        volumes=[{"name": "v", "emptyDir": {}}],
        containers=[
            {
                "name": "c",
                "image": "x",
                "volumeMounts": [
                    {"mountPath": "/a"},
                    {"name": "v", "mountPath": "/a"},
                    {"name": "v"},
                    {"name": "v", "mountPath": "/b", "subPath": "../x"},
                    {"name": "v", "mountPath": "/c", "subPathExpr": "/$(X)"},
                ],
            }
        ],
    )
    assert messages(spec) == [
        "spec.containers[0].volumeMounts[0].name: Required value",
        'spec.containers[0].volumeMounts[0].name: Not found: ""',
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/a": must be unique',
        "spec.containers[0].volumeMounts[2].mountPath: Required value",
        # upstream's subPath paths carry no index
        "spec.containers[0].volumeMounts.subPath: Invalid value: \"../x\": must not contain '..'",
        'spec.containers[0].volumeMounts.subPathExpr: Invalid value: "/$(X)": must be a relative path',
    ]


def test_mount_propagation_and_recursive_read_only() -> None:
    spec = spec_with(
        volumes=[{"name": "v", "emptyDir": {}}],
        containers=[
            {
                "name": "c",
                "image": "x",
                "volumeMounts": [
                    {"name": "v", "mountPath": "/a", "mountPropagation": "Bidirectional"},
                    {"name": "v", "mountPath": "/b", "recursiveReadOnly": "Enabled"},
                ],
            }
        ],
    )
    assert messages(spec) == [
        "spec.containers[0].volumeMounts.mountPropagation: Forbidden: "
        "Bidirectional mount propagation is available only to privileged containers",
        "spec.containers[0].volumeMounts.recursiveReadOnly: Forbidden: may only be specified when readOnly "
        "is true",
    ]
    spec["containers"][0]["securityContext"] = {"privileged": True}
    spec["containers"][0]["volumeMounts"][1]["readOnly"] = True
    assert messages(spec) == []


# ---------------------------------------------------------------------------------------------
# Containers


def test_containers_required() -> None:
    assert messages({"containers": []}) == ["spec.containers: Required value"]
    assert messages({}) == ["spec.containers: Required value"]


def test_short_containers_are_still_fully_validated() -> None:
    assert messages(spec_with(containers=[{"securityContext": {"runAsUser": -1}}])) == [
        "spec.containers[0].name: Required value",
        "spec.containers[0].image: Required value",
        "spec.containers[0].securityContext.runAsUser: Invalid value: -1: " + RANGE,
    ]
    assert messages(spec_with(containers=[{"name": "c", "securityContext": {"procMount": "x"}}])) == [
        "spec.containers[0].image: Required value",
        'spec.containers[0].securityContext.procMount: Unsupported value: "x": '
        'supported values: "Default", "Unmasked"',
    ]


def test_container_name_and_image_required() -> None:
    assert messages(spec_with(containers=[{}])) == [
        "spec.containers[0].name: Required value",
        "spec.containers[0].image: Required value",
    ]


def test_duplicate_container_names() -> None:
    spec = spec_with(
        containers=[{"name": "a", "image": "x"}, {"name": "a", "image": "x"}],
        initContainers=[
            {"name": "a", "image": "x"},
            {"name": "i", "image": "x"},
            {"name": "i", "image": "x"},
        ],
    )
    assert messages(spec) == [
        'spec.containers[1].name: Duplicate value: "a"',
        'spec.initContainers[0].name: Duplicate value: "a"',
        'spec.initContainers[2].name: Duplicate value: "i"',
    ]


def test_container_name_must_be_a_dns_label() -> None:
    assert messages(spec_with(containers=[{"name": "x" * 64, "image": "x"}])) == [
        f'spec.containers[0].name: Invalid value: "{"x" * 64}": must be no more than 63 characters'
    ]


def test_image_whitespace_only_for_pods() -> None:
    spec = spec_with(containers=[{"name": "c", "image": " busybox"}])
    assert messages(spec) == [
        'spec.containers[0].image: Invalid value: " busybox": must not have leading or trailing whitespace'
    ]
    assert messages(spec, resource_is_pod=False) == []


def test_ephemeral_containers_on_create_and_in_templates() -> None:
    spec = spec_with(ephemeralContainers=[{"name": "dbg", "image": "busybox", "targetContainerName": "c"}])
    assert messages(spec) == ["spec.ephemeralContainers: Forbidden: cannot be set on create"]
    assert messages(spec, on_create=False) == []
    errs = validate_pod(None, spec, ValidationOptions(resource_is_pod=False))
    assert [e.render(prefix=("spec", "template")) for e in errs] == [
        "spec.template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template"
    ]


def test_ephemeral_container_rules() -> None:
    spec = spec_with(
        volumes=[{"name": "v", "emptyDir": {}}],
        ephemeralContainers=[
            {
                "name": "c",
                "image": "x",
                "targetContainerName": "nope",
                "ports": [{"containerPort": 80}],
                "resources": {},
                "livenessProbe": {},
                "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "s"}],
            }
        ],
    )
    e = "cannot be set for an Ephemeral Container"
    assert messages(spec, on_create=False) == [
        'spec.ephemeralContainers[0].name: Duplicate value: "c"',
        'spec.ephemeralContainers[0].targetContainerName: Not found: "nope"',
        f"spec.ephemeralContainers[0].ports: Forbidden: {e}",
        f"spec.ephemeralContainers[0].livenessProbe: Forbidden: {e}",
        f"spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: {e}",
    ]


def test_init_container_restart_policy_and_probes() -> None:
    spec = spec_with(
        initContainers=[
            {"name": "a", "image": "x", "restartPolicy": "Never", "livenessProbe": {}},
            {"name": "b", "image": "x", "restartPolicy": "Always", "readinessProbe": {}},
        ],
        containers=[{"name": "c", "image": "x", "restartPolicy": "Always"}],
    )
    assert messages(spec) == [
        "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers",
        'spec.initContainers[0].restartPolicy: Unsupported value: "Never": supported values: "Always"',
        "spec.initContainers[0].livenessProbe: Forbidden: "
        "may not be set for init containers without restartPolicy=Always",
    ]


def test_ports_and_host_port_conflicts() -> None:
    spec = spec_with(
        containers=[
            {
                "name": "a",
                "image": "x",
                "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 0}],
            },
            {
                "name": "b",
                "image": "x",
                "ports": [
                    {"containerPort": 70000, "hostPort": 8080},
                    {"containerPort": 81, "hostPort": 8080, "protocol": "UDP"},
                    {"containerPort": 82, "protocol": "ICMP"},
                ],
            },
        ]
    )
    assert messages(spec) == [
        "spec.containers[0].ports[1].containerPort: Required value",
        "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, "
        "inclusive",
        'spec.containers[1].ports[2].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", '
        '"UDP"',
        'spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"',
    ]


def test_host_network_host_port_must_match() -> None:
    spec = spec_with(
        containers=[
            {
                "name": "a",
                "image": "x",
                "ports": [{"containerPort": 80, "hostPort": 81}, {"containerPort": 90}],
            }
        ],
        hostNetwork=True,
    )
    assert messages(spec) == [
        "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when "
        "`hostNetwork` is true"
    ]


def test_restart_policy_and_pull_policy() -> None:
    spec = spec_with(
        containers=[{"name": "c", "image": "x", "imagePullPolicy": "Sometimes"}], restartPolicy="Sometimes"
    )
    assert messages(spec) == [
        'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": '
        'supported values: "Always", "IfNotPresent", "Never"',
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", '
        '"Never"',
    ]


# ---------------------------------------------------------------------------------------------
# Order and robustness


def test_error_order_follows_validate_pod_spec() -> None:
    """Annotations, volumes, containers, init containers, pod securityContext, hostProcess, hostUsers, os."""
    spec = spec_with(
        pod={"runAsUser": -1},
        volumes=[{"name": "v"}],
        c={"runAsUser": -1},
        initContainers=[{"name": "i", "image": "x", "securityContext": {"runAsUser": -1}}],
        hostUsers=False,
        hostPID=True,
        os={"name": "linux"},
    )
    spec["securityContext"]["windowsOptions"] = {"hostProcess": True}
    meta = {"annotations": {SECCOMP_POD: "x"}}
    assert [e.field for e in validate_pod(meta, spec)] == [
        "metadata.annotations.seccomp.security.alpha.kubernetes.io/pod",
        "spec.volumes[0]",
        "spec.containers[0].securityContext.runAsUser",
        "spec.initContainers[0].securityContext.runAsUser",
        "spec.securityContext.runAsUser",
        "spec.hostNetwork",  # hostProcess containers need hostNetwork
        "spec.HostPID",
        "spec.securityContext.windowsOptions",
    ]


@pytest.mark.parametrize(
    "spec",
    [
        None,
        "nonsense",
        {"containers": "x"},
        {"containers": [None, 3, "x"]},
        {"containers": [{"name": 1, "image": ["x"], "securityContext": "x"}]},
        {"securityContext": {"runAsUser": "abc", "sysctls": "x", "seccompProfile": "x"}},
        {"volumes": [None, {"name": 5, "secret": "x"}], "containers": [{"volumeMounts": [None, "x"]}]},
        {"containers": [{"name": "c", "image": "x", "securityContext": {"runAsUser": True, "procMount": 1}}]},
        {"os": "linux", "hostUsers": "false", "hostPID": 1},
    ],
)
def test_wrong_types_never_raise(spec: object) -> None:
    errs = validate_pod({"annotations": {APPARMOR_C: 1, 2: "x"}}, spec)  # type: ignore[arg-type]
    assert all(isinstance(e, FieldError) for e in errs)
    for e in errs:
        e.render()


# ---------------------------------------------------------------------------------------------
# Upstream's quirky paths keep the real manifest location in ``where`` / ``location``


@pytest.mark.parametrize(
    ("spec", "meta", "opts", "shown", "location"),
    [
        (spec_with(hostUsers=False, hostPID=True), None, {}, "spec.HostPID", ("spec", "hostPID")),
        (spec_with(hostUsers=False, hostIPC=True), None, {}, "spec.HostIPC", ("spec", "hostIPC")),
        (
            spec_with(shareProcessNamespace=True, hostPID=True),
            None,
            {},
            "spec.securityContext.shareProcessNamespace",
            ("spec", "shareProcessNamespace"),
        ),
        (
            spec_with(
                volumes=[{"name": "v", "emptyDir": {}}],
                containers=[
                    {
                        "name": "c",
                        "image": "x",
                        "volumeMounts": [
                            {"name": "v", "mountPath": "/a"},
                            {"name": "v", "mountPath": "/b", "subPath": "/abs"},
                        ],
                    }
                ],
            ),
            None,
            {},
            "spec.containers[0].volumeMounts.subPath",
            ("spec", "containers", 0, "volumeMounts", 1, "subPath"),
        ),
        (
            spec_with(
                volumes=[
                    {"name": "v", "downwardAPI": {"items": [{"path": "a", "fieldRef": {}}, {"path": "b"}]}}
                ]
            ),
            None,
            {},
            "spec.volumes[0].downwardAPI",
            ("spec", "volumes", 0, "downwardAPI", "items", 1),
        ),
        (
            spec_with(volumes=[{"name": "v", "downwardAPI": {}, "secret": {"secretName": "s"}}]),
            None,
            {},
            "spec.volumes[0].downwarAPI",
            ("spec", "volumes", 0, "downwardAPI"),
        ),
        (
            spec_with(
                initContainers=[
                    {"name": "a", "image": "x"},
                    {"name": "b", "image": "x", "ports": [{"containerPort": 1, "hostPort": 5}] * 2},
                ]
            ),
            None,
            {},
            "spec.initContainers[0].ports[1].hostPort",
            ("spec", "initContainers", 1, "ports", 1, "hostPort"),
        ),
        (
            spec_with(),
            {"annotations": {SECCOMP_POD: "bad"}},
            {"resource_is_pod": False},
            "annotations.seccomp.security.alpha.kubernetes.io/pod",
            ("metadata", "annotations", SECCOMP_POD),
        ),
    ],
)
def test_quirky_paths_keep_the_manifest_location(
    spec: dict, meta: dict | None, opts: dict, shown: str, location: tuple
) -> None:
    (err,) = validate_pod(meta, spec, ValidationOptions(**opts))
    assert (err.field, err.location) == (shown, location)


def test_location_is_the_path_when_upstream_spells_it_plainly() -> None:
    (err,) = validate_pod(None, spec_with(pod={"runAsUser": -1}))
    assert err.where == ()
    assert err.location == err.path == ("spec", "securityContext", "runAsUser")
