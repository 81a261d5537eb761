"""Resolution as the kubelet + containerd decide it (kubelet-semantics §1, §2, §5; oci-translation §17)."""

from __future__ import annotations

import pytest

from podsec.image.model import GroupEntry, ImageInfo, PasswdEntry
from podsec.resolve import ALL_CAPS, resolve_pod

# The conformance fixture image (shared/conformance/IMAGE.md).
PASSWD = (
    PasswdEntry("root", 0, 0, "/root"),
    PasswdEntry("web", 101, 101, "/home/web"),
    PasswdEntry("app", 1000, 1000, "/home/app"),
    PasswdEntry("nobody", 65534, 65534, "/nonexistent"),
)
GROUP = (
    GroupEntry("root", 0),
    GroupEntry("web", 101),
    GroupEntry("app", 1000),
    GroupEntry("extra", 5000, ("app", "web")),
    GroupEntry("nogroup", 65534),
)
# oci-translation §17 fixture: app is in audio(29) and users(100); root in wheel(10).
PASSWD17 = (PasswdEntry("root", 0, 0), PasswdEntry("app", 1000, 1000), PasswdEntry("nobody", 65534, 65534))
GROUP17 = (GroupEntry("root", 0), GroupEntry("wheel", 10, ("root",)), GroupEntry("audio", 29, ("app",)),
           GroupEntry("users", 100, ("app",)), GroupEntry("app", 1000))
ALL41 = ALL_CAPS


def fixture(user: str | None) -> ImageInfo:
    return ImageInfo("docker.io/library/podsec-fixture:x", user=user, passwd=PASSWD, group=GROUP)


def img17(user: str | None = None) -> ImageInfo:
    return ImageInfo("img", user=user, passwd=PASSWD17, group=GROUP17)


def one(pod_sc: dict | None = None, sc: dict | None = None, image: ImageInfo | None = None, **spec_extra: object):
    c: dict = {"name": "c", "image": "img"}
    if sc is not None:
        c["securityContext"] = sc
    spec: dict = {"containers": [c], **spec_extra}
    if pod_sc is not None:
        spec["securityContext"] = pod_sc
    meta = {"name": "p", "namespace": "ns", "uid": "u-1"}
    pod = resolve_pod(meta, spec, (lambda ref: image) if image is not None else None, all_caps=ALL41)
    return pod, pod.containers[0]


def ids(rc) -> tuple:
    return rc.identity.uid, rc.identity.gid, rc.identity.groups


# --- identity ---------------------------------------------------------------------------------------

