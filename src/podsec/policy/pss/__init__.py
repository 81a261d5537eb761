"""Pod Security Standards evaluator that decides exactly as Kubernetes Pod Security Admission.

Public API (used by the CLI and reports):
  LEVELS, parse_level, parse_version, evaluate, namespace_policy, CheckOutcome, PSSResult.
Checks are pure functions of the pod's (or pod template's) ``metadata`` and ``spec`` dicts; see
``registry`` for ordering and the ``check_*`` modules for the individual rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from podsec.goquote import go_quote
from podsec.policy.pss._common import CheckFn, stash_containers
from podsec.policy.pss.registry import MAX_VERSION, check_ids_for, checks_for
from podsec.policy.pss.result import CheckOutcome, FieldPath, PSSResult

__all__ = [
    "ENFORCE_LABEL",
    "ENFORCE_VERSION_LABEL",
    "LATEST_MINOR",
    "LEVELS",
    "CheckOutcome",
    "FieldPath",
    "PSSResult",
    "check_ids",
    "evaluate",
    "go_quote",
    "namespace_policy",
    "parse_level",
    "parse_version",
]

LEVELS = ("privileged", "baseline", "restricted")
LATEST_MINOR = MAX_VERSION
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"

_LEVEL_ERROR = "must be one of privileged, baseline, restricted"
_VERSION_ERROR = 'must be "latest" or "v1.x"'
_VERSION_RE = re.compile(r"v1\.([0-9]|[1-9][0-9]*)")
_GO_MAX_INT = 2**63 - 1  # strconv.Atoi range on 64-bit platforms


def parse_level(s: str) -> str:
    """Validate a level name (exact, case-sensitive) and return it."""
    if s in LEVELS:
        return s
    raise ValueError(_LEVEL_ERROR)


def _minor(s: str) -> int:
    """Minor version of a valid version string ("latest" is MAX_VERSION); ValueError otherwise."""
    if s == "latest":
        return MAX_VERSION
    m = _VERSION_RE.fullmatch(s) if isinstance(s, str) else None
    if m is None:
        raise ValueError(_VERSION_ERROR)
    n = int(m.group(1))
    if n > _GO_MAX_INT:
        raise ValueError(_VERSION_ERROR)
    return n


def parse_version(s: str) -> str:
    """Validate ``latest`` or ``v1.N`` (no leading zeros, major 1) and return it unchanged."""
    _minor(s)
    return s


_PLAN_CACHE: dict[tuple[str, str], tuple[CheckFn, ...]] = {}


def _plan(level: str, version: str) -> tuple[CheckFn, ...]:
    """Check functions for a configured level/version, memoised (versions beyond v1.37 clamp)."""
    key = (level, version)
    plan = _PLAN_CACHE.get(key)
    if plan is None:
        parse_level(level)
        minor = _minor(version)
        plan = () if level == "privileged" else checks_for(level, minor)
        if len(_PLAN_CACHE) < 4096:
            _PLAN_CACHE[key] = plan
    return plan


def check_ids(level: str, version: str = "latest") -> list[str]:
    """IDs of the checks that run for ``level:version``, in message order (empty for privileged)."""
    parse_level(level)
    minor = _minor(version)
    return [] if level == "privileged" else check_ids_for(level, minor)


def evaluate(metadata: dict | None, spec: dict | None, level: str, version: str = "latest") -> PSSResult:
    """Evaluate a pod's (or pod template's) metadata and spec at ``level:version``.

    ``version`` is "latest" or "v1.N"; the result keeps the configured strings for the message.
    Raises ValueError for an invalid level or version; never raises on malformed pod content.
    """
    plan = _PLAN_CACHE.get((level, version))
    if plan is None:
        plan = _plan(level, version)
    md = metadata if isinstance(metadata, dict) else {}
    sp = spec if isinstance(spec, dict) else {}
    key = _memo_key(level, version, md, sp) if plan else None
    if key is not None:
        known = _MEMO.get(key)
        if known is not None:
            return _copy(known)
    failures: list[CheckOutcome] = []
    if plan:
        stash_containers(sp)
        try:
            for fn in plan:
                r = fn(md, sp)
                if r is not None:
                    failures.append(r)
        finally:
            stash_containers(None)
    result = PSSResult(level, version, not failures, failures)
    if key is not None:
        if len(_MEMO) >= MEMO_MAX:
            _MEMO.clear()
        _MEMO[key] = _copy(result)
    return result


MEMO_MAX = 1024
"""Evaluations remembered (a stream of generated pods repeats the same spec under many names)."""
_MEMO: dict[tuple[str, str, bytes, bytes], PSSResult] = {}


def _no_key(_obj: object) -> object:
    raise TypeError


def _memo_key(level: str, version: str, metadata: dict, spec: dict) -> tuple[str, str, bytes, bytes] | None:
    """What an evaluation depends on, exactly: the level, the version, the annotations (the only metadata a check
    reads) and the spec, as JSON. None (not remembered) for input JSON cannot spell exactly: values of other types
    or subclasses (ruamel's, dates), integers beyond 64 bits, non-string keys, and null (which NaN also
    becomes)."""
    import orjson

    opts = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    try:
        sp = orjson.dumps(spec, default=_no_key, option=opts)
        ann = orjson.dumps(metadata.get("annotations"), default=_no_key, option=opts)
    except TypeError:
        return None
    if b"null" in sp or (b"null" in ann and ann != b"null") or len(sp) > 16384:
        return None
    return level, version, sp, ann


def _copy(result: PSSResult) -> PSSResult:
    """A result the caller may change without changing the remembered one."""
    return PSSResult(result.level, result.version, result.allowed,
                     [CheckOutcome(f.id, f.allowed, f.reason, f.detail, list(f.fields)) for f in result.failures])


def _label_value(v: object) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def namespace_policy(labels: dict | None) -> tuple[str, str, list[str]]:
    """Enforce level and version from namespace labels, as PSA resolves them (no configured defaults).

    Absent labels give privileged/latest. An invalid level falls back to restricted (fail closed) and an
    invalid version to latest; each problem adds a ``field.Invalid``-style message to the error list.
    The enforce part of :func:`policy_to_evaluate`, which reads all three modes.
    """
    policy, errors = policy_to_evaluate(labels)
    return policy.enforce.level, policy.enforce.version, [
        e for e in errors if e.startswith(f"metadata.labels[{ENFORCE_LABEL}")]

MODES = ("enforce", "audit", "warn")
LABEL_PREFIX = "pod-security.kubernetes.io/"


@dataclass(frozen=True, slots=True)
class LevelVersion:
    level: str
    version: str

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


@dataclass(frozen=True, slots=True)
class NamespacePolicy:
    """The three modes PSA evaluates for a namespace (upstream ``api.Policy``)."""

    enforce: LevelVersion
    audit: LevelVersion
    warn: LevelVersion

    def fully_privileged(self) -> bool:
        return all(m.level == "privileged" for m in (self.enforce, self.audit, self.warn))


DEFAULT_POLICY = NamespacePolicy(*(LevelVersion("privileged", "latest"),) * 3)
_STRICTNESS = {"privileged": 0, "baseline": 1, "restricted": 2}


def policy_to_evaluate(labels: dict | None, defaults: NamespacePolicy = DEFAULT_POLICY,
                       ) -> tuple[NamespacePolicy, list[str]]:
    """All three modes from namespace labels, as PSA's ``PolicyToEvaluate``: absent labels take the
    defaults; an invalid enforce level fails closed (restricted), invalid audit/warn levels fail open
    (privileged), an invalid version is ``latest``; a warn label that is absent follows a stricter
    enforce label. Errors are ``field.Invalid`` texts, in label order enforce, audit, warn."""
    labels = labels if isinstance(labels, dict) else {}
    errors: list[str] = []
    modes: dict[str, LevelVersion] = {}
    for mode in MODES:
        default = getattr(defaults, mode)
        key = LABEL_PREFIX + mode
        level = default.level
        if key in labels:
            raw = _label_value(labels[key])
            if raw in LEVELS:
                level = raw
            else:
                level = "restricted" if mode == "enforce" else "privileged"
                errors.append(f"metadata.labels[{key}]: Invalid value: {go_quote(raw)}: {_LEVEL_ERROR}")
        version = default.version
        vkey = key + "-version"
        if vkey in labels:
            raw = _label_value(labels[vkey])
            try:
                _minor(raw)
                version = raw
            except ValueError:
                version = "latest"
                errors.append(f"metadata.labels[{vkey}]: Invalid value: {go_quote(raw)}: {_VERSION_ERROR}")
        modes[mode] = LevelVersion(level, version)
    enforce_label = labels.get(LABEL_PREFIX + "enforce")
    if (LABEL_PREFIX + "warn" not in labels and enforce_label is not None
            and _label_value(enforce_label) in LEVELS
            and _STRICTNESS[modes["enforce"].level] > _STRICTNESS[modes["warn"].level]):
        version = modes["warn"].version if LABEL_PREFIX + "warn-version" in labels else modes["enforce"].version
        modes["warn"] = LevelVersion(modes["enforce"].level, version)
    return NamespacePolicy(modes["enforce"], modes["audit"], modes["warn"]), errors
