"""Payloads of configMap, secret, downwardAPI and projected volumes (pure: no filesystem access).

Reference: kubelet-semantics §3.6 (``MakePayload`` of configmap/secret, downwardapi ``CollectData``,
projected ``collectData``). ConfigMaps and Secrets come from the user's input documents, looked up by
namespace and name; errors carry the kubelet's wording (``configmap "x" not found``,
``configmap references non-existent config key: k``) so that what podsec says matches pod events.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from podsec.downward import NodeInfo, ObjectStore, PodFacts, field_value
from podsec.downward import format_map as format_map  # re-exported: its home is podsec.downward
from podsec.downward import resource_field_value as resource_field_value_of
from podsec.errors import InputError
from podsec.goquote import go_quote as go_quote  # re-exported (tests import it from here)
from podsec.model import Path as FieldPath
from podsec.model import ResolvedPod, render_path
from podsec.volumes.atomic_writer import FileProjection
from podsec.volumes.readable import volume_file_owner

DEFAULT_MODE = 0o644
"""``ConfigMap/Secret/DownwardAPI/ProjectedVolumeSourceDefaultMode``."""
TOKEN_MODE_WITH_FS_IDS = 0o600
DEFAULT_TOKEN_EXPIRATION = 3600

ATOMIC_SOURCES = ("configMap", "secret", "downwardAPI", "projected")


# --------------------------------------------------------------------------------------------------
# inputs


@dataclass(slots=True)
class SourceContext:
    """Everything a payload depends on besides the volume source itself."""

    name: str
    namespace: str
    uid: str
    spec: Mapping[str, Any]
    metadata: Mapping[str, Any]
    objects: ObjectStore
    fs_group: int | None = None
    fs_user: int | None = None
    """``FsUserFrom(pod)``: the implicit owner of projected service account tokens only."""
    node: NodeInfo = field(default_factory=NodeInfo)
    user_fields: bool = False
    """KEP-5936 ``defaultUser``/``user`` (feature gate ``AtomicWriteVolumeUserFields``, alpha, off)."""
    pod_fs_user: int | None = None
    """KEP-5280 ``spec.securityContext.fsUser`` (gate ``PodSecurityContextFSUser``; None when off)."""

    @property
    def facts(self) -> PodFacts:
        """The pod as :mod:`podsec.downward` reads it (``metadata.name``/``namespace``/``uid`` from here)."""
        meta = {**self.metadata, "name": self.name, "namespace": self.namespace, "uid": self.uid}
        return PodFacts(meta, self.spec, self.node.name, "", "")


class SetUpError(InputError):
    """A volume could not be populated (missing object or key): the kubelet's MountVolume.SetUp error."""


def _setup_error(volume: str, message: str, field_path: FieldPath) -> SetUpError:
    return SetUpError(f'MountVolume.SetUp failed for volume "{volume}" : {message}', field=render_path(field_path))


# --------------------------------------------------------------------------------------------------
# helpers


def fs_user_from(pod: ResolvedPod) -> int | None:
    """``FsUserFrom(pod)``: the runAsUser shared by every container, else None.

    Only securityContext counts (not the image USER): resolve's container-else-pod runAsUser
    (:attr:`podsec.model.Identity.run_as_user`). Every container is visited — init, regular and ephemeral
    (``podutil.VisitContainers(..., AllFeatureEnabledContainers())`` in ``pkg/volume/util/util.go``); an
    ephemeral container without a runAsUser clears it like any other.
    """
    found: int | None = None
    for rc in pod.containers:
        uid = rc.identity.run_as_user
        if uid is None or (found is not None and found != uid):
            return None
        found = uid
    return found


def _mode(value: object, default: int, field_path: FieldPath) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        raise InputError(
            f"Invalid value: {value!r}: must be a number between 0 and 0777 (octal), both inclusive",
            field=render_path(field_path),
        )
    return value


