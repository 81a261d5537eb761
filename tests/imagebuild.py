"""Build OCI images for tests without podman or docker.

``build_fixture_layout`` writes the conformance image ``podsec-fixture`` byte-exactly as
shared/conformance/IMAGE.md specifies; the other builders make small images in every format
``ImageStore.load`` accepts, and hostile layers for the unpack tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from podsec.image.reference import normalize

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

FIXTURE_NAME = "podsec-fixture"
FIXTURE_TAGS: dict[str, str | None] = {
    "root": None,
    "uid1000": "1000",
    "web": "web",
    "uid1000-gid2222": "1000:2222",
    "uid0": "0",
}
FIXTURE_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "web:x:101:101:web:/home/web:/bin/sh\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
FIXTURE_GROUP = "root:x:0:\nweb:x:101:\napp:x:1000:\nextra:x:5000:app,web\nnogroup:x:65534:\n"
FIXTURE_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
FIXTURE_BUSYBOX_SHA256 = "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6"

# The digests IMAGE.md publishes for the busybox binary above: (digest, size).
FIXTURE_DIGESTS: dict[str, tuple[str, int]] = {
    "layer": ("sha256:539a71d2f883b3dd05dd3f8b002211efb9fee4b2974510188368d5240e27b54d", 2129920),
    "config:root": ("sha256:1f0d9551758f0f5f7927bd70bf2833bbe35ed78525e5a96fcbbd47531fb49a2c", 251),
    "config:uid1000": ("sha256:f93926da672ed48ac35f28335d66398bf4114b2bfce588ec22a73a0d2bc0900a", 265),
    "config:web": ("sha256:199640816eb336a720c0b557977bb2bcdcf2ac15c15d6d19ef9644ef65bfa766", 264),
    "config:uid1000-gid2222": (
        "sha256:76f501251a51d507b9e79642be499d952945e9831ff59f317ad78eff6211fc9a",
        270,
    ),
    "config:uid0": ("sha256:6e6532b5e762042fb95e9b10b4657507f2ea26a9432b705598262a840572ae5e", 262),
    "manifest:root": ("sha256:ab4679ed3a50abdac966ce8da935d3e09abc06c85f8975512edbda147f9c2366", 400),
    "manifest:uid1000": ("sha256:e9d5edd57a2e0dcef757f57683378d78a79eb931aa588a611a302c4230afd1bc", 400),
    "manifest:web": ("sha256:5327eb33795b8e6c068a44b910f5f401e44b851d397cb22de3ebd0ff2bbfad39", 400),
    "manifest:uid1000-gid2222": (
        "sha256:8b8852f4d0e5d0ec52ab2c48a5d3fa52f430162eb5ed7cd5dcd996401d244343",
        400,
    ),
    "manifest:uid0": ("sha256:5d3e7ca49b1f79970e286c43382ad29ba5703ae648a345cd923cf996accf1b15", 400),
    "index.json": ("sha256:d982cb30f27c723c88b4e1e21c57d28ca20f455773ae134818813cd272b67607", 1699),
}


def canonical_json(obj: object) -> bytes:
    """IMAGE.md's serialisation: sorted keys, no spaces, UTF-8, no trailing newline."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- layers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One tar entry, written verbatim (hostile names included: nothing is sanitised)."""

    name: str
    kind: str = "file"  # file, dir, symlink, hardlink, fifo, char, block
    data: bytes = b""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    linkname: str = ""
    mtime: int = 0
    pax: dict[str, str] = field(default_factory=dict)

    def tarinfo(self) -> tarfile.TarInfo:
        types = {
            "file": tarfile.REGTYPE,
            "dir": tarfile.DIRTYPE,
            "symlink": tarfile.SYMTYPE,
            "hardlink": tarfile.LNKTYPE,
            "fifo": tarfile.FIFOTYPE,
            "char": tarfile.CHRTYPE,
            "block": tarfile.BLKTYPE,
        }
        default_mode = {"dir": 0o755, "symlink": 0o777}.get(self.kind, 0o644)
        ti = tarfile.TarInfo(self.name)
        ti.type = types[self.kind]
        ti.mode = default_mode if self.mode is None else self.mode
        ti.uid, ti.gid, ti.uname, ti.gname, ti.mtime = self.uid, self.gid, "", "", self.mtime
        ti.linkname = self.linkname
        ti.size = len(self.data) if self.kind == "file" else 0
        if self.kind in ("char", "block"):
            ti.devmajor, ti.devminor = 1, 3
        if self.pax:
            ti.pax_headers = dict(self.pax)
        return ti


def F(name: str, data: bytes | str = b"", mode: int = 0o644, uid: int = 0, gid: int = 0, **kw: object) -> Entry:
    raw = data.encode() if isinstance(data, str) else data
    return Entry(name, "file", raw, mode, uid, gid, **kw)  # type: ignore[arg-type]


