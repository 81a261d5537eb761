"""The runtime's side of the volume layer: prepare a pod's volumes once, ask for each container's mounts,
tear everything down. The lifecycle only talks to :class:`PodVolumesLike`.

When :mod:`podsec.volumes` provides ``prepare_pod_volumes`` it is used. Until then (it is being
written in parallel) :class:`InterimVolumes` does the kubelet's part for the common sources, following
kubelet-semantics §3 and oci-translation §13: emptyDir (disk or ``medium: Memory``), hostPath with its
type checks, configMap/secret with the AtomicWriter layout (``..<timestamp>`` + ``..data`` + top-level
symlinks), persistentVolumeClaim backed by ``--volume-dir CLAIM=DIR``, fsGroup ownership through
:func:`podsec.volumes.ownership.change_ownership`, subPath/subPathExpr and mount propagation.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path
from typing import Any, Protocol

from podsec.errors import RuntimeFailure
from podsec.model import ResolvedContainer, ResolvedPod


class PodVolumesLike(Protocol):
    def mounts_for(self, container: ResolvedContainer, env: dict[str, str]) -> list[dict]: ...

    def teardown(self) -> None: ...


class NoVolumes:
    """A pod without volumes."""

    def mounts_for(self, container: ResolvedContainer, env: dict[str, str]) -> list[dict]:
        return []

    def teardown(self) -> None:
        return None


def prepare(pod: ResolvedPod, spec: dict, metadata: dict, pod_dir: Path, objects: list[dict[str, Any]],
            volume_dirs: dict[str, str]) -> PodVolumesLike:
    """Create the pod's volumes (emptyDir, hostPath checks, configMap/secret payloads, claims…)."""
    if not spec.get("volumes"):
        return NoVolumes()
    try:
        from podsec.volumes import prepare_pod_volumes  # type: ignore[attr-defined]
    except ImportError:
        prepare_pod_volumes = None
    if prepare_pod_volumes is not None:
        available = {
            "pod": pod, "resolved": pod, "spec": spec, "pod_spec": spec, "metadata": metadata,
            "namespace": str(metadata.get("namespace") or "default"), "pod_dir": pod_dir, "objects": objects,
            "documents": objects, "volume_dirs": volume_dirs, "claims": volume_dirs, "claim_dirs": volume_dirs,
        }  # fmt: skip
        kwargs = _bind(prepare_pod_volumes, available)
        if kwargs is not None:
            return prepare_pod_volumes(**kwargs)  # type: ignore[no-any-return]
    vols = InterimVolumes(pod, spec, metadata, pod_dir, objects, volume_dirs)
    vols.prepare()
    return vols


def _bind(fn: Any, available: dict[str, Any]) -> dict[str, Any] | None:
    """Keyword arguments for ``fn`` from what the runtime has, by parameter name; None (and a warning)
    when ``fn`` needs something else, so a signature change shows up instead of breaking every pod."""
    import inspect
    import sys

    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in available:
            kwargs[name] = available[name]
        elif param.default is param.empty:
            print(f"podsec: warning: podsec.volumes.prepare_pod_volumes needs {name!r}, which the runtime does "
                  "not know; using the runtime's interim volume code", file=sys.stderr)
            return None
    return kwargs


def teardown_dir(pod_dir: Path, problems: list[str]) -> None:
    """The volume layer's own cleanup of a pod directory (after a crash too)."""
    try:
        from podsec.volumes import teardown_pod_dir  # type: ignore[attr-defined]
    except ImportError:
        return
    with contextlib.suppress(FileNotFoundError):
        try:
            teardown_pod_dir(pod_dir)
        except Exception as e:  # cleanup goes on; the problem is reported
            problems.append(f"volume teardown of {pod_dir}: {e}")


# -- interim implementation ----------------------------------------------------------------------

_PROPAGATION = {None: "rprivate", "None": "rprivate", "HostToContainer": "rslave", "Bidirectional": "rshared"}
_PLUGIN_DIRS = {
    "emptyDir": "kubernetes.io~empty-dir",
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
}
_DEFAULT_MODE = 0o644


