"""Payloads of configMap / secret / downwardAPI / projected volumes (pure, kubelet-semantics §3.6)."""

from __future__ import annotations

import base64
from fractions import Fraction
from typing import Any

import pytest

from podsec.errors import InputError
from podsec.quantity import parse_quantity, quantity_value
from podsec.volumes.atomic_writer import FileProjection
from podsec.volumes.emptydir import memory_volume_size, pod_memory_limit
from podsec.volumes.sources import (
    NodeInfo,
    ObjectStore,
    SetUpError,
    SourceContext,
    build_payload,
    format_map,
    go_quote,
)
from podsec.volumes.sources import (
    fs_user_from as _fs_user_from,
)


def fs_user_from(spec: dict) -> int | None:
    """``FsUserFrom`` of a pod spec, through resolve (whose runAsUser merge it reads)."""
    from podsec.resolve import resolve_pod

    return _fs_user_from(resolve_pod({"name": "p"}, spec, None))



def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "cfg", "namespace": "ns"},
    "data": {"game.properties": "lives=3\n", "ui": "dark"},
    "binaryData": {"logo.bin": b64(b"\x00\x01\xff")},
}
SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "creds"},
    "data": {"user": b64("admin"), "pass": b64("old")},
    "stringData": {"pass": "s3cret"},
}


def ctx(**kw: Any) -> SourceContext:
    base: dict[str, Any] = {
        "name": "web",
        "namespace": "ns",
        "uid": "1234-uid",
        "spec": {"containers": [{"name": "app"}]},
        "metadata": {"labels": {"app": "web", "tier": 'front"end'}, "annotations": {"note": "a\nb"}},
        "objects": ObjectStore([CM, SECRET]),
        "node": NodeInfo(name="node-1", cpu_millis=4000, memory_bytes=8 * 2**30),
    }
    base.update(kw)
    return SourceContext(**base)


def payload(volume: dict[str, Any], c: SourceContext | None = None) -> dict[str, FileProjection]:
    out = build_payload(volume, c or ctx(), ("spec", "volumes", 0))
    assert out is not None
    return out


# configMap -------------------------------------------------------------------------------------------


def test_config_map_all_keys_data_then_binary_data() -> None:
    p = payload({"name": "v", "configMap": {"name": "cfg"}})
    assert list(p) == ["game.properties", "ui", "logo.bin"]
    assert p["game.properties"] == FileProjection(b"lives=3\n", 0o644)
    assert p["logo.bin"] == FileProjection(b"\x00\x01\xff", 0o644)


def test_config_map_items_paths_and_modes() -> None:
    p = payload(
        {
            "name": "v",
            "configMap": {
                "name": "cfg",
                "defaultMode": 0o440,
                "items": [{"key": "ui", "path": "conf/ui.txt"}, {"key": "logo.bin", "path": "l", "mode": 0o600}],
            },
        }
    )
    assert p == {"conf/ui.txt": FileProjection(b"dark", 0o440), "l": FileProjection(b"\x00\x01\xff", 0o600)}


def test_config_map_missing_key_error() -> None:
    with pytest.raises(SetUpError) as e:
        payload({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "nope", "path": "x"}]}})
    assert e.value.message == (
        'MountVolume.SetUp failed for volume "v" : configmap references non-existent config key: nope'
    )
    assert e.value.field == "spec.volumes[0].configMap.items[0].key"


def test_config_map_optional_missing_key_is_skipped() -> None:
    p = payload(
        {
            "name": "v",
            "configMap": {
                "name": "cfg",
                "optional": True,
                "items": [{"key": "nope", "path": "x"}, {"key": "ui", "path": "u"}],
            },
        }
    )
    assert list(p) == ["u"]


def test_missing_config_map() -> None:
    with pytest.raises(SetUpError) as e:
        payload({"name": "v", "configMap": {"name": "absent"}})
    assert e.value.message == 'MountVolume.SetUp failed for volume "v" : configmap "absent" not found'
    assert e.value.field == "spec.volumes[0].configMap.name"
    assert payload({"name": "v", "configMap": {"name": "absent", "optional": True}}) == {}


def test_config_map_in_another_namespace_is_not_found() -> None:
    with pytest.raises(SetUpError, match='configmap "cfg" not found'):
        payload({"name": "v", "configMap": {"name": "cfg"}}, ctx(namespace="other"))


