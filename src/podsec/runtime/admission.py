"""What happens before the kubelet sees a pod: the admission step (:mod:`podsec.admit`, shared with every
command) and the node's image check.

A pod the API server would reject is refused with its words, in kubectl's layout
(``The Pod "x" is invalid: <field>: <message>``, one ``* `` line per error when there are several),
and exit status 2 (bad input) rather than kubectl's 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from podsec.admit import CONFIG_KINDS as OBJECT_KINDS
from podsec.admit import AdmitOptions, PodInvalid, invalid_message, object_meta_errors
from podsec.errors import ImageError, InputError, PodsecError
from podsec.features import STOCK, FeatureGates, GatedField


@dataclass(slots=True)
class PodRequest:
    """One admitted Pod, with the ConfigMaps and Secrets that came with it."""

    metadata: dict[str, Any]
    spec: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)
    where: str = ""
    dropped: list[GatedField] = field(default_factory=list)
    """Fields of disabled feature gates the manifest set (already dropped from ``spec``)."""
    controller: Any = None
    """The workload this pod comes from (a :class:`podsec.api.controllers.ControllerPod`), None for a Pod."""

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")


def load_pods(files: tuple[str, ...] | list[str], namespace: str | None = None, *,
              feature_gates: FeatureGates = STOCK, validate: bool = True,
              field_validation: str = "strict") -> list[PodRequest]:
    """Every Pod in ``files``, and for every other workload (Deployment, StatefulSet, Job, …) the pod its
    controller would create first, admitted (:func:`podsec.admit.admit`); ConfigMaps/Secrets found anywhere in
    them go with every pod. A pod the API server would refuse raises :class:`PodInvalid` (unless
    ``validate`` is false: ``delete -f`` only needs the names); unknown fields are kubectl's
    ``--validate`` (``field_validation``): strict refuses with the server's line, warn prints its warnings."""
    import sys

    from podsec.admit import admit_files

    if not files:
        raise InputError("give the pod with -f FILE")
    admission = admit_files(files, AdmitOptions(feature_gates=feature_gates, namespace=namespace, create=True,
                                                field_validation=field_validation if validate else "ignore"))
    for line in admission.warnings():
        print(line, file=sys.stderr)
    if validate:
        admission.raise_invalid(located=False)
    pods = [PodRequest(p.metadata, p.spec, admission.config_objects,
                       f"{p.workload.obj.source.display}:{p.workload.obj.line_of()}", p.dropped, p.controller)
            for p in admission.pods]
    return pods


def single_pod(files: tuple[str, ...] | list[str], namespace: str | None = None, *,
               feature_gates: FeatureGates = STOCK, field_validation: str = "strict") -> PodRequest:
    pods = load_pods(files, namespace, feature_gates=feature_gates, field_validation=field_validation)
    if len(pods) != 1:
        raise InputError(
            f"podsec run needs exactly one Pod or workload (Deployment, StatefulSet, Job, …) in the files, "
            f"found {len(pods)}"
            + (" (use podsec apply for several)" if pods else ""),
            file=", ".join(files),
        )
    return pods[0]


def requests(pods: Iterable[Any], objects: list[dict[str, Any]]) -> list[PodRequest]:
    """PodRequests for admitted pods (:class:`podsec.admit.AdmittedPod`) of another command (trace)."""
    return [PodRequest(p.metadata, p.spec, objects, dropped=p.dropped) for p in pods]


def check_images(req: PodRequest, store: Any) -> None:
    """Every image must already be in the store: ``podsec run`` never pulls (use ``podsec image pull``)."""
    for key in ("initContainers", "containers"):
        for c in req.spec.get(key) or ():
            ref = c.get("image") if isinstance(c, dict) else None
            if not isinstance(ref, str) or not ref:
                continue
            try:
                found = store.resolve(ref)
            except PodsecError:
                found = None
            if found is None:
                raise ImageError(
                    f'container "{c.get("name")}": image "{ref}" is not in the local store ({store.root}); '
                    "load it with podsec image load or pull it with podsec image pull (run never pulls)"
                )


__all__ = ["OBJECT_KINDS", "PodInvalid", "PodRequest", "check_images", "invalid_message", "load_pods",
           "object_meta_errors", "single_pod"]
