"""The plan stage: from an admitted, resolved pod to a :class:`PodPlan` — the pause container's
config.json, each container's complete config.json, and each volume with its files, owners and modes.

Pure: the inputs are the pod, the image facts, the ConfigMaps/Secrets given with it, :class:`NodeFacts`
and the feature gates; nothing is read from or written to the machine here. What exists only once the
pod runs is written as a placeholder (:data:`ROOTFS`, :data:`POD_DIR`, :data:`SANDBOX_NS`) that the
runtime replaces with :func:`realize` — the runtime executes a plan and decides nothing. ``podsec explain
-o oci`` prints the same plan before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podsec.downward import NodeInfo, ObjectStore, PodFacts
from podsec.errors import PodsecError
from podsec.image.model import ImageInfo
from podsec.model import Mount, ResolvedContainer, ResolvedPod, render_path
from podsec.plan import process
from podsec.plan.sandbox import (
    POD_IP,
    hosts_file,
    pause_args,
    pod_hostname,
    resolv_conf,
)

ROOTFS = "<rootfs>"
"""The container's root: its overlay mount point (the shared pause rootfs for the sandbox)."""
POD_DIR = "<pod-dir>"
"""The pod's state directory (``<state>/pods/<namespace>_<name>``)."""
SANDBOX_NS = "<sandbox-ns>"
"""The directory of the pod's namespace files: ``<pod-dir>/ns`` (pinned), ``/proc/<pause pid>/ns`` (pause)."""
POD_UID = "<pod-uid>"
"""``metadata.uid`` of a pod that has not been created yet (``run`` makes one up)."""

CONFIG_ERROR = "CreateContainerConfigError"
CREATE_ERROR = "CreateContainerError"

SANDBOX_FILES = ("hosts", "hostname", "resolv.conf")


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the plan needs to know about the node (this host); read once by :func:`node_facts`."""

    name: str
    ip: str
    """status.hostIP (the source address of the default route)."""
    info: NodeInfo
    cap_eff: int
    """Our CapEff: without CAP_SYS_RESOURCE, oom scores are never lowered below ours."""
    own_oom_score_adj: int
    etc_hosts: str = ""
    """The node's /etc/hosts (hostNetwork pods get it)."""
    resolv_conf: str = ""
    """The node's /etc/resolv.conf (the start of every pod's DNS config)."""
    arch: str = "amd64"
    seccomp_root: str = "/var/lib/kubelet/seccomp"


@dataclass(slots=True)
class SubPathBind:
    """A subPath the runtime binds (safely, inside the volume) at ``<pod-dir>/volume-subpaths/...``."""

    volume: str
    sub_path: str
    index: int


@dataclass(slots=True)
class ContainerRun:
    """One container: its config.json (with placeholders), or why the kubelet would not create it."""

    name: str
    kind: str
    image: str
    config: dict[str, Any] | None
    error: tuple[str, str] | None = None
    """(reason, message): ``CreateContainerConfigError`` / ``CreateContainerError`` and the kubelet's words."""
    subpaths: list[SubPathBind] = field(default_factory=list)
    termination_log: bool = False
    """Create ``<pod-dir>/containers/<name>/termination-log`` (empty, 0666) before each start."""


@dataclass(slots=True)
class SandboxRun:
    """The pod sandbox: the pause container's config.json and the files every container binds."""

    config: dict[str, Any] | None
    error: str | None
    hostname: str
    files: dict[str, str]
    """``<pod-dir>/sandbox/<name>`` → content (hosts, hostname, resolv.conf; mode 0644)."""
    shm: bool
    """Mount the pod's 64Mi /dev/shm tmpfs at ``<pod-dir>/sandbox/shm`` (not for hostIPC)."""
    host_network: bool
    pause: bool = True
    """Run a pause container (the pod shares one PID namespace, whose PID 1 it is); else the namespaces
    are pinned at ``<pod-dir>/ns`` without one (:mod:`podsec.runtime.pinns`) and ``config`` is None."""
    pinned: dict[str, bool] = field(default_factory=dict)
    """Without pause: the namespaces to pin, new (True) or the host's (False): net, ipc, uts, [pid]."""
    sysctls: dict[str, str] = field(default_factory=dict)
    """Without pause: the sysctls to set inside the pinned namespaces (the pause spec's ``linux.sysctl``)."""


@dataclass(slots=True)
class PodPlan:
    """Everything ``run`` will do for a pod, decided before anything runs."""

    sandbox: SandboxRun
    containers: dict[str, ContainerRun]
    volumes: list[Any]
    """:class:`podsec.volumes.plan.VolumePlan` per volume (files, owners, modes)."""
    volume_error: PodsecError | None = None
    """The kubelet's MountVolume.SetUp failure (a missing ConfigMap, ...): no container starts."""

    def oci(self) -> dict[str, Any]:
        """``{"sandbox": CONFIG_OR_NULL, "containers": {NAME: CONFIG_OR_NULL}}`` (``explain -o oci``)."""
        return {"sandbox": self.sandbox.config,
                "containers": {name: c.config for name, c in self.containers.items()}}


