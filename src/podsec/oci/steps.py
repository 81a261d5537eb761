"""The spec opts: one small function per containerd ``SpecOpts`` (oci-translation §2, §6–§11).

Every step is ``step(spec, plan) -> None`` and mutates ``spec`` in place, exactly like a Go ``SpecOpts``,
so each can be tested alone on a hand-made dict and the order lives in one list (``podsec.oci.spec``).

Host facts this builder deliberately does not act on (documented so nobody hunts for them):

* AppArmor and SELinux: this host has neither. As in containerd, asking for an AppArmor profile other
  than Unconfined is an error ("apparmor is not supported"); SELinux options yield empty labels.
* Privileged devices: ``linux.devices`` lists every host device node (containerd's ``WithHostDevices``,
  walked by :func:`podsec.oci.mounts.host_devices` unless the plan supplies the list) and the device
  cgroup is allow-all; /dev is not bind-mounted from the host.
* Host paths of CRI mounts are not created or symlink-resolved here (the volume layer owns the host).
"""

from __future__ import annotations

import copy
import posixpath

from podsec.errors import RuntimeFailure
from podsec.oci.caps import CAPABILITY_NUMBERS, DEFAULT_CAPS, read_host_cap_eff
from podsec.oci.mounts import (
    bind,
    cgroup_mount,
    default_mounts,
    host_cgroup2_options,
    host_devices,
    merge_mounts,
)
from podsec.oci.plan import ContainerPlan, SandboxPlan, sandbox_user_error
from podsec.oci.seccomp import load_localhost_seccomp, resolve_localhost_ref, runtime_default_seccomp

Plan = ContainerPlan | SandboxPlan

OCI_VERSION = "1.0.2-dev"
"""What runc 1.1.5's ``runc spec`` writes; crun 1.8 accepts it too."""

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CONTAINERD_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
)
"""containerd's own defaults (§2.1): only the pause container keeps them; app containers get the kubelet's."""

CONTAINERD_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

UNPRIVILEGED_PORT_SYSCTL = "net.ipv4.ip_unprivileged_port_start"
PING_GROUP_SYSCTL = "net.ipv4.ping_group_range"


# --------------------------------------------------------------------------------------------- helpers


def _linux(spec: dict) -> dict:
    return spec.setdefault("linux", {})


def _process(spec: dict) -> dict:
    return spec.setdefault("process", {})


def _set_namespace(spec: dict, ns_type: str, path: str | None = None) -> None:
    """``oci.WithLinuxNamespace``: replace the entry of that type in place, or append it."""
    entry: dict = {"type": ns_type}
    if path:
        entry["path"] = path
    namespaces = _linux(spec).setdefault("namespaces", [])
    for i, ns in enumerate(namespaces):
        if ns.get("type") == ns_type:
            namespaces[i] = entry
            return
    namespaces.append(entry)


def _remove_namespace(spec: dict, ns_type: str) -> None:
    """``WithoutNamespace``: no entry means the host's namespace."""
    linux = _linux(spec)
    linux["namespaces"] = [ns for ns in linux.get("namespaces", []) if ns.get("type") != ns_type]


def _replace_or_append_env(current: list[str], new: list[str]) -> list[str]:
    """containerd's ``replaceOrAppendEnvValues``: same key replaces in place, ``K`` without ``=`` removes."""
    out = list(current)
    for item in new:
        key, has_value = item.split("=", 1)[0], "=" in item
        idx = next((i for i, cur in enumerate(out) if cur.split("=", 1)[0] == key), None)
        if not has_value:
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append(item)
        else:
            out[idx] = item
    return out


def _set_caps(spec: dict, caps: list[str]) -> None:
    """B=E=P; inheritable and ambient never appear (containerd ≥ 1.6.2, ``WithoutAmbientCaps``)."""
    _process(spec)["capabilities"] = {
        "bounding": list(caps),
        "effective": list(caps),
        "permitted": list(caps),
    }


def _flip_ro_to_rw(mount: dict) -> None:
    mount["options"] = ["rw" if o == "ro" else o for o in mount.get("options", [])]


