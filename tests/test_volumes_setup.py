"""Pod volumes set up for real: modes and owners stat'ed (vectors 36–40), tmpfs, claims, safe subPaths,
teardown. Everything happens in temporary directories with real mounts."""

from __future__ import annotations

import copy
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podsec.errors import InputError, RuntimeFailure
from podsec.model import (
    AppArmorProfile,
    Capabilities,
    Identity,
    Mount,
    NonRootOutcome,
    ResolvedContainer,
    ResolvedPod,
    SeccompProfile,
)
from podsec.plan import POD_DIR, realize
from podsec.plan.pod import volume_mounts
from podsec.volumes.mounts import mounts_under, read_mountinfo
from podsec.volumes.plan import plan_volumes
from podsec.volumes.setup import PodVolumes, prepare_pod_volumes, teardown_pod_dir
from podsec.volumes.sources import NodeInfo

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts and chown need root")

NODE = NodeInfo(name="node-1", cpu_millis=2000, memory_bytes=4 * 2**30, ephemeral_storage_bytes=10**10)
CM = {"kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"key": "value\n", "other": "o"}}
SECRET = {"kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"user": "admin", "pass": "pw"}}


# builders -----------------------------------------------------------------------------------------


def mounts_for(pv: PodVolumes, container: Any, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """What ``run`` does for a container's volumeMounts: the plan's binds, its subPaths bound by the volume
    layer, the pod directory filled in."""
    subs: list[Any] = []
    planned = volume_mounts(container, {n: v.plan for n, v in pv.volumes.items()}, env or {}, subs)
    for sp in subs:
        pv.bind_sub_path(sp.volume, sp.sub_path, container.name, sp.index)
    return realize(planned, {POD_DIR: str(pv.pod_dir)})


def make_pod(spec: dict[str, Any], name: str = "web") -> ResolvedPod:
    sc = spec.get("securityContext") or {}
    containers = []
    for i, c in enumerate(spec.get("containers") or []):
        types = {v["name"]: next(k for k in v if k != "name") for v in spec.get("volumes") or []}
        mounts = [
            Mount(
                name=m["name"],
                mount_path=m["mountPath"],
                read_only=bool(m.get("readOnly")),
                volume_type=types.get(m["name"], "?"),
                sub_path=m.get("subPath"),
                sub_path_expr=m.get("subPathExpr"),
                field=("spec", "containers", i, "volumeMounts", j),
            )
            for j, m in enumerate(c.get("volumeMounts") or [])
        ]
        containers.append(
            ResolvedContainer(
                name=c["name"],
                kind="container",
                index=i,
                path=("spec", "containers", i),
                image="busybox",
                image_known=False,
                identity=Identity(uid=None, gid=None, groups=None,
                                  run_as_user=(c.get("securityContext") or {}).get("runAsUser", sc.get("runAsUser"))),
                run_as_non_root=NonRootOutcome(required=False, ok=True),
                capabilities=Capabilities(bounding=(), effective=()),
                privileged=False,
                no_new_privileges=False,
                seccomp=SeccompProfile("Unconfined"),
                apparmor=AppArmorProfile(None),
                selinux=None,
                masked_paths=(),
                readonly_paths=(),
                readonly_rootfs=False,
                proc_mount="Default",
                mounts=mounts,
            )
        )
    return ResolvedPod(
        kind="Pod",
        name=name,
        namespace="default",
        uid="0000-uid",
        host_network=False,
        host_pid=False,
        host_ipc=False,
        share_process_namespace=False,
        host_users=True,
        fs_group=sc.get("fsGroup"),
        fs_user=sc.get("fsUser"),
        fs_group_change_policy=sc.get("fsGroupChangePolicy") or "Always",
        supplemental_groups=(),
        supplemental_groups_policy="Merge",
        sysctls=(),
        containers=containers,
    )


def spec_with(volumes: list[dict[str, Any]], fs_group: int | None = None, **mount_extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "app",
                "volumeMounts": [{"name": v["name"], "mountPath": f"/mnt/{v['name']}", **mount_extra} for v in volumes],
            }
        ],
        "volumes": volumes,
    }
    if fs_group is not None:
        spec["securityContext"] = {"fsGroup": fs_group}
    return spec


@pytest.fixture
def pod_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "pod"
    d.mkdir()
    try:
        yield d
    finally:
        teardown_pod_dir(d)  # never leave a mount behind, whatever a test did


def prepare(
    pod_dir: Path,
    spec: dict[str, Any],
    objects: list[dict[str, Any]] | None = None,
    claim_dirs: dict[str, Path] | None = None,
    metadata: dict[str, Any] | None = None,
) -> PodVolumes:
    pod = make_pod(spec)
    return prepare_pod_volumes(
        pod_dir, pod, spec, metadata or {"name": "web"}, objects or [], claim_dirs or {}, node=NODE
    )


def vol_dir(pod_dir: Path, plugin: str, name: str) -> Path:
    return pod_dir / "volumes" / f"kubernetes.io~{plugin}" / name


def mode_owner(p: Path) -> tuple[int, int, int]:
    st = os.lstat(p)
    return st.st_mode & 0o7777, st.st_uid, st.st_gid


def mounts_text_under(path: Path) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return [line for line in f if f" {path}" in line]


def mount_of(path: Path) -> Any:
    real = os.path.realpath(path)
    found = [m for m in read_mountinfo() if m.mount_point == real]
    return found[-1] if found else None


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    c = tmp_path / "canary"
    c.mkdir()
    os.chmod(c, 0o700)
    (c / "secret").write_text("host data")
    os.chmod(c / "secret", 0o600)
    return c


def assert_canary_untouched(c: Path) -> None:
    assert mode_owner(c) == (0o700, 0, 0)
    assert mode_owner(c / "secret") == (0o600, 0, 0)
    assert sorted(os.listdir(c)) == ["secret"]


# vector 36/37: emptyDir -----------------------------------------------------------------------------


def test_vector_36_empty_dir_without_fs_group(pod_dir: Path) -> None:
    old = os.umask(0o077)
    try:
        pv = prepare(pod_dir, spec_with([{"name": "cache", "emptyDir": {}}]))
    finally:
        os.umask(old)
    d = vol_dir(pod_dir, "empty-dir", "cache")
    assert mode_owner(d) == (0o777, 0, 0)
    assert mount_of(d) is None  # disk, not tmpfs
    assert pv.volumes["cache"].processed == 0


def test_vector_36_empty_dir_with_fs_group_and_files_created_later(pod_dir: Path) -> None:
    prepare(pod_dir, spec_with([{"name": "cache", "emptyDir": {}}], fs_group=2000))
    d = vol_dir(pod_dir, "empty-dir", "cache")
    assert mode_owner(d) == (0o2777, 0, 2000)
    # A process of the pod (uid 1000, gid 3000, umask 022) creates a file and a directory.
    subprocess.run(
        ["sh", "-c", "touch f && mkdir sub"],
        cwd=d,
        user=1000,
        group=3000,
        extra_groups=[2000],
        umask=0o022,
        check=True,
    )
    assert mode_owner(d / "f") == (0o644, 1000, 2000)
    assert mode_owner(d / "sub") == (0o2755, 1000, 2000)


def test_vector_37_memory_medium_is_a_sized_tmpfs(pod_dir: Path) -> None:
    prepare(pod_dir, spec_with([{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}], 2000))
    d = vol_dir(pod_dir, "empty-dir", "shm")
    m = mount_of(d)
    assert m is not None and m.fstype == "tmpfs"
    assert "size=65536k" in (mounts_text_under(d)[0])
    assert mode_owner(d) == (0o3777, 0, 2000)


def test_memory_medium_without_fs_group_keeps_tmpfs_default_mode(pod_dir: Path) -> None:
    prepare(pod_dir, spec_with([{"name": "shm", "emptyDir": {"medium": "Memory"}}]))
    assert mode_owner(vol_dir(pod_dir, "empty-dir", "shm")) == (0o1777, 0, 0)


# vector 38/39/40: atomic writer volumes -------------------------------------------------------------------


def test_vector_38_config_map_with_fs_group(pod_dir: Path) -> None:
    prepare(pod_dir, spec_with([{"name": "conf", "configMap": {"name": "cfg"}}], 2000), [CM])
    d = vol_dir(pod_dir, "configmap", "conf")
    assert mount_of(d) is None  # configMaps live on disk
    assert os.readlink(d / "key") == "..data/key"
    ts = d / os.readlink(d / "..data")
    assert mode_owner(ts / "key") == (0o644, 0, 2000)
    assert mode_owner(ts) == (0o2755, 0, 2000)
    assert mode_owner(d) == (0o2777, 0, 2000)
    assert (d / "key").read_text() == "value\n"


def test_vector_38_config_map_without_fs_group(pod_dir: Path) -> None:
    prepare(pod_dir, spec_with([{"name": "conf", "configMap": {"name": "cfg"}}]), [CM])
    d = vol_dir(pod_dir, "configmap", "conf")
    ts = d / os.readlink(d / "..data")
    assert mode_owner(ts / "key") == (0o644, 0, 0)
    assert mode_owner(ts) == (0o755, 0, 0)
    assert mode_owner(d) == (0o777, 0, 0)


@pytest.mark.parametrize(
    ("secret_src", "file", "expected"),
    [
        ({"secretName": "creds", "defaultMode": 0o400}, "user", 0o440),
        ({"secretName": "creds", "defaultMode": 0o600}, "user", 0o640),
        ({"secretName": "creds", "items": [{"key": "pass", "path": "p", "mode": 0o755}]}, "p", 0o755),
    ],
)
def test_vector_39_secret_modes(pod_dir: Path, secret_src: dict[str, Any], file: str, expected: int) -> None:
    prepare(pod_dir, spec_with([{"name": "sec", "secret": secret_src}], 2000), [SECRET])
    d = vol_dir(pod_dir, "secret", "sec")
    m = mount_of(d)
    assert m is not None and m.fstype == "tmpfs"  # secrets never touch the disk
    assert mode_owner(d) == (0o3777, 0, 2000)
    ts = d / os.readlink(d / "..data")
    assert mode_owner(ts / file) == (expected, 0, 2000)


def projected_spec(run_as: tuple[int | None, int | None], fs_group: int | None) -> dict[str, Any]:
    spec = spec_with(
        [{"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}], fs_group
    )
    spec["containers"].append({"name": "side"})
    for c, uid in zip(spec["containers"], run_as):
        if uid is not None:
            c["securityContext"] = {"runAsUser": uid}
    return spec


@pytest.mark.parametrize(
    ("run_as", "fs_group", "expected"),
    [
        ((1000, 1000), None, (0o600, 1000, 0)),
        ((1000, 2000), None, (0o644, 0, 0)),
        ((1000, 1000), 2000, (0o640, 1000, 2000)),
    ],
)
def test_vector_40_service_account_token(
    pod_dir: Path, run_as: tuple[int | None, int | None], fs_group: int | None, expected: tuple[int, int, int]
) -> None:
    prepare(pod_dir, projected_spec(run_as, fs_group))
    d = vol_dir(pod_dir, "projected", "token")
    ts = d / os.readlink(d / "..data")
    assert mode_owner(ts / "token") == expected
    assert b"NOT A REAL" in (d / "token").read_bytes()


def test_downward_api_volume_on_tmpfs(pod_dir: Path) -> None:
    spec = spec_with(
        [
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "meta/name", "fieldRef": {"fieldPath": "metadata.name"}},
                    ]
                },
            }
        ]
    )
    prepare(pod_dir, spec, metadata={"name": "web", "labels": {"b": "2", "a": 'x"y'}})
    d = vol_dir(pod_dir, "downward-api", "info")
    assert mount_of(d).fstype == "tmpfs"
    assert (d / "labels").read_text() == 'a="x\\"y"\nb="2"'
    assert (d / "meta" / "name").read_text() == "web"
    assert os.readlink(d / "meta") == "..data/meta"


