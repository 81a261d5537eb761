"""A pod's way from the files to its plan, as ``run`` takes it; ``explain -o oci`` stops at the plan.

Everything a pod goes through before its first container starts, in this order:

1. load the Pod (with its ConfigMaps/Secrets) — :mod:`podsec.runtime.admission`;
2. admit it (:mod:`podsec.admit`, the one admission step: decode, disabled gated fields dropped and said
   once on stderr, the API server's validation, defaults), then the node's image check (``run`` checks while
   the sandbox starts);
3. plan it — :func:`podsec.plan.plan_pod` (``explain -o oci`` stops here and prints the plan);
4. execute the plan — :class:`podsec.runtime.lifecycle.PodRunner`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podsec.errors import InputError
from podsec.runtime import admission

Warn = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"podsec: warning: {message}", file=sys.stderr, flush=True)


def warn_dropped(req: admission.PodRequest, warn: Warn = _stderr) -> None:
    """Say once which fields the admission dropped (:mod:`podsec.admit`: a stock cluster would ignore, or
    refuse, what the manifest asks for)."""
    from podsec import features

    dropped = req.dropped
    for gate in dict.fromkeys(f.gate for f in dropped):
        warn(f"pod/{req.name}: {features.ignored_message(gate, [f for f in dropped if f.gate == gate])}")


# -- explain -o oci --------------------------------------------------------------------------------


def plan_files(files: tuple[str, ...] | list[str], *, root: str, state: str, gates: Any,
               namespace: str | None = None, warn: Warn = _stderr, field_validation: str = "strict",
               ) -> list[tuple[str, Any]]:
    """(pod name, :class:`podsec.plan.PodPlan`) of every Pod in ``files``, admitted as ``run`` admits it
    and planned against the image store — nothing runs. The pod's uid is :data:`podsec.plan.POD_UID`."""
    from podsec.image.store import ImageStore
    from podsec.plan import POD_UID, plan_pod
    from podsec.plan.node import node_facts
    from podsec.resolve import resolve_pod

    reqs = admission.load_pods(files, namespace, feature_gates=gates, field_validation=field_validation)
    if not reqs:
        raise InputError("no Pod in the files", file=", ".join(files))
    store = ImageStore(Path(root))
    node = node_facts(Path(state))
    out: list[tuple[str, Any]] = []
    for req in reqs:
        warn_dropped(req, warn)
        admission.check_images(req, store)
        meta = dict(req.metadata)
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", POD_UID)
        by_ref: dict[str, Any] = {}
        images: dict[str, Any] = {}
        for key in ("initContainers", "containers"):
            for c in req.spec.get(key) or ():
                ref = c.get("image") if isinstance(c, dict) else None
                if isinstance(ref, str) and ref:
                    by_ref.setdefault(ref, store.info(ref))
                    images[str(c.get("name"))] = by_ref[ref]
        pod = resolve_pod(meta, req.spec, by_ref.get)
        plan = plan_pod(pod, meta, req.spec, images, req.objects, node, gates=gates.enabled)
        if plan.sandbox.error:
            warn(f"pod/{req.name}: Failed to create pod sandbox: {plan.sandbox.error}")
        if plan.volume_error is not None:
            warn(f"pod/{req.name}: Unable to attach or mount volumes: {plan.volume_error.message}")
        for c in plan.containers.values():
            if c.error is not None:
                warn(f'pod/{req.name}: container "{c.name}" will not start: {c.error[0]}: {c.error[1]}')
        out.append((req.name, plan))
    return out
