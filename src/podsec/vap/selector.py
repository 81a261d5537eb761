"""Label selectors in kubectl's string form (``-l``), parsed into the API's ``LabelSelector`` object.

``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` and ``!k``, joined by commas, as
``kubectl get -l`` takes them; an empty string selects everything.
"""

from __future__ import annotations

import re

from podsec.errors import InputError

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*")
_EQ = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_EXISTS = re.compile(rf"\s*(!?)\s*({_KEY})\s*")


def _split(text: str) -> list[str]:
    """Requirements split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse(text: str, option: str = "--namespace-selector") -> dict:
    """The ``LabelSelector`` for ``text``; InputError naming the option for anything kubectl would refuse."""
    labels: dict[str, str] = {}
    exprs: list[dict] = []
    if text.strip():
        for req in _split(text):
            if m := _SET.fullmatch(req):
                values = [v.strip() for v in m.group(3).split(",")]
                if not all(re.fullmatch(_VALUE, v) for v in values) or values == [""]:
                    raise InputError(f"{option}: invalid values in {req.strip()!r}")
                op = "In" if m.group(2) == "in" else "NotIn"
                exprs.append({"key": m.group(1), "operator": op, "values": sorted(set(values))})
            elif m := _EQ.fullmatch(req):
                key, op, value = m.group(1), m.group(2), m.group(3)
                if op == "!=":
                    exprs.append({"key": key, "operator": "NotIn", "values": [value]})
                elif labels.get(key, value) != value:
                    raise InputError(f"{option}: {key} is given two values")
                else:
                    labels[key] = value
            elif m := _EXISTS.fullmatch(req):
                exprs.append({"key": m.group(2), "operator": "DoesNotExist" if m.group(1) else "Exists"})
            else:
                raise InputError(
                    f"{option}: cannot parse {req.strip()!r} (want k=v, k!=v, k in (a,b), k notin (a,b), k, !k)"
                )
    out: dict = {}
    if labels:
        out["matchLabels"] = labels
    if exprs:
        out["matchExpressions"] = exprs
    return out
