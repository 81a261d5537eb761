"""PS012: a container that cannot read the files of its configMap/secret/projected/downwardAPI volume, decided
as the kernel would from the owner, group and mode the kubelet gives them (tests/test_fsuser_runtime.py and
tests/test_fsuser_real_tools.py show the same files on real containers)."""

from __future__ import annotations

from typing import Any

import pytest

from podsec.check import pod_facts
from podsec.policy.checks import run_checks
from podsec.resolve import resolve_pod


def ps012(volume: dict[str, Any], pod_sc: dict[str, Any] | None = None, mount: dict[str, Any] | None = None,
          gates: frozenset[str] = frozenset(), sc: dict[str, Any] | None = None) -> list:
    spec = {
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000} if pod_sc is None else pod_sc,
        "containers": [{"name": "app", "image": "example.org/app:1", "securityContext": sc or {},
                        "volumeMounts": [{"name": "v", "mountPath": "/v", **(mount or {})}]}],
        "volumes": [{"name": "v", **volume}],
    }
    pod = resolve_pod({"name": "p"}, spec, None)
    facts = pod_facts(spec, pod, gates, None, None, None)
    return [f for f in run_checks({"name": "p"}, spec, pod, gates, facts) if f.id == "PS012"]


SECRET_0600 = {"secret": {"secretName": "s", "defaultMode": 0o600}}


def test_a_0600_secret_is_unreadable_for_a_non_root_user() -> None:
    [f] = ps012(SECRET_0600)
    assert f.path == ("spec", "volumes", 0, "secret", "defaultMode") and f.severity == "high"
    assert f.message == ('container "app" (uid 1000, groups 1000) cannot read its files of secret volume "v": '
                         "owner 0:0, mode 0600 (Permission denied)")
    assert "fsGroup" in f.fix


@pytest.mark.parametrize(("volume", "pod_sc", "sc"), [
    (SECRET_0600, {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000}, None),  # 0640 group 2000
    ({"secret": {"secretName": "s"}}, None, None),  # 0644
    (SECRET_0600, {"runAsUser": 0}, None),  # root: CAP_DAC_OVERRIDE
    (SECRET_0600, {"runAsUser": 0}, {"capabilities": {"drop": ["ALL"]}}),  # root is the owner anyway
    (SECRET_0600, {}, None),  # the image decides the uid: unknown here
    ({"configMap": {"name": "c", "defaultMode": 0o640}}, {"runAsUser": 1000, "runAsGroup": 0}, None),  # group 0
    # the image decides the gid and its groups, but fsGroup is certain
    ({"secret": {"secretName": "s", "defaultMode": 0o600}}, {"runAsUser": 1000, "fsGroup": 2000}, None),
    # group 0 with 0640: the image may make gid 0 the container's group, so podsec does not say "denied"
    ({"configMap": {"name": "c", "defaultMode": 0o640}}, {"runAsUser": 1000}, None),
])
def test_readable(volume: dict, pod_sc: dict, sc: dict | None) -> None:
    assert ps012(volume, pod_sc, sc=sc) == []


def test_items_with_their_own_mode_and_the_tools_that_check_owners() -> None:
    vol = {"secret": {"secretName": "s", "items": [{"key": "a", "path": "ok"},
                                                    {"key": "b", "path": ".pgpass", "mode": 0o400}]}}
    [f] = ps012(vol)
    assert f.path == ("spec", "volumes", 0, "secret", "items", 1, "mode")
    assert 'cannot read item ".pgpass" of secret volume "v": owner 0:0, mode 0400' in f.message
    assert "libpq also wants no group or world bits" in f.message


def test_sub_path_mounts_only_what_they_name() -> None:
    vol = {"secret": {"secretName": "s", "defaultMode": 0o600,
                      "items": [{"key": "a", "path": "pub", "mode": 0o644}, {"key": "b", "path": "key"}]}}
    assert ps012(vol, mount={"subPath": "pub"}) == []
    [f] = ps012(vol, mount={"subPath": "key"})
    assert "its files" in f.message and f.path[-1] == "defaultMode"


def test_projected_sources() -> None:
    vol = {"projected": {"defaultMode": 0o600, "sources": [
        {"secret": {"name": "s", "items": [{"key": "k", "path": "id_ed25519"}]}},
        {"serviceAccountToken": {"path": "token"}},
    ]}}
    [f] = ps012(vol)
    assert f.path == ("spec", "volumes", 0, "projected", "defaultMode")
    vol["projected"]["sources"][0]["secret"]["items"][0]["mode"] = 0o400
    [f] = ps012(vol)
    assert f.path == ("spec", "volumes", 0, "projected", "sources", 0, "secret", "items", 0, "mode")
    assert "ssh also wants a private key owned by the user" in f.message


def test_owner_fields_count_only_with_their_gate() -> None:
    fs_user = {"runAsUser": 1000, "runAsGroup": 1000, "fsUser": 1000}
    assert len(ps012(SECRET_0600, fs_user)) == 1
    assert ps012(SECRET_0600, fs_user, gates=frozenset({"PodSecurityContextFSUser"})) == []
    default_user = {"secret": {"secretName": "s", "defaultMode": 0o600, "defaultUser": 1000}}
    assert len(ps012(default_user)) == 1
    assert ps012(default_user, gates=frozenset({"AtomicWriteVolumeUserFields"})) == []
    item_user = {"secret": {"secretName": "s", "defaultMode": 0o600,
                            "items": [{"key": "k", "path": "k", "user": 1000}]}}
    assert ps012(item_user, gates=frozenset({"AtomicWriteVolumeUserFields"})) == []
    assert len(ps012(item_user)) == 1


def test_explain_notes_the_same_denial_without_any_gate() -> None:
    from podsec.volumes.plan import ownership_notes

    spec = {"securityContext": {"runAsUser": 1000},
            "containers": [{"name": "app", "image": "busybox", "volumeMounts": [{"name": "k", "mountPath": "/k"}]}],
            "volumes": [{"name": "k", "secret": {"secretName": "keys", "defaultMode": 0o400}}]}
    pod = resolve_pod({"name": "s"}, spec, None)
    assert ownership_notes(pod, spec, {"name": "s"}) == [
        'volume "k" (secret): container "app" (uid 1000) cannot read them: owner 0:0, mode 0400']
    spec["securityContext"]["fsGroup"] = 2000
    assert ownership_notes(resolve_pod({"name": "s"}, spec, None), spec, {"name": "s"}) == []
