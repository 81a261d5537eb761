"""fsUser (KEP-5280, podsec's gate PodSecurityContextFSUser) and defaultUser/user (KEP-5936, gate
AtomicWriteVolumeUserFields) in the volume layer: real directories, tmpfs and files, stat'ed.

Precedence of a file's owner: item ``user`` > volume ``defaultUser`` > pod ``fsUser`` > root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podsec.volumes.plan import plan_volumes
from podsec.volumes.setup import PodVolumes, prepare_pod_volumes, teardown_pod_dir
from podsec.volumes.sources import fs_user_from as _fs_user_from
from test_volumes_setup import CM, NODE, SECRET, make_pod, mode_owner, spec_with, vol_dir


def fs_user_from(spec: dict) -> int | None:
    """``FsUserFrom`` of a pod spec, through resolve (whose runAsUser merge it reads)."""
    from podsec.resolve import resolve_pod

    return _fs_user_from(resolve_pod({"name": "p"}, spec, None))


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts and chown need root")


@pytest.fixture
def pod_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "pod"
    d.mkdir()
    try:
        yield d
    finally:
        teardown_pod_dir(d)


def with_fs_user(spec: dict[str, Any], uid: int = 1000) -> dict[str, Any]:
    spec.setdefault("securityContext", {})["fsUser"] = uid
    return spec


def prepare(pod_dir: Path, spec: dict[str, Any], *, user_fields: bool = False, fs_user: bool = False,
            objects: list[dict[str, Any]] | None = None) -> PodVolumes:
    return prepare_pod_volumes(pod_dir, make_pod(spec), spec, {"name": "web"}, objects or [CM, SECRET], {},
                               node=NODE, atomic_write_user_fields=user_fields, pod_fs_user=fs_user)


def ts_dir(d: Path) -> Path:
    return d / os.readlink(d / "..data")


# -- emptyDir --------------------------------------------------------------------------------------


def test_empty_dir_owned_by_fs_user_group_and_setgid_from_fs_group(pod_dir: Path) -> None:
    spec = with_fs_user(spec_with([{"name": "data", "emptyDir": {}}], 2000))
    prepare(pod_dir, spec, fs_user=True)
    assert mode_owner(vol_dir(pod_dir, "empty-dir", "data")) == (0o2777, 1000, 2000)


def test_memory_empty_dir_tmpfs_root_owned_by_fs_user(pod_dir: Path) -> None:
    spec = with_fs_user(spec_with([{"name": "mem", "emptyDir": {"medium": "Memory"}}]))
    prepare(pod_dir, spec, fs_user=True)
    assert mode_owner(vol_dir(pod_dir, "empty-dir", "mem")) == (0o1777, 1000, 0)


def test_fs_user_without_its_gate_changes_nothing(pod_dir: Path) -> None:
    spec = with_fs_user(spec_with([{"name": "data", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "creds"}}]))
    prepare(pod_dir, spec)
    assert mode_owner(vol_dir(pod_dir, "empty-dir", "data")) == (0o777, 0, 0)
    s = vol_dir(pod_dir, "secret", "s")
    assert mode_owner(ts_dir(s) / "user") == (0o644, 0, 0)
    assert os.lstat(s).st_uid == 0


# -- atomic-writer volumes -------------------------------------------------------------------------


def test_owner_precedence_user_then_default_user_then_fs_user(pod_dir: Path) -> None:
    items = [{"key": "user", "path": "user", "user": 1001}, {"key": "pass", "path": "sub/pass"}]
    spec = with_fs_user(spec_with([
        {"name": "a", "secret": {"secretName": "creds", "defaultMode": 0o600, "defaultUser": 1002, "items": items}},
        {"name": "b", "secret": {"secretName": "creds", "defaultMode": 0o600}},
    ]))
    prepare(pod_dir, spec, user_fields=True, fs_user=True)
    a, b = vol_dir(pod_dir, "secret", "a"), vol_dir(pod_dir, "secret", "b")
    assert mode_owner(ts_dir(a) / "user") == (0o600, 1001, 0)  # item user
    assert mode_owner(ts_dir(a) / "sub" / "pass") == (0o600, 1002, 0)  # defaultUser
    assert mode_owner(ts_dir(b) / "pass") == (0o600, 1000, 0)  # fsUser
    for d in (a, b):  # what the kubelet created around the files belongs to fsUser too
        assert mode_owner(d) == (0o1777, 1000, 0)
        for p in (ts_dir(d), d / "..data", *(d / n for n in os.listdir(d) if not n.startswith(".."))):
            assert os.lstat(p).st_uid == 1000, p
    assert os.lstat(ts_dir(a) / "sub").st_uid == 1000


def test_kep_5936_alone_owns_only_the_data_files(pod_dir: Path) -> None:
    spec = spec_with([{"name": "c", "configMap": {"name": "cfg", "defaultUser": 1002,
                                                  "items": [{"key": "key", "path": "key", "user": 1001},
                                                            {"key": "other", "path": "other"}]}}], 2000)
    prepare(pod_dir, spec, user_fields=True)
    d = vol_dir(pod_dir, "configmap", "c")
    assert mode_owner(ts_dir(d) / "key") == (0o644, 1001, 2000)
    assert mode_owner(ts_dir(d) / "other") == (0o644, 1002, 2000)
    assert [os.lstat(p).st_uid for p in (d, ts_dir(d), d / "..data", d / "key")] == [0, 0, 0, 0]


def test_default_user_is_ignored_without_its_gate_even_with_fs_user(pod_dir: Path) -> None:
    spec = with_fs_user(spec_with([{"name": "s", "secret": {"secretName": "creds", "defaultUser": 1002}}]))
    prepare(pod_dir, spec, fs_user=True)
    assert os.lstat(ts_dir(vol_dir(pod_dir, "secret", "s")) / "user").st_uid == 1000


def test_fs_group_still_masks_modes_when_fs_user_owns_the_files(pod_dir: Path) -> None:
    spec = with_fs_user(spec_with([{"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o600}}], 2000))
    prepare(pod_dir, spec, fs_user=True)
    d = vol_dir(pod_dir, "secret", "s")
    assert mode_owner(ts_dir(d) / "pass") == (0o640, 1000, 2000)
    assert mode_owner(ts_dir(d)) == (0o2755, 1000, 2000)
    assert mode_owner(d) == (0o3777, 1000, 2000)


# -- not for hostPath or claims --------------------------------------------------------------------


def test_host_path_keeps_its_owner(pod_dir: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "f").write_text("x")
    os.chown(host, 4242, 4242)
    spec = with_fs_user(spec_with([{"name": "h", "hostPath": {"path": str(host)}}]))
    pv = prepare(pod_dir, spec, fs_user=True)
    assert (os.lstat(host).st_uid, os.lstat(host / "f").st_uid) == (4242, 0)
    assert pv.plans[0].ownership.fs_user is None
    assert pv.plans[0].notes == [
        "fsUser does not apply: only emptyDir, configMap, secret, projected and downwardAPI volumes"
    ]


def test_claims_plan_no_fs_user() -> None:
    spec = with_fs_user(spec_with([{"name": "d", "persistentVolumeClaim": {"claimName": "pg"}}], 2000))
    plan = plan_volumes(make_pod(spec), spec, {}, None, None, NODE, pod_fs_user=True)[0]
    assert plan.ownership.fs_user is None and plan.ownership.applies  # fsGroup still applies
    assert "fsUser does not apply" in plan.notes[0]


# -- projected service account token ---------------------------------------------------------------


def token(spec: dict[str, Any], **gates: bool) -> tuple[int, int | None]:
    plan = plan_volumes(make_pod(spec), spec, {"name": "web"}, [], None, NODE, **gates)[0]
    assert plan.payload is not None
    proj = plan.payload["token"]
    return proj.mode, proj.uid


def sa_volume(**extra: Any) -> dict[str, Any]:
    return {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token", **extra}}]}}


def test_token_owner_explicit_fields_replace_the_run_as_user_heuristic() -> None:
    spec = spec_with([sa_volume(user=1003)])
    spec["securityContext"] = {"runAsUser": 1500}  # FsUserFrom → 1500
    assert token(spec) == (0o600, 1500)
    spec["securityContext"]["fsUser"] = 1000
    assert token(spec) == (0o600, 1500)  # fsUser's gate off: the heuristic as today
    assert token(spec, pod_fs_user=True) == (0o600, 1000)
    assert token(spec, pod_fs_user=True, atomic_write_user_fields=True) == (0o600, 1003)
    spec["securityContext"] = {}
    assert token(spec) == (0o644, None)  # nobody: root, defaultMode
    assert token(spec, atomic_write_user_fields=True) == (0o600, 1003)


def test_fs_user_from_visits_ephemeral_containers() -> None:
    """``podutil.VisitContainers(..., AllFeatureEnabledContainers())``: init, regular and ephemeral."""
    spec: dict[str, Any] = {"securityContext": {"runAsUser": 1000}, "containers": [{"name": "a"}],
                            "ephemeralContainers": [{"name": "debug", "securityContext": {"runAsUser": 0}}]}
    assert fs_user_from(spec) is None
    spec["ephemeralContainers"][0]["securityContext"]["runAsUser"] = 1000
    assert fs_user_from(spec) == 1000
    del spec["securityContext"]
    assert fs_user_from(spec) is None  # "a" has no runAsUser
