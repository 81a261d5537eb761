"""``ValidateVolumes`` and the volume-source rules: key-to-path items, downward API files, projections,
the one-source-per-volume rule, and each volume type's security-relevant fields."""

from __future__ import annotations

from podsec.api.fielderror import FieldError
from podsec.api.validation.common import (
    _EMPTY,
    _GOOD_LABELS,
    _HOST_PATH_TYPES,
    _MAX_ID,
    _ONE_VOLUME_TYPE,
    _QUANTITY_RE,
    _RANGE_MSG,
    _SOURCE_ORDER,
    _SOURCE_SEGMENT,
    ValidationOptions,
    _check_id,
    _check_mode,
    _dns1123_label,
    _i,
    _l,
    _local_descending_path,
    _local_non_reserved_path,
    _name,
    _no_backsteps,
    _s,
)

# ---------------------------------------------------------------------------------------------
# Volumes (ValidateVolumes)


def _key_to_path(kp: dict, path: tuple, errs: list[FieldError], users: bool = False) -> None:
    key = _s(kp.get("key")) or ""
    p = _s(kp.get("path")) or ""
    if not key:
        errs.append(FieldError("Required", (*path, "key")))
    if not p:
        errs.append(FieldError("Required", (*path, "path")))
    _local_non_reserved_path(p, (*path, "path"), errs)
    if "mode" in kp:
        _check_mode(kp["mode"], (*path, "mode"), errs)
    if users and kp.get("user") is not None:
        _check_id(kp["user"], (*path, "user"), errs)


def _items(src: dict, path: tuple, errs: list[FieldError], users: bool = False) -> None:
    items = _l(src.get("items"))
    if items:
        for j, kp in enumerate(items):
            _key_to_path(kp if isinstance(kp, dict) else _EMPTY, (*path, "items", j), errs, users)


def _default_user(src: dict, path: tuple, errs: list[FieldError], users: bool) -> None:
    """KEP-5936 ``defaultUser``: IsValidUserID like runAsUser (only when its gate is on)."""
    if users and src.get("defaultUser") is not None:
        _check_id(src["defaultUser"], (*path, "defaultUser"), errs)


def _downward_api_file(f: dict, path: tuple, item: tuple, errs: list[FieldError], users: bool = False) -> None:
    """validateDownwardAPIVolumeFile — upstream reports these at the source path, unindexed
    (``item`` is the file entry's real place, kept as the errors' ``where``)."""
    p = _s(f.get("path")) or ""
    if not p:
        errs.append(FieldError("Required", (*path, "path"), where=(*item, "path")))
    _local_non_reserved_path(p, (*path, "path"), errs, (*item, "path"))
    has_field = f.get("fieldRef") is not None
    has_resource = f.get("resourceFieldRef") is not None
    if has_field:
        if has_resource:
            errs.append(
                FieldError(
                    "Invalid",
                    path,
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                    "resource",
                    where=item,
                )
            )
    elif not has_resource:
        errs.append(
            FieldError("Required", path, "one of fieldRef and resourceFieldRef is required", where=item)
        )
    if "mode" in f:
        _check_mode(f["mode"], (*path, "mode"), errs, (*item, "mode"))
    if users and f.get("user") is not None:
        # Inferred: reported at the source path like ``mode`` (validateDownwardAPIVolumeFile gets no index).
        n = _i(f["user"])
        if n is not None and not 0 <= n <= _MAX_ID:
            errs.append(FieldError("Invalid", (*path, "user"), _RANGE_MSG, n, where=(*item, "user")))


