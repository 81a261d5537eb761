"""Importing images: OCI layouts (blobs verified against their digests), oci-archives and docker-archives
(``docker save``), into the store under its locks."""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from podsec.errors import ImageError
from podsec.image.index import StoreIndex
from podsec.image.layout import (
    _BLOB_NAME_RE,
    _JSON_LIMIT,
    ANN_CONTAINERD_NAME,
    ANN_REF_NAME,
    INDEX_TYPES,
    MT_OCI_MANIFEST,
    _check_digest,
    _choose_platform,
    _dict,
    _json,
    _os_errors,
    _rmtree,
)
from podsec.image.reference import normalize


class ArchiveImport(StoreIndex):
    """``load``: OCI layouts and archives into the store."""

    # -- importing: OCI layouts in Python ------------------------------------------------------
    def _put_blob(self, src: Path, digest: str, size: int | None, *, move: bool, where: str) -> None:
        """Bring one verified blob into the store (skipped when already there: content-addressed)."""
        import hashlib

        dest = self.blob_path(digest)
        if dest.exists():
            return
        algo = digest.split(":", 1)[0]
        h = hashlib.new(algo)
        total = 0
        try:
            if move:
                with open(src, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                        total += len(chunk)
                staged = src
            else:
                import tempfile

                fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, prefix="blob-")
                staged = Path(tmp)
                with open(src, "rb") as f, os.fdopen(fd, "wb") as out:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                        total += len(chunk)
                        out.write(chunk)
        except FileNotFoundError as e:
            raise ImageError(f"blob {digest} is missing", file=where) from e
        except OSError as e:
            raise ImageError(f"cannot copy blob {digest}: {e.strerror}", file=where) from e
        try:
            if f"{algo}:{h.hexdigest()}" != digest or (size is not None and size != total):
                raise ImageError(f"blob {digest} does not match its digest or size", file=where)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(staged, 0o644)
            os.rename(staged, dest)
        finally:
            if not move:
                staged.unlink(missing_ok=True)

    def _import_layout(
        self,
        layout: Path,
        where: str,
        *,
        move: bool,
        select: Callable[[dict[str, Any], str | None], bool] | None = None,
    ) -> builtins.list[str]:
        """Copy the named images of an OCI layout (all of them if none is named) into the store."""
        index = _json(self._read_file(layout / "index.json", where), f"{where}/index.json")
        entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)]
        named: builtins.list[tuple[str | None, dict[str, Any]]] = []
        for e in entries:
            ann = _dict(e.get("annotations"))
            raw = ann.get(ANN_CONTAINERD_NAME) or ann.get(ANN_REF_NAME)
            name = None
            if isinstance(raw, str) and raw:
                try:
                    name = normalize(raw)
                except ImageError as err:
                    raise ImageError(f"index entry name {raw!r} is not a valid image reference", file=where) from err
            named.append((name, e))
        if any(n for n, _ in named):
            named = [(n, e) for n, e in named if n]
        if select is not None:
            named = [(n, e) for n, e in named if select(e, n)]
        if not named:
            raise ImageError("no matching image in the OCI layout", file=where)
        todo: builtins.list[tuple[str | None, dict[str, Any]]] = []
        for name, entry in named:
            desc = self._import_tree(layout, entry, where, move=move)
            todo.append((name, desc))
        result = []
        for name, desc in todo:
            if name is None:
                name = self._image(desc["digest"], desc.get("mediaType"), where).config_digest
            result.append((name, desc))
        return self._finish_import(result)

    def _read_file(self, path: Path, where: str) -> bytes:
        try:
            with open(path, "rb") as f:
                data = f.read(_JSON_LIMIT + 1)
        except FileNotFoundError as e:
            raise ImageError(f"{path.name} is missing", file=where) from e
        except OSError as e:
            raise ImageError(f"cannot read {path.name}: {e.strerror}", file=where) from e
        if len(data) > _JSON_LIMIT:
            raise ImageError(f"{path.name} is too large", file=where)
        return data

    def _import_tree(self, layout: Path, desc: dict[str, Any], where: str, *, move: bool) -> dict[str, Any]:
        """Import one index entry (choosing the host platform of an index); returns the stored descriptor."""
        import hashlib

        digest = _check_digest(desc.get("digest"), where)
        algo, _, hexpart = digest.partition(":")
        src = layout / "blobs" / algo / hexpart
        raw = self._read_file(src, where)
        if f"{algo}:{hashlib.new(algo, raw).hexdigest()}" != digest:
            raise ImageError(f"blob {digest} does not match its digest", file=where)
        doc = _json(raw, f"{where}@{digest}")
        mt = doc.get("mediaType") or desc.get("mediaType")
        if mt in INDEX_TYPES or (mt is None and "manifests" in doc):
            child = _choose_platform(doc, where)
            out = self._import_tree(layout, child, where, move=move)
            if "platform" in child:
                out["platform"] = child["platform"]
            return out
        if not isinstance(doc.get("config"), dict):
            raise ImageError(f"unsupported manifest {digest}", file=where)
        for blob in [doc["config"], *[lay for lay in doc.get("layers") or [] if isinstance(lay, dict)]]:
            bd = _check_digest(blob.get("digest"), where)
            balgo, _, bhex = bd.partition(":")
            size = blob.get("size")
            self._put_blob(
                layout / "blobs" / balgo / bhex, bd, size if isinstance(size, int) else None, move=move, where=where
            )
        self._put_blob(src, digest, len(raw), move=move, where=where)
        out = {"mediaType": mt or MT_OCI_MANIFEST, "digest": digest, "size": len(raw)}
        if isinstance(desc.get("platform"), dict):
            out["platform"] = desc["platform"]
        return out

    def _finish_import(self, named: builtins.list[tuple[str, dict[str, Any]]]) -> builtins.list[str]:
        for name, desc in named:  # everything must resolve before a name points at it
            self._image(desc["digest"], desc.get("mediaType"), name)
        self._commit(named)
        seen: dict[str, None] = {}
        for name, _ in named:
            seen.setdefault(name, None)
        return builtins.list(seen)

    # -- importing: archives -------------------------------------------------------------------
    @staticmethod
    def _archive_kind(path: Path) -> str:
        import tarfile

        try:
            with tarfile.open(path, "r:*") as tf:
                names = {n.removeprefix("./").rstrip("/") for n in tf.getnames()}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ImageError(f"not a docker-archive, oci-archive or OCI layout: {e}", file=str(path)) from e
        if "index.json" in names and "oci-layout" in names:
            return "oci"
        if "manifest.json" in names:
            return "docker"
        raise ImageError("tar file is neither a docker-archive nor an oci-archive", file=str(path))

    def _extract_oci_archive(self, path: Path, dest: Path) -> None:
        """Unpack only what an OCI layout may hold (index.json, oci-layout, blobs/<algo>/<hex>)."""
        import tarfile

        try:
            with tarfile.open(path, "r:*") as tf:
                for member in tf:
                    name = member.name.removeprefix("./").lstrip("/")
                    if not (member.isreg() or member.islnk()):
                        continue
                    if name in ("index.json", "oci-layout") or _BLOB_NAME_RE.fullmatch(name):
                        out = dest / name
                        out.parent.mkdir(parents=True, exist_ok=True)
                        try:
                            src = tf.extractfile(member)
                        except KeyError:  # tarfile: a hard link whose target is not in the archive
                            raise ImageError(f"broken oci-archive: {name} is a hard link to "
                                             f"{member.linkname!r}, which is not in the archive",
                                             file=str(path)) from None
                        if src is None:
                            continue
                        with src, open(out, "wb") as f:
                            shutil.copyfileobj(src, f, 1 << 20)
        except (tarfile.TarError, EOFError) as e:
            raise ImageError(f"broken oci-archive: {e}", file=str(path)) from e
        except OSError as e:
            raise ImageError(f"cannot unpack oci-archive: {e.strerror or e}", file=str(path)) from e

    def _load_oci_archive(
        self, path: Path, select: Callable[[dict[str, Any], str | None], bool] | None = None
    ) -> builtins.list[str]:
        self._init_dirs()
        with self._lock("gc.lock", fcntl.LOCK_SH):
            staging = self._staging("oci-archive-")
            try:
                self._extract_oci_archive(path, staging)
                return self._import_layout(staging, str(path), move=True, select=select)
            finally:
                _rmtree(staging)

    @staticmethod
    def _docker_manifest(path: Path) -> builtins.list[dict[str, Any]]:
        import tarfile

        try:
            with tarfile.open(path, "r:*") as tf:
                member = next(m for m in tf if m.name.removeprefix("./") == "manifest.json")
                f = tf.extractfile(member)
                data = f.read(_JSON_LIMIT) if f else b""
        except StopIteration as e:
            raise ImageError("docker-archive has no manifest.json", file=str(path)) from e
        except KeyError:  # manifest.json is a hard link to a member that is not there
            raise ImageError("broken docker-archive: manifest.json is a hard link to a missing member",
                             file=str(path)) from None
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ImageError(f"broken docker-archive: {e}", file=str(path)) from e
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise ImageError(f"docker-archive manifest.json is not valid JSON: {e}", file=str(path)) from e
        if not isinstance(doc, list) or not all(isinstance(d, dict) for d in doc):
            raise ImageError("docker-archive manifest.json is not a list of images", file=str(path))
        return doc

    def _load_docker_archive(
        self, path: Path, select: Callable[[int, builtins.list[str]], bool] | None = None
    ) -> builtins.list[str]:
        images = self._docker_manifest(path)
        self._init_dirs()
        result: builtins.list[tuple[str, dict[str, Any]]] = []
        with self._lock("gc.lock", fcntl.LOCK_SH):
            staging = self._staging("docker-archive-")
            try:
                link = staging / "archive.tar"  # skopeo splits its argument at ':'; give it a safe name
                self._plain_archive(path, link)
                for i, image in enumerate(images):
                    tags = image.get("RepoTags") or []
                    names = []
                    for tag in tags if isinstance(tags, list) else []:
                        try:
                            names.append(normalize(str(tag)))
                        except ImageError as e:
                            raise ImageError(f"RepoTags entry {tag!r} is not a valid reference", file=str(path)) from e
                    if select is not None and not select(i, names):
                        continue
                    # v2s2 keeps docker's config bytes, so the image ID stays the one docker showed
                    desc = self._skopeo_copy(
                        f"docker-archive:{link}:@{i}", ["--format", "v2s2"], staging / f"img{i}", str(path)
                    )
                    if not names:
                        names = [self._image(desc["digest"], desc.get("mediaType"), str(path)).config_digest]
                    result += [(n, desc) for n in names]
                if not result:
                    raise ImageError("no matching image in the docker-archive", file=str(path))
                return self._finish_import(result)
            finally:
                _rmtree(staging)

    @staticmethod
    def _plain_archive(path: Path, dest: Path) -> None:
        """Put an uncompressed copy (or a symlink) of ``path`` at ``dest``: skopeo reads only plain tars."""
        from podsec.image.unpack import decompressed, detect_compression

        try:
            with open(path, "rb") as f:
                head = f.read(8)
                if detect_compression(head) == "tar":
                    dest.symlink_to(path.resolve())
                    return
                f.seek(0)
                with decompressed(f, str(path)) as plain, open(dest, "wb") as out:
                    shutil.copyfileobj(plain, out, 1 << 20)
        except (OSError, EOFError, ValueError) as e:
            raise ImageError(f"cannot decompress archive: {e}", file=str(path)) from e

    # -- public import API ---------------------------------------------------------------------
    @_os_errors
    def load(self, path: Path) -> builtins.list[str]:
        """Import a docker-archive, an oci-archive or an OCI layout directory; returns the refs."""
        path = Path(path)
        if path.is_dir():
            if not (path / "index.json").is_file():
                raise ImageError("directory is not an OCI image layout (no index.json)", file=str(path))
            self._init_dirs()
            with self._lock("gc.lock", fcntl.LOCK_SH):
                return self._import_layout(path, str(path), move=False)
        if not path.exists():
            raise ImageError("no such file or directory", file=str(path))
        kind = self._archive_kind(path)
        return self._load_oci_archive(path) if kind == "oci" else self._load_docker_archive(path)

