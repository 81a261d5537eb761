"""Pod Security Standards evaluator: exact messages (psa.md §3/§4 golden strings), ordering, versions,
namespace labels, field attribution and robustness against malformed input."""

from __future__ import annotations

import pytest

from podsec.policy.pss import (
    LATEST_MINOR,
    LEVELS,
    CheckOutcome,
    PSSResult,
    check_ids,
    evaluate,
    go_quote,
    namespace_policy,
    parse_level,
    parse_version,
)


def c(name: str, **fields: object) -> dict:
    """A container dict."""
    return {"name": name, "image": "img", **fields}


def sc(name: str, **security_context: object) -> dict:
    """A container with a securityContext."""
    return c(name, securityContext=security_context)


def failure(
    check_id: str,
    spec: dict,
    metadata: dict | None = None,
    level: str = "restricted",
    version: str = "latest",
) -> CheckOutcome:
    """The failed outcome of ``check_id`` (which must fail)."""
    r = evaluate(metadata or {}, spec, level, version)
    found = [f for f in r.failures if f.id == check_id]
    assert found, f"{check_id} did not fail at {level}:{version}: {r.message or 'allowed'}"
    return found[0]


def passes(
    check_id: str,
    spec: dict,
    metadata: dict | None = None,
    level: str = "restricted",
    version: str = "latest",
) -> bool:
    return all(f.id != check_id for f in evaluate(metadata or {}, spec, level, version).failures)


# ------------------------------------------------------------------------------------------------
# §3 worked example and aggregation


def test_worked_example_bare_container() -> None:
    r = evaluate({"name": "test"}, {"containers": [c("c")]}, "restricted", "latest")
    assert not r.allowed
    assert f'pods "test" is forbidden: {r.message}' == (
        'pods "test" is forbidden: violates PodSecurity "restricted:latest": '
        "allowPrivilegeEscalation != false "
        '(container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")'
    )
    assert r.forbidden_reason() == (
        "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
    )
    assert [f.id for f in r.failures] == [
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "runAsNonRoot",
        "seccompProfile_restricted",
    ]
    assert all(not f.allowed for f in r.failures)


def test_allowed_result_and_configured_version_in_message() -> None:
    good = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [sc("c", allowPrivilegeEscalation=False, capabilities={"drop": ["ALL"]})],
    }
    r = evaluate({}, good, "restricted")
    assert (r.allowed, r.failures, r.message, r.level, r.version) == (True, [], "", "restricted", "latest")
    r = evaluate({}, {"hostPID": True}, "baseline", "v1.99")  # clamped to v1.37, message keeps v1.99
    assert r.message == 'violates PodSecurity "baseline:v1.99": host namespaces (hostPID=true)'


def test_forbidden_detail_without_detail_and_unknown_reason() -> None:
    r = PSSResult(
        "baseline", "v1.2", False, [CheckOutcome("x", False, "r1"), CheckOutcome("y", False, "", "d")]
    )
    assert r.forbidden_reason() == "r1, unknown forbidden reason"
    assert r.forbidden_detail() == "r1, unknown forbidden reason (d)"
    assert r.message == 'violates PodSecurity "baseline:v1.2": r1, unknown forbidden reason (d)'


def test_privileged_level_runs_nothing() -> None:
    r = evaluate({}, {"hostNetwork": True, "containers": [sc("c", privileged=True)]}, "privileged", "v1.0")
    assert r.allowed and r.failures == [] and r.message == ""


# ------------------------------------------------------------------------------------------------
# §2 ordering and versions


BASELINE_IDS = [
    "appArmorProfile",
    "capabilities_baseline",
    "hostNamespaces",
    "hostPathVolumes",
    "hostPorts",
    "privileged",
    "procMount",
    "seLinuxOptions",
    "seccompProfile_baseline",
    "sysctls",
    "windowsHostProcess",
]


def test_check_order_tables() -> None:
    assert LATEST_MINOR == 37
    assert check_ids("privileged") == []
    for n in (0, 33):
        assert check_ids("baseline", f"v1.{n}") == BASELINE_IDS
    with_probes = [*BASELINE_IDS[:5], "hostProbesAndHostLifecycle", *BASELINE_IDS[5:]]
    assert check_ids("baseline", "v1.34") == with_probes
    assert check_ids("baseline", "latest") == with_probes
    r_base = [i for i in BASELINE_IDS if i != "hostPathVolumes"]
    assert check_ids("restricted", "v1.7") == [*r_base, "restrictedVolumes", "runAsNonRoot"]
    assert check_ids("restricted", "v1.8") == [
        *r_base,
        "allowPrivilegeEscalation",
        "restrictedVolumes",
        "runAsNonRoot",
    ]
    r19 = [i for i in r_base if i != "seccompProfile_baseline"]
    assert check_ids("restricted", "v1.19") == [
        *r19,
        "allowPrivilegeEscalation",
        "restrictedVolumes",
        "runAsNonRoot",
        "seccompProfile_restricted",
    ]
    r22 = [i for i in r19 if i != "capabilities_baseline"]
    assert check_ids("restricted", "v1.22") == [
        *r22,
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "restrictedVolumes",
        "runAsNonRoot",
        "seccompProfile_restricted",
    ]
    assert check_ids("restricted", "v1.23")[-3:] == ["runAsNonRoot", "runAsUser", "seccompProfile_restricted"]
    assert "procMount" in check_ids("restricted", "v1.34")
    assert "hostProbesAndHostLifecycle" in check_ids("restricted", "v1.34")
    assert check_ids("restricted", "v1.35") == check_ids("restricted", "latest") == [
        "appArmorProfile", "hostNamespaces", "hostPorts", "hostProbesAndHostLifecycle", "privileged",
        "seLinuxOptions", "sysctls", "windowsHostProcess", "allowPrivilegeEscalation",
        "capabilities_restricted", "procMount_restricted", "restrictedVolumes", "runAsNonRoot", "runAsUser",
        "seccompProfile_restricted",
    ]  # fmt: skip


