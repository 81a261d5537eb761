"""appArmorProfile (baseline, v1.0+).

The default AppArmor profile must not be overridden or disabled.

Restricted fields:
  spec.securityContext.appArmorProfile.type
  spec.{initContainers,containers,ephemeralContainers}[*].securityContext.appArmorProfile.type
    allowed: "RuntimeDefault", "Localhost", or the whole appArmorProfile undefined
  metadata.annotations["container.apparmor.security.beta.kubernetes.io/*"]
    allowed: "runtime/default", "localhost/*", empty, undefined
"""

from __future__ import annotations

from podsec.goquote import go_quote
from podsec.policy.pss import cel
from podsec.policy.pss._common import (
    BASELINE,
    Check,
    VersionedCheck,
    as_str,
    container_name,
    containers_of,
    containers_phrase,
    deepest,
    join_quote,
    pluralize,
    sub,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "appArmorProfile"
ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_ALLOWED_TYPES = frozenset(("RuntimeDefault", "Localhost"))
_KEYS = ("securityContext", "appArmorProfile", "type")


def _bad_type(profile: object) -> str | None:
    """The offending type of a set profile, or None if unset/allowed (a missing type is "")."""
    if profile is None:
        return None
    t = as_str(profile.get("type")) if isinstance(profile, dict) else ""
    return None if t in _ALLOWED_TYPES else t


def _allowed_annotation(value: str) -> bool:
    return value == "" or value == "runtime/default" or value.startswith("localhost/")


def app_armor_profile_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid AppArmor profile types other than RuntimeDefault/Localhost, in fields or annotations."""
    setters: list[str] = []
    bad_values: set[str] = set()
    fields: list[FieldPath] = []

    psc = sub(spec, "securityContext")
    if psc is not None:
        t = _bad_type(psc.get("appArmorProfile"))
        if t is not None:
            setters.append("pod")
            bad_values.add(t)
            fields.append(deepest(("spec",), spec, _KEYS))

    bad_containers: list[str] = []
    for key, i, c in containers_of(spec):
        sc = sub(c, "securityContext")
        if sc is None:
            continue
        t = _bad_type(sc.get("appArmorProfile"))
        if t is not None:
            bad_containers.append(container_name(c))
            bad_values.add(t)
            fields.append(deepest(("spec", key, i), c, _KEYS))
    if bad_containers:
        setters.append(containers_phrase(bad_containers))

    annotations = metadata.get("annotations")
    bad_annotations: list[tuple[str, str]] = []
    if isinstance(annotations, dict):
        for k, v in annotations.items():
            ks = as_str(k)
            if ks.startswith(ANNOTATION_PREFIX):
                vs = as_str(v)
                if not _allowed_annotation(vs):
                    bad_annotations.append((f"{ks}={go_quote(vs)}", ks))

    values = sorted(bad_values)
    if bad_annotations:
        bad_annotations.sort()
        values.extend(entry for entry, _ in bad_annotations)
        fields.extend(("metadata", "annotations", k) for _, k in bad_annotations)
        setters.append(pluralize("annotation", "annotations", len(bad_annotations)))

    if not setters:
        return None
    return CheckOutcome(
        ID,
        False,
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
        f"{' and '.join(setters)} must not set AppArmor profile type to {join_quote(values)}",
        fields,
    )


_TYPES = cel.str_list(_ALLOWED_TYPES)
_POD = "variables.podSecurityContext.?appArmorProfile"
_CTR = "c.?securityContext.?appArmorProfile"
_POD_BAD = f"({_POD}.hasValue() && !({_POD}.?type.orValue('') in {_TYPES}))"
_CTR_BAD = f"({_CTR}.hasValue() && !({_CTR}.?type.orValue('') in {_TYPES}))"
_ANNOTATION_BAD = (
    f"(k_.startsWith({cel.lit(ANNOTATION_PREFIX)}) && !(variables.annotations[k_] == ''"
    " || variables.annotations[k_] == 'runtime/default' || variables.annotations[k_].startsWith('localhost/')))"
)
CEL_V1_0 = cel.CelRule(
    f"!{_POD_BAD} && variables.containers.all(c, !{_CTR_BAD}) && variables.annotations.all(k_, !{_ANNOTATION_BAD})",
    "((" + cel.one_value("types_") + " && annotations_.size() == 0) || (types_.size() == 0 && annotations_.size() == 1)"
    " ? 'forbidden AppArmor profile' : 'forbidden AppArmor profiles')",
    "(" + cel.when(_POD_BAD, "'pod'") + " + " + cel.when("bad_.size() > 0", cel.containers_phrase("bad_")) + " + "
    + cel.when("annotations_.size() > 0", cel.pluralize("annotations_.size()", "annotation", "annotations"))
    + ").join(' and ') + ' must not set AppArmor profile type to ' + ["
    + cel.sorted_join("types_") + ", " + cel.sorted_join("annotations_") + "].filter(s_, s_ != '').join(', ')",
    (
        ("bad_", cel.names_where(_CTR_BAD)),
        ("annotations_", cel.singletons(
            f"variables.annotations.filter(k_, {_ANNOTATION_BAD})"
            ".map(k_, k_ + '=' + strings.quote(variables.annotations[k_]))"
        )),
        ("types_", cel.singletons(
            cel.when(_POD_BAD, f"{_POD}.?type.orValue('')")
            + f" + variables.containers.filter(c, {_CTR_BAD}).map(c, {_CTR}.?type.orValue(''))"
        )),
    ),
)

CHECK = Check(ID, BASELINE, (VersionedCheck(0, app_armor_profile_v1_0, cel=CEL_V1_0),))