# --------------------------------------------------------------------------------------------- base spec


def with_default_spec(spec: dict, plan: Plan) -> None:
    """``populateDefaultUnixSpec`` (§2.1): the starting point every CRI opt edits."""
    spec.clear()
    spec.update(
        {
            "ociVersion": OCI_VERSION,
            "process": {
                "user": {"uid": 0, "gid": 0},
                "args": [],
                "env": [DEFAULT_PATH_ENV],
                "cwd": "/",
                "capabilities": {
                    "bounding": list(DEFAULT_CAPS),
                    "effective": list(DEFAULT_CAPS),
                    "permitted": list(DEFAULT_CAPS),
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": True,
            },
            "root": {"path": "rootfs", "readonly": False},
            "mounts": default_mounts(),
            "linux": {
                "resources": {"devices": [{"allow": False, "access": "rwm"}]},
                "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
                "maskedPaths": list(CONTAINERD_MASKED_PATHS),
                "readonlyPaths": list(CONTAINERD_READONLY_PATHS),
            },
        }
    )


def without_run_mount(spec: dict, plan: Plan) -> None:
    """``oci.WithoutRunMount``: the CRI never mounts a tmpfs on /run."""
    spec["mounts"] = [m for m in spec.get("mounts", []) if posixpath.normpath(m["destination"]) != "/run"]


def without_default_security_settings(spec: dict, plan: Plan) -> None:
    """``WithoutDefaultSecuritySettings``: no AppArmor, no seccomp, no rlimits (Kubernetes has no rlimit API,
    so the process inherits the runtime's limits)."""
    process = _process(spec)
    process.pop("apparmorProfile", None)
    process.pop("rlimits", None)
    _linux(spec).pop("seccomp", None)


def with_root(spec: dict, plan: Plan) -> None:
    """``WithRelativeRoot``; podsec's rootfs is an absolute overlay mount point, not ``<bundle>/rootfs``."""
    spec.setdefault("root", {})["path"] = plan.rootfs


def with_process_args(spec: dict, plan: Plan) -> None:
    """The argv the lead resolved (Docker rules for command/args vs ENTRYPOINT/CMD)."""
    if not plan.args:
        raise RuntimeFailure("no command specified: neither the pod nor the image gives an entrypoint or cmd")
    _process(spec)["args"] = list(plan.args)


def with_default_path_env(spec: dict, plan: Plan) -> None:
    """``WithDefaultPathEnv``: a PATH exists even when the image sets none."""
    process = _process(spec)
    process["env"] = _replace_or_append_env(process.get("env", []), [DEFAULT_PATH_ENV])


def with_new_privileges(spec: dict, plan: Plan) -> None:
    """``WithNewPrivileges``: the CRI turns the base NNP off; only allowPrivilegeEscalation: false sets it."""
    _process(spec)["noNewPrivileges"] = False


def with_cwd(spec: dict, plan: Plan) -> None:
    """CRI working_dir, else the image WorkingDir (resolved by the lead), else ``/``."""
    _process(spec)["cwd"] = plan.cwd or "/"


def with_env(spec: dict, plan: Plan) -> None:
    """``WithEnv``: later entries with the same key replace earlier ones in place."""
    process = _process(spec)
    process["env"] = _replace_or_append_env(process.get("env", []), list(plan.env))


def with_cgroup_namespace(spec: dict, plan: ContainerPlan) -> None:
    """A private cgroup namespace only on cgroup v2 and never for privileged containers (§2.2 step 5)."""
    if plan.cgroup_v2 and not plan.container.privileged:
        _set_namespace(spec, "cgroup")


def _has_cgroupns(spec: dict) -> bool:
    return any(ns.get("type") == "cgroup" for ns in _linux(spec).get("namespaces", []))


def _container_supplied_mounts(plan: ContainerPlan) -> list[dict]:
    """CRI mounts in the kubelet's order (volumes, /etc/hosts, termination log) plus containerd's extras
    (/etc/hostname, /etc/resolv.conf, /dev/shm) where nothing is mounted yet."""
    readonly = plan.container.readonly_rootfs
    cri: list[dict] = [copy.deepcopy(m) for m in plan.volume_mounts]
    for m in cri:
        m.setdefault("type", "bind")
    taken = {posixpath.normpath(m["destination"]) for m in cri}
    if plan.etc_hosts and "/etc/hosts" not in taken:
        cri.append(bind(plan.etc_hosts, "/etc/hosts", readonly=False))
        taken.add("/etc/hosts")
    if plan.termination_log:
        dest = posixpath.normpath(plan.termination_message_path)
        if dest not in taken:
            cri.append(bind(plan.termination_log, dest, readonly=False))
            taken.add(dest)
    extras: list[dict] = []
    shm = plan.shm or ("/dev/shm" if plan.pod.host_ipc else None)
    for dest, source, ro in (
        ("/etc/hostname", plan.etc_hostname, readonly),
        ("/etc/resolv.conf", plan.etc_resolv, readonly),
        ("/dev/shm", shm, False),
    ):
        if source and dest not in taken:
            extras.append(bind(source, dest, readonly=ro))
    return cri + extras


def with_mounts(spec: dict, plan: ContainerPlan) -> None:
    """``withMounts`` (§2.4): defaults + the ro cgroup mount, then the binds sorted by depth."""
    extra: list[str] = []
    if plan.cgroup_v2 and not _has_cgroupns(spec):
        extra = host_cgroup2_options()
    spec["mounts"] = merge_mounts(
        spec.get("mounts", []), _container_supplied_mounts(plan), cgroup_mount(extra)
    )


def with_masked_paths(spec: dict, plan: ContainerPlan) -> None:
    """containerd throws its own lists away and uses the kubelet's (§2.2 step 7); empty lists are omitted
    (Go ``omitempty``), which is also how procMount: Unmasked looks."""
    linux = _linux(spec)
    linux.pop("maskedPaths", None)
    linux.pop("readonlyPaths", None)
    if plan.container.masked_paths:
        linux["maskedPaths"] = list(plan.container.masked_paths)
    if plan.container.readonly_paths:
        linux["readonlyPaths"] = list(plan.container.readonly_paths)


def with_capabilities(spec: dict, plan: ContainerPlan) -> None:
    """The resolver's final containerd list as B=E=P. Junk names such as ``CAP_CAP_X`` are kept, as on a
    real node: runc warns and skips them; recent crun refuses to start (crun 1.8.1 here skips them)."""
    _set_caps(spec, list(plan.container.capabilities.bounding))


def with_privileged(spec: dict, plan: ContainerPlan) -> None:
    """``WithPrivileged`` + ``WithHostDevices`` + ``WithAllDevicesAllowed`` (§6).

    All capabilities the host grants us, no masked/readonly paths, sysfs and cgroup mounts rw, no seccomp,
    no AppArmor/SELinux label, every host device node and an allow-all device cgroup.
    """
    if not plan.container.privileged:
        return
    _set_caps(spec, list(plan.container.capabilities.bounding))  # resolve's: every capability of the host
    linux = _linux(spec)
    linux.pop("maskedPaths", None)
    linux.pop("readonlyPaths", None)
    linux.pop("seccomp", None)
    process = _process(spec)
    process.pop("apparmorProfile", None)
    process.pop("selinuxLabel", None)
    for mount in spec.get("mounts", []):
        if mount.get("type") in ("sysfs", "cgroup", "cgroup2"):
            _flip_ro_to_rw(mount)
    devices = plan.host_devices if plan.host_devices is not None else host_devices()
    linux["devices"] = [dict(d) for d in devices]
    linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]