def pod_facts(metadata: Mapping[str, Any], spec: Mapping[str, Any], node: NodeFacts) -> PodFacts:
    """What fieldRef reads: the pod IP is loopback (no CNI), the node's for hostNetwork."""
    pod_ip = node.ip if spec.get("hostNetwork") is True else POD_IP
    return PodFacts(metadata, spec, node.name, pod_ip, node.ip)


def plan_sandbox(pod: ResolvedPod, metadata: Mapping[str, Any], spec: Mapping[str, Any], node: NodeFacts,
                 ) -> SandboxRun:
    """RunPodSandbox: needs only pod-level settings, so ``run`` starts it before looking at images."""
    from podsec.oci import SandboxPlan, build_sandbox_spec

    hostname = pod_hostname(metadata, spec, node.name)
    facts = pod_facts(metadata, spec, node)
    files = {
        "hosts": hosts_file(hostname, facts.pod_ip, spec, node.etc_hosts),
        "hostname": hostname + "\n",
        "resolv.conf": resolv_conf(spec, node.resolv_conf),
    }
    pause = pod.share_process_namespace and not pod.host_pid
    run = SandboxRun(None, pod.sandbox_error, hostname, files, not pod.host_ipc, pod.host_network, pause)
    if pod.sandbox_error:
        return run
    plan = SandboxPlan(
        pod=pod,
        rootfs=ROOTFS,
        args=pause_args(node.arch),
        hostname=hostname,
        shm=None if pod.host_ipc else f"{POD_DIR}/sandbox/shm",
        etc_resolv=f"{POD_DIR}/sandbox/resolv.conf",
        run_as_user=pod.sandbox_user,
        run_as_group=pod.sandbox_group,
        host_cap_eff=node.cap_eff,
        own_oom_score_adj=node.own_oom_score_adj,
        arch=node.arch,
    )
    try:
        config = build_sandbox_spec(plan)  # also without pause: its errors are RunPodSandbox's
    except PodsecError as e:
        run.error = e.message
        return run
    if pause:
        run.config = config
    else:
        run.pinned = {"net": not pod.host_network, "ipc": not pod.host_ipc, "uts": not pod.host_network}
        if pod.host_pid:
            run.pinned["pid"] = False
        run.sysctls = dict(config["linux"].get("sysctl") or {})
    return run


def plan_pod(
    pod: ResolvedPod,
    metadata: Mapping[str, Any],
    spec: Mapping[str, Any],
    images: Mapping[str, ImageInfo | None],
    objects: list[Mapping[str, Any]],
    node: NodeFacts,
    *,
    volume_dirs: Mapping[str, str] | None = None,
    gates: Callable[[str], bool] | None = None,
    sandbox: SandboxRun | None = None,
) -> PodPlan:
    """The whole pod. ``images``: by container name (None: not in the store); ``volume_dirs``: the
    ``--volume-dir`` claims (None: not checked, as in ``explain``); ``gates``: is a feature gate on."""
    from podsec.features import ATOMIC_WRITE_VOLUME_USER_FIELDS, POD_SECURITY_CONTEXT_FS_USER

    enabled = gates or (lambda _name: False)
    sbx = sandbox or plan_sandbox(pod, metadata, spec, node)
    volumes: list[Any] = []
    volume_error: PodsecError | None = None
    if spec.get("volumes"):
        from pathlib import Path

        from podsec.volumes.plan import plan_volumes

        try:
            volumes = plan_volumes(
                pod, spec, metadata, objects,
                None if volume_dirs is None else {k: Path(v) for k, v in volume_dirs.items()}, node.info,
                atomic_write_user_fields=enabled(ATOMIC_WRITE_VOLUME_USER_FIELDS),
                pod_fs_user=enabled(POD_SECURITY_CONTEXT_FS_USER),
            )
        except PodsecError as e:
            volume_error = e
    store = ObjectStore(objects)
    facts = pod_facts(metadata, spec, node)
    by_name = {v.name: v for v in volumes}
    cspecs = {str(c.get("name")): c for c in process.all_containers(spec)}
    containers: dict[str, ContainerRun] = {}
    for rc in pod.containers:
        if rc.kind not in ("init", "container"):
            continue
        if sbx.error is not None:  # RunPodSandbox failed: the kubelet never gets to CreateContainer
            containers[rc.name] = ContainerRun(rc.name, rc.kind, rc.image, None)
            continue
        containers[rc.name] = plan_container(pod, rc, cspecs.get(rc.name, {}), images.get(rc.name), facts,
                                             store, node, sbx, by_name)
    return PodPlan(sbx, containers, volumes, volume_error)