def test_message_order_follows_check_order() -> None:
    spec = {
        "hostIPC": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [sc("a", privileged=True, seLinuxOptions={"type": "bad_t"})],
    }
    r = evaluate({}, spec, "baseline", "v1.30")
    assert [f.id for f in r.failures] == ["hostNamespaces", "hostPathVolumes", "privileged", "seLinuxOptions"]


@pytest.mark.parametrize("good", ["latest", "v1.0", "v1.9", "v1.10", "v1.37", "v1.38", "v1.1000"])
def test_parse_version_ok(good: str) -> None:
    assert parse_version(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "Latest",
        "v1",
        "v1.",
        "v1.01",
        "v1.-1",
        "v2.0",
        "1.25",
        "v1.25\n",
        " v1.2",
        "v1.99999999999999999999",
    ],
)
def test_parse_version_bad(bad: str) -> None:
    with pytest.raises(ValueError, match=r'^must be "latest" or "v1\.x"$'):
        parse_version(bad)
    with pytest.raises(ValueError):
        evaluate({}, {}, "baseline", bad)


def test_parse_level() -> None:
    assert LEVELS == ("privileged", "baseline", "restricted")
    for lv in LEVELS:
        assert parse_level(lv) == lv
    for bad in ("", "Restricted", "strict", " baseline"):
        with pytest.raises(ValueError, match=r"^must be one of privileged, baseline, restricted$"):
            parse_level(bad)
        with pytest.raises(ValueError):
            evaluate({}, {}, bad)


# ------------------------------------------------------------------------------------------------
# §5 namespace labels

ENF = "pod-security.kubernetes.io/enforce"
VER = "pod-security.kubernetes.io/enforce-version"


def test_namespace_policy() -> None:
    assert namespace_policy(None) == ("privileged", "latest", [])
    assert namespace_policy({}) == ("privileged", "latest", [])
    assert namespace_policy({"team": "x"}) == ("privileged", "latest", [])
    assert namespace_policy({ENF: "baseline"}) == ("baseline", "latest", [])
    assert namespace_policy({ENF: "restricted", VER: "v1.25"}) == ("restricted", "v1.25", [])
    assert namespace_policy({VER: "v1.2"}) == ("privileged", "v1.2", [])
    assert namespace_policy({ENF: "foo"}) == (
        "restricted",
        "latest",
        [f'metadata.labels[{ENF}]: Invalid value: "foo": must be one of privileged, baseline, restricted'],
    )
    assert namespace_policy({ENF: "baseline", VER: "1.25"}) == (
        "baseline",
        "latest",
        [f'metadata.labels[{VER}]: Invalid value: "1.25": must be "latest" or "v1.x"'],
    )
    level, version, errors = namespace_policy({ENF: "", VER: "v1.01"})
    assert (level, version) == ("restricted", "latest")
    assert errors == [
        f'metadata.labels[{ENF}]: Invalid value: "": must be one of privileged, baseline, restricted',
        f'metadata.labels[{VER}]: Invalid value: "v1.01": must be "latest" or "v1.x"',
    ]
    assert namespace_policy({ENF: 'a"b'})[2] == [
        f'metadata.labels[{ENF}]: Invalid value: "a\\"b": must be one of privileged, baseline, restricted'
    ]


# ------------------------------------------------------------------------------------------------
# §4 golden strings per check


def test_allow_privilege_escalation_messages_and_windows() -> None:
    spec = {
        "initContainers": [c("i")],
        "containers": [
            sc("a", allowPrivilegeEscalation=True),
            sc("b", allowPrivilegeEscalation=False),
            sc("d"),
        ],
    }
    f = failure("allowPrivilegeEscalation", spec)
    assert f.reason == "allowPrivilegeEscalation != false"
    assert f.detail == 'containers "i", "a", "d" must set securityContext.allowPrivilegeEscalation=false'
    win = {**spec, "os": {"name": "windows"}}
    assert passes("allowPrivilegeEscalation", win, version="v1.25")
    assert not passes("allowPrivilegeEscalation", win, version="v1.24")
    assert passes("allowPrivilegeEscalation", spec, version="v1.7")  # not yet a check