def without_ambient_caps(spec: dict, plan: Plan) -> None:
    """``WithoutAmbientCaps``: no ambient set, and a capabilities object always exists (crun drops
    everything when it is null, runc keeps everything)."""
    caps = _process(spec).setdefault("capabilities", {"bounding": [], "effective": [], "permitted": []})
    caps.pop("ambient", None)
    caps.pop("inheritable", None)


def with_selinux_labels(spec: dict, plan: Plan) -> None:
    """``label.InitLabels`` + ``WithSelinuxLabels``: SELinux is disabled on this host, so both labels are
    empty and nothing is written (containerd does the same when ``enable_selinux`` is false)."""
    _process(spec).pop("selinuxLabel", None)
    _linux(spec).pop("mountLabel", None)


def with_no_new_privileges(spec: dict, plan: ContainerPlan) -> None:
    """NNP true only for an explicit allowPrivilegeEscalation: false (the resolver's flag)."""
    if plan.container.no_new_privileges:
        _process(spec)["noNewPrivileges"] = True


def with_readonly_rootfs(spec: dict, plan: ContainerPlan) -> None:
    """``root.readonly`` from readOnlyRootFilesystem; the /etc binds followed it in ``with_mounts``."""
    if plan.container.readonly_rootfs:
        spec.setdefault("root", {})["readonly"] = True