def test_missing_config_map_fails_before_touching_the_host(pod_dir: Path) -> None:
    spec = spec_with([{"name": "shm", "emptyDir": {"medium": "Memory"}}, {"name": "c", "configMap": {"name": "x"}}])
    with pytest.raises(InputError) as e:
        prepare(pod_dir, spec)
    assert e.value.message == 'MountVolume.SetUp failed for volume "c" : configmap "x" not found'
    assert os.listdir(pod_dir) == []


# OCI mounts ---------------------------------------------------------------------------------------------


def test_mounts_for_gives_oci_binds(pod_dir: Path) -> None:
    spec = spec_with([{"name": "cache", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "cfg"}}])
    spec["containers"][0]["volumeMounts"].append({"name": "cache", "mountPath": "/ro-cache", "readOnly": True})
    pv = prepare(pod_dir, spec, [CM])
    got = mounts_for(pv, make_pod(spec).containers[0])
    assert got == [
        {
            "destination": "/mnt/cache",
            "type": "bind",
            "source": str(vol_dir(pod_dir, "empty-dir", "cache")),
            "options": ["rbind", "rprivate", "rw"],
        },
        {
            "destination": "/mnt/conf",
            "type": "bind",
            "source": str(vol_dir(pod_dir, "configmap", "conf")),
            "options": ["rbind", "rprivate", "ro"],  # atomic-writer volumes are always read-only
        },
        {
            "destination": "/ro-cache",
            "type": "bind",
            "source": str(vol_dir(pod_dir, "empty-dir", "cache")),
            "options": ["rbind", "rprivate", "ro"],
        },
    ]


