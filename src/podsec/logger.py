"""A logger that imports :mod:`logging` on first use.

``logging`` (with ``traceback``, ``string`` and ``threading`` behind it) costs a few milliseconds to import,
and ``podsec run`` pays every millisecond of start-up on each pod; the modules on that path only log when
something goes wrong.
"""

from __future__ import annotations

from typing import Any


class LazyLogger:
    """``logging.getLogger(name)``, looked up when a method is first called."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import logging

        return getattr(logging.getLogger(self._name), attr)


def get_logger(name: str) -> LazyLogger:
    return LazyLogger(name)