def test_app_armor_profile() -> None:
    f = failure(
        "appArmorProfile", {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}, level="baseline"
    )
    assert (f.reason, f.detail) == (
        "forbidden AppArmor profile",
        'pod must not set AppArmor profile type to "Unconfined"',
    )
    spec = {
        "securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
        "initContainers": [sc("bar", appArmorProfile={"type": "Unconfined"})],
        "containers": [c("foo")],
    }
    assert (
        failure("appArmorProfile", spec).detail
        == 'container "bar" must not set AppArmor profile type to "Unconfined"'
    )
    annotations = {
        "container.apparmor.security.beta.kubernetes.io/": "bogus",
        "container.apparmor.security.beta.kubernetes.io/a": "",
        "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
        "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
        "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
        "container.apparmor.security.beta.kubernetes.io/f": "unknown",
        "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
        "other": "unconfined",
    }
    f = failure("appArmorProfile", {}, {"annotations": annotations})
    assert f.reason == "forbidden AppArmor profiles"
    assert f.detail == (
        "annotations must not set AppArmor profile type to "
        '"container.apparmor.security.beta.kubernetes.io/="bogus"", '
        '"container.apparmor.security.beta.kubernetes.io/e="unconfined"", '
        '"container.apparmor.security.beta.kubernetes.io/f="unknown""'
    )
    assert f.fields == [("metadata", "annotations", k) for k in (
        "container.apparmor.security.beta.kubernetes.io/",
        "container.apparmor.security.beta.kubernetes.io/e",
        "container.apparmor.security.beta.kubernetes.io/f",
    )]  # fmt: skip
    both = {
        "securityContext": {"appArmorProfile": {}},  # a missing type is "" and forbidden
        "containers": [
            sc("x", appArmorProfile={"type": "Unconfined"}),
            sc("y", appArmorProfile={"type": "Unconfined"}),
        ],
    }
    f = failure(
        "appArmorProfile", both, {"annotations": {"container.apparmor.security.beta.kubernetes.io/x": "u\n"}}
    )
    assert f.detail == (
        'pod and containers "x", "y" and annotation must not set AppArmor profile type to '
        '"", "Unconfined", "container.apparmor.security.beta.kubernetes.io/x="u\\n""'
    )
    assert f.fields[0] == ("spec", "securityContext", "appArmorProfile")


def test_capabilities_baseline() -> None:
    spec = {
        "containers": [
            sc("a", capabilities={"add": ["FOO", "BAR"]}),
            sc("b", capabilities={"add": ["BAR", "BAZ"]}),
            sc("c", capabilities={"add": ["CHOWN", "NET_BIND_SERVICE"]}),
        ]
    }
    f = failure("capabilities_baseline", spec, level="baseline")
    assert f.reason == "non-default capabilities"
    assert (
        f.detail
        == 'containers "a", "b" must not include "BAR", "BAZ", "FOO" in securityContext.capabilities.add'
    )
    for cap in ("chown", "CAP_CHOWN", "SYS_ADMIN"):
        assert not passes(
            "capabilities_baseline", {"containers": [sc("a", capabilities={"add": [cap]})]}, level="baseline"
        )


def test_capabilities_restricted() -> None:
    spec = {"containers": [
        sc("a", capabilities={"add": ["FOO", "BAR"]}),
        sc("b", capabilities={"add": ["BAR", "BAZ"]}),
        sc("c", capabilities={"add": ["NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL", "FOO"]}),
    ]}  # fmt: skip
    f = failure("capabilities_restricted", spec)
    assert f.reason == "unrestricted capabilities"
    assert f.detail == (
        'containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; '
        'containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" '
        "in securityContext.capabilities.add"
    )
    each = [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ]
    assert not passes("capabilities_restricted", {"containers": [sc("a", capabilities={"drop": each})]})
    assert passes("capabilities_restricted", {"containers": [sc("a", capabilities={"drop": ["ALL"]})]})


def test_host_namespaces() -> None:
    f = failure("hostNamespaces", {"hostIPC": True, "hostNetwork": True, "hostPID": True}, level="baseline")
    assert (f.reason, f.detail) == ("host namespaces", "hostNetwork=true, hostPID=true, hostIPC=true")
    assert f.fields == [("spec", "hostNetwork"), ("spec", "hostPID"), ("spec", "hostIPC")]
    assert passes("hostNamespaces", {"hostNetwork": 1, "hostPID": "true", "hostIPC": False}, level="baseline")


