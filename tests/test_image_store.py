"""The local image store: every load/pull format, info(), remove + GC, bad input, concurrency."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from imagebuild import (
    FIXTURE_TAGS,
    MT_INDEX,
    D,
    F,
    L,
    LayoutWriter,
    build_docker_archive,
    build_image_layout,
    build_oci_archive,
    canonical_json,
    image_config,
    make_layer,
    run_skopeo,
    sha256_digest,
)
from podsec.errors import ImageError
from podsec.image.store import ImageStore, host_arch

pytest_plugins = ["conftest_image"]

FIXTURE_REFS = [f"docker.io/library/podsec-fixture:{t}" for t in FIXTURE_TAGS]
SMALL_FILES = [D("etc"), F("etc/passwd", "root:x:0:0::/root:/bin/sh\nu:x:7:7::/:\n"), F("hello", "hi\n")]


def _index(store: ImageStore) -> dict[str, Any]:
    return json.loads((store.oci_dir / "index.json").read_bytes())


def _blobs(store: ImageStore) -> set[str]:
    return {p.name for p in (store.blobs_dir / "sha256").iterdir()}


# --- load: OCI layout directory ----------------------------------------------------------------


def test_load_fixture_layout(store: ImageStore, fixture_layout: Path) -> None:
    t0 = time.perf_counter()
    assert store.load(fixture_layout) == FIXTURE_REFS
    elapsed = time.perf_counter() - t0
    assert elapsed < 5
    records = store.list()
    assert [r.ref for r in records] == FIXTURE_REFS
    src_index = json.loads((fixture_layout / "index.json").read_bytes())
    assert [r.digest for r in records] == [e["digest"] for e in src_index["manifests"]]
    for r in records:
        manifest = json.loads(store.blob_path(r.digest).read_bytes())
        assert r.config_digest == manifest["config"]["digest"]
        assert r.size == 400 + manifest["config"]["size"] + manifest["layers"][0]["size"]
    assert _blobs(store) == {p.name for p in (fixture_layout / "blobs" / "sha256").iterdir()}
    for entry in _index(store)["manifests"]:
        ann = entry["annotations"]
        assert ann["io.containerd.image.name"] == ann["org.opencontainers.image.ref.name"]
        assert ann["io.containerd.image.name"] in FIXTURE_REFS
    # loading again changes nothing
    before = (store.oci_dir / "index.json").read_bytes()
    assert store.load(fixture_layout) == FIXTURE_REFS
    assert json.loads(before) == _index(store)


def test_store_is_a_layout_skopeo_can_read(fixture_store: ImageStore, tmp_path: Path) -> None:
    run_skopeo("inspect", "--raw", f"oci:{fixture_store.oci_dir}:docker.io/library/podsec-fixture:web")


def test_load_layout_without_containerd_names(store: ImageStore, tmp_path: Path) -> None:
    layout = build_image_layout(tmp_path / "l", {"v1": {"User": "7"}, "v2": {}}, SMALL_FILES, containerd_names=False)
    # A bare ref-name annotation is not a full reference; it is normalised like any short name.
    assert store.load(layout) == ["docker.io/library/v1:latest", "docker.io/library/v2:latest"]
    assert store.info("v1").user == "7"


def test_load_unnamed_layout_uses_image_id(store: ImageStore, tmp_path: Path) -> None:
    w = LayoutWriter(tmp_path / "l")
    layer = make_layer(SMALL_FILES)
    desc = w.image(image_config({"User": "u"}, [sha256_digest(layer)]), [layer])
    w.add(desc)
    w.finish()
    (ref,) = store.load(tmp_path / "l")
    rec = store.resolve(ref)
    assert rec is not None and ref == rec.config_digest and ref.startswith("sha256:")
    assert store.info(ref).user == "u"
    assert store.resolve(ref[7:19]) == rec  # short ID prefix, as docker accepts


def test_load_layout_with_image_index_picks_host_platform(store: ImageStore, tmp_path: Path) -> None:
    w = LayoutWriter(tmp_path / "l")
    layer = make_layer(SMALL_FILES)
    diff = [sha256_digest(layer)]
    other = "arm64" if host_arch() != "arm64" else "amd64"
    children = []
    for arch in (other, host_arch()):
        desc = w.image(image_config({"User": arch}, diff, arch=arch), [layer])
        children.append({**desc, "platform": {"architecture": arch, "os": "linux"}})
    index_desc = w.blob(canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": children}), MT_INDEX)
    w.add(index_desc, name="docker.io/library/multi:1", ref_name="1")
    w.finish()
    assert store.load(tmp_path / "l") == ["docker.io/library/multi:1"]
    rec = store.resolve("multi:1")
    assert rec is not None and rec.digest == children[1]["digest"]
    assert store.info("multi:1").user == host_arch()
    assert str(children[0]["digest"]).split(":")[1] not in _blobs(store)  # the other platform is not copied


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_multi_layer_image(store: ImageStore, tmp_path: Path, compression: str) -> None:
    layers = [
        [D("etc"), F("etc/passwd", "root:x:0:0::/:\n"), F("etc/old", "x"), D("data"), F("data/a", "a")],
        [F("etc/.wh.old"), F("data/.wh..wh..opq"), F("data/b", "b"), L("sh", "/bin/busybox")],
    ]
    layout = build_image_layout(tmp_path / "l", {"x": {"User": "0"}}, layers=layers, compression=compression)
    store.load(layout)
    root = store.rootfs("podsec-test:x")
    assert sorted(p.name for p in root.iterdir()) == ["data", "etc", "sh"]
    assert [p.name for p in (root / "data").iterdir()] == ["b"]
    assert not (root / "etc" / "old").exists()
    assert store.info("podsec-test:x").passwd is not None


# --- load: archives ----------------------------------------------------------------------------


def test_load_docker_archive_keeps_all_tags(store: ImageStore, tmp_path: Path) -> None:
    archive = build_docker_archive(
        tmp_path / "d.tar",
        [
            (["app:1", "app:latest", "quay.io/team/app:1"], {"User": "7"}),
            (["other:2"], {"User": "u"}),
            ([], {"User": "0", "WorkingDir": "/w"}),  # untagged
        ],
        SMALL_FILES,
    )
    refs = store.load(archive)
    assert refs[:4] == [
        "docker.io/library/app:1",
        "docker.io/library/app:latest",
        "quay.io/team/app:1",
        "docker.io/library/other:2",
    ]
    untagged = refs[4]
    assert untagged.startswith("sha256:") and len(refs) == 5
    one, latest, quay = (store.resolve(r) for r in refs[:3])
    assert one is not None and latest is not None and quay is not None
    assert one.digest == latest.digest == quay.digest
    assert store.info("app:1").user == "7" and store.info("other:2").user == "u"
    assert store.info(untagged).working_dir == "/w"
    # docker-archive keeps the image ID: the config bytes are unchanged
    config_json = canonical_json(image_config({"User": "7"}, [sha256_digest(make_layer(SMALL_FILES))]))
    assert one.config_digest == "sha256:" + hashlib.sha256(config_json).hexdigest()


def test_load_docker_archive_made_by_skopeo(store: ImageStore, fixture_layout: Path, tmp_path: Path) -> None:
    archive = tmp_path / "fixture.tar"
    run_skopeo(
        "copy", "--quiet", f"oci:{fixture_layout}:uid1000",
        f"docker-archive:{archive}:podsec-fixture:uid1000", "--additional-tag", "example.com/fx:v1",
    )  # fmt: skip
    assert store.load(archive) == ["docker.io/library/podsec-fixture:uid1000", "example.com/fx:v1"]
    info = store.info("example.com/fx:v1")
    assert info.user == "1000" and info.passwd is not None and len(info.passwd) == 4
    assert (store.rootfs("podsec-fixture:uid1000") / "bin" / "busybox").is_file()


def test_load_oci_archive_python_built(store: ImageStore, fixture_layout: Path, tmp_path: Path) -> None:
    archive = build_oci_archive(tmp_path / "fixture-oci.tar", fixture_layout)
    assert store.load(archive) == FIXTURE_REFS
    assert store.info("podsec-fixture:web").user == "web"
    assert list(store.tmp_dir.iterdir()) == []  # staging cleaned up


def test_load_oci_archive_made_by_skopeo(store: ImageStore, fixture_layout: Path, tmp_path: Path) -> None:
    archive = tmp_path / "fx.tar"
    run_skopeo("copy", "--quiet", f"oci:{fixture_layout}:web", f"oci-archive:{archive}:podsec-fixture:web")
    assert store.load(archive) == ["docker.io/library/podsec-fixture:web"]
    info = store.info("podsec-fixture:web")
    assert info.user == "web" and info.group is not None and len(info.group) == 5
    # skopeo gzip-compressed the layer on the way: the store still unpacks it
    rec = store.resolve("podsec-fixture:web")
    assert rec is not None
    manifest = json.loads(store.blob_path(rec.digest).read_bytes())
    assert manifest["layers"][0]["mediaType"].endswith("gzip")


def test_load_errors_are_image_errors(store: ImageStore, tmp_path: Path, fixture_layout: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        store.load(tmp_path / "missing.tar")
    (tmp_path / "junk.tar").write_bytes(b"hello" * 300)
    with pytest.raises(ImageError, match=r"junk\.tar"):
        store.load(tmp_path / "junk.tar")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(ImageError, match="not an OCI image layout"):
        store.load(tmp_path / "emptydir")
    (tmp_path / "other.tar").write_bytes(make_layer([F("README", "x")]))
    with pytest.raises(ImageError, match="neither"):
        store.load(tmp_path / "other.tar")


def _copy_layout(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def test_load_rejects_broken_layouts(store: ImageStore, tmp_path: Path, fixture_layout: Path) -> None:
    bad = _copy_layout(fixture_layout, tmp_path / "missing-blob")
    layer = next(p for p in (bad / "blobs" / "sha256").iterdir() if p.stat().st_size > 100_000)
    layer.unlink()
    with pytest.raises(ImageError, match="missing"):
        store.load(bad)
    corrupt = _copy_layout(fixture_layout, tmp_path / "corrupt")
    (corrupt / "blobs" / "sha256" / layer.name).write_bytes(b"tampered")
    with pytest.raises(ImageError, match="does not match"):
        store.load(corrupt)
    hostile = _copy_layout(fixture_layout, tmp_path / "hostile")
    index = json.loads((hostile / "index.json").read_bytes())
    index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd"
    (hostile / "index.json").write_text(json.dumps(index))
    with pytest.raises(ImageError, match="invalid digest"):
        store.load(hostile)
    (hostile / "index.json").write_text("{not json")
    with pytest.raises(ImageError, match="not valid JSON"):
        store.load(hostile)
    badname = _copy_layout(fixture_layout, tmp_path / "badname")
    index = json.loads((badname / "index.json").read_bytes())
    index["manifests"][0]["annotations"]["io.containerd.image.name"] = "Not A Ref"
    (badname / "index.json").write_text(json.dumps(index))
    with pytest.raises(ImageError, match="not a valid image reference"):
        store.load(badname)
    assert store.list() == []  # nothing half-imported got a name


# --- reading images ----------------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "user"), list(FIXTURE_TAGS.items()))
def test_info_of_fixture_tags(shared_fixture_store: ImageStore, tag: str, user: str | None) -> None:
    info = shared_fixture_store.info(f"podsec-fixture:{tag}")
    assert info.ref == f"docker.io/library/podsec-fixture:{tag}"
    assert info.user == user
    assert info.env == ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    assert info.cmd == ("sh",) and info.entrypoint is None
    assert info.working_dir == "" and info.volumes == () and info.labels == {}
    assert info.passwd is not None and [p.name for p in info.passwd] == ["root", "web", "app", "nobody"]
    assert info.group is not None and len(info.group) == 5
    extra = info.group_by_name("extra")
    assert extra is not None and extra.gid == 5000 and extra.members == ("app", "web")
    web = info.user_by_name("web")
    assert web is not None and (web.uid, web.gid, web.home) == (101, 101, "/home/web")
    rec = shared_fixture_store.resolve(f"podsec-fixture:{tag}")
    assert rec is not None and info.config_digest == rec.config_digest


def test_info_is_cached_and_cheap(fixture_store: ImageStore) -> None:
    first = fixture_store.info("podsec-fixture:root")
    t0 = time.perf_counter()
    for _ in range(100):
        assert fixture_store.info("podsec-fixture:root") is first
    assert time.perf_counter() - t0 < 0.5
    # a second store object (another process) reuses the unpacked rootfs
    other = ImageStore(fixture_store.root)
    assert other.info("docker.io/library/podsec-fixture:root") == first


def test_config_and_resolve(shared_fixture_store: ImageStore) -> None:
    cfg = shared_fixture_store.config("podsec-fixture:uid1000-gid2222")
    assert cfg["config"]["User"] == "1000:2222" and cfg["rootfs"]["type"] == "layers"
    rec = shared_fixture_store.resolve("podsec-fixture:uid0")
    assert rec is not None
    assert shared_fixture_store.resolve("docker.io/library/podsec-fixture:uid0") == rec
    assert shared_fixture_store.resolve(rec.config_digest) == rec  # image ID
    assert shared_fixture_store.resolve(rec.config_digest[:19]) == rec  # ID prefix
    by_digest = shared_fixture_store.resolve(f"podsec-fixture@{rec.digest}")
    assert by_digest is not None and by_digest.digest == rec.digest
    assert shared_fixture_store.resolve("podsec-fixture:nope") is None
    assert shared_fixture_store.resolve("busybox") is None
    with pytest.raises(ImageError, match="invalid image reference"):
        shared_fixture_store.resolve("Bad Ref")
    with pytest.raises(ImageError, match="not in the local store"):
        shared_fixture_store.info("busybox")
    with pytest.raises(ImageError, match="not in the local store"):
        shared_fixture_store.rootfs("busybox")


def test_rootfs_unpacked_once(fixture_store: ImageStore) -> None:
    t0 = time.perf_counter()
    root = fixture_store.rootfs("podsec-fixture:root")
    first = time.perf_counter() - t0
    rec = fixture_store.resolve("podsec-fixture:root")
    assert rec is not None and root == fixture_store.rootfs_dir / rec.digest.split(":")[1]
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert (root / "bin" / "busybox").stat().st_size == Path("/bin/busybox").stat().st_size
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((root / "root").stat().st_mode) == 0o700
    if os.geteuid() == 0:
        assert (root / "home" / "app").stat().st_uid == 1000
        assert (root / "home" / "web").stat().st_gid == 101
    marker = root / "marker"
    marker.write_text("same dir")
    t0 = time.perf_counter()
    for _ in range(100):
        assert fixture_store.rootfs("podsec-fixture:root") == root
    assert time.perf_counter() - t0 < max(first, 0.05)
    assert marker.exists()
    assert list(fixture_store.tmp_dir.iterdir()) == []


def test_rootfs_missing_layer_is_an_image_error(fixture_store: ImageStore) -> None:
    rec = fixture_store.resolve("podsec-fixture:root")
    assert rec is not None
    manifest = json.loads(fixture_store.blob_path(rec.digest).read_bytes())
    fixture_store.blob_path(manifest["layers"][0]["digest"]).unlink()
    with pytest.raises(ImageError, match="missing"):
        fixture_store.rootfs("podsec-fixture:root")
    assert list(fixture_store.rootfs_dir.iterdir()) == []


# --- remove and GC -----------------------------------------------------------------------------


def test_remove_and_gc(fixture_store: ImageStore, tmp_path: Path) -> None:
    store = fixture_store
    root_rec = store.resolve("podsec-fixture:root")
    web_rec = store.resolve("podsec-fixture:web")
    assert root_rec is not None and web_rec is not None
    store.rootfs("podsec-fixture:root")
    store.rootfs("podsec-fixture:web")
    before = _blobs(store)
    assert store.remove("podsec-fixture:root") == root_rec
    assert store.resolve("podsec-fixture:root") is None
    gone = {root_rec.digest.split(":")[1], root_rec.config_digest.split(":")[1]}
    assert _blobs(store) == before - gone  # the shared layer stays
    assert [p.name for p in store.rootfs_dir.iterdir()] == [web_rec.digest.split(":")[1]]
    with pytest.raises(ImageError, match="not in the local store"):
        store.remove("podsec-fixture:root")
    for tag in list(FIXTURE_TAGS)[1:]:
        store.remove(f"podsec-fixture:{tag}")
    assert store.list() == [] and _blobs(store) == set()
    assert list(store.rootfs_dir.iterdir()) == []


def test_remove_one_of_several_names_and_by_id(store: ImageStore, tmp_path: Path) -> None:
    archive = build_docker_archive(tmp_path / "d.tar", [(["a:1", "b:1", "c:1"], {})], SMALL_FILES)
    store.load(archive)
    store.remove("a:1")
    rec = store.resolve("b:1")
    assert rec is not None and store.resolve("c:1") is not None
    assert store.blob_path(rec.digest).exists()
    store.remove(rec.config_digest)  # by image ID: every remaining name goes
    assert store.list() == [] and _blobs(store) == set()


def test_retag_collects_the_old_image(store: ImageStore, tmp_path: Path) -> None:
    store.load(build_image_layout(tmp_path / "v1", {"t": {"User": "1"}}, SMALL_FILES, name="app"))
    old = store.resolve("app:t")
    store.load(build_image_layout(tmp_path / "v2", {"t": {"User": "2"}}, SMALL_FILES, name="app"))
    new = store.resolve("app:t")
    assert old is not None and new is not None and old.digest != new.digest
    assert [r.ref for r in store.list()] == ["docker.io/library/app:t"]
    assert store.info("app:t").user == "2"
    store.gc()
    assert old.config_digest.split(":")[1] not in _blobs(store)


def test_gc_clears_crash_leftovers(fixture_store: ImageStore) -> None:
    leftover = fixture_store.tmp_dir / "rootfs-crashed"
    (leftover / "bin").mkdir(parents=True)
    stray = fixture_store.blobs_dir / "sha256" / ("0" * 64)
    stray.write_bytes(b"unreferenced")
    fixture_store.gc()
    assert not leftover.exists() and not stray.exists()
    assert len(fixture_store.list()) == 5


# --- concurrency -------------------------------------------------------------------------------

_LOADER = """
import sys
from pathlib import Path
from typing import Any
from podsec.image.store import ImageStore
store = ImageStore(Path(sys.argv[1]))
for _ in range(3):
    for layout in sys.argv[2:]:
        store.load(Path(layout))