def _user(value: object, default: int | None, field_path: FieldPath) -> int | None:
    """KEP-5936 owner uid of a file: the item's ``user``, else the source's ``defaultUser``."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2147483647:
        raise InputError(
            f"Invalid value: {value!r}: must be between 0 and 2147483647, inclusive", field=render_path(field_path)
        )
    return value


def _default_user(source: Mapping[str, Any], ctx: SourceContext, field_path: FieldPath) -> int | None:
    """The owner of a volume's files that name no ``user`` of their own.

    Precedence (docs/feature-gates.md): item ``user`` > the volume's ``defaultUser`` (both KEP-5936,
    gate ``AtomicWriteVolumeUserFields``) > pod ``fsUser`` (KEP-5280, gate ``PodSecurityContextFSUser``)
    > root. The item level is applied by the payload builders.
    """
    default = _user(source.get("defaultUser"), None, (*field_path, "defaultUser")) if ctx.user_fields else None
    return volume_file_owner(None, default, ctx.pod_fs_user)[0]


def _b64(value: object, what: str, field_path: FieldPath) -> bytes:
    if not isinstance(value, str):
        raise InputError(f"{what}: must be a base64-encoded string", field=render_path(field_path))
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InputError(f"{what}: illegal base64 data: {e}", field=render_path(field_path)) from None


def _str_map(doc: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, Mapping):
        raise InputError(f"{what}: {key} must be a map")
    return dict(value)


# --------------------------------------------------------------------------------------------------
# configMap / secret


def config_map_data(cm: Mapping[str, Any]) -> dict[str, bytes]:
    """``data`` (UTF-8) then ``binaryData`` (base64), the order MakePayload uses."""
    name = (cm.get("metadata") or {}).get("name", "?")
    out: dict[str, bytes] = {}
    for k, v in _str_map(cm, "data", f'configmap "{name}"').items():
        if not isinstance(v, str):
            raise InputError(f'configmap "{name}": data.{k}: must be a string')
        out[str(k)] = v.encode()
    for k, v in _str_map(cm, "binaryData", f'configmap "{name}"').items():
        out[str(k)] = _b64(v, f'configmap "{name}": binaryData.{k}', ())
    return out


def secret_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    """``data`` base64-decoded, overlaid with ``stringData`` (what the API server stores)."""
    name = (secret.get("metadata") or {}).get("name", "?")
    out: dict[str, bytes] = {}
    for k, v in _str_map(secret, "data", f'secret "{name}"').items():
        out[str(k)] = _b64(v, f'secret "{name}": data.{k}', ())
    for k, v in _str_map(secret, "stringData", f'secret "{name}"').items():
        if not isinstance(v, str):
            raise InputError(f'secret "{name}": stringData.{k}: must be a string')
        out[str(k)] = v.encode()
    return out


def _key_payload(
    kind: str,
    data: Mapping[str, bytes],
    items: list[Mapping[str, Any]] | None,
    default_mode: int,
    optional: bool,
    volume: str,
    field_path: FieldPath,
    default_user: int | None = None,
    user_fields: bool = False,
) -> dict[str, FileProjection]:
    """MakePayload for configMap and secret: every key, or only the listed items."""
    payload: dict[str, FileProjection] = {}
    if not items:
        for key, value in data.items():
            payload[key] = FileProjection(value, default_mode, default_user)
        return payload
    for i, item in enumerate(items):
        key = item.get("key")
        if key not in data:
            if optional:
                continue
            msg = (
                f"configmap references non-existent config key: {key}"
                if kind == "ConfigMap"
                else f"references non-existent secret key: {key}"
            )
            raise _setup_error(volume, msg, (*field_path, "items", i, "key"))
        mode = _mode(item.get("mode"), default_mode, (*field_path, "items", i, "mode"))
        uid = default_user
        if user_fields:
            uid = _user(item.get("user"), default_user, (*field_path, "items", i, "user"))
        payload[str(item.get("path"))] = FileProjection(data[key], mode, uid)
    return payload


def _lookup(
    ctx: SourceContext, kind: str, name: object, optional: bool, volume: str, field_path: FieldPath
) -> Mapping[str, Any] | None:
    if not isinstance(name, str) or not name:
        if optional:
            return None
        raise InputError(f'volume "{volume}": name is required', field=render_path((*field_path, "name")))
    doc = ctx.objects.get(kind, ctx.namespace, name)
    if doc is None and not optional:
        raise _setup_error(volume, f'{kind.lower()} "{name}" not found', (*field_path, "name"))
    return doc


def config_map_payload(
    source: Mapping[str, Any],
    ctx: SourceContext,
    volume: str,
    field_path: FieldPath,
    default_mode: int,
    default_user: int | None = None,
) -> dict[str, FileProjection]:
    optional = bool(source.get("optional"))
    cm = _lookup(ctx, "ConfigMap", source.get("name"), optional, volume, field_path)
    data = config_map_data(cm) if cm is not None else {}
    return _key_payload(
        "ConfigMap",
        data,
        source.get("items"),
        default_mode,
        optional,
        volume,
        field_path,
        default_user,
        ctx.user_fields,
    )


def secret_payload(
    source: Mapping[str, Any],
    ctx: SourceContext,
    volume: str,
    field_path: FieldPath,
    default_mode: int,
    name_key: str = "secretName",
    default_user: int | None = None,
) -> dict[str, FileProjection]:
    optional = bool(source.get("optional"))
    secret = _lookup(ctx, "Secret", source.get(name_key), optional, volume, field_path)
    data = secret_data(secret) if secret is not None else {}
    return _key_payload(
        "Secret",
        data,
        source.get("items"),
        default_mode,
        optional,
        volume,
        field_path,
        default_user,
        ctx.user_fields,
    )


# --------------------------------------------------------------------------------------------------
# downward API


def field_ref_value(ctx: SourceContext, field_path: str) -> str:
    """A downwardAPI item's ``fieldRef`` (:func:`podsec.downward.field_value`; the ``status.*`` paths are
    env-only upstream)."""
    return field_value(field_path, ctx.facts, env=False)


def resource_field_value(ctx: SourceContext, ref: Mapping[str, Any], default_container: str | None) -> str:
    """A downwardAPI item's ``resourceFieldRef`` (:func:`podsec.downward.resource_field_value`)."""
    return resource_field_value_of(ref, ctx.spec, default_container, ctx.node)


