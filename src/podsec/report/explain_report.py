"""``podsec explain``: the resolved pod in words, or as JSON other tools can read."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from podsec.model import ResolvedContainer, ResolvedPod
from podsec.oci.caps import CAPABILITY_NUMBERS, DEFAULT_CAPS

if TYPE_CHECKING:
    from podsec.puid import Verdict

KIND_WORD = {"init": "init container", "container": "container", "ephemeral": "ephemeral container"}


def container_dict(c: ResolvedContainer, puid: Verdict | None = None) -> dict:
    ident = c.identity
    out = {
        "name": c.name,
        "type": c.kind,
        "image": c.image,
        "imageKnown": c.image_known,
        "user": {
            "uid": ident.uid,
            "gid": ident.gid,
            "groups": list(ident.groups) if ident.groups is not None else None,
            "username": ident.username,
            "sources": {"uid": ident.uid_source, "gid": ident.gid_source,
                        "groups": {str(k): v for k, v in ident.group_sources.items()}},
            "error": ident.error,
        },
        "runAsNonRoot": {"required": c.run_as_non_root.required, "ok": c.run_as_non_root.ok,
                         "message": c.run_as_non_root.message},
        "capabilities": {
            "effective": sorted(c.capabilities.effective),
            "bounding": sorted(c.capabilities.bounding),
            "unknown": sorted(c.capabilities.unknown),
        },
        "privileged": c.privileged,
        "noNewPrivileges": c.no_new_privileges,
        "seccomp": {"type": c.seccomp.type, "localhostProfile": c.seccomp.localhost_ref,
                    "source": c.seccomp.source},
        "appArmor": {"type": c.apparmor.type, "profile": c.apparmor.profile},
        "seLinuxOptions": c.selinux,
        "readOnlyRootFilesystem": c.readonly_rootfs,
        "procMount": c.proc_mount,
        "maskedPaths": list(c.masked_paths),
        "readonlyPaths": list(c.readonly_paths),
        "writableMounts": [{"path": m.mount_path, "volume": m.name, "type": m.volume_type}
                           for m in c.writable_mounts],
        "mounts": [{"path": m.mount_path, "volume": m.name, "type": m.volume_type, "readOnly": m.read_only}
                   for m in c.mounts],
        "dependsOnImage": list(c.depends_on_image),
    }
    if puid is not None:
        from podsec.puid import verdict_dict

        out["puid"] = verdict_dict(puid)
    return out


def pod_dict(pod: ResolvedPod, file: str = "", line: int = 0, puid: dict[str, Verdict] | None = None) -> dict:
    return {
        "file": file,
        "line": line,
        "kind": pod.kind,
        "namespace": pod.namespace,
        "name": pod.name,
        "hostNetwork": pod.host_network,
        "hostPID": pod.host_pid,
        "hostIPC": pod.host_ipc,
        "shareProcessNamespace": pod.share_process_namespace,
        "hostUsers": pod.host_users,
        "fsGroup": pod.fs_group,
        "supplementalGroupsPolicy": pod.supplemental_groups_policy,
        "sysctls": [{"name": n, "value": v} for n, v in pod.sysctls],
        "sandboxError": pod.sandbox_error,
        "containers": [_with_host(pod, c, container_dict(c, (puid or {}).get(c.name))) for c in pod.containers],
    }


def _with_host(pod: ResolvedPod, c: ResolvedContainer, d: dict) -> dict:
    """``hostEffects``: [{"capability", "effect", "needs"}] of capabilities that act on the node."""
    from podsec.oci.hostcaps import container_host_effects

    effects, certain = container_host_effects(pod, c)
    d["hostEffects"] = [{"capability": e.short, "effect": e.effect, "needs": e.needs, "ifImageUserIsRoot": not certain}
                        for e in effects]
    return d


def _caps_words(names: tuple[str, ...] | list[str]) -> str:
    return ",".join(n.removeprefix("CAP_") for n in sorted(names)) or "none"


def _short_caps(bounding: tuple[str, ...]) -> str:
    b = set(bounding)
    if b == set(DEFAULT_CAPS):
        return "the runtime's 14 defaults"
    if b >= set(CAPABILITY_NUMBERS) - {"CAP_SYS_RESOURCE"} and len(b) >= 40:
        return "all capabilities"
    if not b:
        return "empty"
    return _caps_words(bounding)


def describe(c: ResolvedContainer) -> list[str]:
    """Sentences a person can check against `id` and /proc/self/status."""
    ident = c.identity
    out: list[str] = []
    if ident.error:
        out.append(f"cannot be created: {ident.error}")
    uid = str(ident.uid) if ident.uid is not None else "the image's USER"
    if ident.username and ident.uid is not None:
        uid += f" ({ident.username})"
    if ident.uid is None and ident.cri_run_as_username:
        uid = f"user {ident.cri_run_as_username} from the image"
    gid = str(ident.gid) if ident.gid is not None else "the user's /etc/passwd group (else 0)"
    who = f"runs as uid {uid} [{ident.uid_source}], gid {gid} [{ident.gid_source}]"
    if ident.groups is not None:
        extra = [f"{g} from {src}" for g, src in ident.group_sources.items() if src != "primary gid"]
        who += ", groups " + ",".join(str(g) for g in ident.groups)
        if extra:
            who += " (" + "; ".join(extra) + ")"
    out.append(who)
    nr = c.run_as_non_root
    if nr.required:
        if nr.ok is True:
            out.append("runAsNonRoot: verified by the kubelet")
        elif nr.ok is False:
            out.append(f"WILL NOT START (CreateContainerConfigError): {nr.message}")
        else:
            out.append(f"runAsNonRoot: {nr.message}")
    caps = c.capabilities
    if c.privileged:
        out.append("privileged: all capabilities, all host devices, no seccomp, no masked paths")
    elif ident.uid == 0:
        out.append(f"capabilities (effective = bounding): {_short_caps(caps.effective)}")
    elif ident.uid is None:
        out.append(f"capabilities: {_short_caps(caps.bounding)} if the image user is root, none effective otherwise")
    else:
        out.append(f"no effective capabilities (non-root), bounding set {_short_caps(caps.bounding)}")
    if caps.unknown:
        out.append(f"unknown capability names {', '.join(caps.unknown)}: runc ignores them, crun refuses to start")
    out.append("cannot gain privileges (no_new_privs)" if c.no_new_privileges
               else "can gain privileges through setuid binaries (allowPrivilegeEscalation not false)")
    sec = c.seccomp
    if sec.type == "Unconfined":
        why = "privileged" if c.privileged else (
            "the Kubernetes default" if sec.source == "default" else f"set by {sec.source}")
        out.append(f"seccomp: none (Unconfined, {why})")
    elif sec.type == "RuntimeDefault":
        out.append(f"seccomp: the runtime's default profile [{sec.source}]")
    else:
        out.append(f"seccomp: Localhost profile {sec.localhost_ref or '(missing)'} [{sec.source}]")
    if c.apparmor.type:
        out.append(f"AppArmor: {c.apparmor.type}{' ' + c.apparmor.profile if c.apparmor.profile else ''}")
    if c.selinux:
        out.append("SELinux: " + ", ".join(f"{k}={v}" for k, v in c.selinux.items()))
    if c.proc_mount == "Unmasked":
        out.append("/proc unmasked (procMount: Unmasked)")
    out.append("root filesystem read-only" if c.readonly_rootfs else "root filesystem writable")
    writable = c.writable_mounts
    if writable:
        out.append("writable: " + ", ".join(f"{m.mount_path} ({m.volume_type})" for m in writable))
    elif c.readonly_rootfs:
        out.append("writable: nothing (no writable volume mounts)")
    for note in c.depends_on_image:
        out.append(f"depends on the image: {note}")
    return out


def host_lines(pod: ResolvedPod, c: ResolvedContainer) -> list[str]:
    """What the container's capabilities do to the node itself (not namespaced), one bullet each."""
    from podsec.oci.hostcaps import container_host_effects

    effects, certain = container_host_effects(pod, c)
    cond = "" if certain else " if the image's user is root"
    return [f"changes the node{cond}: {e.sentence()}" for e in effects]