def with_cgroups_path(spec: dict, plan: Plan) -> None:
    """Only when the planner chose a cgroup; otherwise the runtime's default path for the id."""
    if plan.cgroups_path:
        _linux(spec)["cgroupsPath"] = plan.cgroups_path


def _own_oom_score_adj() -> int:
    with open("/proc/self/oom_score_adj", encoding="ascii") as fh:
        return int(fh.read().strip())


def _restrict_oom(plan: Plan) -> bool:
    if plan.restrict_oom_score_adj is not None:
        return plan.restrict_oom_score_adj
    cap_eff = read_host_cap_eff() if plan.host_cap_eff is None else plan.host_cap_eff
    return not cap_eff & (1 << CAPABILITY_NUMBERS["CAP_SYS_RESOURCE"])


def with_oom_score_adj(spec: dict, plan: Plan) -> None:
    """CRI ``OomScoreAdj`` → ``process.oomScoreAdj`` (kubelet QoS value; -998 for the pause container).

    With ``restrict_oom_score_adj`` (automatic when CAP_SYS_RESOURCE is missing, as on hosts whose bounding
    set lacks it) the value is raised to our own score, like containerd's option of that name.
    """
    if plan.oom_score_adj is None:
        return
    value = plan.oom_score_adj
    if _restrict_oom(plan):
        own = plan.own_oom_score_adj if plan.own_oom_score_adj is not None else _own_oom_score_adj()
        value = max(value, own)
    _process(spec)["oomScoreAdj"] = value


def with_namespaces(spec: dict, plan: ContainerPlan) -> None:
    """``WithPodNamespaces`` (§11.1): join the pod's net/ipc/uts, and its pid when shared.

    ``sandbox_ns`` is where the pod's namespace files are (``/proc/<pause pid>/ns``, or the pinned ones under
    the pod directory). Without one (used by tests and one-off runs) the pod namespaces are created fresh,
    or left out (= the host's) for hostNetwork/hostIPC/hostPID.
    """
    pod = plan.pod
    if pod.host_users is False:
        raise RuntimeFailure(
            "hostUsers: false (user namespaces) is not supported by podsec's runtime spec builder"
        )
    ns = plan.sandbox_ns
    if ns is not None:
        for ns_type, name in (("network", "net"), ("ipc", "ipc"), ("uts", "uts")):
            _set_namespace(spec, ns_type, f"{ns}/{name}")
        if pod.host_pid or pod.share_process_namespace:
            _set_namespace(spec, "pid", f"{ns}/pid")
        else:
            _set_namespace(spec, "pid")
        return
    if pod.host_network:
        _remove_namespace(spec, "network")
        _remove_namespace(spec, "uts")
    if pod.host_ipc:
        _remove_namespace(spec, "ipc")
    if pod.host_pid:
        _remove_namespace(spec, "pid")


