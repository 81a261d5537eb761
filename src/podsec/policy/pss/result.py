"""Result types of the Pod Security Standards evaluator.

Kept in their own module so that the check modules can build outcomes without importing the
package ``__init__`` (which imports the registry, which imports the checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

FieldPath = tuple[str | int, ...]


@dataclass(slots=True)
class CheckOutcome:
    """One check's verdict, like upstream ``CheckResult`` plus the fields a user must change.

    ``fields`` holds paths relative to the pod (template) root, e.g.
    ``("spec", "containers", 0, "securityContext", "allowPrivilegeEscalation")``. When the offending
    field is missing, the path stops at the deepest part that exists, so callers can map it to a line.
    """

    id: str
    allowed: bool
    reason: str = ""
    detail: str = ""
    fields: list[FieldPath] = field(default_factory=list)


@dataclass(slots=True)
class PSSResult:
    """Aggregate of one evaluation (upstream ``AggregateCheckResults``), failures in evaluation order."""

    level: str
    version: str
    allowed: bool
    failures: list[CheckOutcome] = field(default_factory=list)

    def forbidden_reason(self) -> str:
        """Reasons joined with ", ", as upstream ``ForbiddenReason()``."""
        return ", ".join(f.reason or "unknown forbidden reason" for f in self.failures)

    def forbidden_detail(self) -> str:
        """Each failure as ``reason (detail)`` or ``reason``, joined with ", " (upstream ForbiddenDetail)."""
        parts = []
        for f in self.failures:
            reason = f.reason or "unknown forbidden reason"
            parts.append(f"{reason} ({f.detail})" if f.detail else reason)
        return ", ".join(parts)

    @property
    def message(self) -> str:
        """The enforce-denial text PSA produces; empty when allowed."""
        if self.allowed:
            return ""
        return f'violates PodSecurity "{self.level}:{self.version}": {self.forbidden_detail()}'