def test_host_path_volumes_fields() -> None:
    spec = {
        "volumes": [
            {"name": "a", "emptyDir": {}},
            {"name": "b"},
            {"name": "h1", "hostPath": {"path": "/"}},
            {"name": "h2", "hostPath": {}},
        ]
    }
    f = failure("hostPathVolumes", spec, level="baseline")
    assert (f.reason, f.detail) == ("hostPath volumes", 'volumes "h1", "h2"')
    assert f.fields == [("spec", "volumes", 2), ("spec", "volumes", 3)]
    f = failure("restrictedVolumes", spec)
    assert f.detail == 'volumes "h1", "h2" use restricted volume type "hostPath"'
    assert f.fields == [("spec", "volumes", 2), ("spec", "volumes", 3)]
    one = failure(
        "hostPathVolumes", {"volumes": [{"name": "x", "hostPath": {"path": "/"}}]}, level="baseline"
    )
    assert one.detail == 'volume "x"'


def test_host_ports() -> None:
    spec = {
        "containers": [c("a", ports=[{"hostPort": 0}]), c("b", ports=[{"hostPort": 0}, {"hostPort": 20}])]
    }
    f = failure("hostPorts", spec, level="baseline")
    assert (f.reason, f.detail) == ("hostPort", 'container "b" uses hostPort 20')
    assert f.fields == [("spec", "containers", 1, "ports", 1, "hostPort")]
    spec = {
        "containers": [
            c("a", ports=[{"hostPort": 0}]),
            c("b", ports=[{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]),
            c("c", ports=[{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]),
        ]
    }
    assert failure("hostPorts", spec).detail == 'containers "b", "c" use hostPorts 10, 20, 30'
    spec = {"containers": [c("a", ports=[{"hostPort": 8080}, {"hostPort": 10000}, {"hostPort": 8080}])]}
    assert failure("hostPorts", spec).detail == 'container "a" uses hostPorts 10000, 8080'
    assert passes("hostPorts", {"containers": [c("a", ports=[{"hostPort": False}, {"containerPort": 80}])]})


def test_host_probes_and_host_lifecycle() -> None:
    spec = {"containers": [c(
        "a",
        livenessProbe={"httpGet": {"host": "127.0.0.1"}},
        readinessProbe={"tcpSocket": {"host": "::1"}},
        startupProbe={"httpGet": {"host": "localhost"}, "grpc": {"port": 1}},
    )]}  # fmt: skip
    f = failure("hostProbesAndHostLifecycle", spec, level="baseline")
    assert f.reason == "probe or lifecycle host"
    assert f.detail == 'container "a" uses probe or lifecycle hosts "127.0.0.1", "::1", "localhost"'
    assert f.fields[0] == ("spec", "containers", 0, "livenessProbe", "httpGet", "host")
    spec = {"containers": [
        c("valid", livenessProbe={"httpGet": {"host": ""}}),
        c("invalid2", lifecycle={"preStop": {"tcpSocket": {"host": "b.com"}}},
          startupProbe={"httpGet": {"host": "a.com"}}),
        c("invalid1", livenessProbe={"httpGet": {"host": "a.com"}}),
    ]}  # fmt: skip
    assert failure("hostProbesAndHostLifecycle", spec).detail == (
        'containers "invalid1", "invalid2" use probe or lifecycle hosts "a.com", "b.com"'
    )
    assert passes("hostProbesAndHostLifecycle", spec, level="baseline", version="v1.33")


def test_privileged() -> None:
    spec = {
        "initContainers": [sc("i", privileged=True)],
        "containers": [sc("a", privileged=False), sc("b", privileged=True)],
    }
    f = failure("privileged", spec, level="baseline")
    assert (f.reason, f.detail) == (
        "privileged",
        'containers "i", "b" must not set securityContext.privileged=true',
    )
    assert f.fields == [
        ("spec", "initContainers", 0, "securityContext", "privileged"),
        ("spec", "containers", 1, "securityContext", "privileged"),
    ]


def test_proc_mount_values_and_user_namespaces() -> None:
    spec = {
        "containers": [
            c("a"),
            sc("b"),
            sc("c", procMount="Default"),
            sc("d", procMount="Unmasked"),
            sc("e", procMount="other"),
        ]
    }
    f = failure("procMount", spec, level="baseline")
    assert (f.reason, f.detail) == (
        "procMount",
        'containers "d", "e" must not set securityContext.procMount to "Unmasked", "other"',
    )
    userns = {**spec, "hostUsers": False}
    assert passes("procMount", userns, level="baseline", version="v1.35")
    assert not passes("procMount", userns, level="baseline", version="v1.34")
    f = failure("procMount_restricted", userns, version="v1.35")
    assert (f.reason, f.detail) == (
        "procMount",
        'containers "d", "e" must not set securityContext.procMount to "Unmasked", "other"',
    )


def test_restricted_volumes_list() -> None:
    allowed = [
        "emptyDir",
        "secret",
        "persistentVolumeClaim",
        "downwardAPI",
        "configMap",
        "projected",
        "csi",
        "ephemeral",
        "image",
    ]
    restricted = [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ]
    volumes = [{"name": f"a{i + 1}", src: {}} for i, src in enumerate(allowed)]
    volumes += [{"name": f"b{i + 1}", src: {}} for i, src in enumerate(restricted)]
    volumes += [{"name": "c1", "futureVolume": {}}, {"name": "d1"}, {"name": "d2", "hostPath": None}]
    f = failure("restrictedVolumes", {"volumes": volumes})
    assert f.reason == "restricted volume types"
    assert f.detail == (
        'volumes "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11", "b12", "b13", "b14", '
        '"b15", "b16", "b17", "b18", "b19", "b20", "b21", "c1" use restricted volume types '
        '"awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", '
        '"flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "hostPath", "iscsi", "nfs", '
        '"photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "unknown", '
        '"vsphereVolume"'
    )
    assert f.fields == [
        ("spec", "volumes", i) for i in range(len(allowed), len(allowed) + len(restricted) + 1)
    ]
    assert failure("restrictedVolumes", {"volumes": [{"name": "n", "nfs": {}}]}).detail == (
        'volume "n" uses restricted volume type "nfs"'
    )


def test_run_as_non_root() -> None:
    f = failure("runAsNonRoot", {"containers": [c("a")]})
    assert (f.reason, f.detail) == (
        "runAsNonRoot != true",
        'pod or container "a" must set securityContext.runAsNonRoot=true',
    )
    f = failure("runAsNonRoot", {"securityContext": {"runAsNonRoot": False}, "containers": [c("a")]})
    assert f.detail == "pod must not set securityContext.runAsNonRoot=false"
    spec = {
        "securityContext": {"runAsNonRoot": True},
        "containers": [
            c("a"),
            sc("b"),
            sc("c", runAsNonRoot=False),
            sc("d", runAsNonRoot=False),
            sc("e", runAsNonRoot=True),
        ],
    }
    assert (
        failure("runAsNonRoot", spec).detail
        == 'containers "c", "d" must not set securityContext.runAsNonRoot=false'
    )
    spec = {"containers": [c("a"), sc("b", runAsUser=1000), sc("d", runAsNonRoot=True)]}
    assert (
        failure("runAsNonRoot", spec).detail
        == 'pod or containers "a", "b" must set securityContext.runAsNonRoot=true'
    )
    spec = {"securityContext": {"runAsNonRoot": False}, "containers": [c("a"), sc("b", runAsNonRoot=False)]}
    assert (
        failure("runAsNonRoot", spec).detail
        == 'pod and container "b" must not set securityContext.runAsNonRoot=false'
    )
    userns = {"hostUsers": False, "containers": [c("a")]}
    assert passes("runAsNonRoot", userns, version="v1.35")
    assert not passes("runAsNonRoot", userns, version="v1.34")
    assert not passes("runAsNonRoot", {"hostUsers": True, "containers": [c("a")]})


def test_run_as_user() -> None:
    f = failure("runAsUser", {"securityContext": {"runAsUser": 0}, "containers": [c("a")]})
    assert (f.reason, f.detail) == ("runAsUser=0", "pod must not set runAsUser=0")
    assert f.fields == [("spec", "securityContext", "runAsUser")]
    spec = {
        "securityContext": {"runAsUser": 1000},
        "containers": [c("a"), sc("b"), sc("c", runAsUser=0), sc("d", runAsUser=0), sc("e", runAsUser=1)],
    }
    f = failure("runAsUser", spec)
    assert f.detail == 'containers "c", "d" must not set runAsUser=0'
    assert f.fields == [
        ("spec", "containers", 2, "securityContext", "runAsUser"),
        ("spec", "containers", 3, "securityContext", "runAsUser"),
    ]
    spec = {"securityContext": {"runAsUser": 0}, "ephemeralContainers": [sc("dbg", runAsUser=0)]}
    f = failure("runAsUser", spec)
    assert f.detail == 'pod and container "dbg" must not set runAsUser=0'
    assert f.fields == [
        ("spec", "securityContext", "runAsUser"),
        ("spec", "ephemeralContainers", 0, "securityContext", "runAsUser"),
    ]
    assert passes(
        "runAsUser", {"securityContext": {"runAsUser": False}, "containers": [sc("a", runAsUser=0.5)]}
    )
    assert passes("runAsUser", {"securityContext": {"runAsUser": 0}}, version="v1.22")
    assert passes("runAsUser", {"hostUsers": False, "securityContext": {"runAsUser": 0}}, version="v1.35")
    assert not passes("runAsUser", {"hostUsers": False, "securityContext": {"runAsUser": 0}}, version="v1.34")


def test_se_linux_options_parts() -> None:
    ok = [
        sc("a", seLinuxOptions={"type": "container_t"}),
        sc("b", seLinuxOptions={"type": "container_init_t"}),
        sc("c", seLinuxOptions={"type": "container_kvm_t", "level": "s0:c1"}),
    ]
    bad = [
        sc("d", seLinuxOptions={"type": "bar"}),
        sc("e", seLinuxOptions={"user": "bar"}),
        sc("f", seLinuxOptions={"role": "baz"}),
    ]
    pod = {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}}
    f = failure("seLinuxOptions", {"securityContext": pod, "containers": ok + bad}, level="baseline")
    assert f.reason == "seLinuxOptions"
    assert f.detail == (
        'pod and containers "d", "e", "f" set forbidden securityContext.seLinuxOptions: '
        'types "bar", "foo"; user may not be set; role may not be set'
    )
    f = failure("seLinuxOptions", {"securityContext": pod, "containers": ok})
    assert (
        f.detail == 'pod set forbidden securityContext.seLinuxOptions: type "foo"; '
        "user may not be set; role may not be set"
    )
    f = failure("seLinuxOptions", {"securityContext": {"seLinuxOptions": {}}, "containers": ok + bad})
    assert f.detail == (
        'containers "d", "e", "f" set forbidden securityContext.seLinuxOptions: '
        'type "bar"; user may not be set; role may not be set'
    )
    f = failure("seLinuxOptions", {"containers": [sc("e", seLinuxOptions={"user": "u"})]})
    assert f.detail == 'container "e" set forbidden securityContext.seLinuxOptions: user may not be set'
    assert f.fields == [("spec", "containers", 0, "securityContext", "seLinuxOptions", "user")]
    engine = {"containers": [sc("a", seLinuxOptions={"type": "container_engine_t"})]}
    assert passes("seLinuxOptions", engine, level="baseline", version="v1.31")
    assert failure("seLinuxOptions", engine, level="baseline", version="v1.30").detail == (
        'container "a" set forbidden securityContext.seLinuxOptions: type "container_engine_t"'
    )


def test_seccomp_annotations_v1_18() -> None:
    md = {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}}
    f = failure("seccompProfile_baseline", {}, md, level="baseline", version="v1.18")
    assert (f.reason, f.detail) == (
        "seccompProfile",
        'forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined"',
    )
    spec = {"containers": [c("a"), c("b"), c("c")]}
    md = {
        "annotations": {
            "container.seccomp.security.alpha.kubernetes.io/a": "unconfined",
            "container.seccomp.security.alpha.kubernetes.io/b": "unknown",
            "container.seccomp.security.alpha.kubernetes.io/z": "unconfined",
        }
    }
    f = failure("seccompProfile_baseline", spec, md, level="restricted", version="v1.18")
    assert f.detail == (
        'forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", '
        'container.seccomp.security.alpha.kubernetes.io/b="unknown"'
    )
    md["annotations"]["seccomp.security.alpha.kubernetes.io/pod"] = "unconfined"
    f = failure("seccompProfile_baseline", spec, md, level="baseline", version="v1.0")
    assert f.detail == (
        'forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", '
        'container.seccomp.security.alpha.kubernetes.io/b="unknown", '
        'seccomp.security.alpha.kubernetes.io/pod="unconfined"'
    )
    assert f.fields[-1] == ("metadata", "annotations", "seccomp.security.alpha.kubernetes.io/pod")
    empty = {"annotations": {"seccomp.security.alpha.kubernetes.io/pod": ""}}
    assert failure("seccompProfile_baseline", {}, empty, level="baseline", version="v1.18").detail == (
        'forbidden annotation seccomp.security.alpha.kubernetes.io/pod=""'
    )
    fine = {
        "annotations": {
            "seccomp.security.alpha.kubernetes.io/pod": "docker/default",
            "container.seccomp.security.alpha.kubernetes.io/a": "localhost/x",
        }
    }
    assert passes("seccompProfile_baseline", spec, fine, level="baseline", version="v1.18")
    assert passes(
        "seccompProfile_baseline", spec, md, level="baseline", version="v1.19"
    )  # fields only from v1.19