def with_annotations(spec: dict, plan: Plan) -> None:
    """The CRI annotations containerd adds, so runtime hooks and ``runc state`` can tell what this is."""
    pod = plan.pod
    annotations = spec.setdefault("annotations", {})
    if isinstance(plan, ContainerPlan):
        annotations["io.kubernetes.cri.container-type"] = "container"
        annotations["io.kubernetes.cri.container-name"] = plan.container.name
        annotations["io.kubernetes.cri.image-name"] = plan.container.image
    else:
        annotations["io.kubernetes.cri.container-type"] = "sandbox"
    annotations["io.kubernetes.cri.sandbox-name"] = pod.name
    annotations["io.kubernetes.cri.sandbox-namespace"] = pod.namespace
    annotations["io.kubernetes.cri.sandbox-uid"] = pod.uid


def with_user(spec: dict, plan: ContainerPlan) -> None:
    """Phase B ``WithUser`` + additional GIDs: the resolver already did containerd's lookups, sorting and
    ``ensureAdditionalGids``, so additionalGids is exactly ``identity.groups``."""
    identity = plan.container.identity
    if identity.error:
        raise RuntimeFailure(identity.error)
    if identity.uid is None or identity.gid is None:
        raise RuntimeFailure(f"container {plan.container.name!r}: user is not resolved (image unknown)")
    user: dict = {"uid": identity.uid, "gid": identity.gid}
    if identity.groups:
        user["additionalGids"] = list(identity.groups)
    _process(spec)["user"] = user


def with_apparmor(spec: dict, plan: ContainerPlan) -> None:
    """AppArmor is absent here; like containerd, a requested non-Unconfined profile is an error
    (nothing requested means RuntimeDefault, which is silently skipped without AppArmor)."""
    profile = plan.container.apparmor
    if profile.type in (None, "Unconfined"):
        return
    if profile.type == "RuntimeDefault" and plan.container.privileged:
        return
    raise RuntimeFailure(
        f"container {plan.container.name!r}: apparmor is not supported on this host "
        f"(requested {profile.type}{' ' + profile.profile if profile.profile else ''})"
    )


def with_seccomp(spec: dict, plan: ContainerPlan) -> None:
    """Phase B seccomp (§8.1): none for privileged whatever was asked (even Localhost) and for Unconfined;
    RuntimeDefault from the final bounding set; Localhost verbatim from the file."""
    linux = _linux(spec)
    linux.pop("seccomp", None)
    profile = plan.container.seccomp
    if plan.container.privileged or profile.type in ("", "Unconfined"):
        return
    if profile.type == "RuntimeDefault":
        bounding = _process(spec).get("capabilities", {}).get("bounding", [])
        linux["seccomp"] = runtime_default_seccomp(list(bounding), plan.arch)
        return
    if profile.type == "Localhost":
        if not profile.localhost_ref:
            raise RuntimeFailure(
                f"container {plan.container.name!r}: "
                "localhostProfile must be set if seccompProfile type is Localhost."
            )
        linux["seccomp"] = load_localhost_seccomp(
            resolve_localhost_ref(profile.localhost_ref, plan.seccomp_root)
        )
        return
    raise RuntimeFailure(f"container {plan.container.name!r}: unknown seccomp profile type {profile.type!r}")


# --------------------------------------------------------------------------------------------- sandbox only


def _sandbox_privileged(plan: SandboxPlan) -> bool:
    """The kubelet marks the sandbox privileged when any container (init/ephemeral too) is."""
    return any(c.privileged for c in plan.pod.containers)


def with_readonly_root(spec: dict, plan: SandboxPlan) -> None:
    """``WithRootFSReadonly``: the pause container never writes."""
    spec.setdefault("root", {})["readonly"] = True


def with_hostname(spec: dict, plan: SandboxPlan) -> None:
    """The pod's hostname lives in the pause UTS namespace; with hostNetwork there is none to name
    (runc refuses a hostname without a private UTS namespace)."""
    if not plan.pod.host_network and plan.hostname:
        spec["hostname"] = plan.hostname