def test_seed_security_demo_groups_include_primary_and_fsgroup():
    _, rc = one({"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000}, image=fixture(None))
    # uid 1000 is `app`, a member of extra(5000): Merge adds it (conformance seed001-pod-…)
    assert ids(rc) == (1000, 3000, (2000, 3000, 5000))
    assert rc.identity.group_sources[2000] == "pod fsGroup"
    assert rc.identity.group_sources[5000] == "image /etc/group (extra)"


def test_vector_1_2_busybox_without_entries():
    empty = ImageInfo("busybox", passwd=(), group=())
    _, rc = one({"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000}, image=empty)
    assert ids(rc) == (1000, 3000, (2000, 3000))
    _, rc = one({"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000]},
                image=empty)
    assert ids(rc) == (1000, 3000, (2000, 3000, 4000))


def test_vector_3_runasuser_only_gid_zero():
    _, rc = one({"runAsUser": 1000}, image=ImageInfo("b", passwd=(), group=()))
    assert ids(rc) == (1000, 0, (0,))


def test_vector_4_merge_and_strict():
    img = ImageInfo("agnhost", passwd=(PasswdEntry("u", 1000, 1000),), group=(GroupEntry("g", 50000, ("u",)),))
    sc = {"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000]}
    assert ids(one(sc, image=img)[1])[2] == (3000, 4000, 50000)
    assert ids(one({**sc, "supplementalGroupsPolicy": "Strict"}, image=img)[1])[2] == (3000, 4000)


def test_vector_5_container_wins():
    _, rc = one({"runAsUser": 1000}, {"runAsUser": 2000}, image=fixture(None))
    assert rc.identity.uid == 2000 and rc.identity.uid_source == "container"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, (0, 0, (0,))),  # no USER counts as root
        ("0", (0, 0, (0,))),
        ("1000", (1000, 1000, (1000, 5000))),
        ("1000:2222", (1000, 1000, (1000, 5000))),  # the :gid part is dropped by the kubelet
        ("web", (101, 101, (101, 5000))),
    ],
)
def test_fixture_image_users(user, expected):
    _, rc = one(image=fixture(user))
    assert ids(rc) == expected


def test_username_not_in_passwd_is_a_runtime_error():
    _, rc = one(image=ImageInfo("x", user="ghost", passwd=PASSWD, group=GROUP))
    assert "unable to find user ghost" in (rc.identity.error or "")


def test_vector_47_username_with_run_as_group():
    img = ImageInfo("x", user="app", passwd=(PasswdEntry("app", 1001, 1001),), group=())
    _, rc = one({"runAsGroup": 3000}, image=img)
    assert ids(rc) == (1001, 3000, (3000,))
    assert rc.identity.cri_run_as_username == "app"


def test_container_runasgroup_without_runasuser():
    pod, rc = one(None, {"runAsGroup": 3000}, image=fixture(None))
    assert ids(rc) == (0, 3000, (3000,))
    assert pod.sandbox_error is None


def test_pod_runasgroup_without_runasuser_breaks_the_sandbox():
    pod, _ = one({"runAsGroup": 3000}, image=fixture(None))
    assert 'user group "3000" is specified without user' in pod.sandbox_error


def test_oci17_rows_identity():
    assert ids(one(image=img17())[1]) == (0, 0, (0, 10))
    assert ids(one(None, {"runAsUser": 1000}, image=img17())[1]) == (1000, 1000, (29, 100, 1000))
    assert ids(one(None, {"runAsUser": 1234}, image=img17())[1]) == (1234, 0, (0,))
    assert ids(one(None, {"runAsUser": 1234, "runAsGroup": 1234}, image=img17())[1]) == (1234, 1234, (1234,))
    sc5 = {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000]}
    assert ids(one(sc5, image=img17())[1])[2] == (29, 100, 2000, 3000, 4000)
    assert ids(one({**sc5, "supplementalGroupsPolicy": "Strict"}, image=img17())[1])[2] == (2000, 3000, 4000)
    assert ids(one(image=img17("app"))[1]) == (1000, 1000, (29, 100, 1000))
    assert ids(one(image=img17("1000:5000"))[1]) == (1000, 1000, (29, 100, 1000))


def test_unknown_image_says_what_depends_on_it():
    _, rc = one()
    assert rc.identity.uid is None and rc.identity.groups is None
    assert any("USER" in n for n in rc.depends_on_image)
    _, rc = one({"runAsUser": 1000, "runAsGroup": 3000})
    assert rc.identity.uid == 1000 and rc.identity.gid == 3000
    assert any("/etc/group" in n for n in rc.depends_on_image)


# --- runAsNonRoot --------------------------------------------------------------------------------------

POD = '"p_ns(u-1)"'


@pytest.mark.parametrize(
    ("pod_sc", "sc", "user", "message"),
    [
        ({"runAsNonRoot": True}, None, None, f"container has runAsNonRoot and image will run as root (pod: {POD}, container: c)"),
        ({"runAsNonRoot": True}, None, "nginx", "container has runAsNonRoot and image has non-numeric user (nginx), "
         f"cannot verify user is non-root (pod: {POD}, container: c)"),
        ({"runAsNonRoot": True}, None, "root", "container has runAsNonRoot and image has non-numeric user (root), "
         f"cannot verify user is non-root (pod: {POD}, container: c)"),
        ({"runAsNonRoot": True}, None, "0:0", f"container has runAsNonRoot and image will run as root (pod: {POD}, container: c)"),
        ({"runAsNonRoot": True}, None, "-1", "container has runAsNonRoot and image has an invalid user id (-1). "
         "(Must be 1-(2147483647)): must be between 0 and 2147483647, inclusive "
         f"(pod: {POD}, container: c)"),
        ({"runAsNonRoot": True}, None, "4294967294", "container has runAsNonRoot and image has an invalid user id "
         "(4294967294). (Must be 1-(2147483647)): must be between 0 and 2147483647, inclusive "
         f"(pod: {POD}, container: c)"),
        (None, {"runAsNonRoot": True, "runAsUser": 0}, None,
         f"container's runAsUser breaks non-root policy (pod: {POD}, container: c)"),
    ],
)
def test_run_as_non_root_kubelet_messages(pod_sc, sc, user, message):
    _, rc = one(pod_sc, sc, image=fixture(user))
    assert rc.run_as_non_root.ok is False
    assert rc.run_as_non_root.message == message


@pytest.mark.parametrize(
    ("pod_sc", "sc", "user"),
    [
        ({"runAsNonRoot": True}, None, "1000:1000"),
        ({"runAsNonRoot": True, "runAsUser": 1000}, None, None),  # explicit uid bypasses the image check
        ({"runAsNonRoot": True}, {"runAsNonRoot": False}, None),  # container turns the check off
    ],
)
def test_run_as_non_root_passes(pod_sc, sc, user):
    _, rc = one(pod_sc, sc, image=fixture(user))
    assert rc.run_as_non_root.ok is True


def test_run_as_non_root_unknown_image():
    _, rc = one({"runAsNonRoot": True})
    assert rc.run_as_non_root.ok is None


# --- capabilities, nnp, seccomp, masked paths -----------------------------------------------------------

def mask(names) -> str:
    from podsec.resolve import CAP_NUMBER

    return f"{sum(1 << CAP_NUMBER[n] for n in names if n in CAP_NUMBER):016x}"


@pytest.mark.parametrize(
    ("sc", "bounding_mask"),
    [
        (None, "00000000a80425fb"),
        ({"capabilities": {"add": ["NET_ADMIN"]}}, "00000000a80435fb"),
        ({"capabilities": {"drop": ["NET_RAW"]}}, "00000000a80405fb"),
        ({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}, "0000000000000400"),
        ({"capabilities": {"drop": ["ALL"]}}, "0000000000000000"),
        ({"capabilities": {"add": ["ALL"]}}, "000001ffffffffff"),
        ({"capabilities": {"add": ["ALL"], "drop": ["CHOWN"]}}, "000001fffffffffe"),
        ({"capabilities": {"add": ["ALL"], "drop": ["ALL"]}}, "0000000000000000"),
        ({"capabilities": {"add": ["SYS_ADMIN"]}}, "00000000a82425fb"),
        ({"capabilities": {"add": ["sys_ptrace"]}}, "00000000a80c25fb"),
        ({"privileged": True}, "000001ffffffffff"),
    ],
)
def test_capability_sets(sc, bounding_mask):
    _, rc = one(None, sc, image=fixture(None))
    assert mask(rc.capabilities.bounding) == bounding_mask
    assert mask(rc.capabilities.effective) == bounding_mask  # root: E = P = B


def test_non_root_has_no_effective_caps():
    _, rc = one(None, {"runAsUser": 1000, "capabilities": {"add": ["NET_ADMIN"]}}, image=fixture(None))
    assert rc.capabilities.effective == ()
    assert "CAP_NET_ADMIN" in rc.capabilities.bounding


def test_cap_prefix_quirk():
    _, rc = one(None, {"capabilities": {"add": ["CAP_NET_ADMIN"]}}, image=fixture(None))
    assert rc.capabilities.unknown == ("CAP_CAP_NET_ADMIN",)
    assert mask(rc.capabilities.bounding) == "00000000a80425fb"


@pytest.mark.parametrize(("ape", "nnp"), [(False, True), (True, False), (None, False)])
def test_no_new_privs(ape, nnp):
    sc = {} if ape is None else {"allowPrivilegeEscalation": ape}
    assert one(None, sc)[1].no_new_privileges is nnp


def test_seccomp_resolution():
    assert one()[1].seccomp.type == "Unconfined"
    assert one({"seccompProfile": {"type": "RuntimeDefault"}})[1].seccomp.type == "RuntimeDefault"
    rc = one({"seccompProfile": {"type": "RuntimeDefault"}}, {"seccompProfile": {"type": "Unconfined"}})[1]
    assert rc.seccomp.type == "Unconfined" and rc.seccomp.source == "container"
    rc = one({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/a.json"}})[1]
    assert rc.seccomp.localhost_ref == "/var/lib/kubelet/seccomp/profiles/a.json"
    rc = one(None, {"privileged": True, "seccompProfile": {"type": "RuntimeDefault"}})[1]
    assert rc.seccomp.type == "Unconfined"


def test_masked_paths():
    rc = one()[1]
    assert "/proc/kcore" in rc.masked_paths and "/sys/devices/virtual/powercap" in rc.masked_paths
    assert rc.readonly_paths == ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
    assert one(None, {"procMount": "Unmasked"}, hostUsers=False)[1].masked_paths == ()
    assert one(None, {"privileged": True})[1].masked_paths == ()


def test_selinux_container_replaces_whole_struct():
    rc = one({"seLinuxOptions": {"level": "s0:c1,c2"}}, {"seLinuxOptions": {"type": "spc_t"}})[1]
    assert rc.selinux == {"type": "spc_t"}


def test_writable_mounts_and_readonly_root():
    spec_vols = [{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "x"}}, {"name": "bare"}]
    c = {"name": "c", "image": "i", "securityContext": {"readOnlyRootFilesystem": True},
         "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "cfg", "mountPath": "/etc/cfg"},
                          {"name": "bare", "mountPath": "/b", "readOnly": True}]}
    pod = resolve_pod({"name": "p"}, {"containers": [c], "volumes": spec_vols}, all_caps=ALL41)
    rc = pod.containers[0]
    assert rc.readonly_rootfs
    assert [m.mount_path for m in rc.writable_mounts] == ["/tmp"]
    assert rc.mounts[2].volume_type == "emptyDir"  # API defaulting of a sourceless volume


def test_init_and_ephemeral_containers_are_resolved_in_order():
    spec = {"initContainers": [{"name": "i", "image": "x"}], "containers": [{"name": "c", "image": "x"}],
            "ephemeralContainers": [{"name": "e", "image": "x"}]}
    pod = resolve_pod({"name": "p"}, spec, all_caps=ALL41)
    assert [(c.kind, c.name) for c in pod.containers] == [("init", "i"), ("container", "c"), ("ephemeral", "e")]