def test_seccomp_fields() -> None:
    unconfined = {"type": "Unconfined"}
    f = failure(
        "seccompProfile_baseline",
        {"securityContext": {"seccompProfile": unconfined}, "containers": [c("a")]},
        level="baseline",
        version="v1.19",
    )
    assert f.detail == 'pod must not set securityContext.seccompProfile.type to "Unconfined"'
    containers = [
        c("a"),
        sc("b"),
        sc("c", seccompProfile=unconfined),
        sc("d", seccompProfile=unconfined),
        sc("e", seccompProfile={"type": "RuntimeDefault"}),
    ]
    spec = {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}, "containers": containers}
    assert failure("seccompProfile_baseline", spec, level="baseline").detail == (
        'containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined"'
    )
    assert failure("seccompProfile_restricted", spec).detail == (
        'containers "c", "d" must not set securityContext.seccompProfile.type to "Unconfined"'
    )
    spec = {
        "securityContext": {"seccompProfile": unconfined},
        "containers": [*containers, sc("x", seccompProfile={})],
    }
    assert failure("seccompProfile_restricted", spec).detail == (
        'pod and containers "c", "d", "x" must not set securityContext.seccompProfile.type to '
        '"", "Unconfined"'
    )
    f = failure(
        "seccompProfile_restricted",
        {"containers": [c("a"), sc("b", seccompProfile={"type": "Localhost"}), sc("c", runAsUser=5)]},
    )
    assert (
        f.detail == 'pod or containers "a", "c" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost"'
    )
    assert f.fields == [("spec", "containers", 0), ("spec", "containers", 2, "securityContext")]
    win = {"os": {"name": "windows"}, "containers": [c("a")]}
    assert passes("seccompProfile_restricted", win, version="v1.25")
    assert not passes("seccompProfile_restricted", win, version="v1.24")