def with_sandbox_namespaces(spec: dict, plan: SandboxPlan) -> None:
    """§11.2: host namespaces are left out; the pod network is a fresh (loopback-only) netns or CNI's."""
    pod = plan.pod
    if pod.host_users is False:
        raise RuntimeFailure(
            "hostUsers: false (user namespaces) is not supported by podsec's runtime spec builder"
        )
    if pod.host_network:
        _remove_namespace(spec, "network")
        _remove_namespace(spec, "uts")
    else:
        _set_namespace(spec, "network", plan.netns_path)
    if pod.host_pid:
        _remove_namespace(spec, "pid")
    if pod.host_ipc:
        _remove_namespace(spec, "ipc")


def with_sandbox_mounts(spec: dict, plan: SandboxPlan) -> None:
    """The pod's /dev/shm and resolv.conf, read-only for pause (``[rbind, ro, nosuid, nodev, noexec]``).

    With no shm dir planned the default /dev/shm tmpfs stays (containerd always has one).
    """
    mounts = spec.setdefault("mounts", [])
    shm = plan.shm or ("/dev/shm" if plan.pod.host_ipc else None)
    options = ["rbind", "ro", "nosuid", "nodev", "noexec"]
    if shm:
        mounts[:] = [m for m in mounts if posixpath.normpath(m["destination"]) != "/dev/shm"]
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": shm, "options": list(options)})
    if plan.etc_resolv:
        mounts.append(
            {
                "destination": "/etc/resolv.conf",
                "type": "bind",
                "source": plan.etc_resolv,
                "options": list(options),
            }
        )


def with_sysctls(spec: dict, plan: SandboxPlan) -> None:
    """Pod sysctls (§10.1), plus containerd 2.x's defaults for pods with their own network namespace:
    unprivileged ports from 0 and unprivileged ICMP for all groups, unless the pod set them."""
    sysctls = {name: value for name, value in plan.pod.sysctls}
    if not plan.pod.host_network:
        sysctls.setdefault(UNPRIVILEGED_PORT_SYSCTL, "0")
        if plan.pod.host_users is not False:
            sysctls.setdefault(PING_GROUP_SYSCTL, "0 2147483647")
    if sysctls:
        _linux(spec)["sysctl"] = dict(sorted(sysctls.items()))


def with_sandbox_shares(spec: dict, plan: SandboxPlan) -> None:
    """``WithDefaultSandboxShares``: the pause container gets the minimum cpu weight."""
    _linux(spec).setdefault("resources", {}).setdefault("cpu", {})["shares"] = 2


def with_sandbox_user(spec: dict, plan: SandboxPlan) -> None:
    """Pod runAsUser[:runAsGroup] or the pause image USER (§3.3). ``WithUser`` runs last and resets the
    supplementary groups, so additionalGids is just the primary gid."""
    if plan.run_as_user is not None:
        uid = plan.run_as_user
        gid = plan.run_as_group if plan.run_as_group is not None else 0  # pause image has no /etc/passwd
    elif plan.run_as_group is not None:
        raise RuntimeFailure(sandbox_user_error(plan.run_as_user, plan.run_as_group) or "")
    else:
        parts = plan.image_user.split(":")
        try:
            uid = int(parts[0])
            gid = int(parts[1]) if len(parts) > 1 else 0
        except (ValueError, IndexError) as exc:
            raise RuntimeFailure(f"pause image USER {plan.image_user!r} must be numeric uid[:gid]") from exc
    _process(spec)["user"] = {"uid": uid, "gid": gid, "additionalGids": [gid]}


def with_sandbox_seccomp(spec: dict, plan: SandboxPlan) -> None:
    """The kubelet always asks RuntimeDefault for the sandbox; a privileged sandbox gets none (same rule as
    containers: containerd passes the sandbox's privileged flag to the seccomp mapping)."""
    linux = _linux(spec)
    linux.pop("seccomp", None)
    if _sandbox_privileged(plan):
        return
    bounding = _process(spec).get("capabilities", {}).get("bounding", [])
    linux["seccomp"] = runtime_default_seccomp(list(bounding), plan.arch)