def _projection_sources(proj: dict, path: tuple, errs: list[FieldError], users: bool = False) -> None:
    sources = _l(proj.get("sources"))
    if not sources:
        return
    all_paths: set[str] = set()

    def track(p: str, value: object) -> None:
        if p in all_paths:
            errs.append(FieldError("Invalid", path, "conflicting duplicate paths", value))
        else:
            all_paths.add(p)

    for i, source in enumerate(sources):
        if not isinstance(source, dict):
            continue
        num = 0
        src_path = (*path, "sources", i)
        for kind in ("secret", "configMap"):
            obj = source.get(kind)
            if obj is None:
                continue
            num += 1
            obj = obj if isinstance(obj, dict) else _EMPTY
            obj_name = _s(obj.get("name")) or ""
            if not obj_name:
                errs.append(FieldError("Required", (*src_path, kind, "name")))
            items = _l(obj.get("items"))
            for j, kp in enumerate(items or ()):
                kp = kp if isinstance(kp, dict) else _EMPTY
                _key_to_path(kp, (*src_path, kind, "items", j), errs, users)
                p = _s(kp.get("path")) or ""
                if p:
                    track(p, obj_name)
        dapi = source.get("downwardAPI")
        if dapi is not None:
            num += 1
            items = _l(dapi.get("items")) if isinstance(dapi, dict) else None
            for j, f in enumerate(items or ()):
                f = f if isinstance(f, dict) else _EMPTY
                _downward_api_file(
                    f, (*src_path, "downwardAPI"), (*src_path, "downwardAPI", "items", j), errs, users
                )
                p = _s(f.get("path")) or ""
                if p:
                    track(p, p)
        sat = source.get("serviceAccountToken")
        if sat is not None:
            num += 1
            sat = sat if isinstance(sat, dict) else _EMPTY
            exp = _i(sat.get("expirationSeconds"))
            if exp is None:
                exp = 3600  # SetDefaults_ServiceAccountTokenProjection
            exp_path = (*src_path, "serviceAccountToken", "expirationSeconds")
            if exp < 600:
                errs.append(
                    FieldError("Invalid", exp_path, "may not specify a duration less than 10 minutes", exp)
                )
            if exp > 1 << 32:
                errs.append(
                    FieldError(
                        "Invalid", exp_path, "may not specify a duration larger than 2^32 seconds", exp
                    )
                )
            p = _s(sat.get("path")) or ""
            real = (*src_path, "serviceAccountToken", "path")
            if not p:
                errs.append(FieldError("Required", (*path, "path"), where=real))
            else:
                _local_non_reserved_path(p, (*path, "path"), errs, real)
            if users and sat.get("user") is not None:
                _check_id(sat["user"], (*src_path, "serviceAccountToken", "user"), errs)
        ctb = source.get("clusterTrustBundle")
        if ctb is not None:
            num += 1
            ctb = ctb if isinstance(ctb, dict) else _EMPTY
            p = _s(ctb.get("path")) or ""
            if not p:
                errs.append(FieldError("Required", (*src_path, "clusterTrustBundle", "path")))
            _local_non_reserved_path(p, (*src_path, "clusterTrustBundle", "path"), errs)
            track(p, p)
            if users and ctb.get("user") is not None:
                _check_id(ctb["user"], (*src_path, "clusterTrustBundle", "user"), errs)
        if num > 1:
            errs.append(
                FieldError("Forbidden", src_path, "may not specify more than 1 volume type per source")
            )


def _negative_quantity(v: object) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return v < 0
    if isinstance(v, str):
        m = _QUANTITY_RE.fullmatch(v.strip())
        if m and m.group(1) == "-":
            try:
                return float(m.group(2)) != 0
            except ValueError:
                return False
    return False


