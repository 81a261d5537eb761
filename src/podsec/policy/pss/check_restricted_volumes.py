"""restrictedVolumes (restricted, v1.0+; overrides hostPathVolumes).

Restricted pods may only use volume types that do not expose the node or network storage directly.

Restricted fields: spec.volumes[*]
Allowed sources: configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim,
projected, secret. A volume with only a name is emptyDir (API defaulting). Any other source is
reported by its field name (hostPath, nfs, ...); unrecognised keys are reported as "unknown".
"""

from __future__ import annotations

from podsec.policy.pss import cel
from podsec.policy.pss._common import (
    RESTRICTED,
    Check,
    VersionedCheck,
    as_str,
    join_quote,
    pluralize,
)
from podsec.policy.pss.result import CheckOutcome, FieldPath

ID = "restrictedVolumes"
ALLOWED_SOURCES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
RESTRICTED_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def _bad_type(v: dict) -> str | None:
    """The restricted type of a volume, or None if it is allowed (incl. defaulted to emptyDir)."""
    for s in ALLOWED_SOURCES:
        if v.get(s) is not None:
            return None
    for s in RESTRICTED_SOURCES:
        if v.get(s) is not None:
            return s
    for k, val in v.items():
        if k != "name" and val is not None:
            return "unknown"
    return None  # no source at all: the API defaults it to emptyDir


def restricted_volumes_v1_0(metadata: dict, spec: dict) -> CheckOutcome | None:
    """Forbid volume sources outside the allowed list (names in spec order, types sorted, distinct)."""
    volumes = spec.get("volumes")
    if not isinstance(volumes, list):
        return None
    names: list[str] = []
    types: set[str] = set()
    fields: list[FieldPath] = []
    for i, v in enumerate(volumes):
        if not isinstance(v, dict):
            continue
        t = _bad_type(v)
        if t is not None:
            names.append(as_str(v.get("name")))
            types.add(t)
            fields.append(("spec", "volumes", i))
    if not names:
        return None
    n = len(names)
    return CheckOutcome(
        ID,
        False,
        "restricted volume types",
        f"{pluralize('volume', 'volumes', n)} {join_quote(names)} {pluralize('uses', 'use', n)} "
        f"{pluralize('restricted volume type', 'restricted volume types', len(types))} "
        f"{join_quote(sorted(types))}",
        fields,
    )


# A typed Volume has no other fields, so "unknown" cannot happen in a cluster; no source at all is emptyDir.
# Flat lists, not long ||/+ chains: a parser's nesting limit counts each operator of a chain.
_BAD = (
    "![" + ", ".join(f"has(v_.{s})" for s in ALLOWED_SOURCES) + "].exists(b_, b_)"
    " && [" + ", ".join(f"has(v_.{s})" for s in RESTRICTED_SOURCES) + "].exists(b_, b_)"
)
# in upstream order: the first one a volume has names its type
_TYPE = "[" + ", ".join(f"has(v_.{s}) ? {cel.lit(s)} : ''" for s in RESTRICTED_SOURCES) + "].filter(t_, t_ != '')[0]"
CEL_V1_0 = cel.CelRule(
    f"!variables.volumes.exists(v_, {_BAD})",
    cel.lit("restricted volume types"),
    cel.pluralize("names_.size()", "volume", "volumes") + " + ' ' + " + cel.join_quote("names_") + " + ' ' + "
    + cel.pluralize("names_.size()", "uses", "use") + " + ' ' + "
    + f"({cel.one_value('types_')} ? 'restricted volume type' : 'restricted volume types') + ' ' + "
    + cel.sorted_join("types_"),
    (
        ("bad_", f"variables.volumes.filter(v_, {_BAD})"),
        ("names_", "bad_.map(v_, v_.?name.orValue(''))"),
        ("types_", f"bad_.map(v_, [{_TYPE}])"),
    ),
)

CHECK = Check(ID, RESTRICTED, (VersionedCheck(0, restricted_volumes_v1_0, ("hostPathVolumes",), CEL_V1_0),))