def test_sysctls_versions() -> None:
    spec = {"securityContext": {"sysctls": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}}
    f = failure("sysctls", spec, level="baseline")
    assert (f.reason, f.detail) == ("forbidden sysctls", "a, b, a")
    assert f.fields == [("spec", "securityContext", "sysctls", i) for i in range(3)]
    for name, first in (
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_fin_timeout", 29),
        ("net.ipv4.tcp_wmem", 32),
        ("net.ipv4.tcp_notsent_lowat", 37),
    ):
        spec = {
            "securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced"}, {"name": name, "value": "1"}]}
        }
        assert passes("sysctls", spec, level="baseline", version=f"v1.{first}")
        assert failure("sysctls", spec, level="baseline", version=f"v1.{first - 1}").detail == name


def test_windows_host_process() -> None:
    wo = {"windowsOptions": {"hostProcess": True}}
    spec = {"securityContext": wo, "containers": [c("a", securityContext=wo), c("b", securityContext=wo)]}
    f = failure("windowsHostProcess", spec, level="baseline")
    assert (f.reason, f.detail) == (
        "hostProcess",
        'pod and containers "a", "b" must not set securityContext.windowsOptions.hostProcess=true',
    )
    assert f.fields[0] == ("spec", "securityContext", "windowsOptions", "hostProcess")


