"""OCI runtime spec (config.json) builder with containerd 2.x CRI semantics.

Public API: :func:`build_container_spec`, :func:`build_sandbox_spec` from :class:`ContainerPlan` /
:class:`SandboxPlan`; the individual steps live in :mod:`podsec.oci.steps` and their order in
:data:`CONTAINER_STEPS` / :data:`SANDBOX_STEPS`.
"""

from podsec.oci.caps import (
    CAPABILITY_NUMBERS,
    DEFAULT_CAPS,
    cap_mask,
    caps_from_mask,
    read_host_cap_eff,
)
from podsec.oci.plan import ContainerPlan, SandboxPlan
from podsec.oci.seccomp import load_localhost_seccomp, resolve_localhost_ref, runtime_default_seccomp
from podsec.oci.spec import (
    CONTAINER_STEPS,
    SANDBOX_STEPS,
    apply_steps,
    build_container_spec,
    build_sandbox_spec,
)

__all__ = [
    "CAPABILITY_NUMBERS",
    "CONTAINER_STEPS",
    "DEFAULT_CAPS",
    "SANDBOX_STEPS",
    "ContainerPlan",
    "SandboxPlan",
    "apply_steps",
    "build_container_spec",
    "build_sandbox_spec",
    "cap_mask",
    "caps_from_mask",
    "load_localhost_seccomp",
    "read_host_cap_eff",
    "resolve_localhost_ref",
    "runtime_default_seccomp",
]