# hostPath, claims, unsupported ---------------------------------------------------------------------------


def test_host_path_is_created_and_never_chowned(pod_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "host" / "data"
    spec = spec_with([{"name": "h", "hostPath": {"path": str(target), "type": "DirectoryOrCreate"}}], 2000)
    pv = prepare(pod_dir, spec)
    assert mode_owner(target) == (0o755, 0, 0)
    assert mounts_for(pv, make_pod(spec).containers[0])[0]["source"] == str(target)
    plan = plan_volumes(make_pod(spec), spec, {})[0]
    assert not plan.ownership.applies and "never chowned" in plan.ownership.reason


def test_host_path_type_error_cleans_up_earlier_volumes(pod_dir: Path, tmp_path: Path) -> None:
    spec = spec_with(
        [
            {"name": "shm", "emptyDir": {"medium": "Memory"}},
            {"name": "h", "hostPath": {"path": str(tmp_path / "no"), "type": "Directory"}},
        ]
    )
    with pytest.raises(RuntimeFailure, match=f"hostPath type check failed: {tmp_path / 'no'} is not a directory"):
        prepare(pod_dir, spec)
    assert mounts_under(pod_dir) == []
    assert not (pod_dir / "volumes").exists()


def test_nfs_is_planned_without_ownership_and_refused_at_run(pod_dir: Path) -> None:
    spec = spec_with([{"name": "share", "nfs": {"server": "nas", "path": "/export"}}], 2000)
    plan = plan_volumes(make_pod(spec), spec, {})[0]
    assert plan.type == "nfs" and not plan.ownership.applies and "network filesystems" in plan.ownership.reason
    with pytest.raises(RuntimeFailure, match="cannot be mounted by podsec"):
        prepare(pod_dir, spec)


def test_claim_without_volume_dir_names_claim_and_flag(pod_dir: Path) -> None:
    spec = spec_with([{"name": "data", "persistentVolumeClaim": {"claimName": "pg"}}])
    with pytest.raises(InputError) as e:
        prepare(pod_dir, spec)
    assert '"pg"' in e.value.message and "--volume-dir pg=" in e.value.message


@pytest.fixture
def claim(tmp_path: Path, canary: Path) -> Path:
    c = tmp_path / "claim"
    (c / "db").mkdir(parents=True)
    (c / "db" / "table").write_text("rows")
    os.chmod(c / "db" / "table", 0o600)
    os.symlink(canary, c / "escape")
    return c


def test_claim_is_bound_and_chowned(pod_dir: Path, claim: Path, canary: Path) -> None:
    spec = spec_with([{"name": "data", "persistentVolumeClaim": {"claimName": "pg"}}], 2000)
    pv = prepare(pod_dir, spec, claim_dirs={"pg": claim})
    d = vol_dir(pod_dir, "local-volume", "data")
    assert mount_of(d) is not None
    assert pv.volumes["data"].processed == 4  # root, db, db/table, the escape link
    assert mode_owner(claim / "db" / "table") == (0o660, 0, 2000)
    assert mode_owner(claim)[0] & 0o2770 == 0o2770
    assert os.lstat(claim / "escape").st_gid == 2000
    assert_canary_untouched(canary)
    pv.teardown()
    assert (claim / "db" / "table").read_text() == "rows"  # teardown never deletes claim data


def test_claim_on_root_mismatch_skips_a_matching_root(pod_dir: Path, claim: Path) -> None:
    os.chown(claim, 0, 2000)
    os.chmod(claim, 0o2770)
    spec = spec_with([{"name": "data", "persistentVolumeClaim": {"claimName": "pg"}}], 2000)
    spec["securityContext"]["fsGroupChangePolicy"] = "OnRootMismatch"
    pv = prepare(pod_dir, spec, claim_dirs={"pg": claim})
    assert pv.volumes["data"].processed == 0
    assert mode_owner(claim / "db" / "table") == (0o600, 0, 0)


def test_read_only_claim_is_not_chowned_and_mounted_read_only(pod_dir: Path, claim: Path) -> None:
    spec = spec_with([{"name": "data", "persistentVolumeClaim": {"claimName": "pg", "readOnly": True}}], 2000)
    pv = prepare(pod_dir, spec, claim_dirs={"pg": claim})
    d = vol_dir(pod_dir, "local-volume", "data")
    assert mode_owner(claim / "db" / "table") == (0o600, 0, 0)
    assert "ro" in mount_of(d).options.split(",")
    with pytest.raises(OSError):
        (d / "new").write_text("x")
    assert mounts_for(pv, make_pod(spec).containers[0])[0]["options"][-1] == "ro"


# subPath ---------------------------------------------------------------------------------------------


def sub_spec(sub: dict[str, str], fs_group: int | None = 2000) -> dict[str, Any]:
    spec = spec_with([{"name": "cache", "emptyDir": {}}], fs_group)
    spec["containers"][0]["volumeMounts"] = [{"name": "cache", "mountPath": "/data", **sub}]
    return spec


def test_sub_path_is_created_with_the_root_mode_and_bound_privately(pod_dir: Path) -> None:
    spec = sub_spec({"subPath": "a/b"})
    pv = prepare(pod_dir, spec)
    (m,) = mounts_for(pv, make_pod(spec).containers[0])
    root = vol_dir(pod_dir, "empty-dir", "cache")
    assert mode_owner(root / "a") == (0o2777, 0, 2000)
    assert mode_owner(root / "a" / "b") == (0o2777, 0, 2000)
    target = pod_dir / "volume-subpaths" / "cache" / "app" / "0"
    assert m["source"] == str(target)
    assert mount_of(target) is not None
    (target / "written").write_text("through the bind")
    assert (root / "a" / "b" / "written").read_text() == "through the bind"


def test_sub_path_expr(pod_dir: Path) -> None:
    spec = sub_spec({"subPathExpr": "logs/$(POD_NAME)"})
    pv = prepare(pod_dir, spec)
    mounts_for(pv, make_pod(spec).containers[0], env={"POD_NAME": "web-1"})
    assert (vol_dir(pod_dir, "empty-dir", "cache") / "logs" / "web-1").is_dir()
    with pytest.raises(InputError, match="subPathExpr: missing value for POD_NAME"):
        mounts_for(pv, make_pod(spec).containers[0], env={})


@pytest.mark.parametrize("sub", ["/etc", "../x", "a/../../x"])
def test_sub_path_syntax_is_checked(pod_dir: Path, sub: str) -> None:
    spec = sub_spec({"subPath": sub})
    pv = prepare(pod_dir, spec)
    with pytest.raises(InputError, match="SubPath"):
        mounts_for(pv, make_pod(spec).containers[0])


@pytest.mark.parametrize(
    ("sub", "why"),
    [
        ("evil", "points outside the volume"),
        ("evil/newdir", "points outside the volume"),
        ("up", "leads above the volume root"),
        ("up/newdir", "leads above the volume root"),
        ("inner/x/y", "leads above the volume root"),
        ("loop", "too many levels of symbolic links"),
    ],
)
def test_sub_path_symlink_escapes_are_refused(pod_dir: Path, canary: Path, sub: str, why: str) -> None:
    spec = sub_spec({"subPath": sub})
    pv = prepare(pod_dir, spec)
    root = vol_dir(pod_dir, "empty-dir", "cache")
    # What a container could plant in its emptyDir before a restart re-mounts the subPath:
    os.symlink(canary, root / "evil")
    os.symlink("../../../../../../../../" + str(canary).lstrip("/"), root / "up")
    (root / "inner").mkdir()
    os.symlink("../..", root / "inner" / "x")
    os.symlink("loop", root / "loop")
    with pytest.raises(RuntimeFailure) as e:
        mounts_for(pv, make_pod(spec).containers[0])
    assert why in e.value.message
    assert 'failed to prepare subPath for volumeMount "cache" of container "app"' in e.value.message
    assert_canary_untouched(canary)
    assert [m for m in mounts_under(pod_dir) if "volume-subpaths" in m.mount_point] == []


def test_sub_path_through_an_inner_symlink_is_allowed(pod_dir: Path) -> None:
    spec = sub_spec({"subPath": "link/deeper"})
    pv = prepare(pod_dir, spec)
    root = vol_dir(pod_dir, "empty-dir", "cache")
    (root / "real" / "deeper").mkdir(parents=True)
    (root / "real" / "deeper" / "f").write_text("inside")
    os.symlink("real", root / "link")
    (m,) = mounts_for(pv, make_pod(spec).containers[0])
    assert (Path(m["source"]) / "f").read_text() == "inside"


def test_sub_path_swapped_after_binding_cannot_redirect(pod_dir: Path, canary: Path) -> None:
    spec = sub_spec({"subPath": "work"})
    pv = prepare(pod_dir, spec)
    root = vol_dir(pod_dir, "empty-dir", "cache")
    (m,) = mounts_for(pv, make_pod(spec).containers[0])
    os.rename(root / "work", root / "old")
    os.symlink(canary, root / "work")  # the bind still shows the original directory
    (Path(m["source"]) / "x").write_text("safe")
    assert (root / "old" / "x").read_text() == "safe"
    assert_canary_untouched(canary)


def test_config_map_key_as_sub_path(pod_dir: Path) -> None:
    spec = spec_with([{"name": "conf", "configMap": {"name": "cfg"}}])
    spec["containers"][0]["volumeMounts"] = [{"name": "conf", "mountPath": "/etc/app.conf", "subPath": "key"}]
    pv = prepare(pod_dir, spec, [CM])
    (m,) = mounts_for(pv, make_pod(spec).containers[0])
    src = Path(m["source"])
    assert stat.S_ISREG(os.stat(src).st_mode) and src.read_text() == "value\n"
    assert m["options"][-1] == "ro"


# teardown ---------------------------------------------------------------------------------------------


def busy_spec(claim: Path) -> dict[str, Any]:
    spec = spec_with(
        [
            {"name": "shm", "emptyDir": {"medium": "Memory"}},
            {"name": "sec", "secret": {"secretName": "creds"}},
            {"name": "conf", "configMap": {"name": "cfg"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "pg"}},
        ],
        2000,
    )
    spec["containers"][0]["volumeMounts"] += [
        {"name": "data", "mountPath": "/db", "subPath": "db"},
        {"name": "conf", "mountPath": "/k", "subPath": "key"},
    ]
    return spec


def test_teardown_leaves_no_mount_and_no_directory(pod_dir: Path, claim: Path) -> None:
    spec = busy_spec(claim)
    pv = prepare(pod_dir, spec, [CM, SECRET], {"pg": claim})
    mounts_for(pv, make_pod(spec).containers[0])
    assert len(mounts_under(pod_dir)) == 5  # shm, secret tmpfs, claim bind, two subPath binds
    pv.teardown()
    assert mounts_text_under(pod_dir) == []
    assert os.listdir(pod_dir) == []
    pv.teardown()  # idempotent
    assert (claim / "db" / "table").read_text() == "rows"


def test_teardown_pod_dir_after_a_crash(pod_dir: Path, claim: Path) -> None:
    spec = busy_spec(claim)
    pv = prepare(pod_dir, spec, [CM, SECRET], {"pg": claim})
    mounts_for(pv, make_pod(spec).containers[0])
    del pv  # the process "crashed": no PodVolumes object any more
    # A stacked mount, as a confused runtime could leave behind:
    shm = vol_dir(pod_dir, "empty-dir", "shm")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shm)], check=True)
    done = teardown_pod_dir(pod_dir)
    assert len(done) == 6
    assert mounts_text_under(pod_dir) == []
    assert os.listdir(pod_dir) == []
    assert teardown_pod_dir(pod_dir) == []
    assert (claim / "db" / "table").read_text() == "rows"