# ------------------------------------------------------------------------------------------------
# field attribution


def test_allow_privilege_escalation_fields() -> None:
    spec = {
        "initContainers": [c("i")],
        "containers": [sc("a"), sc("b", allowPrivilegeEscalation=True), c("n", securityContext=None)],
    }
    f = failure("allowPrivilegeEscalation", spec)
    assert f.fields == [
        ("spec", "initContainers", 0),
        ("spec", "containers", 0, "securityContext"),
        ("spec", "containers", 1, "securityContext", "allowPrivilegeEscalation"),
        ("spec", "containers", 2, "securityContext"),
    ]


def test_implicit_failures_point_at_containers() -> None:
    r = evaluate({}, {"containers": [c("c")]}, "restricted")
    assert {f.id: f.fields for f in r.failures} == {
        "allowPrivilegeEscalation": [("spec", "containers", 0)],
        "capabilities_restricted": [("spec", "containers", 0)],
        "runAsNonRoot": [("spec", "containers", 0)],
        "seccompProfile_restricted": [("spec", "containers", 0)],
    }
    spec = {
        "containers": [sc("c", capabilities={"drop": ["NET_RAW"], "add": ["NET_BIND_SERVICE", "SYS_ADMIN"]})]
    }
    assert failure("capabilities_restricted", spec).fields == [
        ("spec", "containers", 0, "securityContext", "capabilities", "drop"),
        ("spec", "containers", 0, "securityContext", "capabilities", "add", 1),
    ]


# ------------------------------------------------------------------------------------------------
# helpers and robustness


def test_go_quote() -> None:
    assert go_quote("") == '""'
    assert go_quote("unconfined") == '"unconfined"'
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("\a\b\f\n\r\t\v") == '"\\a\\b\\f\\n\\r\\t\\v"'
    assert go_quote("\x00\x1b\x7f") == '"\\x00\\x1b\\x7f"'
    assert go_quote("héllo ☃ 日本") == '"héllo ☃ 日本"'
    assert go_quote("\u00a0\u200b\u2028") == '"\\u00a0\\u200b\\u2028"'
    assert go_quote("\U000e0001") == '"\\U000e0001"'
    assert go_quote("\U0001f600") == '"\U0001f600"'


def test_python_typing_traps() -> None:
    spec = {
        "hostNetwork": 1,
        "securityContext": {"runAsUser": False, "runAsNonRoot": 1},
        "containers": [
            sc("a", privileged=1, allowPrivilegeEscalation=0, runAsUser=False, ports=None, procMount=None)
        ],
    }
    r = evaluate({}, spec, "restricted")
    assert [f.id for f in r.failures] == [
        "allowPrivilegeEscalation", "capabilities_restricted", "runAsNonRoot", "seccompProfile_restricted"
    ]  # fmt: skip
    assert (
        failure("runAsNonRoot", spec).detail
        == 'pod or container "a" must set securityContext.runAsNonRoot=true'
    )


def test_ruamel_scalar_subclasses() -> None:
    from io import StringIO

    from ruamel.yaml import YAML

    doc = YAML().load(StringIO(
        "metadata: {name: x}\n"
        "spec:\n"
        "  hostPID: &t true\n"
        "  securityContext: {runAsUser: 0, runAsNonRoot: true}\n"
        "  containers:\n"
        "  - name: c\n"
        "    ports: [{hostPort: 0x50}]\n"
        "    securityContext: {allowPrivilegeEscalation: &f false, privileged: *t}\n"
    ))  # fmt: skip
    r = evaluate(doc["metadata"], doc["spec"], "restricted", "latest")
    by_id = {f.id: f.detail for f in r.failures}
    assert by_id["hostNamespaces"] == "hostPID=true"
    assert by_id["hostPorts"] == 'container "c" uses hostPort 80'
    assert by_id["privileged"] == 'container "c" must not set securityContext.privileged=true'
    assert by_id["runAsUser"] == "pod must not set runAsUser=0"
    assert "allowPrivilegeEscalation" not in by_id