"""


def test_concurrent_loads_do_not_corrupt_the_index(store: ImageStore, tmp_path: Path) -> None:
    layouts = [
        build_image_layout(tmp_path / f"l{i}", {f"t{j}": {"User": f"{i}{j}"} for j in range(3)}, SMALL_FILES,
                           name=f"img{i}")
        for i in range(4)
    ]  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, "-c", _LOADER, str(store.root), str(layouts[i]), str(layouts[(i + 1) % 4])])
        for i in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    refs = sorted(r.ref for r in store.list())
    assert refs == sorted(f"docker.io/library/img{i}:t{j}" for i in range(4) for j in range(3))
    assert len(_index(store)["manifests"]) == 12
    assert store.info("img3:t2").user == "32"


def test_concurrent_rootfs_unpack(fixture_store: ImageStore) -> None:
    code = (
        "import sys; from pathlib import Path; from podsec.image.store import ImageStore;"
        "print(ImageStore(Path(sys.argv[1])).rootfs('podsec-fixture:web'))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(fixture_store.root)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outs) == 1
    assert len(list(fixture_store.rootfs_dir.iterdir())) == 1
    assert list(fixture_store.tmp_dir.iterdir()) == []


# --- pull --------------------------------------------------------------------------------------


def test_pull_from_registry(store: ImageStore, fixture_layout: Path, registry: str) -> None:
    run_skopeo(
        "copy", "--quiet", "--dest-tls-verify=false",
        f"oci:{fixture_layout}:uid1000", f"docker://{registry}/podsec-fixture:uid1000",
    )  # fmt: skip
    t0 = time.perf_counter()
    refs = store.pull(f"docker://{registry}/podsec-fixture:uid1000")
    assert time.perf_counter() - t0 < 30
    assert refs == [f"{registry}/podsec-fixture:uid1000"]
    info = store.info(f"{registry}/podsec-fixture:uid1000")
    assert info.user == "1000"
    assert (store.rootfs(refs[0]) / "bin" / "busybox").is_file()
    # by digest too
    rec = store.resolve(refs[0])
    assert rec is not None
    by_digest = store.pull(f"docker://{registry}/podsec-fixture@{rec.digest}")
    assert by_digest == [f"{registry}/podsec-fixture@{rec.digest}"]


def test_bare_image_names_are_registry_images_as_containerd_reads_them() -> None:
    from podsec.image.store import pull_source

    assert pull_source("nginx:1.25") == "docker://docker.io/library/nginx:1.25"
    assert pull_source("busybox") == "docker://docker.io/library/busybox:latest"
    assert pull_source("ghcr.io/org/app@sha256:" + "a" * 64) == "docker://ghcr.io/org/app@sha256:" + "a" * 64
    assert pull_source("localhost:5000/app") == "docker://localhost:5000/app:latest"
    assert pull_source("oci-archive:/tmp/x.tar") == "oci-archive:/tmp/x.tar"
    with pytest.raises(ImageError, match="neither an image name"):
        pull_source("Bad Name")


def test_pull_a_bare_name_from_a_local_registry(store: ImageStore, fixture_layout: Path, registry: str) -> None:
    """``podsec image pull 127.0.0.1:PORT/name:tag`` without ``docker://``, as ``crictl pull`` takes it."""
    run_skopeo("copy", "--quiet", "--dest-tls-verify=false", f"oci:{fixture_layout}:root",
               f"docker://{registry}/podsec-fixture:bare")
    assert store.pull(f"{registry}/podsec-fixture:bare") == [f"{registry}/podsec-fixture:bare"]


