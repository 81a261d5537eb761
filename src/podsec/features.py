"""Feature gates: which proposed Kubernetes fields podsec honours, and the ``--feature-gates`` flag.

A stock cluster has every alpha gate off, so podsec behaves as one unless a gate is switched on,
with the same flag syntax as kube-apiserver and the kubelet
(``k8s.io/component-base/featuregate``, ``featureGate.Set``/``SetFromMap``)::

    --feature-gates AtomicWriteVolumeUserFields=true,PodSecurityContextFSUser=true

* pairs are split on ``,`` (empty pairs skipped) and each on the first ``=``; names and values are
  trimmed; a pair without ``=`` is ``missing bool value for NAME``;
* values are Go's ``strconv.ParseBool`` (``1 t T TRUE true True 0 f F FALSE false False``), any
  other is ``invalid value of NAME=VALUE, err: strconv.ParseBool: parsing "VALUE": invalid syntax``;
* an unknown name is ``unrecognized feature gate: NAME``;
* ``AllAlpha``/``AllBeta`` set every alpha/beta gate that is not named explicitly;
* the flag may be repeated: later settings win.

The registry is data: each gate says who named it (upstream Kubernetes, or podsec when upstream
never did), its stage and default, and the API fields it guards, so ``check``, ``explain`` and
``run`` all read the same facts (see docs/feature-gates.md for the sources).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from podsec.errors import InputError

ALPHA = "Alpha"
BETA = "Beta"
GA = "GA"

ATOMIC_WRITE_VOLUME_USER_FIELDS = "AtomicWriteVolumeUserFields"
POD_SECURITY_CONTEXT_FS_USER = "PodSecurityContextFSUser"
ALL_ALPHA = "AllAlpha"
ALL_BETA = "AllBeta"

ATOMIC_SOURCES = ("configMap", "secret", "downwardAPI", "projected")


@dataclass(frozen=True, slots=True)
class Gate:
    """One feature gate podsec knows."""

    name: str
    stage: str
    default: bool
    kep: str
    upstream: bool
    """True: the name is Kubernetes' own; False: upstream never named a gate, podsec chose this one."""
    since: str | None
    """The Kubernetes release that introduced the gate (None: never in Kubernetes)."""
    fields: tuple[str, ...]
    """The API fields it guards, as the API reference spells them (``[*]`` for any index)."""
    summary: str


GATES: dict[str, Gate] = {
    g.name: g
    for g in (
        Gate(
            ATOMIC_WRITE_VOLUME_USER_FIELDS,
            ALPHA,
            False,
            "KEP-5936",
            True,
            "1.37",
            (
                "spec.volumes[*].configMap.defaultUser",
                "spec.volumes[*].configMap.items[*].user",
                "spec.volumes[*].secret.defaultUser",
                "spec.volumes[*].secret.items[*].user",
                "spec.volumes[*].downwardAPI.defaultUser",
                "spec.volumes[*].downwardAPI.items[*].user",
                "spec.volumes[*].projected.defaultUser",
                "spec.volumes[*].projected.sources[*].configMap.items[*].user",
                "spec.volumes[*].projected.sources[*].secret.items[*].user",
                "spec.volumes[*].projected.sources[*].downwardAPI.items[*].user",
                "spec.volumes[*].projected.sources[*].serviceAccountToken.user",
                "spec.volumes[*].projected.sources[*].clusterTrustBundle.user",
            ),
            "owner uid of the data files of configMap, secret, downwardAPI and projected volumes "
            "(item user wins over the volume's defaultUser)",
        ),
        Gate(
            POD_SECURITY_CONTEXT_FS_USER,
            ALPHA,
            False,
            "KEP-5280",
            False,
            None,
            ("spec.securityContext.fsUser",),
            "pod-level owner uid of files and kubelet-made directories in emptyDir, configMap, secret, "
            "projected and downwardAPI volumes, the uid counterpart of fsGroup (proposal, never merged)",
        ),
    )
}
"""Every gate podsec implements, by name."""

SPECIAL = (ALL_ALPHA, ALL_BETA)
"""Upstream's global toggles: they set every alpha (beta) gate not named explicitly."""


class FeatureGateError(InputError):
    """A ``--feature-gates`` value the Kubernetes flag parser would refuse."""


