"""Seccomp profiles: containerd's RuntimeDefault (built from data) and Localhost files (oci-translation §8).

The allowlist lives in ``podsec/data/seccomp_default.json`` so a profile update is a data change;
this module only knows containerd's rule *order* and which rules depend on the capability set.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from podsec.errors import RuntimeFailure

KUBELET_SECCOMP_ROOT = "/var/lib/kubelet/seccomp"
"""The kubelet's ``--seccomp-profile-root``: where a ``Localhost`` profile's ``localhostProfile`` is read from
(resolve prefixes it; the one copy of the path)."""

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"


DATA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "seccomp_default.json")
"""Read straight from the package directory: ``importlib.resources`` costs ``run`` ~5 ms of imports."""


@cache
def _profile_data() -> dict[str, Any]:
    with open(DATA_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def _kernel_at_least(major: int, minor: int) -> bool:
    """containerd adds the unconditional ptrace rule only on kernels ≥ 4.8 (older ones escaped seccomp)."""
    release = os.uname().release
    try:
        parts = release.split("-", 1)[0].split(".")
        return (int(parts[0]), int(parts[1])) >= (major, minor)
    except (ValueError, IndexError):
        return True


def _allow(names: list[str]) -> dict[str, Any]:
    # Go's runtime-spec types omit empty ``args`` (omitempty), so the JSON has none.
    return {"names": list(names), "action": ALLOW}


def runtime_default_seccomp(
    bounding: list[str], arch: str = "amd64", *, kernel_4_8: bool | None = None
) -> dict:
    """containerd's ``DefaultProfile(spec)`` for the FINAL bounding set (§8.2, containerd 2.x ≤ 2.3).

    The capability-dependent rules are why this must run after capabilities and privileged were applied:
    ``CAP_SYS_CHROOT`` adds ``chroot``, ``CAP_SYS_ADMIN`` adds mount/unshare/setns/clone/… and removes the
    masked ``clone`` rule and the ``clone3`` → ENOSYS rule (that one exists so glibc falls back to clone).
    """
    data = _profile_data()
    if kernel_4_8 is None:
        kernel_4_8 = _kernel_at_least(4, 8)
    syscalls: list[dict[str, Any]] = [_allow(data["allow"])]
    syscalls.extend(json.loads(json.dumps(data["socket"])))
    for value in data["personality"]:
        syscalls.append(
            {
                "names": ["personality"],
                "action": ALLOW,
                "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}],
            }
        )
    if kernel_4_8:
        syscalls.append(_allow(data["ptrace_kernel_4_8"]))
    arch_names = data["arch_allow"].get(arch)
    if arch_names:
        syscalls.append(_allow(arch_names))
    admin = False
    for cap in bounding:
        names = data["capability_allow"].get(cap)
        if not names:
            continue
        syscalls.append(_allow(names))
        if cap == data["admin_capability"]:
            admin = True
    if not admin:
        index = data["clone_flags_arg_index"].get(arch, data["clone_flags_arg_index"]["default"])
        syscalls.append(
            {
                "names": ["clone"],
                "action": ALLOW,
                "args": [{"index": index, "value": data["clone_namespace_mask"], "op": "SCMP_CMP_MASKED_EQ"}],
            }
        )
        syscalls.append({"names": ["clone3"], "action": ERRNO, "errnoRet": data["clone3_errno"]})
    return {
        "defaultAction": data["defaultAction"],
        "architectures": list(data["architectures"].get(arch, [])),
        "syscalls": syscalls,
    }


def resolve_localhost_ref(ref: str, seccomp_root: str) -> str:
    """The kubelet sends an absolute path; a relative one (or ``localhost/<p>``) goes under the root."""
    if ref.startswith("localhost/"):
        ref = ref[len("localhost/") :]
    if os.path.isabs(ref):
        return ref
    return os.path.join(seccomp_root, ref)


def load_localhost_seccomp(path: str) -> dict:
    """The file's JSON verbatim (containerd does no merging); a read or parse failure stops the container."""
    try:
        with open(path, encoding="utf-8") as fh:
            profile = json.load(fh)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RuntimeFailure(f"cannot load seccomp profile {path}: {reason}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RuntimeFailure(f"cannot load seccomp profile {path}: invalid JSON: {exc}") from exc
    if not isinstance(profile, dict):
        raise RuntimeFailure(f"cannot load seccomp profile {path}: not a JSON object")
    return profile
