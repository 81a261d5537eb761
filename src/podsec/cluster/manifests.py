"""``podsec webhook manifests``: what installs the webhook, as plain Kubernetes objects (pure).

The webhook's own Deployment passes Pod Security ``restricted``; its ValidatingWebhookConfiguration fails
open (``failurePolicy: Ignore``, 5 s timeout) so that podsec being slow or down never blocks a pod, skips
the webhook's own namespace (it must be able to start while it is down), and declares no side effects
(dry-run requests are answered the same). The webhook is named ``pod-security.kubernetes.io`` by default
because the API server prefixes a webhook's audit annotations with its name: the audit log then carries
PSA's own keys (``pod-security.kubernetes.io/audit-violations``).
"""

from __future__ import annotations

import base64
import re

from podsec.errors import InputError

APP = "podsec-webhook"
PORT = 8443
DEFAULT_WEBHOOK_NAME = "pod-security.kubernetes.io"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----\r?\n?", re.S)


def ca_bundle(cert_pem: bytes, ca_pem: bytes | None, where: str) -> str:
    """The caBundle: the CA file when given, else the last certificate of the chain (self-signed: itself)."""
    source = ca_pem if ca_pem is not None else cert_pem
    certs = _PEM.findall(source)
    if not certs:
        raise InputError("no PEM certificate found", file=where)
    chosen = b"".join(certs) if ca_pem is not None else certs[-1]
    return base64.b64encode(chosen).decode()


def manifests(namespace: str, image: str, cert_pem: bytes, key_pem: bytes, ca_b64: str, *,
              webhook_name: str = DEFAULT_WEBHOOK_NAME, replicas: int = 2,
              extra_args: tuple[str, ...] = ()) -> list[dict]:
    labels = {"app.kubernetes.io/name": APP}
    meta = {"name": APP, "namespace": namespace, "labels": dict(labels)}
    sc_container = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532}
    probe = {"httpGet": {"path": "/readyz", "port": PORT, "scheme": "HTTPS"}, "periodSeconds": 5}
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted",
                                                    "pod-security.kubernetes.io/enforce-version": "latest"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": APP, "labels": dict(labels)},
         "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": APP, "labels": dict(labels)},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": APP},
         "subjects": [{"kind": "ServiceAccount", "name": APP, "namespace": namespace}]},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": f"{APP}-tls", "namespace": namespace, "labels": dict(labels)},
         "data": {"tls.crt": base64.b64encode(cert_pem).decode(), "tls.key": base64.b64encode(key_pem).decode()}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta),
         "spec": {
             "replicas": replicas,
             "selector": {"matchLabels": dict(labels)},
             "template": {
                 "metadata": {"labels": dict(labels)},
                 "spec": {
                     "serviceAccountName": APP,
                     "automountServiceAccountToken": True,
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{
                         "name": "webhook",
                         "image": image,
                         "args": ["webhook", "serve", "--cert", "/tls/tls.crt", "--key", "/tls/tls.key",
                                  "--port", str(PORT), *extra_args],
                         "ports": [{"name": "https", "containerPort": PORT}],
                         "readinessProbe": probe,
                         "livenessProbe": {**probe, "httpGet": {**probe["httpGet"], "path": "/healthz"}},
                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                       "limits": {"memory": "256Mi"}},
                         "securityContext": sc_container,
                         "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": True}],
                     }],
                     "volumes": [{"name": "tls", "secret": {"secretName": f"{APP}-tls"}}],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta),
         "spec": {"selector": dict(labels), "ports": [{"name": "https", "port": 443, "targetPort": PORT}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": dict(meta),
         "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(labels)}}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": APP, "labels": dict(labels)},
         "webhooks": [{
             "name": webhook_name,
             "admissionReviewVersions": ["v1"],
             "clientConfig": {"service": {"name": APP, "namespace": namespace, "path": "/validate", "port": 443},
                              "caBundle": ca_b64},
             "failurePolicy": "Ignore",
             "matchPolicy": "Equivalent",
             "sideEffects": "None",
             "timeoutSeconds": 5,
             "namespaceSelector": {"matchExpressions": [
                 {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [namespace]}]},
             "rules": [
                 {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                  "resources": ["pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates"],
                  "scope": "Namespaced"},
                 {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                  "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"], "scope": "Namespaced"},
                 {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                  "resources": ["jobs", "cronjobs"], "scope": "Namespaced"},
             ],
         }],
        },
    ]