def D(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, **kw: object) -> Entry:
    return Entry(name, "dir", b"", mode, uid, gid, **kw)  # type: ignore[arg-type]


def L(name: str, target: str, uid: int = 0, gid: int = 0, **kw: object) -> Entry:
    return Entry(name, "symlink", b"", 0o777, uid, gid, linkname=target, **kw)  # type: ignore[arg-type]


def H(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", linkname=target)


def make_layer(entries: Iterable[Entry], *, compression: str | None = None, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A layer tar of ``entries`` in the given order; ``compression`` is None, "gzip" or "zstd"."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            tf.addfile(e.tarinfo(), io.BytesIO(e.data) if e.kind == "file" else None)
    data = buf.getvalue()
    if compression == "gzip":
        import gzip

        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout
    return data


def busybox_applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], stdout=subprocess.PIPE, check=True, text=True).stdout
    return sorted({a for a in out.split() if a and a != "busybox"})


def shared_libraries(binaries: list[Path]) -> list[str]:
    """Every library ``ldd`` resolves for the binaries, the dynamic loader included (absolute paths)."""
    libs: set[str] = set()
    for binary in binaries:
        proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True)
        for line in proc.stdout.splitlines():
            m = re.match(r"\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$", line)
            if m:
                libs.add(m.group(1))
            else:
                assert "linux-vdso" in line or "statically linked" in line, f"ldd {binary}: {line}"
    return sorted(libs)


def with_parents(paths: list[str]) -> list[Entry]:
    """Directory entries (root's, 0755) for every parent of the image paths."""
    dirs = {str(Path(p).parents[i]) for p in paths for i in range(len(Path(p).parts) - 1)}
    return [D(d) for d in sorted(dirs)]


def fixture_layer(busybox: Path = Path("/bin/busybox")) -> bytes:
    """The single podsec-fixture layer, per IMAGE.md's table and serialisation rules."""
    binary = busybox.read_bytes()
    d, f, sym = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE
    rows: list[tuple[str, bytes, int, int, int, bytes | str | None]] = [
        (name, d, mode, uid, uid, None)
        for name, mode, uid in [
            ("bin", 0o755, 0),
            ("dev", 0o755, 0),
            ("etc", 0o755, 0),
            ("home", 0o755, 0),
            ("home/app", 0o755, 1000),
            ("home/web", 0o755, 101),
            ("proc", 0o755, 0),
            ("root", 0o700, 0),
            ("sys", 0o755, 0),
            ("tmp", 0o1777, 0),
        ]
    ]
    rows.append(("bin/busybox", f, 0o755, 0, 0, binary))
    rows += [("bin/" + a, sym, 0o777, 0, 0, "/bin/busybox") for a in busybox_applets(busybox)]
    rows.append(("etc/group", f, 0o644, 0, 0, FIXTURE_GROUP.encode()))
    rows.append(("etc/passwd", f, 0o644, 0, 0, FIXTURE_PASSWD.encode()))
    rows.sort(key=lambda r: r[0])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, typ, mode, uid, gid, payload in rows:
            ti = tarfile.TarInfo(name + ("/" if typ == d else ""))
            ti.type, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname, ti.mtime = typ, mode, uid, gid, "", "", 0
            if typ == sym:
                assert isinstance(payload, str)
                ti.linkname = payload
                tf.addfile(ti)
            elif typ == f:
                assert isinstance(payload, bytes)
                ti.size = len(payload)
                tf.addfile(ti, io.BytesIO(payload))
            else:
                tf.addfile(ti)
    return buf.getvalue()


# --- OCI layouts -------------------------------------------------------------------------------