def test_busy_mount_is_detached_lazily(pod_dir: Path) -> None:
    pv = prepare(pod_dir, spec_with([{"name": "shm", "emptyDir": {"medium": "Memory"}}]))
    d = vol_dir(pod_dir, "empty-dir", "shm")
    fd = os.open(d / "held", os.O_CREAT | os.O_WRONLY, 0o600)  # keeps the tmpfs busy
    try:
        pv.teardown()
        assert mounts_text_under(pod_dir) == []
        assert not (pod_dir / "volumes").exists()
    finally:
        os.close(fd)


def test_plan_is_pure_and_explains(tmp_path: Path) -> None:
    spec = spec_with(
        [
            {"name": "cache", "emptyDir": {}},
            {"name": "sec", "secret": {"secretName": "creds"}},
            {"name": "h", "hostPath": {"path": "/var/log"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "pg"}},
        ],
        2000,
    )
    spec["securityContext"]["fsGroupChangePolicy"] = "OnRootMismatch"
    before = copy.deepcopy(spec)
    plans = {p.name: p for p in plan_volumes(make_pod(spec), spec, {}, [SECRET], None, NODE)}
    assert spec == before
    assert plans["cache"].ownership.applies and plans["cache"].ownership.policy is None
    assert plans["sec"].tmpfs and plans["sec"].ownership.read_only and plans["sec"].payload is not None
    assert not plans["h"].ownership.applies
    assert plans["data"].ownership.policy == "OnRootMismatch" and plans["data"].host_path is None
    assert plans["sec"].dir_in(tmp_path) == tmp_path / "volumes" / "kubernetes.io~secret" / "sec"


def test_kep_5936_user_fields_own_the_data_files(pod_dir: Path) -> None:
    spec = spec_with([{"name": "conf", "configMap": {"name": "cfg", "defaultUser": 1000}}], 2000)
    pod = make_pod(spec)
    prepare_pod_volumes(pod_dir, pod, spec, {"name": "web"}, [CM], {}, node=NODE, atomic_write_user_fields=True)
    d = vol_dir(pod_dir, "configmap", "conf")
    ts = d / os.readlink(d / "..data")
    assert mode_owner(ts / "key") == (0o644, 1000, 2000)
    assert os.lstat(ts).st_uid == 0  # only data files change owner


def test_sub_path_of_a_missing_host_path_is_a_clear_error(pod_dir: Path, tmp_path: Path) -> None:
    spec = spec_with([{"name": "h", "hostPath": {"path": str(tmp_path / "gone")}}])
    spec["containers"][0]["volumeMounts"][0]["subPath"] = "x"
    pv = prepare(pod_dir, spec)
    with pytest.raises(RuntimeFailure, match='failed to prepare subPath for volumeMount "h"'):
        mounts_for(pv, make_pod(spec).containers[0])
