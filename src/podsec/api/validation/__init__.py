"""API-server validation of a pod (or pod template), for every securityContext-related field.

A manifest the API server would reject never runs on a cluster, so podsec must reject it too —
with the same field path and the same words (kubelet-semantics.md §4).  The rules, their order
and their quirks follow ``pkg/apis/core/validation/validation.go`` (v1.33/v1.34 era):

* order of ``ValidatePodCreate``: pod-specific annotations, then ``ValidatePodSpec`` (volumes,
  containers, init containers, ephemeral containers, hostNetwork ports, restartPolicy, the pod
  security context, Windows hostProcess, hostUsers, ``spec.os``), then the pod-only checks
  (image whitespace, ephemeral containers on create, annotation/field consistency);
* quirks kept verbatim: ``spec.HostPID``/``spec.HostIPC`` capitalisation, the internal
  ``spec.securityContext.shareProcessNamespace`` path, the literal ``CAP_SYS_ADMIN`` match,
  unindexed paths for ``volumeMounts.subPath`` and downward-API item errors, a volume with any
  error not being mountable (``Not found``), seccomp annotations rendered as ``.child`` but
  AppArmor annotations as ``[key]``.

Inputs are plain dicts as decoded from YAML/JSON.  Values of the wrong type are ignored here
(:func:`podsec.api.types.check_types` reports them); nothing in this module raises on odd input.
Fields the API server defaults before validating (``terminationGracePeriodSeconds``,
``imagePullPolicy``, ``terminationMessagePolicy``, ``restartPolicy``, ``dnsPolicy``, port
``protocol``) are treated as defaulted when absent or empty.

The parts: :mod:`.meta` (annotations), :mod:`.security_context`, :mod:`.volumes`, :mod:`.containers`,
:mod:`.pod` (pod-level rules and :func:`validate_pod`, the entry point, in the API server's order);
:mod:`.common` holds the options, messages and small helpers. Object metadata (name, namespace) is
checked by the admission step, :func:`podsec.admit.object_meta_errors`.

Deliberately not covered (no security bearing, or needs cluster state): ObjectMeta labels and
annotation key syntax, env/envFrom names and selectors, probes and lifecycle handlers,
resources, affinity/tolerations/DNS, the inner fields of network/cloud volume sources, downward
API ``fieldRef`` paths and clusterTrustBundle names.
"""

from podsec.api.validation.common import ValidationOptions
from podsec.api.validation.pod import validate_pod

__all__ = ["ValidationOptions", "validate_pod"]
