"""An object read from the API server through the same admission and judgement as a file in ``podsec check``:
:func:`podsec.admit.admit` (strict decoding, feature-gated fields) then :func:`podsec.check.judge`, without
API validation findings (the API server already accepted the object)."""

from __future__ import annotations

from podsec.manifest.loader import K8sObject, Source
from podsec.resolve import ImageLookup


class ApiSource(Source):
    """Where an object read from the API server came from: no file and no line to point at."""

    def line_of(self, path: tuple[str | int, ...]) -> int:
        return 0


def api_object(obj: dict) -> K8sObject:
    return K8sObject(obj, ApiSource("", 0, 0, ""))


def judge_stored(obj: dict, policy: object, *, images: ImageLookup | None = None,
                 feature_gates: frozenset[str] = frozenset(), kube_version: str | None = None) -> object | None:
    """The :class:`podsec.check.WorkloadReport` of a stored workload (None for an object without a pod
    template); unknown fields are judged against ``kube_version``'s schema (the cluster's). Raises
    :class:`podsec.errors.PodsecError` when the object cannot be decoded at all."""
    from podsec.admit import AdmitOptions, admit
    from podsec.check import judge
    from podsec.features import FeatureGates

    admission = admit([api_object(obj)], AdmitOptions(feature_gates=FeatureGates.from_names(feature_gates),
                                                      kube_version=kube_version))
    if not admission.pods:
        return None
    return judge(admission.pods[0], policy, images=images, feature_gates=feature_gates,  # type: ignore[arg-type]
                 api_errors=False)
