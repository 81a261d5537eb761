"""Build config.json the way containerd 2.x's CRI plugin does: one visible list of steps per container kind.

The lists mirror containerd's order (oci-translation §2.2 phase A, §2.3 phase B, §11.2 for the sandbox);
order matters, e.g. seccomp must see the bounding set *after* capabilities and privileged were applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from podsec.oci import steps as s
from podsec.oci.plan import ContainerPlan, SandboxPlan

ContainerStep = Callable[[dict, ContainerPlan], None]
SandboxStep = Callable[[dict, SandboxPlan], None]
P = TypeVar("P", ContainerPlan, SandboxPlan)

CONTAINER_STEPS: tuple[ContainerStep, ...] = (
    # phase A: buildLinuxSpec
    s.with_default_spec,
    s.without_run_mount,
    s.without_default_security_settings,
    s.with_root,
    s.with_process_args,
    s.with_default_path_env,
    s.with_new_privileges,
    s.with_cwd,
    s.with_env,
    s.with_cgroup_namespace,
    s.with_mounts,
    s.with_masked_paths,
    s.with_capabilities,
    s.with_privileged,
    s.without_ambient_caps,
    s.with_selinux_labels,
    s.with_no_new_privileges,
    s.with_readonly_rootfs,
    s.with_cgroups_path,
    s.with_oom_score_adj,
    s.with_namespaces,
    s.with_annotations,
    # phase B: platformSpecOpts / containerSpecOpts
    s.with_user,
    s.with_apparmor,
    s.with_seccomp,
)
"""containerd's CreateContainer order."""

SANDBOX_STEPS: tuple[SandboxStep, ...] = (
    # sandboxContainerSpec
    s.with_default_spec,
    s.without_run_mount,
    s.without_default_security_settings,
    s.with_root,
    s.with_env,
    s.with_readonly_root,
    s.with_hostname,
    s.with_cwd,
    s.with_process_args,
    s.with_cgroups_path,
    s.with_sandbox_namespaces,
    s.with_sandbox_mounts,
    s.with_selinux_labels,
    s.with_sysctls,
    s.with_sandbox_shares,
    s.with_oom_score_adj,
    s.with_annotations,
    # sandboxContainerSpecOpts
    s.with_sandbox_user,
    s.with_sandbox_seccomp,
)
"""containerd's RunPodSandbox order for the pause container."""


def apply_steps(spec: dict, plan: P, steps: Sequence[Callable[[dict, P], None]]) -> dict:
    """Run ``steps`` in order on ``spec``; handy for tests that want a prefix of a list."""
    for step in steps:
        step(spec, plan)
    return spec


def build_container_spec(plan: ContainerPlan) -> dict:
    """config.json for one app container (containerd CRI ``CreateContainer``)."""
    return apply_steps({}, plan, CONTAINER_STEPS)


def build_sandbox_spec(plan: SandboxPlan) -> dict:
    """config.json for the pod's pause container (containerd CRI ``RunPodSandbox``)."""
    return apply_steps({}, plan, SANDBOX_STEPS)
