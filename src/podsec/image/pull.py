"""Pulling images through skopeo transports (``docker://``, ``containers-storage:``, ``docker-daemon:``,
``oci:``, ``oci-archive:``, ``docker-archive:``) into the store."""

from __future__ import annotations

import builtins
import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podsec.errors import ImageError
from podsec.image.archive import ArchiveImport
from podsec.image.layout import (
    _ID_RE,
    _LOCAL_HOSTS,
    ANN_REF_NAME,
    INDEX_TYPES,
    MT_DOCKER_MANIFEST,
    MT_OCI_MANIFEST,
    _check_digest,
    _choose_platform,
    _dict,
    _json,
    _os_errors,
    _rmtree,
)
from podsec.image.reference import normalize, parse

PULL_TRANSPORTS = ("docker", "containers-storage", "docker-daemon", "oci", "oci-archive", "docker-archive")


def pull_source(src: str) -> str:
    """A bare image name (``nginx:1.25``, ``localhost:5000/app``) is a registry image, normalised as
    containerd/crictl and podman do (``docker://docker.io/library/nginx:1.25``); a source with one of
    :data:`PULL_TRANSPORTS` is kept as given."""
    transport, sep, rest = src.partition(":")
    if sep and rest and transport in PULL_TRANSPORTS:
        return src
    try:
        return f"docker://{normalize(src)}"
    except ImageError as e:
        raise ImageError(
            f"source {src!r}: neither an image name ({e.message}) nor a transport "
            "(docker://, containers-storage:, docker-daemon:, oci:, oci-archive:, docker-archive:)"
        ) from None