def puid_lines(v: Verdict) -> list[str]:
    """The PUID/PGID verdict as explain bullets: what really happens, then each conflict with its remedy."""
    out = [f"PUID/PGID image: {v.summary()}", "PUID/PGID evidence: " + "; ".join(v.evidence)]
    out += [f"PUID/PGID warning: {w}" for w in v.warnings]
    out += [f"PUID/PGID fine: {f}" for f in v.fine]
    for c in v.conflicts:
        kind = "CONFLICT" if c.fatal else "conflict (degrades)"
        out.append(f"PUID/PGID {kind}: {c.setting}: {c.breaks}\nINSTEAD: {c.instead}")
    if not v.conflicts:
        out.append("PUID/PGID conflicts: none with this securityContext")
    return out


def _bullet(text: str) -> list[str]:
    """One bullet, long ones wrapped under their first line."""
    lines: list[str] = []
    for i, part in enumerate(text.split("\n")):
        lines += textwrap.wrap(part, 116, initial_indent="    - " if i == 0 else "      ",
                               subsequent_indent="      ", break_on_hyphens=False, break_long_words=False)
    return lines


def render_text(pods: list[tuple[ResolvedPod, str, int]], puid: list[dict[str, Verdict]] | None = None) -> str:
    lines: list[str] = []
    for idx, (pod, file, line) in enumerate(pods):
        head = f"{pod.kind}/{pod.name} (namespace {pod.namespace}) — {file}:{line}"
        lines.append(head)
        flags = [n for n, v in (("hostNetwork", pod.host_network), ("hostPID", pod.host_pid),
                                ("hostIPC", pod.host_ipc), ("shareProcessNamespace", pod.share_process_namespace))
                 if v]
        if flags:
            lines.append("  pod shares the host's: " + ", ".join(flags))
        if pod.sandbox_error:
            lines.append(f"  POD WILL NOT START: RunPodSandbox: {pod.sandbox_error}")
        for c in pod.containers:
            lines.append(f"  {KIND_WORD[c.kind]} {c.name!r} ({c.image}):")
            for s in describe(c):
                lines.append(f"    - {s}")
            for s in host_lines(pod, c):
                lines += _bullet(s)
            verdict = puid[idx].get(c.name) if puid else None
            if verdict is not None:
                for s in puid_lines(verdict):
                    lines += _bullet(s)
        lines.append("")
    return "\n".join(lines)
