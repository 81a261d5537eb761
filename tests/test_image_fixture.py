"""The podsec-fixture image rebuilt from IMAGE.md: structure always, exact digests for the known busybox."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from imagebuild import (
    FIXTURE_BUSYBOX_SHA256,
    FIXTURE_DIGESTS,
    FIXTURE_ENV,
    FIXTURE_GROUP,
    FIXTURE_PASSWD,
    FIXTURE_TAGS,
    MT_CONFIG,
    MT_LAYER,
    MT_MANIFEST,
    busybox_applets,
    canonical_json,
)

pytest_plugins = ["conftest_image"]

BUSYBOX = Path("/bin/busybox")


def _blob(layout: Path, digest: str) -> bytes:
    algo, _, hexpart = digest.partition(":")
    data = (layout / "blobs" / algo / hexpart).read_bytes()
    assert f"{algo}:{hashlib.new(algo, data).hexdigest()}" == digest, "blob name is not its digest"
    return data


def _json(data: bytes) -> dict[str, Any]:
    obj = json.loads(data)
    assert canonical_json(obj) == data, "not serialised with sort_keys and compact separators"
    return obj


def test_fixture_structure(fixture_layout: Path) -> None:
    layout = fixture_layout
    assert (layout / "oci-layout").read_bytes() == b'{"imageLayoutVersion":"1.0.0"}'
    index = _json((layout / "index.json").read_bytes())
    assert set(index) == {"schemaVersion", "manifests"} and index["schemaVersion"] == 2
    entries = index["manifests"]
    assert [e["annotations"]["org.opencontainers.image.ref.name"] for e in entries] == list(FIXTURE_TAGS)
    layer_digests = set()
    for entry, (tag, user) in zip(entries, FIXTURE_TAGS.items()):
        assert entry["mediaType"] == MT_MANIFEST
        assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
        assert entry["annotations"]["io.containerd.image.name"] == f"docker.io/library/podsec-fixture:{tag}"
        manifest_bytes = _blob(layout, entry["digest"])
        assert len(manifest_bytes) == entry["size"]
        manifest = _json(manifest_bytes)
        assert set(manifest) == {"schemaVersion", "mediaType", "config", "layers"}
        assert manifest["mediaType"] == MT_MANIFEST and manifest["config"]["mediaType"] == MT_CONFIG
        assert len(manifest["layers"]) == 1 and manifest["layers"][0]["mediaType"] == MT_LAYER
        config_bytes = _blob(layout, manifest["config"]["digest"])
        assert len(config_bytes) == manifest["config"]["size"]
        config = _json(config_bytes)
        layer = manifest["layers"][0]
        layer_digests.add(layer["digest"])
        assert config["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"]]}  # uncompressed
        assert (config["architecture"], config["os"]) == ("amd64", "linux")
        assert set(config) == {"architecture", "os", "config", "rootfs"}
        expected_cfg: dict[str, object] = {"Env": FIXTURE_ENV, "Cmd": ["sh"]}
        if user is not None:
            expected_cfg["User"] = user
        assert config["config"] == expected_cfg
        assert ("User" in config["config"]) == (tag != "root")
    assert len(layer_digests) == 1, "the five tags share one layer"
    _check_layer(_blob(layout, layer_digests.pop()))


def _check_layer(data: bytes) -> None:
    applets = busybox_applets(BUSYBOX)
    assert "busybox" not in applets and {"sh", "id", "grep", "stat", "nc", "unshare", "timeout"} <= set(applets)
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tf:
        members = tf.getmembers()
        raw_names = [m.name + ("/" if m.isdir() else "") for m in members]
        assert all(not n.startswith(("./", "/")) for n in raw_names)
        names = [m.name for m in members]
        assert names == sorted(names)
        by_name = {m.name: m for m in members}
        dirs = {
            "bin": (0o755, 0), "dev": (0o755, 0), "etc": (0o755, 0), "home": (0o755, 0),
            "home/app": (0o755, 1000), "home/web": (0o755, 101), "proc": (0o755, 0),
            "root": (0o700, 0), "sys": (0o755, 0), "tmp": (0o1777, 0),
        }  # fmt: skip
        expected = set(dirs) | {"bin/busybox", "etc/passwd", "etc/group"} | {f"bin/{a}" for a in applets}
        assert set(names) == expected and len(names) == len(expected)
        for m in members:
            assert (m.mtime, m.uname, m.gname) == (0, "", "")
            if m.name in dirs:
                assert m.isdir() and (m.mode, m.uid, m.gid) == (dirs[m.name][0], dirs[m.name][1], dirs[m.name][1])
            elif m.name.startswith("bin/") and m.name != "bin/busybox":
                assert m.issym() and m.linkname == "/bin/busybox" and m.mode == 0o777 and m.size == 0
            else:
                assert m.isreg() and (m.uid, m.gid) == (0, 0)
        assert by_name["bin/busybox"].mode == 0o755
        assert tf.extractfile("bin/busybox").read() == BUSYBOX.read_bytes()  # type: ignore[union-attr]
        passwd = tf.extractfile("etc/passwd").read()  # type: ignore[union-attr]
        group = tf.extractfile("etc/group").read()  # type: ignore[union-attr]
        assert passwd == FIXTURE_PASSWD.encode() and len(passwd) == 156
        assert group == FIXTURE_GROUP.encode() and len(group) == 71
        assert by_name["etc/passwd"].mode == by_name["etc/group"].mode == 0o644


def test_fixture_digests_match_image_md(fixture_layout: Path) -> None:
    """Byte-exact rebuild: only meaningful with the busybox binary IMAGE.md names."""
    actual = hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()
    if actual != FIXTURE_BUSYBOX_SHA256:
        pytest.skip(f"/bin/busybox is sha256:{actual}, not IMAGE.md's binary; digests cannot match")
    assert len(busybox_applets(BUSYBOX)) == 268
    layout = fixture_layout
    index_bytes = (layout / "index.json").read_bytes()
    assert ("sha256:" + hashlib.sha256(index_bytes).hexdigest(), len(index_bytes)) == FIXTURE_DIGESTS["index.json"]
    index = json.loads(index_bytes)
    for entry, tag in zip(index["manifests"], FIXTURE_TAGS):
        assert (entry["digest"], entry["size"]) == FIXTURE_DIGESTS[f"manifest:{tag}"]
        manifest = json.loads(_blob(layout, entry["digest"]))
        assert (manifest["config"]["digest"], manifest["config"]["size"]) == FIXTURE_DIGESTS[f"config:{tag}"]
        layer = manifest["layers"][0]
        assert (layer["digest"], layer["size"]) == FIXTURE_DIGESTS["layer"]
    blobs = {p.name for p in (layout / "blobs" / "sha256").iterdir()}
    assert blobs == {d.split(":")[1] for k, (d, _) in FIXTURE_DIGESTS.items() if k != "index.json"}


def test_fixture_rebuild_is_deterministic(fixture_layout: Path, tmp_path: Path) -> None:
    from imagebuild import build_fixture_layout

    again = build_fixture_layout(tmp_path / "again", BUSYBOX)
    assert (again / "index.json").read_bytes() == (fixture_layout / "index.json").read_bytes()
    assert sorted(p.name for p in (again / "blobs" / "sha256").iterdir()) == sorted(
        p.name for p in (fixture_layout / "blobs" / "sha256").iterdir()
    )


def test_imagebuild_has_a_real_command_line(tmp_path: Path) -> None:
    """``--help`` prints the usage and builds nothing (it used to build into ./--help); a bad option is refused."""
    import subprocess
    import sys

    script = str(Path(__file__).with_name("imagebuild.py"))
    r = subprocess.run([sys.executable, script, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("usage: imagebuild.py [-h] [--busybox PATH] DIR")
    assert list(tmp_path.iterdir()) == []
    r = subprocess.run([sys.executable, script, "--busybox", str(tmp_path / "none"), str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a file" in r.stderr and not (tmp_path / "out").exists()
    if BUSYBOX.is_file():
        r = subprocess.run([sys.executable, script, str(tmp_path / "layout")], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"]
