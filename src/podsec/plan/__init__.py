"""The plan stage (load → validate → resolve → judge → **plan** → apply).

:func:`plan_pod` turns an admitted, resolved pod into a :class:`PodPlan`: the sandbox's and every
container's complete OCI config.json (placeholders for what exists only once the pod runs) and each
volume's work. ``run`` executes a plan; ``explain -o oci`` prints one.
"""

from podsec.plan.pod import (
    POD_DIR,
    POD_UID,
    ROOTFS,
    SANDBOX_NS,
    ContainerRun,
    NodeFacts,
    PodPlan,
    SandboxRun,
    SubPathBind,
    plan_container,
    plan_pod,
    plan_sandbox,
    realize,
)

__all__ = [
    "POD_DIR",
    "POD_UID",
    "ROOTFS",
    "SANDBOX_NS",
    "ContainerRun",
    "NodeFacts",
    "PodPlan",
    "SandboxRun",
    "SubPathBind",
    "plan_container",
    "plan_pod",
    "plan_sandbox",
    "realize",
]