class InterimVolumes:
    """The kubelet's volume work for one pod (see the module docstring for what is covered)."""

    def __init__(self, pod: ResolvedPod, spec: dict, metadata: dict, pod_dir: Path, objects: list[dict[str, Any]],
                 volume_dirs: dict[str, str]) -> None:
        self.pod = pod
        self.spec = spec
        self.namespace = str(metadata.get("namespace") or "default")
        self.pod_dir = pod_dir
        self.objects = objects
        self.volume_dirs = volume_dirs
        self.paths: dict[str, Path] = {}

    # -- setup ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        for vol in self.spec.get("volumes") or ():
            if isinstance(vol, dict) and vol.get("name"):
                self.paths[str(vol["name"])] = self._setup(vol)

    def _object(self, kind: str, name: str) -> dict[str, Any] | None:
        for doc in self.objects:
            meta = doc.get("metadata") or {}
            if doc.get("kind") == kind and meta.get("name") == name and (meta.get("namespace") or "default") == \
                    self.namespace:
                return doc
        return None

    def _setup(self, vol: dict) -> Path:
        name = str(vol["name"])
        fs_group = self.pod.fs_group
        if isinstance(vol.get("hostPath"), dict):
            return self._host_path(vol["hostPath"])
        if isinstance(vol.get("persistentVolumeClaim"), dict):
            claim = str(vol["persistentVolumeClaim"].get("claimName") or "")
            if claim not in self.volume_dirs:
                raise RuntimeFailure(
                    f'persistentvolumeclaim "{claim}" not found (give it with --volume-dir {claim}=DIR)'
                )
            path = Path(self.volume_dirs[claim])
            path.mkdir(parents=True, exist_ok=True)
            if fs_group is not None and vol["persistentVolumeClaim"].get("readOnly") is not True:
                self._ownership(path, fs_group, read_only=False)
            return path
        for kind in ("configMap", "secret"):
            if isinstance(vol.get(kind), dict):
                return self._atomic(kind, name, vol[kind], fs_group)
        if isinstance(vol.get("emptyDir"), dict) or not any(k != "name" for k in vol):
            ed = vol.get("emptyDir") or {}
            path = self._empty_dir("emptyDir", name, ed.get("medium") == "Memory", ed.get("sizeLimit"))
            if fs_group is not None:
                self._ownership(path, fs_group, read_only=False)
            return path
        kind = next((k for k in vol if k != "name"), "?")
        raise RuntimeFailure(f"volume {name!r}: {kind} volumes are not supported by podsec's runtime yet")

    def _empty_dir(self, plugin: str, name: str, memory: bool, size: object = None) -> Path:
        """``MkdirAll(dir, 0777)`` then exactly 0777 (umask aside); a tmpfs for ``medium: Memory``."""
        path = self.pod_dir / "volumes" / _PLUGIN_DIRS[plugin] / name
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777)
        if memory and not os.path.ismount(path):
            from podsec.runtime.mounts import mount
            from podsec.runtime.process import parse_quantity

            options = ""
            quantity = parse_quantity(size) if size is not None else None
            if quantity:
                options = f"size={int(quantity)}"
            try:
                mount("tmpfs", path, "tmpfs", 0, options)
            except OSError as e:
                raise RuntimeFailure(f"cannot mount a tmpfs for volume {name!r}: {e.strerror}") from e
        return path

    @staticmethod
    def _ownership(path: Path, fs_group: int, read_only: bool) -> None:
        from podsec.volumes.ownership import change_ownership

        change_ownership(path, fs_group, read_only)

    def _host_path(self, hp: dict) -> Path:
        """The kubelet's hostPath type checks (messages as ``hostPathTypeChecker`` words them)."""
        path = Path(str(hp.get("path") or ""))
        kind = hp.get("type") or ""
        if kind == "DirectoryOrCreate" and not path.exists():
            path.mkdir(mode=0o755, parents=True)
        elif kind == "FileOrCreate" and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(0o644)
        checks = {
            "Directory": (stat.S_ISDIR, "a directory"), "DirectoryOrCreate": (stat.S_ISDIR, "a directory"),
            "File": (stat.S_ISREG, "a file"), "FileOrCreate": (stat.S_ISREG, "a file"),
            "Socket": (stat.S_ISSOCK, "a socket file"), "CharDevice": (stat.S_ISCHR, "a character device"),
            "BlockDevice": (stat.S_ISBLK, "a block device"),
        }  # fmt: skip
        if kind in checks:
            test, what = checks[kind]
            try:
                ok = test(os.stat(path).st_mode)
            except OSError:
                ok = False
            if not ok:
                raise RuntimeFailure(f"hostPath type check failed: {path} is not {what}")
        return path

    def _atomic(self, kind: str, name: str, src: dict, fs_group: int | None) -> Path:
        """configMap/secret: a wrapped emptyDir (secrets on tmpfs) filled like the kubelet's AtomicWriter."""
        from podsec.runtime.process import secret_data

        obj_name = str(src.get("name") if kind == "configMap" else src.get("secretName") or "")
        doc = self._object("ConfigMap" if kind == "configMap" else "Secret", obj_name)
        optional = src.get("optional") is True
        if doc is None and not optional:
            raise RuntimeFailure(f'{"configmap" if kind == "configMap" else "secret"} "{obj_name}" not found')
        payload: dict[str, bytes] = {}
        if doc is not None:
            if kind == "configMap":
                import base64

                data = {str(k): str(v).encode() for k, v in (doc.get("data") or {}).items()}
                data.update({str(k): base64.b64decode(str(v)) for k, v in (doc.get("binaryData") or {}).items()})
            else:
                data = {k: v.encode("utf-8", "surrogateescape") for k, v in secret_data(doc).items()}
            default_mode = src.get("defaultMode") if type(src.get("defaultMode")) is int else _DEFAULT_MODE
            items = src.get("items")
            files: list[tuple[str, bytes, int]] = []
            if items:
                for item in items:
                    key = str(item.get("key"))
                    if key not in data:
                        if optional:
                            continue
                        what = "configmap references non-existent config key" if kind == "configMap" else \
                            "references non-existent secret key"
                        raise RuntimeFailure(f"{what}: {key}")
                    mode = item.get("mode") if type(item.get("mode")) is int else default_mode
                    files.append((str(item.get("path") or key), data[key], mode))
            else:
                files = [(k, v, default_mode) for k, v in sorted(data.items())]
            payload = {path: content for path, content, _ in files}
            modes = {path: mode for path, _, mode in files}
        root = self._empty_dir(kind, name, memory=kind == "secret")
        if fs_group is not None:
            self._ownership(root, fs_group, read_only=False)
        if payload or doc is not None:
            self._write_atomic(root, payload, modes if payload else {})
            if fs_group is not None:
                self._ownership(root, fs_group, read_only=True)
        return root

    @staticmethod
    def _write_atomic(root: Path, payload: dict[str, bytes], modes: dict[str, int]) -> None:
        """``..<YYYY_MM_DD_HH_MM_SS.N>`` holds the files, ``..data`` points at it, and each top-level
        name is a symlink into ``..data``."""
        for rel in payload:
            parts = Path(rel).parts
            if not rel or rel.startswith("/") or ".." in parts:
                raise RuntimeFailure(f"invalid path: {rel}")
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(time.time_ns() % 10**9)
        ts_dir = root / stamp
        ts_dir.mkdir()
        os.chmod(ts_dir, 0o755)
        for rel, content in payload.items():
            target = ts_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            os.chmod(target, modes[rel])
        tmp_link = root / "..data_tmp"
        tmp_link.symlink_to(stamp)
        os.rename(tmp_link, root / "..data")
        for top in sorted({Path(rel).parts[0] for rel in payload}):
            (root / top).symlink_to(f"..data/{top}")

    # -- per container -------------------------------------------------------------------------
    def mounts_for(self, container: ResolvedContainer, env: dict[str, str]) -> list[dict]:
        from podsec.runtime.process import expand, mapping_for

        specs = {str(v.get("name")): v for v in self.spec.get("volumes") or () if isinstance(v, dict)}
        raw = next((c for key in ("initContainers", "containers") for c in self.spec.get(key) or ()
                    if isinstance(c, dict) and c.get("name") == container.name), {})
        out: list[dict] = []
        for vm, m in zip(raw.get("volumeMounts") or (), container.mounts):
            source = self.paths[m.name]
            sub = m.sub_path or (expand(m.sub_path_expr, mapping_for(env)) if m.sub_path_expr else None)
            if sub:
                source = self._sub_path(source, sub, m.name)
            claim = specs.get(m.name, {}).get("persistentVolumeClaim") or {}
            read_only = m.read_only or claim.get("readOnly") is True
            propagation = _PROPAGATION.get(vm.get("mountPropagation"), "rprivate")
            out.append({"destination": m.mount_path, "type": "bind", "source": str(source),
                        "options": ["rbind", propagation, "ro" if read_only else "rw"]})
        return out

    @staticmethod
    def _sub_path(volume: Path, sub: str, name: str) -> Path:
        """The kubelet's safe subpath: it must stay inside the volume (symlinks resolved); a missing one
        is created as a directory."""
        if sub.startswith("/") or ".." in Path(sub).parts:
            raise RuntimeFailure(f"failed to prepare subPath for volumeMount {name!r}: invalid subpath {sub!r}")
        target = volume / sub
        if not os.path.lexists(target):
            target.mkdir(mode=0o750, parents=True)
        real = Path(os.path.realpath(target))
        base = Path(os.path.realpath(volume))
        if real != base and base not in real.parents:
            raise RuntimeFailure(f"failed to prepare subPath for volumeMount {name!r}: {sub!r} leaves the volume")
        return real

    def teardown(self) -> None:
        """Mounts are removed by the pod's generic unmount; hostPath and claim directories stay."""
        return None