class LayoutWriter:
    """Writes an OCI image layout: blobs by digest, then ``index.json`` and ``oci-layout``."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        self.manifests: list[dict[str, object]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, object]:
        digest = sha256_digest(data)
        path = self.dest / "blobs" / "sha256" / digest.split(":", 1)[1]
        if not path.exists():
            path.write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(
        self,
        config: dict[str, object],
        layers: list[bytes],
        *,
        layer_media_types: list[str] | None = None,
    ) -> dict[str, object]:
        """Store config, layers and manifest; returns the manifest descriptor (not yet in the index)."""
        layer_descs = [
            self.blob(data, (layer_media_types or [MT_LAYER] * len(layers))[i]) for i, data in enumerate(layers)
        ]
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": self.blob(canonical_json(config), MT_CONFIG),
            "layers": layer_descs,
        }
        return self.blob(canonical_json(manifest), MT_MANIFEST)

    def add(
        self,
        desc: dict[str, object],
        *,
        name: str | None = None,
        ref_name: str | None = None,
        platform: dict[str, str] | None = None,
    ) -> None:
        entry = dict(desc)
        if platform is not None:
            entry["platform"] = platform
        annotations = {}
        if name is not None:
            annotations["io.containerd.image.name"] = name
        if ref_name is not None:
            annotations["org.opencontainers.image.ref.name"] = ref_name
        if annotations:
            entry["annotations"] = annotations
        self.manifests.append(entry)

    def finish(self) -> Path:
        (self.dest / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "manifests": self.manifests}))
        (self.dest / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        return self.dest


def image_config(cfg: dict[str, object], diff_ids: list[str], arch: str = "amd64") -> dict[str, object]:
    return {"architecture": arch, "os": "linux", "config": cfg, "rootfs": {"type": "layers", "diff_ids": diff_ids}}


def fixture_config(tag: str, diff_id: str) -> dict[str, object]:
    cfg: dict[str, object] = {"Env": list(FIXTURE_ENV), "Cmd": ["sh"]}
    user = FIXTURE_TAGS[tag]
    if user is not None:
        cfg["User"] = user
    return image_config(cfg, [diff_id])


def build_fixture_layout(dest: Path, busybox: Path = Path("/bin/busybox")) -> Path:
    """The ``podsec-fixture`` layout with its five tags, byte-exact per IMAGE.md."""
    w = LayoutWriter(dest)
    layer = fixture_layer(busybox)
    diff_id = sha256_digest(layer)
    for tag in FIXTURE_TAGS:
        desc = w.image(fixture_config(tag, diff_id), [layer])
        w.add(
            desc,
            name=f"docker.io/library/{FIXTURE_NAME}:{tag}",
            ref_name=tag,
            platform={"architecture": "amd64", "os": "linux"},
        )
    return w.finish()


def _diff_ids(layers: list[bytes]) -> list[str]:
    import gzip

    out = []
    for data in layers:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        elif data[:4] == b"\x28\xb5\x2f\xfd":
            data = subprocess.run(["zstd", "-dc"], input=data, stdout=subprocess.PIPE, check=True).stdout
        out.append(sha256_digest(data))
    return out


def _layer_blobs(files: list[Entry] | None, layers: list[list[Entry]] | None, compression: str | None) -> list[bytes]:
    groups = layers if layers is not None else [files or []]
    return [make_layer(group, compression=compression) for group in groups]


def build_image_layout(
    dest: Path,
    tags: dict[str, dict[str, object]],
    files: list[Entry] | None = None,
    *,
    name: str = "podsec-test",
    layers: list[list[Entry]] | None = None,
    compression: str | None = None,
    containerd_names: bool = True,
) -> Path:
    """An OCI layout with one image per tag (``tags`` maps tag → the config's ``config`` section).

    All tags share the same layers: ``files`` (one layer) or ``layers`` (several, bottom first).
    ``containerd_names=False`` leaves out ``io.containerd.image.name`` (ref name = tag only).
    """
    w = LayoutWriter(dest)
    blobs = _layer_blobs(files, layers, compression)
    media = {None: MT_LAYER, "gzip": MT_LAYER_GZIP, "zstd": MT_LAYER + "+zstd"}[compression]
    diff_ids = _diff_ids(blobs)
    for tag, cfg in tags.items():
        desc = w.image(image_config(cfg, diff_ids), blobs, layer_media_types=[media] * len(blobs))
        full = normalize(f"{name}:{tag}")
        w.add(desc, name=full if containerd_names else None, ref_name=tag)
    return w.finish()


def build_oci_archive(dest: Path, layout: Path) -> Path:
    """Tar up an OCI layout directory (what ``oci-archive:`` means)."""
    with tarfile.open(dest, "w") as tf:
        for path in sorted(layout.rglob("*")):
            tf.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    return dest


def build_docker_archive(
    dest: Path,
    images: list[tuple[list[str], dict[str, object]]],
    files: list[Entry] | None = None,
    *,
    layers: list[list[Entry]] | None = None,
) -> Path:
    """A ``docker save`` style archive: each image is (RepoTags, config section); layers shared."""
    blobs = _layer_blobs(files, layers, None)
    diff_ids = _diff_ids(blobs)
    manifest = []
    with tarfile.open(dest, "w") as tf:

        def put(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))

        layer_names = []
        for data, diff_id in zip(blobs, diff_ids):
            layer_dir = diff_id.split(":", 1)[1]
            ti = tarfile.TarInfo(layer_dir)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
            put(f"{layer_dir}/layer.tar", data)
            put(f"{layer_dir}/VERSION", b"1.0")
            layer_names.append(f"{layer_dir}/layer.tar")
        for repo_tags, cfg in images:
            config = canonical_json(image_config(cfg, diff_ids))
            config_name = hashlib.sha256(config).hexdigest() + ".json"
            put(config_name, config)
            manifest.append({"Config": config_name, "RepoTags": repo_tags or None, "Layers": layer_names})
        put("manifest.json", json.dumps(manifest).encode())
    return dest


# --- hostile layers ----------------------------------------------------------------------------


def hostile_cases(canary: Path) -> dict[str, list[bytes]]:
    """Layer stacks that try to write, link or delete outside the unpack root.

    ``canary`` is an absolute directory *outside* the unpack root holding a file ``secret``;
    the unpack root is assumed to be a sibling of it (so ``../<canary name>`` reaches it).
    """
    c = str(canary)
    rel = "../" + canary.name
    payload = b"pwned\n"
    return {
        "dotdot": [make_layer([F(f"{rel}/pwned", payload), F(f"x/../../{canary.name}/pwned2", payload)])],
        "absolute": [make_layer([F(f"{c}/pwned", payload), F("/abs-ok", payload)])],
        "symlink-parent-abs": [make_layer([L("a", c), F("a/pwned", payload)])],
        "symlink-parent-rel": [make_layer([L("a", "../../../../" + rel), F("a/pwned", payload)])],
        "symlink-parent-next-layer": [
            make_layer([L("etc", c)]),
            make_layer([F("etc/pwned", payload), D("etc/sub"), F("etc/sub/pwned", payload)]),
        ],
        "symlink-chain": [make_layer([L("b", "/"), L("a", "b/.."), L("c", "a/" + rel), F("c/pwned", payload)])],
        "symlink-final-overwrite": [make_layer([L("s", f"{c}/secret")]), make_layer([F("s", payload)])],
        "symlink-dir-replaced": [make_layer([L("d", c)]), make_layer([D("d"), F("d/pwned", payload)])],
        "hardlink-abs": [make_layer([H("h", f"{c}/secret")])],
        "hardlink-rel": [make_layer([H("h", f"{rel}/secret")])],
        "hardlink-via-symlink": [make_layer([L("s", c), H("h", "s/secret")])],
        "whiteout-via-symlink": [
            make_layer([L("s", c), F("s/.wh.secret"), L("r", "../" * 8 + rel)]),
            make_layer([F("r/.wh.secret"), F("r/.wh..wh..opq")]),
        ],
        "whiteout-dotdot": [make_layer([D("w"), F("w/.wh.."), F("w/.wh..."), F(".wh..wh..opq")])],
        "devices": [make_layer([Entry("dev/null", "char"), Entry("dev/sda", "block"), D("dev")])],
        "symlink-loop": [make_layer([L("loop1", "loop2"), L("loop2", "loop1"), F("loop1/pwned", payload)])],
    }


# --- test helpers ------------------------------------------------------------------------------


def run_skopeo(*args: str) -> None:
    """Run skopeo for test setup; a failure shows skopeo's own message."""
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True)
    assert proc.returncode == 0, f"skopeo {' '.join(args)}: {proc.stderr}"