def _volume_source(vol: dict, idx: tuple, opts: ValidationOptions, errs: list[FieldError]) -> None:
    """validateVolumeSource: exactly one source; the first one present (upstream order) is validated."""
    present = [k for k, v in vol.items() if v is not None and k in _SOURCE_ORDER]
    if len(present) > 1:
        present.sort(key=_SOURCE_ORDER.__getitem__)
    num = 0
    for key in present:
        src = vol[key]
        seg = _SOURCE_SEGMENT[key]
        if num > 0:
            errs.append(FieldError("Forbidden", (*idx, seg), _ONE_VOLUME_TYPE, where=(*idx, key)))
            continue
        num += 1
        if not isinstance(src, dict):
            continue
        path = (*idx, key)
        if key == "emptyDir":
            if "sizeLimit" in src and _negative_quantity(src["sizeLimit"]):
                errs.append(
                    FieldError(
                        "Forbidden", (*path, "sizeLimit"), "SizeLimit field must be a valid resource quantity"
                    )
                )
        elif key == "hostPath":
            p = _s(src.get("path")) or ""
            if not p:
                errs.append(FieldError("Required", (*path, "path")))
                continue
            _no_backsteps(p, (*path, "path"), errs)
            t = src.get("type")
            if isinstance(t, str) and t not in _HOST_PATH_TYPES:
                errs.append(FieldError("NotSupported", (*path, "type"), value=t, supported=_HOST_PATH_TYPES))
        elif key == "secret" or key == "configMap":
            name_key = "secretName" if key == "secret" else "name"
            if not _s(src.get(name_key)):
                errs.append(FieldError("Required", (*path, name_key)))
            if "defaultMode" in src:
                _check_mode(src["defaultMode"], (*path, "defaultMode"), errs)
            _default_user(src, path, errs, opts.user_fields)
            _items(src, path, errs, opts.user_fields)
        elif key == "downwardAPI":
            if "defaultMode" in src:
                _check_mode(src["defaultMode"], (*path, "defaultMode"), errs)
            _default_user(src, path, errs, opts.user_fields)
            for j, f in enumerate(_l(src.get("items")) or ()):
                _downward_api_file(
                    f if isinstance(f, dict) else _EMPTY, path, (*path, "items", j), errs, opts.user_fields
                )
        elif key == "projected":
            if "defaultMode" in src:
                _check_mode(src["defaultMode"], (*path, "defaultMode"), errs)
            _default_user(src, path, errs, opts.user_fields)
            _projection_sources(src, path, errs, opts.user_fields)
        elif key == "persistentVolumeClaim":
            if not _s(src.get("claimName")):
                errs.append(FieldError("Required", (*path, "claimName")))
        elif key == "gitRepo":
            if not _s(src.get("repository")):
                errs.append(FieldError("Required", (*path, "repository")))
            _local_descending_path(_s(src.get("directory")) or "", (*path, "directory"), errs)
        elif key == "nfs":
            server = _s(src.get("server")) or ""
            p = _s(src.get("path")) or ""
            if not server:
                errs.append(FieldError("Required", (*path, "server")))
            if not p:
                errs.append(FieldError("Required", (*path, "path")))
            if not p.startswith("/"):
                errs.append(FieldError("Invalid", (*path, "path"), "must be an absolute path", p))
        elif key == "image" and opts.resource_is_pod and not _s(src.get("reference")):
            errs.append(FieldError("Required", (*path, "reference")))
    if num == 0:
        errs.append(FieldError("Required", idx, "must specify a volume type"))


def _volumes(vols: list, opts: ValidationOptions, errs: list[FieldError]) -> dict[str, dict]:
    """ValidateVolumes → the volumes containers may mount (a volume with any error is not one)."""
    known: dict[str, dict] = {}
    for i, vol in enumerate(vols):
        vol = vol if isinstance(vol, dict) else _EMPTY
        idx = ("spec", "volumes", i)
        before = len(errs)
        _volume_source(vol, idx, opts, errs)
        name = vol.get("name")
        if type(name) is not str:
            name = _name(vol)
        if not name:
            errs.append(FieldError("Required", (*idx, "name")))
        elif name not in _GOOD_LABELS:
            _dns1123_label(name, (*idx, "name"), errs)
        if name in known:
            errs.append(FieldError("Duplicate", (*idx, "name"), value=name))
        if len(errs) == before:
            known[name] = vol
    return known