def downward_api_payload(
    items: list[Mapping[str, Any]] | None,
    ctx: SourceContext,
    volume: str,
    field_path: FieldPath,
    default_mode: int,
    default_container: str | None = None,
    default_user: int | None = None,
) -> dict[str, FileProjection]:
    """``CollectData``: every item evaluated; errors are collected and reported together."""
    payload: dict[str, FileProjection] = {}
    errors: list[str] = []
    for i, item in enumerate(items or []):
        ipath = (*field_path, "items", i)
        path = posixpath.normpath(str(item.get("path") or ""))
        mode = _mode(item.get("mode"), default_mode, (*ipath, "mode"))
        data = b""
        try:
            if item.get("fieldRef") is not None:
                data = field_ref_value(ctx, str((item.get("fieldRef") or {}).get("fieldPath", ""))).encode()
            elif item.get("resourceFieldRef") is not None:
                data = resource_field_value(ctx, item["resourceFieldRef"], default_container).encode()
        except (ValueError, InputError) as e:
            errors.append(str(e))
        uid = _user(item.get("user"), default_user, (*ipath, "user")) if ctx.user_fields else default_user
        payload[path] = FileProjection(data, mode, uid)
    if errors:
        msg = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise _setup_error(volume, msg, (*field_path, "items"))
    return payload


# --------------------------------------------------------------------------------------------------
# projected


def placeholder_token(ctx: SourceContext, audience: str | None, expiration: int) -> bytes:
    """A stand-in for a service account token: clearly not a JWT, stable across rewrites."""
    sa = ctx.spec.get("serviceAccountName") or ctx.spec.get("serviceAccount") or "default"
    return (
        "podsec-placeholder-token: NOT A REAL KUBERNETES SERVICE ACCOUNT TOKEN "
        f"(serviceAccount {ctx.namespace}/{sa}, audience {audience or '<api server>'}, "
        f"expirationSeconds {expiration})\n"
    ).encode()