class SkopeoPull(ArchiveImport):
    """``pull``: an image in through a skopeo transport."""

    # -- skopeo --------------------------------------------------------------------------------
    def _skopeo_bin(self) -> str:
        exe = self._skopeo or shutil.which("skopeo")
        if exe is None:
            raise ImageError("skopeo is not installed; it is needed to pull images and read docker archives")
        return exe

    def _skopeo_env(self, src: str) -> dict[str, str]:
        """skopeo's temporary files and its blob-info cache under ``--root``, not ``/var/tmp`` and
        ``/var/lib/containers/cache``.

        skopeo 1.9 has no option for the cache: containers/image puts it under ``$XDG_DATA_HOME`` for a
        rootless user, whom it recognises by ``_CONTAINERS_ROOTLESS_UID``. That is set for every source but
        ``containers-storage:``, where it would also move the storage it reads to the rootless one."""
        env = dict(os.environ, TMPDIR=str(self.tmp_dir))
        if not src.startswith("containers-storage:"):
            env.update({"_CONTAINERS_ROOTLESS_UID": str(os.geteuid() or 65534),
                        "XDG_DATA_HOME": str(self.root / "cache")})
        return env

    def _skopeo_copy(self, src: str, extra: builtins.list[str], layout: Path, where: str) -> dict[str, Any]:
        """``skopeo copy src oci:<layout>`` with blobs written straight into the store's blob dir."""
        if ":" in str(layout):
            raise ImageError("the image store path must not contain ':' (skopeo cannot address it)", file=where)
        cmd = [self._skopeo_bin()]
        if not Path("/etc/containers/policy.json").exists():
            cmd.append("--insecure-policy")  # no signature policy configured on this host at all
        cmd += [
            "copy", "--quiet", "--dest-oci-accept-uncompressed-layers",
            "--dest-shared-blob-dir", str(self.blobs_dir), *extra, src, f"oci:{layout}:image",
        ]  # fmt: skip
        env = self._skopeo_env(src)
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
        except OSError as e:
            raise ImageError(f"cannot run skopeo: {e.strerror}", file=where) from e
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            detail = lines[-1] if lines else f"exit status {proc.returncode}"
            detail = re.sub(r'^time="[^"]*" level=\w+ msg="(.*)"$', r"\1", detail)
            raise ImageError(f"skopeo copy failed: {detail}", file=where)
        entries = _json(self._read_file(layout / "index.json", where), where).get("manifests")
        if not isinstance(entries, list) or not entries or not isinstance(entries[-1], dict):
            raise ImageError("skopeo wrote no image", file=where)
        desc = entries[-1]
        _check_digest(desc.get("digest"), where)
        return desc

    def _source_format(self, src: str, tls_verify: bool) -> str | None:
        """skopeo's ``--format`` that keeps the source manifest (and so its digest) as it is.

        Without it skopeo converts docker schema 2 images to OCI, re-serialising the config and
        so changing the image ID that containerd (which stores manifests verbatim) would report.
        """
        if src.startswith("docker-daemon:"):
            return "v2s2"
        cmd = [self._skopeo_bin(), "inspect", "--raw", *([] if tls_verify else ["--tls-verify=false"]), src]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if proc.returncode != 0:
            return None  # the copy itself will report the problem
        try:
            doc = _json(proc.stdout, src)
            mt = doc.get("mediaType")
            if mt in INDEX_TYPES or (mt is None and "manifests" in doc):
                mt = _choose_platform(doc, src).get("mediaType")
        except ImageError:
            return None
        return {MT_DOCKER_MANIFEST: "v2s2", MT_OCI_MANIFEST: "oci"}.get(str(mt))

    def _pull_skopeo(self, src: str, name: str | None, *, tls_verify: bool = True) -> builtins.list[str]:
        extra = [] if tls_verify else ["--src-tls-verify=false"]
        fmt = self._source_format(src, tls_verify)
        if fmt is not None:
            extra += ["--format", fmt]
        self._init_dirs()
        with self._lock("gc.lock", fcntl.LOCK_SH):
            staging = self._staging("pull-")
            try:
                desc = self._skopeo_copy(src, extra, staging / "layout", src)
                if name is None:
                    name = self._image(desc["digest"], desc.get("mediaType"), src).config_digest
                return self._finish_import([(name, desc)])
            finally:
                _rmtree(staging)

    @_os_errors
    def pull(self, src: str, *, insecure: bool | None = None) -> builtins.list[str]:
        """Copy an image in through a skopeo transport; the stored name is the normalised source name.

        ``docker://`` (TLS verification off for localhost registries unless ``insecure`` says
        otherwise), ``containers-storage:``, ``docker-daemon:``, ``oci:``, ``oci-archive:`` and
        ``docker-archive:`` (the archive and layout forms without a ref load every named image).
        """
        src = pull_source(src)
        transport, _sep, rest = src.partition(":")
        if transport == "docker":
            if not rest.startswith("//"):
                raise ImageError(f"source {src!r}: docker transport needs docker://")
            ref = parse(rest[2:])
            host = ref.domain.rsplit(":", 1)[0] if not ref.domain.startswith("[") else ref.domain.split("]")[0] + "]"
            if insecure is None:
                insecure = host in _LOCAL_HOSTS
            return self._pull_skopeo(f"docker://{rest[2:]}", str(ref), tls_verify=not insecure)
        if transport in ("containers-storage", "docker-daemon"):
            image = re.sub(r"^\[[^\]]*\]", "", rest) if transport == "containers-storage" else rest
            name: str | None = None  # an image ID: stored under its config digest
            if not (_ID_RE.fullmatch(image) or re.fullmatch(r"@?[0-9a-f]{64}", image)):
                name = normalize(image)
            return self._pull_skopeo(src, name)
        if transport in ("oci", "oci-archive", "docker-archive"):
            path_s, _, ref_s = rest.partition(":")
            path = Path(path_s)
            if not path.exists():
                raise ImageError("no such file or directory", file=path_s)
            if transport == "docker-archive":
                if not ref_s:
                    return self._load_docker_archive(path)
                if ref_s.startswith("@"):
                    want_i = int(ref_s[1:]) if ref_s[1:].isdigit() else -1
                    return self._load_docker_archive(path, lambda i, _names: i == want_i)
                want = normalize(ref_s)
                return self._load_docker_archive(path, lambda _i, names: want in names)
            select = self._layout_selector(ref_s) if ref_s else None
            if transport == "oci-archive":
                if self._archive_kind(path) != "oci":
                    raise ImageError("not an oci-archive", file=path_s)
                return self._load_oci_archive(path, select)
            if not path.is_dir():
                raise ImageError("not an OCI layout directory", file=path_s)
            self._init_dirs()
            with self._lock("gc.lock", fcntl.LOCK_SH):
                return self._import_layout(path, path_s, move=False, select=select)
        raise ImageError(
            f"unsupported source transport {transport!r} (docker://, containers-storage:, docker-daemon:, "
            "oci:, oci-archive:, docker-archive:)"
        )

    @staticmethod
    def _layout_selector(ref: str) -> Callable[[dict[str, Any], str | None], bool]:
        """Match an OCI layout entry by its ref-name annotation or by its normalised name."""
        try:
            full: str | None = normalize(ref)
        except ImageError:
            full = None

        def select(entry: dict[str, Any], name: str | None) -> bool:
            ann = _dict(entry.get("annotations"))
            return ann.get(ANN_REF_NAME) == ref or (full is not None and name == full)

        return select
