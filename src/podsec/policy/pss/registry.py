"""Check registry: which check functions run, in which order, for each level and minor version.

Mirrors upstream ``policy/registry.go``: for every minor v in 0..MAX_VERSION,
  baseline(v)   = every baseline check covering v (using the variant in force at v), IDs sorted;
  restricted(v) = baseline(v) minus the IDs overridden by restricted variants in force at v,
                  followed by every restricted check covering v, IDs sorted.
Python's str sort is Go's byte order, so "seLinuxOptions" < "seccompProfile_baseline" as upstream.
The lists are built once at import so that evaluation does no planning work.
"""

from __future__ import annotations

from podsec.policy.pss import (
    check_allow_privilege_escalation,
    check_app_armor_profile,
    check_capabilities_baseline,
    check_capabilities_restricted,
    check_host_namespaces,
    check_host_path_volumes,
    check_host_ports,
    check_host_probes_and_host_lifecycle,
    check_privileged,
    check_proc_mount,
    check_restricted_volumes,
    check_run_as_non_root,
    check_run_as_user,
    check_se_linux_options,
    check_seccomp_profile_baseline,
    check_seccomp_profile_restricted,
    check_sysctls,
    check_windows_host_process,
)
from podsec.policy.pss._common import BASELINE, RESTRICTED, Check, CheckFn, VersionedCheck

DEFAULT_CHECKS: tuple[Check, ...] = (
    check_allow_privilege_escalation.CHECK,
    check_app_armor_profile.CHECK,
    check_capabilities_baseline.CHECK,
    check_capabilities_restricted.CHECK,
    check_host_namespaces.CHECK,
    check_host_path_volumes.CHECK,
    check_host_ports.CHECK,
    check_host_probes_and_host_lifecycle.CHECK,
    check_privileged.CHECK,
    check_proc_mount.CHECK,
    check_proc_mount.RESTRICTED_CHECK,
    check_restricted_volumes.CHECK,
    check_run_as_non_root.CHECK,
    check_run_as_user.CHECK,
    check_se_linux_options.CHECK,
    check_seccomp_profile_baseline.CHECK,
    check_seccomp_profile_restricted.CHECK,
    check_sysctls.CHECK,
    check_windows_host_process.CHECK,
)

MAX_VERSION: int = max(v.minimum_version for c in DEFAULT_CHECKS for v in c.versions)
"""Newest minor any check knows about; ``latest`` and newer versions are clamped to it (v1.37)."""


def _validate(checks: tuple[Check, ...]) -> None:
    """Fail at import on registration mistakes (duplicate IDs, unsorted variants, bad levels)."""
    ids = [c.id for c in checks]
    if len(ids) != len(set(ids)):
        raise RuntimeError(f"duplicate check IDs: {ids}")
    for c in checks:
        if c.level not in (BASELINE, RESTRICTED) or not c.versions:
            raise RuntimeError(f"bad check registration: {c.id}")
        mins = [v.minimum_version for v in c.versions]
        if mins != sorted(set(mins)):
            raise RuntimeError(f"variants of {c.id} must have increasing minimum versions")


def _variant_at(check: Check, minor: int) -> VersionedCheck | None:
    """The variant in force at ``minor`` (None if the check starts later)."""
    found = None
    for v in check.versions:
        if v.minimum_version > minor:
            break
        found = v
    return found


def _build(level: str, minor: int) -> tuple[tuple[str, VersionedCheck], ...]:
    baseline: dict[str, VersionedCheck] = {}
    restricted: dict[str, VersionedCheck] = {}
    for c in DEFAULT_CHECKS:
        v = _variant_at(c, minor)
        if v is not None:
            (baseline if c.level == BASELINE else restricted)[c.id] = v
    if level == BASELINE:
        return tuple((cid, baseline[cid]) for cid in sorted(baseline))
    overridden = {oid for v in restricted.values() for oid in v.override_check_ids}
    return tuple(
        [(cid, baseline[cid]) for cid in sorted(baseline) if cid not in overridden]
        + [(cid, restricted[cid]) for cid in sorted(restricted)]
    )


_validate(DEFAULT_CHECKS)

_PLANS: dict[str, tuple[tuple[tuple[str, VersionedCheck], ...], ...]] = {
    level: tuple(_build(level, minor) for minor in range(MAX_VERSION + 1)) for level in (BASELINE, RESTRICTED)
}


def checks_for(level: str, minor: int) -> tuple[CheckFn, ...]:
    """Ordered check functions for ``level`` (baseline/restricted) at v1.<minor>, clamped to MAX."""
    return tuple(v.check_pod for _, v in _PLANS[level][min(minor, MAX_VERSION)])


def check_ids_for(level: str, minor: int) -> list[str]:
    """Ordered check IDs for ``level`` at v1.<minor> (what messages are ordered by)."""
    return [cid for cid, _ in _PLANS[level][min(minor, MAX_VERSION)]]


def variants_for(level: str, minor: int) -> tuple[tuple[str, VersionedCheck], ...]:
    """Ordered ``(check ID, variant in force)`` for ``level`` at v1.<minor>: what ``podsec policy vap`` exports."""
    return _PLANS[level][min(minor, MAX_VERSION)]
