"""The one duration parser of every command (``run --timeout``, ``trace --duration``, ``fix --duration``).

Go's spelling, as kubectl takes durations (``30s``, ``2m``, ``1m30s``, ``500ms``, ``1h``), or plain seconds.
"""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``30s``, ``2m``, ``1m30s``, ``500ms``, ``1h`` (Go's spelling) or plain seconds (``45``, ``2.5``)."""
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        pos, value = 0, 0.0
        for m in _DURATION.finditer(s):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(s) or not s:
            raise ValueError(f"{text!r}: not a duration (use e.g. 30s, 2m, 1m30s or plain seconds)") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{text!r}: the duration must be more than 0")
    return value


def duration_param(_ctx: Any, _param: Any, value: str | None) -> float | None:
    """click callback for a duration option (None stays None: the option was not given)."""
    import click

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