def plan_container(
    pod: ResolvedPod,
    rc: ResolvedContainer,
    cspec: Mapping[str, Any],
    image: ImageInfo | None,
    facts: PodFacts,
    objects: ObjectStore,
    node: NodeFacts,
    sandbox: SandboxRun,
    volumes: Mapping[str, Any],
) -> ContainerRun:
    """CreateContainer: the kubelet's checks and env, then containerd's spec, in their order."""
    from podsec.oci import ContainerPlan, build_container_spec

    run = ContainerRun(rc.name, rc.kind, rc.image, None)
    if rc.run_as_non_root.ok is False:
        run.error = (CONFIG_ERROR, rc.run_as_non_root.message or "runAsNonRoot verification failed")
        return run
    if rc.identity.error:
        run.error = (CREATE_ERROR, rc.identity.error)
        return run
    try:
        kube_env = process.kubelet_env(cspec, facts, objects, node.info)
    except process.ConfigError as e:
        run.error = (CONFIG_ERROR, str(e))
        return run
    try:
        mounts = volume_mounts(rc, volumes, kube_env, run.subpaths)
    except PodsecError as e:
        run.error = (CONFIG_ERROR, e.message)
        return run
    dest = cspec.get("terminationMessagePath", "/dev/termination-log")
    if dest:
        run.termination_log = True
        mounts.append({"destination": dest, "type": "bind",
                       "source": f"{POD_DIR}/containers/{rc.name}/termination-log",
                       "options": ["rbind", "rprivate", "rw"]})
    plan = ContainerPlan(
        pod=pod,
        container=rc,
        rootfs=ROOTFS,
        args=process.process_args(cspec, image, kube_env),
        env=process.process_env(sandbox.hostname, image, kube_env),
        cwd=process.working_dir(cspec, image),
        volume_mounts=mounts,
        etc_hosts=f"{POD_DIR}/sandbox/hosts",
        etc_hostname=f"{POD_DIR}/sandbox/hostname",
        etc_resolv=f"{POD_DIR}/sandbox/resolv.conf",
        shm=f"{POD_DIR}/sandbox/shm" if sandbox.shm else None,
        sandbox_ns=SANDBOX_NS,
        host_cap_eff=node.cap_eff,
        own_oom_score_adj=node.own_oom_score_adj,
        arch=node.arch,
        seccomp_root=node.seccomp_root,
    )
    try:
        run.config = build_container_spec(plan)
    except PodsecError as e:
        run.error = (CREATE_ERROR, e.message)
    return run


def volume_mounts(rc: ResolvedContainer, volumes: Mapping[str, Any], env: Mapping[str, str],
                  subpaths: list[SubPathBind]) -> list[dict[str, Any]]:
    """OCI bind mounts for ``rc``'s volumeMounts, in spec order (the kubelet's ``makeMounts``).

    A subPath/subPathExpr (``$(VAR)`` from the container's env) is bound by the runtime to a private
    place first; the plan names that place and lists the bind in ``subpaths``."""
    out: list[dict[str, Any]] = []
    for idx, m in enumerate(rc.mounts):
        vol = volumes.get(m.name)
        where = render_path(m.field) if m.field else None
        if vol is None:
            from podsec.errors import InputError

            raise InputError(f'volumeMount "{m.name}" of container "{rc.name}": no volume named "{m.name}"',
                             field=where)
        source = vol.host_path if vol.type == "hostPath" else f"{POD_DIR}/volumes/{vol.plugin_dir}/{vol.name}"
        sub = _sub_path(m, rc, env)
        if sub:
            index = m.field[-1] if m.field and isinstance(m.field[-1], int) else idx
            subpaths.append(SubPathBind(m.name, sub, index))
            source = f"{POD_DIR}/volume-subpaths/{m.name}/{rc.name}/{index}"
        ro = m.read_only or vol.read_only
        out.append({"destination": m.mount_path, "type": "bind", "source": str(source),
                    "options": ["rbind", "rprivate", "ro" if ro else "rw"]})
    return out


def _sub_path(m: Mount, rc: ResolvedContainer, env: Mapping[str, str]) -> str | None:
    from podsec.errors import InputError
    from podsec.volumes import subpath

    where = render_path(m.field) if m.field else None
    sub = m.sub_path
    if m.sub_path_expr:
        try:
            sub = subpath.expand_sub_path_expr(m.sub_path_expr, env)
        except InputError as e:
            raise InputError(f'volumeMount "{m.name}" of container "{rc.name}": subPathExpr: {e.message}',
                             field=where) from None
    if not sub:
        return None
    subpath.validate_sub_path(sub, field=where)
    return sub


def realize(config: Any, values: Mapping[str, str]) -> Any:
    """The plan's config with its placeholders replaced by what exists now (a copy; the plan is kept)."""
    if isinstance(config, str):
        for key, value in values.items():
            if key in config:
                config = config.replace(key, value)
        return config
    if isinstance(config, dict):
        return {k: realize(v, values) for k, v in config.items()}
    if isinstance(config, list):
        return [realize(v, values) for v in config]
    return config