# --------------------------------------------------------------------------------------------------
# parsing


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(value: str) -> bool:
    """Go's ``strconv.ParseBool``; raises ValueError with its error text."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def parse_pairs(value: str) -> dict[str, bool]:
    """One flag value ``A=true,B=false`` → {name: bool}, with ``featureGate.Set``'s errors.

    Values are all parsed before any name is checked, as upstream does.
    """
    out: dict[str, bool] = {}
    for pair in value.split(","):
        if not pair:
            continue
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep:
            raise FeatureGateError(f"missing bool value for {key}")
        raw = raw.strip()
        try:
            out[key] = parse_bool(raw)
        except ValueError as e:
            raise FeatureGateError(f"invalid value of {key}={raw}, err: {e}") from None
    for key in out:
        if key not in GATES and key not in SPECIAL:
            raise FeatureGateError(
                f"unrecognized feature gate: {key} "
                f"(podsec knows {', '.join(sorted(GATES))}, {ALL_ALPHA} and {ALL_BETA})"
            )
    return out


@dataclass(frozen=True, slots=True)
class FeatureGates:
    """The gate settings in force: explicit values, else AllAlpha/AllBeta, else each gate's default."""

    explicit: Mapping[str, bool] = field(default_factory=dict)

    def enabled(self, name: str) -> bool:
        gate = GATES.get(name)
        if gate is None:
            raise KeyError(f"feature {name!r} is not registered in podsec's feature gates")
        if name in self.explicit:
            return self.explicit[name]
        if gate.stage == ALPHA and ALL_ALPHA in self.explicit:
            return self.explicit[ALL_ALPHA]
        if gate.stage == BETA and ALL_BETA in self.explicit:
            return self.explicit[ALL_BETA]
        return gate.default

    @property
    def enabled_names(self) -> frozenset[str]:
        return frozenset(name for name in GATES if self.enabled(name))

    def as_dict(self) -> dict[str, bool]:
        """Every known gate with its value in force (what a pod record keeps)."""
        return {name: self.enabled(name) for name in sorted(GATES)}

    def __str__(self) -> str:
        return ",".join(f"{k}={'true' if v else 'false'}" for k, v in sorted(self.as_dict().items()))

    @classmethod
    def from_names(cls, names: Iterable[str]) -> FeatureGates:
        """Gates switched on by name (e.g. the ``frozenset`` the static pipeline carries)."""
        return cls({name: True for name in names if name in GATES})


STOCK = FeatureGates()
"""A stock cluster: every gate at its default."""


def parse_feature_gates(values: Iterable[str]) -> FeatureGates:
    """Every ``--feature-gates`` occurrence in order (later settings win), like repeated pflag Set calls."""
    explicit: dict[str, bool] = {}
    for value in values:
        explicit.update(parse_pairs(value))
    return FeatureGates(explicit)


def gates_from(value: Mapping[str, bool] | FeatureGates | Iterable[str] | None) -> FeatureGates:
    """Accept what callers hold: a FeatureGates, a record's {name: bool} or a set of enabled names."""
    if value is None:
        return STOCK
    if isinstance(value, FeatureGates):
        return value
    if isinstance(value, Mapping):
        return FeatureGates({k: bool(v) for k, v in value.items() if k in GATES or k in SPECIAL})
    return FeatureGates.from_names(value)


# --------------------------------------------------------------------------------------------------
# the guarded fields in a pod spec


@dataclass(frozen=True, slots=True)
class GatedField:
    """A guarded field set in a pod spec."""

    gate: str
    path: tuple[str | int, ...]
    """From the pod (template) root, e.g. ``("spec", "volumes", 0, "secret", "defaultUser")``."""
    value: Any

    @property
    def name(self) -> str:
        return str(self.path[-1])


def _d(v: object) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _items(v: object) -> list[Any]:
    return v if isinstance(v, list) else []


