"""Assemble a ValidatingAdmissionPolicy and its binding from the CEL rules of the checks in force.

One validation per PSA check, in PSA's order, so the first failing one (the one the API server
reports) is the one PSA names first; its message is PSA's ``violates PodSecurity "level:version":
reason (detail)`` for that check. Pure: data in, data out.
"""

from __future__ import annotations

from typing import Any

import yaml

from podsec.errors import InputError
from podsec.policy.pss import ENFORCE_LABEL, parse_level, parse_version
from podsec.policy.pss.cel import VARIABLES, CelRule, str_list
from podsec.policy.pss.registry import MAX_VERSION, variants_for

ACTIONS = ("Deny", "Warn", "Audit")
API_VERSION = "admissionregistration.k8s.io/v1"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

#: PSA evaluates an UPDATE only when it can change what runs: container count or images, or a new
#: ephemeral container (upstream ``isSignificantPodUpdate``); metadata-only updates of an old pod pass.
SIGNIFICANT_UPDATE = (
    "request.operation != 'UPDATE'"
    " || object.spec.?initContainers.orValue([]).map(c, c.?image.orValue(''))"
    " != oldObject.spec.?initContainers.orValue([]).map(c, c.?image.orValue(''))"
    " || object.spec.?containers.orValue([]).map(c, c.?image.orValue(''))"
    " != oldObject.spec.?containers.orValue([]).map(c, c.?image.orValue(''))"
    " || object.spec.?ephemeralContainers.orValue([]).map(c, c.?name.orValue('') + '=' + c.?image.orValue(''))"
    " != oldObject.spec.?ephemeralContainers.orValue([]).map(c, c.?name.orValue('') + '=' + c.?image.orValue(''))"
)


def _minor(version: str) -> int:
    return MAX_VERSION if version == "latest" else int(version.split(".")[1])


def rules(level: str, version: str) -> list[tuple[str, CelRule]]:
    """``(check ID, CEL rule)`` in force at ``level:version``, in PSA's order."""
    out = []
    for cid, variant in variants_for(level, _minor(version)):
        if variant.cel is None:  # every registered variant has one; the tests keep it so
            raise RuntimeError(f"check {cid} has no CEL form")
        out.append((cid, variant.cel))
    return out


def validation(cid: str, rule: CelRule, level: str, version: str) -> dict[str, str]:
    """One ``validations[]`` entry; the leading CEL comment names the PSA check."""
    prefix = f'violates PodSecurity "{level}:{version}": '
    return {
        "expression": f"// {cid}\n{rule.expression}",
        "messageExpression": rule.message(prefix),
        "message": f"{prefix}{cid} check failed",  # shown only if the messageExpression cannot be evaluated
    }


def policy_documents(
    level: str,
    version: str = "latest",
    actions: tuple[str, ...] = ("Deny",),
    namespace_selector: dict | None = None,
    exempt_namespaces: tuple[str, ...] = (),
    name: str | None = None,
    exempt_users: tuple[str, ...] = (),
    exempt_runtime_classes: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding for ``level:version`` (baseline or restricted).

    ``namespace_selector`` defaults to namespaces labelled ``pod-security.kubernetes.io/enforce=<level>``;
    ``exempt_namespaces`` are left out by name whatever their labels; ``exempt_users`` (requests by these
    users) and ``exempt_runtime_classes`` (pods with these runtimeClassName) pass, as PSA's exemptions.
    """
    try:
        parse_level(level)
        parse_version(version)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if level == "privileged":
        raise InputError("level privileged allows everything: there is no policy to generate")
    bad = [a for a in actions if a not in ACTIONS]
    if bad or not actions:
        raise InputError(f"--action: must be one of {', '.join(ACTIONS)}")
    if "Deny" in actions and "Warn" in actions:
        raise InputError("--action: Deny and Warn may not be used together (the API server refuses it)")
    name = name or f"podsec-pss-{level}-{version}"
    selector = {"matchLabels": {ENFORCE_LABEL: level}} if namespace_selector is None else dict(namespace_selector)
    if exempt_namespaces:
        selector["matchExpressions"] = [
            *selector.get("matchExpressions", []),
            {"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": sorted(set(exempt_namespaces))},
        ]
    policy = {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "podsec"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["pods", "pods/ephemeralcontainers"],
                    }
                ]
            },
            "matchConditions": [
                {"name": "significant-update", "expression": SIGNIFICANT_UPDATE},
                *_exemptions(exempt_users, exempt_runtime_classes),
            ],
            "variables": [{"name": n, "expression": e} for n, e in VARIABLES],
            "validations": [validation(cid, rule, level, version) for cid, rule in rules(level, version)],
        },
    }
    binding = {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "podsec"}},
        "spec": {
            "policyName": name,
            "validationActions": [a for a in ACTIONS if a in actions],
            "matchResources": {"namespaceSelector": selector},
        },
    }
    return [policy, binding]


def _exemptions(users: tuple[str, ...], runtime_classes: tuple[str, ...]) -> list[dict[str, str]]:
    """matchConditions leaving out what PSA's configuration exempts (its usernames and runtimeClasses)."""
    out = []
    if users:
        out.append({"name": "exempt-users", "expression": f"!(request.userInfo.username in {str_list(set(users))})"})
    if runtime_classes:
        out.append({
            "name": "exempt-runtime-classes",
            "expression": f"!(object.spec.?runtimeClassName.orValue('') in {str_list(set(runtime_classes))})",
        })
    return out


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the CEL with its naming comment) as literal blocks."""


def _str(dumper: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
    if "\n" in s:
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", s)


_Dumper.add_representer(str, _str)


def render_yaml(docs: list[dict[str, Any]]) -> str:
    """Multi-document YAML, ``kubectl apply -f -`` ready."""
    return "---\n".join(yaml.dump(d, Dumper=_Dumper, sort_keys=False, width=1 << 30) for d in docs)
