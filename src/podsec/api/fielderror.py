"""Field errors rendered exactly like apimachinery's ``field.Error``.

podsec reports API-server validation failures with the API server's own wording so a user can
paste a message into a search engine (or compare it with ``kubectl apply`` output) and find the
same thing.  This module owns that wording: the type texts, path spelling and value rendering of
``k8s.io/apimachinery/pkg/util/validation/field`` (``Error.Error()`` / ``ErrorBody()``).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from podsec.goquote import go_quote

__all__ = [
    "TYPE_TEXT",
    "FieldError",
    "Key",
    "go_quote",
    "render_path",
    "render_value",
]


class Key(str):
    """A map key in a field path: rendered ``[key]`` (``field.Path.Key``) instead of ``.key``.

    It is a plain ``str`` subclass, so paths still compare equal to tuples of strings; only the
    rendering differs (``metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]``).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Key({str.__repr__(self)})"


TYPE_TEXT: dict[str, str] = {
    "Invalid": "Invalid value",
    "InvalidType": "Invalid value",  # field.TypeInvalid renders like Invalid
    "Required": "Required value",
    "Forbidden": "Forbidden",
    "NotSupported": "Unsupported value",
    "Duplicate": "Duplicate value",
    "NotFound": "Not found",
    "TooLong": "Too long",
}
"""Error type → the canonical text of ``field.ErrorType.String()``."""

_NO_VALUE = frozenset({"Required", "Forbidden", "TooLong"})
"""Types whose body is only the type text (apimachinery never prints their value)."""

def _go_float(v: float) -> str:
    """Go's ``%v`` for a float64 (shortest repr, ``e+XX`` exponents, no trailing ``.0``)."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    if v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    r = repr(v)
    if "e" in r:
        mant, exp = r.split("e")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        return f"{mant}e{sign}{digits}"
    return r


def _json_default(o: object) -> object:
    if isinstance(o, datetime.date | datetime.datetime):
        return o.isoformat()
    if isinstance(o, tuple | set | frozenset):
        return list(o)
    return str(o)


def _go_json(v: object) -> str:
    """``json.Marshal`` of a decoded YAML value: compact, map keys sorted, ``<>&`` escaped."""
    s = json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=_json_default)
    if "<" in s or ">" in s or "&" in s:
        s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return s


def int_text(v: int) -> str:
    """An integer's digits; one too long for Python to convert (thousands of digits, far past int64) is
    described by its length instead of crashing."""
    if v.bit_length() < 10000:
        return str(v)
    import math

    a = abs(v)
    digits = int(math.log10(a)) + 1  # a float estimate, corrected below
    if a < 10 ** (digits - 1):
        digits -= 1
    elif a >= 10**digits:
        digits += 1
    return f"{'-' if v < 0 else ''}<a number of {digits} digits>"


def render_value(v: object) -> str:
    """A bad value as apimachinery prints it: ints/bools bare, strings ``%q``, the rest as JSON."""
    if v is None:
        return "null"
    t = type(v)
    if t is str:
        return go_quote(v)  # type: ignore[arg-type]
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return int_text(v)  # type: ignore[arg-type]
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return int_text(int(v))
    if isinstance(v, float):
        return _go_float(float(v))
    if isinstance(v, str):
        return go_quote(str(v))
    try:
        return _go_json(v)
    except (TypeError, ValueError):
        return go_quote(str(v))


def render_path(path: tuple) -> str:
    """``("spec","containers",1,"securityContext")`` → ``spec.containers[1].securityContext``.

    Ints are indexes (``[1]``), :class:`Key` segments are map keys (``[key]``), other strings are
    children joined with ``.`` — the spelling of ``field.Path.String()``.
    """
    out: list[str] = []
    for seg in path:
        if isinstance(seg, Key) or (isinstance(seg, int) and not isinstance(seg, bool)):
            out.append(f"[{seg}]")
        elif out:
            out.append("." + str(seg))
        else:
            out.append(str(seg))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation failure at one field, as the API server would report it."""

    type: str
    """``Invalid`` | ``Required`` | ``Forbidden`` | ``NotSupported`` | ``Duplicate`` | ``NotFound`` |
    ``TooLong`` | ``InvalidType``."""
    path: tuple
    """From the pod (template) root, e.g. ``("spec", "containers", 1, "securityContext", "runAsGroup")``."""
    detail: str = ""
    value: object = None
    """The bad value (shown for Invalid, InvalidType, NotSupported, Duplicate, NotFound)."""
    supported: tuple[str, ...] = ()
    """For NotSupported: the accepted values, in the order the API server lists them."""
    where: tuple = ()
    """The field's real place in the manifest when upstream spells ``path`` differently
    (``spec.HostPID``, unindexed ``volumeMounts.subPath``, a template's ``annotations``…);
    empty when it is ``path`` itself.  Use :attr:`location` to find source lines."""

    @property
    def location(self) -> tuple:
        """Where to point in the manifest: :attr:`where` if set, else :attr:`path`."""
        return self.where or self.path

    @property
    def field(self) -> str:
        """The rendered path without any prefix."""
        return render_path(self.path)

    def body(self) -> str:
        """The message without the path (``field.Error.ErrorBody()``)."""
        text = TYPE_TEXT.get(self.type, self.type)
        s = text if self.type in _NO_VALUE else f"{text}: {render_value(self.value)}"
        detail = self.detail
        if not detail and self.type == "NotSupported" and self.supported:
            detail = "supported values: " + ", ".join(go_quote(x) for x in self.supported)
        if detail:
            s = f"{s}: {detail}"
        return s

    def render(self, prefix: tuple = ()) -> str:
        """``<prefix+path>: <Type text>: ...`` — e.g. a Deployment passes ``("spec", "template")``."""
        return f"{render_path(tuple(prefix) + tuple(self.path))}: {self.body()}"

    def __str__(self) -> str:
        return self.render()