def tree_snapshot(root: Path, exclude: Path | None = None) -> dict[str, tuple[int, int, int, bytes | str | None]]:
    """Every path under ``root`` (but ``exclude``) with type, mode, size and content/target."""
    snap: dict[str, tuple[int, int, int, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if exclude is not None:
            dirnames[:] = [d for d in dirnames if here / d != exclude]
        for name in dirnames + filenames:
            p = here / name
            if exclude is not None and p == exclude:
                continue
            st = p.lstat()
            content: bytes | str | None = None
            if p.is_symlink():
                content = os.readlink(p)
            elif p.is_file():
                content = p.read_bytes()
            snap[str(p.relative_to(root))] = (st.st_mode, st.st_nlink, st.st_size, content)
    return snap


def main(argv: list[str] | None = None) -> int:
    """``python tests/imagebuild.py [--busybox PATH] DIR``: write the podsec-fixture OCI layout into DIR."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="imagebuild.py",
        description="Write the podsec-fixture OCI image layout (shared/conformance/IMAGE.md) into DIR, built from "
                    "a static busybox, for `podsec image load DIR`. Tags: " + ", ".join(FIXTURE_TAGS) + ".",
    )
    parser.add_argument("dir", metavar="DIR", type=Path, help="the OCI layout directory to write (created)")
    parser.add_argument("--busybox", type=Path, default=Path("/bin/busybox"), metavar="PATH",
                        help="the static busybox binary to put in the image (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.busybox.is_file():
        parser.error(f"--busybox {args.busybox}: not a file (Debian: apt-get install busybox-static)")
    print(build_fixture_layout(args.dir, args.busybox))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
