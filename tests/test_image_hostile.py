"""Hostile image inputs, each a reproducer kept as a test: a broken archive, layers that expand to far more
than they weigh, skopeo's caches outside --root."""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagebuild import D, F, build_docker_archive, make_layer
from podsec.errors import ImageError
from podsec.image.store import ImageStore
from podsec.image.unpack import LayerBudget, human_bytes, max_layer_size, unpack_layer, unpack_layers

PODSEC = str(Path(sys.executable).with_name("podsec"))
pytest_plugins = ["conftest_image"]
MiB = 1 << 20


def test_oci_archive_with_a_hard_link_to_a_missing_member_is_one_line(tmp_path: Path) -> None:
    """Was: ``internal error: KeyError`` (exit 3)."""
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tf:
        data = b'{"imageLayoutVersion":"1.0.0"}'
        ti = tarfile.TarInfo("oci-layout")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
        link = tarfile.TarInfo("index.json")
        link.type, link.linkname = tarfile.LNKTYPE, "nowhere.json"
        tf.addfile(link)
    out = subprocess.run([PODSEC, "--root", str(tmp_path / "root"), "image", "load", str(archive)],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert out.returncode == 2, out.stderr
    assert out.stderr == (f"podsec: {archive}: broken oci-archive: index.json is a hard link to 'nowhere.json', "
                          "which is not in the archive\n")
    assert not list((tmp_path / "root" / "tmp").iterdir())  # nothing half-loaded left


def test_skopeo_keeps_its_blob_info_cache_under_root(tmp_path: Path) -> None:
    """A docker-archive goes through skopeo; its cache must not land in /var/lib/containers/cache."""
    if shutil.which("skopeo") is None:
        pytest.skip("needs skopeo")
    archive = build_docker_archive(tmp_path / "d.tar", [(["cache-test:1"], {})], [D("etc"), F("etc/x", "x\n")])
    store = ImageStore(tmp_path / "root")
    assert store.load(archive) == ["docker.io/library/cache-test:1"]
    cache = tmp_path / "root" / "cache" / "containers" / "cache"
    assert [p.name for p in cache.iterdir()] == ["blob-info-cache-v1.boltdb"]


def _sparse_tar(path: Path, size: int) -> Path:
    """A GNU tar of one sparse file of ``size`` bytes (a few KiB on disk and in the tar)."""
    src = path.parent / "sparse-src"
    src.mkdir()
    with open(src / "big", "wb") as f:
        f.truncate(size)
        f.seek(size - 1)
        f.write(b"x")
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(path), "-C", str(src), "big"], check=True)
    shutil.rmtree(src)
    return path


def _zero_gzip_tar(path: Path, size: int) -> Path:
    """A gzip'd tar holding one file of ``size`` zero bytes (gzip shrinks it ~1000 times)."""

    class Zeros(io.RawIOBase):
        def __init__(self, n: int) -> None:
            self.left = n

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    with gzip.open(path, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tf:
        ti = tarfile.TarInfo("zeros")
        ti.size = size
        tf.addfile(ti, io.BufferedReader(Zeros(size)))
    return path


def test_a_sparse_tar_bomb_is_refused_before_it_is_written(tmp_path: Path) -> None:
    layer = _sparse_tar(tmp_path / "sparse.tar", 64 * MiB)
    assert layer.stat().st_size < 64 * 1024
    dest = tmp_path / "rootfs"
    with pytest.raises(ImageError, match=r"layer expands to more than 1\.0 MiB \(the --max-layer-size cap\): "
                                         r"64\.0 MiB by 'big'"):
        unpack_layer(layer, dest, budget=LayerBudget(1 * MiB))
    assert not (dest / "big").exists()


def test_a_gzip_bomb_is_refused_with_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = _zero_gzip_tar(tmp_path / "bomb.tar.gz", 48 * MiB)
    assert layer.stat().st_size < 256 * 1024  # ~50 KiB that would become 48 MiB
    monkeypatch.setenv("PODSEC_MAX_LAYER_SIZE", str(8 * MiB))
    assert max_layer_size() == 8 * MiB
    with pytest.raises(ImageError, match=r"more than 8\.0 MiB .*: 48\.0 MiB by 'zeros'"):
        unpack_layers([layer], tmp_path / "rootfs")
    assert not (tmp_path / "rootfs" / "zeros").exists()
    monkeypatch.setenv("PODSEC_MAX_LAYER_SIZE", str(64 * MiB))
    unpack_layers([layer], tmp_path / "rootfs2")  # under the cap: unpacked
    assert (tmp_path / "rootfs2" / "zeros").stat().st_size == 48 * MiB


def test_the_default_cap_is_16_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODSEC_MAX_LAYER_SIZE", raising=False)
    assert max_layer_size() == 16 << 30
    assert human_bytes(3 << 30) == "3.0 GiB"
    monkeypatch.setenv("PODSEC_MAX_LAYER_SIZE", "lots")
    with pytest.raises(ImageError, match="PODSEC_MAX_LAYER_SIZE='lots': not a size in bytes"):
        max_layer_size()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "podsec-test", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_layer_beyond_the_free_space_is_refused(tmp_path: Path, small_fs: Path) -> None:
    layer = make_layer([D("d"), F("d/a", b"a" * (3 * MiB)), F("d/b", b"b" * (3 * MiB))])
    path = tmp_path / "layer.tar"
    path.write_bytes(layer)
    with pytest.raises(ImageError, match=r"more than the 4\.0 MiB free where the image store unpacks: "
                                         r"6\.0 MiB by 'd/b'"):
        unpack_layers([path], small_fs / "rootfs")


def test_cli_max_layer_size_option(tmp_path: Path) -> None:
    bad = subprocess.run([PODSEC, "--max-layer-size", "lots", "image", "ls"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--max-layer-size" in bad.stderr and "not a size" in bad.stderr
    helped = subprocess.run([PODSEC, "--help"], capture_output=True, text=True).stdout
    assert "--max-layer-size" in helped and "PODSEC_MAX_LAYER_SIZE" in helped


@pytest.mark.runtime
def test_run_refuses_an_image_whose_layer_is_beyond_the_cap(tmp_path: Path, fixture_layout: Path) -> None:
    """The layer is unpacked when the pod starts: one line naming the layer, its size and the cap; nothing left."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = [PODSEC, "--root", str(tmp_path / "root"), "--state", str(tmp_path / "state")]
    assert subprocess.run([*base, "image", "load", str(fixture_layout)], capture_output=True).returncode == 0
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: capped}\nspec:\n  restartPolicy: Never\n"
                   "  containers: [{name: c, image: 'podsec-fixture:root', command: ['true']}]\n")
    out = subprocess.run([*base, "run", "--rm", "--max-layer-size", "1Mi", "-f", str(pod)], capture_output=True,
                         text=True, stdin=subprocess.DEVNULL)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1
    assert re.search(r"layer expands to more than 1\.0 MiB \(the --max-layer-size cap\): \d+\.\d MiB by "
                     r"'bin/busybox'\n$", out.stderr), out.stderr
    assert list((tmp_path / "root" / "rootfs").iterdir()) == []
    assert list((tmp_path / "root" / "tmp").iterdir()) == []
    ok = subprocess.run([*base, "run", "--rm", "-f", str(pod)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert ok.returncode == 0, ok.stderr