def projected_payload(
    source: Mapping[str, Any], ctx: SourceContext, volume: str, field_path: FieldPath
) -> dict[str, FileProjection]:
    """Projected ``collectData``: sources merged in order (a later path wins), errors aggregated."""
    default_mode = _mode(source.get("defaultMode"), DEFAULT_MODE, (*field_path, "defaultMode"))
    user = _default_user(source, ctx, field_path)
    payload: dict[str, FileProjection] = {}
    errors: list[SetUpError] = []
    for i, src in enumerate(source.get("sources") or []):
        spath = (*field_path, "sources", i)
        try:
            if src.get("configMap") is not None:
                payload.update(
                    config_map_payload(src["configMap"], ctx, volume, (*spath, "configMap"), default_mode, user)
                )
            elif src.get("secret") is not None:
                payload.update(
                    secret_payload(src["secret"], ctx, volume, (*spath, "secret"), default_mode, "name", user)
                )
            elif src.get("downwardAPI") is not None:
                payload.update(
                    downward_api_payload(
                        (src["downwardAPI"] or {}).get("items"),
                        ctx,
                        volume,
                        (*spath, "downwardAPI"),
                        default_mode,
                        None,
                        user,
                    )
                )
            elif src.get("serviceAccountToken") is not None:
                tp = src["serviceAccountToken"] or {}
                # An explicit owner (item user, defaultUser, fsUser) replaces the FsUserFrom heuristic
                # (KEP-5936 "Interactions with existing features" 4) and takes its place below.
                owner = ctx.fs_user if user is None else user
                if ctx.user_fields:
                    owner = _user(tp.get("user"), owner, (*spath, "serviceAccountToken", "user"))
                # "When FsGroup is set, we depend on SetVolumeOwnership to change from 0600 to 0640."
                mode = default_mode
                if owner is not None or ctx.fs_group is not None:
                    mode = TOKEN_MODE_WITH_FS_IDS
                expiration = int(tp.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION)
                payload[str(tp.get("path") or "token")] = FileProjection(
                    placeholder_token(ctx, tp.get("audience"), expiration), mode, owner
                )
            else:
                kinds = ", ".join(sorted(k for k in src if src.get(k) is not None)) or "empty source"
                raise InputError(
                    f'volume "{volume}": projected source {kinds} is not supported by podsec',
                    field=render_path(spath),
                )
        except SetUpError as e:
            errors.append(e)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        inner = [e.message.split(" : ", 1)[-1] for e in errors]
        raise _setup_error(volume, "[" + ", ".join(inner) + "]", (*field_path, "sources"))
    return payload


# --------------------------------------------------------------------------------------------------


def build_payload(
    volume: Mapping[str, Any], ctx: SourceContext, field_path: FieldPath
) -> dict[str, FileProjection] | None:
    """The payload of an atomic-writer volume (None for every other volume type)."""
    name = str(volume.get("name"))
    if volume.get("configMap") is not None:
        src = volume["configMap"]
        fp = (*field_path, "configMap")
        mode = _mode(src.get("defaultMode"), DEFAULT_MODE, (*fp, "defaultMode"))
        return config_map_payload(src, ctx, name, fp, mode, _default_user(src, ctx, fp))
    if volume.get("secret") is not None:
        src = volume["secret"]
        fp = (*field_path, "secret")
        mode = _mode(src.get("defaultMode"), DEFAULT_MODE, (*fp, "defaultMode"))
        return secret_payload(src, ctx, name, fp, mode, default_user=_default_user(src, ctx, fp))
    if volume.get("downwardAPI") is not None:
        src = volume["downwardAPI"]
        fp = (*field_path, "downwardAPI")
        mode = _mode(src.get("defaultMode"), DEFAULT_MODE, (*fp, "defaultMode"))
        return downward_api_payload(src.get("items"), ctx, name, fp, mode, None, _default_user(src, ctx, fp))
    if volume.get("projected") is not None:
        return projected_payload(volume["projected"], ctx, name, (*field_path, "projected"))
    return None
