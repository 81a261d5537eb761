"""The pod spec as the API server and the controllers hand it on: the defaults validation depends on.

The API server defaults an object before it validates it (``SetDefaults_*`` in
``pkg/apis/core/v1/defaults.go``). Most defaults that matter for validation are already read as
defaulted by :mod:`podsec.api.validation` when a field is absent (``imagePullPolicy``,
``terminationMessagePolicy``, ``restartPolicy``, ``dnsPolicy``, port ``protocol``, a hostNetwork pod's
``hostPort``); this module supplies the ones that change the shape of the spec:

* ``SetDefaults_Volume``: a volume with no source at all (``{name: data}``) is an ``emptyDir: {}``;
* a StatefulSet's pods get one ``persistentVolumeClaim`` volume per ``volumeClaimTemplates`` entry,
  named after the template and claiming ``<template>-<set>-<ordinal>`` (the StatefulSet controller's
  ``updateStorage``; a template volume of the same name is replaced). The API server leaves a
  StatefulSet's pod spec unvalidated for exactly this reason (a TODO in apps validation); the pods the
  controller creates are validated with those volumes, and that is what podsec validates.

Pure: the input is never changed; only the lists that change are copied.
"""

from __future__ import annotations

from typing import Any


def _sourceless(vol: dict) -> bool:
    return all(v is None for k, v in vol.items() if k != "name")


def default_volumes(spec: dict) -> dict:
    """``spec`` with every source-less volume as ``emptyDir: {}`` (the same dict when there is none)."""
    vols = spec.get("volumes")
    if not isinstance(vols, list) or not any(isinstance(v, dict) and _sourceless(v) for v in vols):
        return spec
    new = [{"name": v.get("name"), "emptyDir": {}} if isinstance(v, dict) and _sourceless(v) else v for v in vols]
    return {**spec, "volumes": new}


def claim_name(template: str, set_name: str, ordinal: int = 0) -> str:
    """``data-db-0``: the claim a StatefulSet's pod ``ordinal`` uses for volume claim template ``template``."""
    return f"{template}-{set_name}-{ordinal}"


def statefulset_claim_volumes(obj: dict, ordinal: int = 0) -> list[dict]:
    """The volumes the StatefulSet controller adds to pod ``ordinal`` for its ``volumeClaimTemplates``."""
    spec = obj.get("spec")
    meta = obj.get("metadata")
    templates = spec.get("volumeClaimTemplates") if isinstance(spec, dict) else None
    set_name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(templates, list) or not isinstance(set_name, str):
        return []
    out = []
    for t in templates:
        tmeta = t.get("metadata") if isinstance(t, dict) else None
        name = tmeta.get("name") if isinstance(tmeta, dict) else None
        if isinstance(name, str) and name:
            out.append({"name": name, "persistentVolumeClaim": {"claimName": claim_name(name, set_name, ordinal)}})
    return out


def with_claims(spec: dict, claims: list[dict]) -> dict:
    """``spec`` with the claim volumes: a template volume of the same name is replaced in place (so the other
    volumes keep their index, and their errors their path), the others are appended."""
    if not claims:
        return spec
    vols = spec.get("volumes")
    vols = list(vols) if isinstance(vols, list) else []
    at = {v.get("name"): i for i, v in enumerate(vols) if isinstance(v, dict)}
    for c in claims:
        if c["name"] in at:
            vols[at[c["name"]]] = c
        else:
            vols.append(c)
    return {**spec, "volumes": vols}


def pod_spec_as_created(kind: str, obj: dict, spec: dict) -> dict:
    """The pod spec of ``obj``'s pods as they reach validation: claim volumes of a StatefulSet, then the
    API server's volume defaults."""
    if kind == "StatefulSet":
        spec = with_claims(spec, statefulset_claim_volumes(obj))
    return default_volumes(spec)


def apply_to(wl: Any) -> None:
    """Give a :class:`podsec.manifest.kinds.Workload` the spec its pods are created with (see above)."""
    wl.spec = pod_spec_as_created(wl.kind, wl.obj.obj, wl.spec)