def test_invalid_mode() -> None:
    with pytest.raises(InputError, match="must be a number between 0 and 0777"):
        payload({"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o1777}})


# secret ------------------------------------------------------------------------------------------------


def test_secret_data_is_decoded_and_string_data_wins() -> None:
    p = payload({"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}})
    assert p == {"user": FileProjection(b"admin", 0o400), "pass": FileProjection(b"s3cret", 0o400)}


def test_secret_missing_key_and_missing_secret() -> None:
    with pytest.raises(SetUpError) as e:
        payload({"name": "s", "secret": {"secretName": "creds", "items": [{"key": "k", "path": "k"}]}})
    assert e.value.message.endswith(": references non-existent secret key: k")
    with pytest.raises(SetUpError) as e2:
        payload({"name": "s", "secret": {"secretName": "nope"}})
    assert e2.value.message == 'MountVolume.SetUp failed for volume "s" : secret "nope" not found'


def test_secret_bad_base64() -> None:
    bad = dict(SECRET, metadata={"name": "bad"}, data={"k": "%%%"}, stringData={})
    with pytest.raises(InputError, match=r'secret "bad": data\.k: illegal base64'):
        payload({"name": "s", "secret": {"secretName": "bad"}}, ctx(objects=ObjectStore([bad])))


# downward API --------------------------------------------------------------------------------------------


def test_go_quote_and_format_map() -> None:
    assert go_quote('a"b\\c\n\t') == '"a\\"b\\\\c\\n\\t"'
    assert go_quote("é日本") == '"é日本"'
    assert go_quote("\x00\x7f\u200b") == '"\\x00\\x7f\\u200b"'
    assert format_map({"b": "2", "a": "1"}) == 'a="1"\nb="2"'
    assert format_map({}) == ""


def test_downward_api_field_refs() -> None:
    items = [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}, "mode": 0o600},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "node", "fieldRef": {"fieldPath": "spec.nodeName"}},
        {"path": "sa", "fieldRef": {"fieldPath": "spec.serviceAccountName"}},
        {"path": "sub/../x", "fieldRef": {"fieldPath": "metadata.name"}},
    ]
    p = payload({"name": "d", "downwardAPI": {"items": items}})
    assert p["labels"].data == b'app="web"\ntier="front\\"end"'
    assert p["annotations"].data == b'note="a\\nb"'
    assert (p["name"].data, p["ns"].data, p["uid"].data) == (b"web", b"ns", b"1234-uid")
    assert p["uid"].mode == 0o600 and p["name"].mode == 0o644
    assert p["app"].data == b"web"
    assert p["node"].data == b"node-1"
    assert p["sa"].data == b"default"
    assert "x" in p  # cleaned like filepath.Clean


def test_downward_api_unsupported_field() -> None:
    with pytest.raises(SetUpError, match=r"unsupported fieldPath: status\.podIP"):
        payload({"name": "d", "downwardAPI": {"items": [{"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]}})


def test_downward_api_resource_field_refs() -> None:
    spec = {
        "containers": [
            {"name": "app", "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}, "requests": {"cpu": "250m"}}},
            {"name": "side"},
        ]
    }
    items = [
        {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu"}},
        {"path": "cpu-m", "resourceFieldRef": {"containerName": "app", "resource": "requests.cpu", "divisor": "1m"}},
        {"path": "memreq", "resourceFieldRef": {"containerName": "app", "resource": "requests.memory"}},
        {"path": "side-cpu", "resourceFieldRef": {"containerName": "side", "resource": "limits.cpu"}},
        {
            "path": "side-mem",
            "resourceFieldRef": {"containerName": "side", "resource": "limits.memory", "divisor": "1Gi"},
        },
    ]
    p = payload({"name": "d", "downwardAPI": {"items": items}}, ctx(spec=spec))
    got = {k: v.data.decode() for k, v in p.items()}
    assert got == {
        "mem": "128",
        "cpu": "1",
        "cpu-m": "250",
        "memreq": str(128 * 2**20),
        "side-cpu": "4",
        "side-mem": "8",
    }


# projected / service account token (vector 40) -------------------------------------------------------------


def projected(fs_user: int | None, fs_group: int | None, default_mode: int | None = None) -> dict[str, FileProjection]:
    src: dict[str, Any] = {
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "cfg", "items": [{"key": "ui", "path": "ui"}]}},
            {"secret": {"name": "creds", "items": [{"key": "user", "path": "user", "mode": 0o400}]}},
            {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        ]
    }
    if default_mode is not None:
        src["defaultMode"] = default_mode
    return payload({"name": "kube-api-access", "projected": src}, ctx(fs_user=fs_user, fs_group=fs_group))


def test_projected_sources_merge() -> None:
    p = projected(None, None)
    assert sorted(p) == ["name", "token", "ui", "user"]
    assert p["ui"] == FileProjection(b"dark", 0o644)
    assert p["user"] == FileProjection(b"admin", 0o400)
    assert p["name"].data == b"web"


def test_token_is_a_clearly_marked_placeholder() -> None:
    data = projected(None, None)["token"].data
    assert b"NOT A REAL KUBERNETES SERVICE ACCOUNT TOKEN" in data
    assert data.count(b".") < 2 or not data.startswith(b"ey")  # not a JWT


@pytest.mark.parametrize(
    ("fs_user", "fs_group", "mode", "uid"),
    [(1000, None, 0o600, 1000), (None, None, 0o644, None), (1000, 2000, 0o600, 1000), (None, 2000, 0o600, None)],
)
def test_vector_40_token_mode_and_owner(fs_user: int | None, fs_group: int | None, mode: int, uid: int | None) -> None:
    token = projected(fs_user, fs_group)["token"]
    assert (token.mode, token.uid) == (mode, uid)


def test_projected_errors_are_aggregated() -> None:
    src = {"sources": [{"configMap": {"name": "a"}}, {"secret": {"name": "b"}}]}
    with pytest.raises(SetUpError) as e:
        payload({"name": "p", "projected": src})
    assert (
        e.value.message == 'MountVolume.SetUp failed for volume "p" : [configmap "a" not found, secret "b" not found]'
    )


def test_projected_unsupported_source() -> None:
    with pytest.raises(InputError, match="clusterTrustBundle is not supported"):
        payload({"name": "p", "projected": {"sources": [{"clusterTrustBundle": {"name": "x", "path": "ca"}}]}})


def test_fs_user_from() -> None:
    assert fs_user_from({"securityContext": {"runAsUser": 1000}, "containers": [{"name": "a"}, {"name": "b"}]}) == 1000
    assert (
        fs_user_from(
            {
                "containers": [
                    {"name": "a", "securityContext": {"runAsUser": 1}},
                    {"name": "b", "securityContext": {"runAsUser": 2}},
                ]
            }
        )
        is None
    )
    assert fs_user_from({"containers": [{"name": "a", "securityContext": {"runAsUser": 5}}, {"name": "b"}]}) is None
    assert (
        fs_user_from(
            {
                "securityContext": {"runAsUser": 7},
                "initContainers": [{"name": "i"}],
                "containers": [{"name": "a", "securityContext": {"runAsUser": 7}}],
            }
        )
        == 7
    )


# quantities and tmpfs sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("64Mi", 64 * 2**20), ("1G", 10**9), ("500m", Fraction(1, 2)), ("1e3", 1000), ("1.5Gi", 3 * 2**29), (128, 128)],
)
def test_quantities(text: object, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


def test_bad_quantity() -> None:
    with pytest.raises(InputError, match="quantities must match"):
        quantity_value("12 apples")


def test_memory_volume_size() -> None:
    spec = {"containers": [{"name": "a", "resources": {"limits": {"memory": "1Gi"}}}]}
    assert pod_memory_limit(spec) == 2**30
    assert memory_volume_size(spec, "64Mi", 8 * 2**30) == 64 * 2**20
    assert memory_volume_size(spec, "4Gi", 8 * 2**30) == 2**30  # the pod limit is smaller
    assert memory_volume_size({"containers": [{"name": "a"}]}, None, 8 * 2**30) == 8 * 2**30
    assert memory_volume_size({"containers": [{"name": "a"}]}, None, None) is None


# KEP-5936 user fields (feature gate off by default) -------------------------------------------------------


def test_user_fields_are_ignored_without_the_gate() -> None:
    vol = {"name": "v", "configMap": {"name": "cfg", "defaultUser": 1000, "items": [{"key": "ui", "path": "u"}]}}
    assert payload(vol)["u"].uid is None


def test_user_fields_with_the_gate() -> None:
    c = ctx(user_fields=True)
    vol = {
        "name": "v",
        "configMap": {
            "name": "cfg",
            "defaultUser": 1000,
            "items": [{"key": "ui", "path": "u"}, {"key": "game.properties", "path": "g", "user": 2000}],
        },
    }
    p = payload(vol, c)
    assert (p["u"].uid, p["g"].uid) == (1000, 2000)
    all_keys = payload({"name": "v", "secret": {"secretName": "creds", "defaultUser": 7}}, c)
    assert {f.uid for f in all_keys.values()} == {7}
    proj = payload(
        {
            "name": "p",
            "projected": {
                "defaultUser": 5,
                "sources": [
                    {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}, "user": 6}]}},
                    {"configMap": {"name": "cfg", "items": [{"key": "ui", "path": "u"}]}},
                ],
            },
        },
        c,
    )
    assert (proj["n"].uid, proj["u"].uid) == (6, 5)
    with pytest.raises(InputError, match="must be between 0 and 2147483647"):
        payload({"name": "v", "configMap": {"name": "cfg", "defaultUser": -1}}, c)
