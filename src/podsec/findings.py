"""A finding: one thing a user should change, with where it is and why it matters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

SEVERITIES = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(reversed(SEVERITIES))}


@dataclass(slots=True)
class Finding:
    id: str
    severity: str
    message: str
    path: tuple[str | int, ...] = ()
    """Template-relative field path; the workload turns it into a field string and a line."""
    why: str = ""
    fix: str = ""
    container: str | None = None
    field: str = ""
    line: int = 0
    extra: dict = dataclasses.field(default_factory=dict)

    def at_least(self, severity: str) -> bool:
        return SEVERITY_RANK[self.severity] >= SEVERITY_RANK[severity]