def test_pull_keeps_docker_schema2_digests(store: ImageStore, fixture_layout: Path, registry: str) -> None:
    """A docker v2s2 image is stored as-is, so its digest and image ID match the registry's."""
    src = f"docker://{registry}/podsec-fixture:v2s2"
    run_skopeo("copy", "--quiet", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{fixture_layout}:web", src)
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", src], capture_output=True, check=True
    ).stdout
    assert store.pull(src) == [f"{registry}/podsec-fixture:v2s2"]
    rec = store.resolve(f"{registry}/podsec-fixture:v2s2")
    assert rec is not None and rec.digest == sha256_digest(raw)
    assert rec.config_digest == json.loads(raw)["config"]["digest"]
    assert _index(store)["manifests"][0]["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert store.info(rec.ref).user == "web"


def test_pull_tls_verification(store: ImageStore, fixture_layout: Path, registry: str) -> None:
    run_skopeo(
        "copy", "--quiet", "--dest-tls-verify=false",
        f"oci:{fixture_layout}:uid0", f"docker://{registry}/podsec-fixture:uid0",
    )  # fmt: skip
    with pytest.raises(ImageError, match="skopeo copy failed"):  # the registry speaks plain HTTP
        store.pull(f"docker://{registry}/podsec-fixture:uid0", insecure=False)
    port = registry.rsplit(":", 1)[1]
    assert store.pull(f"docker://localhost:{port}/podsec-fixture:uid0") == [f"localhost:{port}/podsec-fixture:uid0"]


def test_pull_missing_tag_is_an_image_error(store: ImageStore, registry: str) -> None:
    with pytest.raises(ImageError, match="skopeo copy failed"):
        store.pull(f"docker://{registry}/podsec-fixture:does-not-exist")
    assert store.list() == []


def test_pull_from_containers_storage(store: ImageStore, fixture_layout: Path, tmp_path: Path) -> None:
    cs = f"containers-storage:[vfs@{tmp_path / 'graph'}+{tmp_path / 'run'}]"
    run_skopeo("copy", "--quiet", f"oci:{fixture_layout}:web", cs + "podsec-fixture:web")
    assert store.pull(cs + "podsec-fixture:web") == ["docker.io/library/podsec-fixture:web"]
    assert store.info("podsec-fixture:web").user == "web"


def test_pull_local_transports(store: ImageStore, fixture_layout: Path, tmp_path: Path) -> None:
    assert store.pull(f"oci:{fixture_layout}:uid0") == ["docker.io/library/podsec-fixture:uid0"]
    archive = build_oci_archive(tmp_path / "o.tar", fixture_layout)
    assert store.pull(f"oci-archive:{archive}:web") == ["docker.io/library/podsec-fixture:web"]
    assert store.pull(f"oci-archive:{archive}") == FIXTURE_REFS
    darchive = build_docker_archive(tmp_path / "d.tar", [(["x:1"], {"User": "x"}), (["y:1", "y:2"], {})], SMALL_FILES)
    assert store.pull(f"docker-archive:{darchive}:y:2") == ["docker.io/library/y:1", "docker.io/library/y:2"]
    assert store.pull(f"docker-archive:{darchive}:@0") == ["docker.io/library/x:1"]
    with pytest.raises(ImageError, match="no matching image"):
        store.pull(f"oci:{fixture_layout}:nope")


def test_pull_errors(store: ImageStore, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"neither an image name .* nor a transport"):
        store.pull("ftp://example.com/x")
    with pytest.raises(ImageError, match="invalid image reference"):
        store.pull("docker://Bad/Ref")
    with pytest.raises(ImageError, match="no such file"):
        store.pull(f"oci-archive:{tmp_path / 'missing.tar'}")
    # no docker daemon here: skopeo fails, and that failure is an ImageError naming the source
    with pytest.raises(ImageError, match="docker-daemon:busybox:latest"):
        store.pull("docker-daemon:busybox:latest")
    assert store.list() == []


def _odd_layout(dest: Path, case: str) -> Path:
    """A layout whose JSON has the right digests but wrong shapes or types in one place."""
    w = LayoutWriter(dest)
    layer = make_layer(SMALL_FILES)
    layer_desc = w.blob(layer, "application/vnd.oci.image.layer.v1.tar")
    config: dict[str, object] = image_config({"User": "1"}, [sha256_digest(layer)])
    if case == "rootfs-list":
        config["rootfs"] = []
    if case == "config-section-list":
        config["config"] = ["User"]
    config_bytes = b"{broken" if case == "config-not-json" else canonical_json(config)
    config_desc = w.blob(config_bytes, "application/vnd.oci.image.config.v1+json")
    manifest: dict[str, object] = {"schemaVersion": 2, "config": config_desc, "layers": [layer_desc]}
    variants: dict[str, dict[str, object]] = {
        "layers-str": {"layers": "notalist"},
        "layer-digest-int": {"layers": [{"digest": 5, "size": 1}]},
        "config-digest-list": {"config": {"digest": ["x"]}},
        "sizes-str": {"config": {**config_desc, "size": "big"}, "layers": [{**layer_desc, "size": "x"}]},
        "schema1": {"schemaVersion": 1},
    }
    manifest.update(variants.get(case, {}))
    desc = w.blob(canonical_json(manifest), "application/vnd.oci.image.manifest.v1+json")
    if case == "index-platform-str":
        index = {"schemaVersion": 2, "manifests": [{**desc, "platform": "linux"}, 7]}
        desc = w.blob(canonical_json(index), MT_INDEX)
    w.add(desc, name="docker.io/library/odd:1", ref_name="1")
    if case == "annotations-list":
        w.manifests[0]["annotations"] = ["odd"]
    w.finish()
    if case == "manifests-dict":
        (dest / "index.json").write_text('{"schemaVersion": 2, "manifests": {"a": 1}}')
    return dest


ODD_CASES = [
    "rootfs-list", "config-section-list", "config-not-json", "layers-str", "layer-digest-int",
    "config-digest-list", "sizes-str", "schema1", "index-platform-str", "annotations-list", "manifests-dict",
]  # fmt: skip


@pytest.mark.parametrize("case", ODD_CASES)
def test_odd_json_is_an_image_error_never_a_crash(store: ImageStore, tmp_path: Path, case: str) -> None:
    layout = _odd_layout(tmp_path / "odd", case)
    try:
        refs = store.load(layout)
    except ImageError as e:
        assert str(e)
        return
    for ref in refs:  # what did load must read back, or fail as an ImageError
        with contextlib.suppress(ImageError):
            store.info(ref)
    store.list()


def test_load_compressed_archives(store: ImageStore, tmp_path: Path, fixture_layout: Path) -> None:
    import gzip

    plain = build_docker_archive(tmp_path / "d.tar", [(["gz:1"], {"User": "g"})], SMALL_FILES)
    (tmp_path / "d.tar.gz").write_bytes(gzip.compress(plain.read_bytes()))
    assert store.load(tmp_path / "d.tar.gz") == ["docker.io/library/gz:1"]
    assert store.info("gz:1").user == "g"
    oci = build_oci_archive(tmp_path / "o.tar", fixture_layout)
    (tmp_path / "o.tar.gz").write_bytes(gzip.compress(oci.read_bytes(), compresslevel=1))
    assert store.load(tmp_path / "o.tar.gz") == FIXTURE_REFS


def test_duplicate_names_in_a_layout_last_wins(store: ImageStore, tmp_path: Path) -> None:
    w = LayoutWriter(tmp_path / "l")
    layer = make_layer(SMALL_FILES)
    for user in ("first", "second"):
        desc = w.image(image_config({"User": user}, [sha256_digest(layer)]), [layer])
        w.add(desc, name="docker.io/library/dup:1", ref_name="1")
    w.finish()
    assert store.load(tmp_path / "l") == ["docker.io/library/dup:1"]
    assert len(_index(store)["manifests"]) == 1
    assert store.info("dup:1").user == "second"


def test_unusable_store_root_is_an_image_error(tmp_path: Path, fixture_layout: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    store = ImageStore(tmp_path / "afile" / "store")
    assert store.list() == [] and store.resolve("busybox") is None
    with pytest.raises(ImageError, match="afile"):
        store.load(fixture_layout)