MALFORMED: list[object] = [
    None,
    "spec",
    1,
    [],
    {"containers": "nginx"},
    {"containers": [None, "x", 3, {"name": None, "securityContext": "root"}]},
    {
        "containers": [
            {
                "name": 5,
                "securityContext": {
                    "capabilities": "ALL",
                    "seLinuxOptions": "x",
                    "seccompProfile": "RuntimeDefault",
                    "appArmorProfile": 1,
                    "windowsOptions": [],
                    "procMount": 7,
                },
            }
        ]
    },
    {"containers": [{"ports": "80", "livenessProbe": "x", "lifecycle": {"preStop": []}}]},
    {
        "containers": [
            {
                "ports": [None, {"hostPort": "80"}],
                "securityContext": {"capabilities": {"add": "X", "drop": 1}},
            }
        ]
    },
    {"containers": [{"livenessProbe": {"httpGet": "h"}, "startupProbe": {"tcpSocket": {"host": 1}}}]},
    {"volumes": "v"},
    {"volumes": [None, "v", {"name": ["n"], "hostPath": "/"}, {"nfs": {}}]},
    {"securityContext": "x", "os": "windows", "hostUsers": "false"},
    {"securityContext": {"sysctls": "a", "seLinuxOptions": {"type": 1, "user": None}}},
    {"securityContext": {"sysctls": [None, {"name": None}, "kernel.x"], "runAsUser": "0"}},
    {"initContainers": {"a": 1}, "ephemeralContainers": [[]]},
]


@pytest.mark.parametrize("spec", MALFORMED)
def test_malformed_input_never_raises(spec: object) -> None:
    metadatas: list[object] = [
        None, "m", {"annotations": "x"},
        {"annotations": {1: 2, "container.apparmor.security.beta.kubernetes.io/c": None,
                         "seccomp.security.alpha.kubernetes.io/pod": 3}},
    ]  # fmt: skip
    for md in metadatas:
        for level in LEVELS:
            for version in ("v1.0", "v1.18", "v1.19", "v1.25", "v1.34", "latest"):
                r = evaluate(md, spec, level, version)  # type: ignore[arg-type]
                assert isinstance(r.message, str)
                for f in r.failures:
                    assert f.reason and all(isinstance(p, tuple) and p for p in f.fields)


def test_checks_are_pure_and_cache_is_transparent() -> None:
    """Direct check calls (no per-evaluate container cache) agree with evaluate(); inputs are untouched."""
    import copy

    from podsec.policy.pss import _common
    from podsec.policy.pss.registry import checks_for

    spec = {
        "hostUsers": True,
        "initContainers": [sc("i", runAsUser=0, procMount="Unmasked")],
        "containers": [
            c("a", ports=[{"hostPort": 1}]),
            sc("b", privileged=True, capabilities={"add": ["X"]}),
        ],
        "ephemeralContainers": [sc("e", seLinuxOptions={"role": "r"})],
        "volumes": [{"name": "v", "hostPath": {}}],
    }
    md = {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}}
    before = copy.deepcopy((md, spec))
    for level in ("baseline", "restricted"):
        for minor in (0, 18, 19, 22, 25, 34, 35, 37):
            direct = [r for fn in checks_for(level, minor) if (r := fn(md, spec)) is not None]
            assert evaluate(md, spec, level, f"v1.{minor}").failures == direct
            assert _common._stash is _common._NO_STASH
    assert (md, spec) == before


def test_remembered_evaluations_are_exact_and_private() -> None:
    """A spec seen before is answered from memory: the same result as a fresh evaluation, a copy the caller may
    change, and never another value's answer (0, false, 0.0 and NaN are different inputs)."""
    import math

    from podsec.policy import pss

    spec = {"containers": [sc("a", runAsUser=0)]}
    first = evaluate({}, spec, "restricted")
    first.failures[0].fields.append(("changed",))
    first.failures.pop()
    again = evaluate({}, {"containers": [sc("a", runAsUser=0)]}, "restricted")
    pss._MEMO.clear()
    fresh = evaluate({}, spec, "restricted")
    assert again == fresh and again is not fresh
    for value in (False, 0.0, math.nan, "0", 2**70):
        other = {"containers": [sc("a", runAsUser=value)]}
        remembered = evaluate({}, other, "restricted")
        pss._MEMO.clear()
        assert evaluate({}, other, "restricted") == remembered, value
    annotated = {"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}}
    assert evaluate(annotated, spec, "baseline").failures != evaluate({}, spec, "baseline").failures
