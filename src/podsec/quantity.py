"""Kubernetes resource quantities (``64Mi``, ``500m``, ``1e3``), exact, for sizeLimit and downward API.

Why not floats: ``ceil(value / divisor)`` must match the kubelet to the byte.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from podsec.errors import InputError

_SUFFIX = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_RE = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")


def parse_quantity(value: object, *, field: str | None = None) -> Fraction:
    """Parse a quantity string (or a YAML number) into an exact :class:`Fraction`."""
    if isinstance(value, bool):
        raise InputError(f"quantities must match the regular expression: {value!r}", field=field)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    if not isinstance(value, str):
        raise InputError(f"invalid quantity: {value!r}", field=field)
    m = _RE.match(value.strip())
    if not m:
        raise InputError(
            f"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': \"{value}\"",
            field=field,
        )
    sign, number, exponent, suffix = m.groups()
    result = Fraction(number)
    if exponent:
        result *= Fraction(10) ** int(exponent[1:])
    else:
        result *= _SUFFIX[suffix or ""]
    return -result if sign == "-" else result


def quantity_value(value: object, *, field: str | None = None) -> int:
    """``Quantity.Value()``: the integer value rounded up (bytes for memory/storage)."""
    return math.ceil(parse_quantity(value, field=field))


def quantity_milli_value(value: object, *, field: str | None = None) -> int:
    """``Quantity.MilliValue()``: the value in thousandths, rounded up (CPU)."""
    return math.ceil(parse_quantity(value, field=field) * 1000)
