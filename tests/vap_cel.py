"""Evaluate generated ValidatingAdmissionPolicies the way the API server does, with a real CEL engine.

cel-expr-python (Google's cel-cpp) with the optional and strings extensions, plus the one Kubernetes
library functions the policies use that cel-cpp lacks: ``<list>.min()`` and ``max()`` (k8s.io/apiserver/pkg/cel/library
lists.go: comparable elements, error on an empty list). The object is the pod as the API server hands it to
CEL: null fields left out and a volume with no source defaulted to emptyDir. The policy's variables are
inlined into the expressions that read them (see ``_inliner``). Each expression is compiled once (cached by
text), so thousands of pods cost only evaluations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

T = cel.Type


def _list_min(values: list) -> Any:
    if not values:
        raise ValueError("min called on empty list")
    return min(values)


def _list_max(values: list) -> Any:
    if not values:
        raise ValueError("max called on empty list")
    return max(values)


@cache
def env() -> Any:
    k8s_lists = [
        cel.FunctionDecl(name, [cel.Overload(f"list_{name}", T.DYN, [T.List(T.DYN)], is_member=True, impl=impl)])
        for name, impl in (("min", _list_min), ("max", _list_max))
    ]
    return cel.NewEnv(
        variables={"object": T.DYN, "oldObject": T.DYN, "request": T.DYN, "variables": T.DYN},
        extensions=[ext_strings.ExtStrings(2), ext_optional.ExtOptional()],
        functions=k8s_lists,
    )


@cache
def compiled(expression: str) -> Any:
    """The program for ``expression``, compiled once; a compile error fails the test that asked."""
    return env().compile(expression)


def as_api_server_sees(obj: Any) -> Any:
    """Null fields dropped (a typed decode omits them) and source-less volumes defaulted to emptyDir."""
    if isinstance(obj, dict):
        out = {k: as_api_server_sees(v) for k, v in obj.items() if v is not None}
        vols = out.get("spec", {}).get("volumes") if isinstance(out.get("spec"), dict) else None
        if isinstance(vols, list):
            out["spec"]["volumes"] = [
                {**v, "emptyDir": {}} if isinstance(v, dict) and set(v) <= {"name"} else v for v in vols
            ]
        return out
    if isinstance(obj, list):
        return [as_api_server_sees(v) for v in obj]
    return obj


_VARIABLE = re.compile(r"\bvariables\.([A-Za-z_][A-Za-z0-9_]*)\b")


@cache
def _inliner(variables: tuple[tuple[str, str], ...]) -> Callable[[str], str]:
    """Expressions with ``variables.x`` replaced by x's expression in parentheses.

    Policy variables are pure and evaluated at most once per request; inlining them evaluates the same thing
    (possibly more than once), and keeps values the Python binding cannot hand back (optionals) inside CEL.
    """
    resolved: dict[str, str] = {}
    for name, expr in variables:  # a variable may use the ones before it
        resolved[name] = "(" + _VARIABLE.sub(lambda m: resolved[m.group(1)], expr) + ")"
    return cache(lambda expr: _VARIABLE.sub(lambda m: resolved[m.group(1)], expr))


class CelError(AssertionError):
    """An expression errored (the API server would fail the request closed): never expected here."""


def _eval(expression: str, activation: Any) -> Any:
    value = compiled(expression).eval(activation)
    if value.type() == T.ERROR:
        raise CelError(f"{value.plain_value()} in: {expression[:200]}")
    return value.plain_value()


@dataclass
class Decision:
    matched: bool
    allowed: bool
    messages: list[str] = field(default_factory=list)  # one per failed validation, in order

    @property
    def message(self) -> str:
        """What the API server reports: the first failed validation's message."""
        return self.messages[0] if self.messages else ""


def admit(policy: dict, pod: dict, *, old: dict | None = None, operation: str = "CREATE",
          user: str = "kubernetes-admin") -> Decision:
    """Run ``policy`` (a ValidatingAdmissionPolicy dict) on ``pod``: matchConditions, variables, validations."""
    spec = policy["spec"]
    data: dict[str, Any] = {
        "object": as_api_server_sees(pod),
        "oldObject": None if old is None else as_api_server_sees(old),
        "request": {"operation": operation, "userInfo": {"username": user}},
    }
    activation = env().Activation(data)
    if not all(_eval(m["expression"], activation) for m in spec.get("matchConditions", [])):
        return Decision(False, True)
    inline = _inliner(tuple((v["name"], v["expression"]) for v in spec.get("variables", [])))
    messages = []
    for v in spec["validations"]:
        if not _eval(inline(v["expression"]), activation):
            messages.append(_eval(inline(v["messageExpression"]), activation))
    return Decision(True, not messages, messages)