def _user_items(src: Mapping[str, Any], base: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    for j, item in enumerate(_items(src.get("items"))):
        if isinstance(item, Mapping) and item.get("user") is not None:
            yield (*base, "items", j, "user"), item["user"]


def gated_fields(spec: Mapping[str, Any]) -> list[GatedField]:
    """Every guarded field set (not null) in ``spec``, in document order (pod security context first)."""
    out: list[GatedField] = []
    psc = _d(spec.get("securityContext"))
    if psc.get("fsUser") is not None:
        out.append(GatedField(POD_SECURITY_CONTEXT_FS_USER, ("spec", "securityContext", "fsUser"), psc["fsUser"]))
    gate = ATOMIC_WRITE_VOLUME_USER_FIELDS
    for i, vol in enumerate(_items(spec.get("volumes"))):
        if not isinstance(vol, Mapping):
            continue
        for kind in ATOMIC_SOURCES:
            src = vol.get(kind)
            if not isinstance(src, Mapping):
                continue
            base: tuple[str | int, ...] = ("spec", "volumes", i, kind)
            if src.get("defaultUser") is not None:
                out.append(GatedField(gate, (*base, "defaultUser"), src["defaultUser"]))
            if kind != "projected":
                out += [GatedField(gate, p, v) for p, v in _user_items(src, base)]
                continue
            for k, source in enumerate(_items(src.get("sources"))):
                if not isinstance(source, Mapping):
                    continue
                for sub in ("configMap", "secret", "downwardAPI"):
                    if isinstance(source.get(sub), Mapping):
                        out += [GatedField(gate, p, v) for p, v in _user_items(source[sub], (*base, "sources", k, sub))]
                for sub in ("serviceAccountToken", "clusterTrustBundle"):
                    one = _d(source.get(sub))
                    if one.get("user") is not None:
                        out.append(GatedField(gate, (*base, "sources", k, sub, "user"), one["user"]))
    return out


def disabled_fields(spec: Mapping[str, Any], gates: FeatureGates) -> list[GatedField]:
    """The guarded fields whose gate is off: a stock API server drops (or refuses) them."""
    return [f for f in gated_fields(spec) if not gates.enabled(f.gate)]


def drop_disabled_fields(spec: Mapping[str, Any], gates: FeatureGates) -> dict[str, Any]:
    """The spec as the API server stores it: guarded fields of disabled gates removed (pure).

    This is ``dropDisabledPodFields`` on create (``pkg/api/pod/util.go``) for KEP-5936's fields; for
    ``fsUser``, which no Kubernetes release has, it is what non-strict decoding does to an unknown field.
    Only the containers of removed fields are copied, the rest is shared with ``spec``.
    """
    out: dict[str, Any] = dict(spec)
    for f in disabled_fields(spec, gates):
        _remove(out, f.path[1:])
    return out


def _remove(root: dict[str, Any], path: tuple[str | int, ...]) -> None:
    """Delete ``path`` from ``root``, copying each dict/list on the way so shared input stays intact."""
    node: Any = root
    for seg in path[:-1]:
        child = node[seg]
        child = dict(child) if isinstance(child, Mapping) else list(child)
        node[seg] = child
        node = child
    del node[path[-1]]


# --------------------------------------------------------------------------------------------------
# what a stock cluster does with a guarded field (check's finding and run's warning say this)


def stock_behaviour(gate: str, subject: str, unknown_path: str | None = None) -> str:
    """What an API server with ``gate`` off does to a field; ``subject`` names the field.

    ``unknown_path`` (the full field path, when known) is quoted as in the strict decoder's error.
    Sources: apimachinery's strict decoding (kubectl's default ``--validate=strict`` since 1.25,
    server-side ``fieldValidation``: Strict fails, Warn/Ignore drop unknown fields) and
    ``dropDisabledPodFields`` in ``pkg/api/pod/util.go`` for gated fields of the schema.
    """
    g = GATES[gate]
    if not g.upstream:
        unknown = f'unknown field "{unknown_path}"' if unknown_path else "unknown field"
        return (
            f"{subject} is not a Kubernetes field ({g.kep} was never merged): an API server rejects the "
            f"object under kubectl's default --validate=strict (strict decoding error: {unknown}) "
            "and drops the field under --validate=warn or false"
        )
    return (
        f"{subject} is alpha in Kubernetes {g.since} behind feature gate {g.name}, off on a stock cluster: "
        "the API server drops it when the Pod is created, so it has no effect"
    )


def enable_hint(gate: str) -> str:
    g = GATES[gate]
    where = "" if g.upstream else " (podsec's name: upstream never named a gate)"
    return f"--feature-gates {g.name}=true{where}"


def ignored_message(gate: str, fields: list[GatedField]) -> str:
    """``run``'s one-line warning that a stock cluster ignores these fields (and so does podsec)."""
    from podsec.model import render_path

    first = render_path(fields[0].path)
    more = f" (and {len(fields) - 1} more such field{'s' if len(fields) > 2 else ''})" if len(fields) > 1 else ""
    how = "without it, as --validate=warn would" if not GATES[gate].upstream else "as a stock cluster does, without it"
    return (
        f"{stock_behaviour(gate, first, first)}{more}; podsec runs the pod {how} (files stay owned by root); "
        f"to honour it use {enable_hint(gate)}"
    )


# --------------------------------------------------------------------------------------------------
# the command-line option (shared by check, explain, run and apply)


def click_option() -> Any:
    """``--feature-gates NAME=BOOL,...`` (repeatable) as a click option yielding :class:`FeatureGates`.

    A bad value is a usage error (exit 2) worded like kube-apiserver's flag parser.
    """
    import click

    def callback(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> FeatureGates:
        try:
            return parse_feature_gates(values)
        except FeatureGateError as e:
            raise click.BadParameter(e.message, ctx=ctx, param=param) from None

    return click.option(
        "--feature-gates",
        "feature_gates",
        multiple=True,
        metavar="NAME=BOOL,...",
        callback=callback,
        help=f"Switch on proposed fields, as on kube-apiserver/kubelet (all off: a stock cluster). "
        f"Known: {', '.join(sorted(GATES))}, {ALL_ALPHA}, {ALL_BETA}.",
    )
