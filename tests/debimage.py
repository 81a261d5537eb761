"""Real-app images for tests, built the way a user would: ``debootstrap --variant=minbase --include=PKG``
of Debian bookworm, one layer, the package's usual foreground command.

Building takes about a minute per image, so finished OCI layouts are cached under ``CACHE`` (default
``/var/cache/podsec-tests``, override with ``PODSEC_TEST_CACHE``), one directory per image named by a hash
of everything that goes into it (suite, packages, image config, this builder's version). The three images
are built in parallel, and only when missing. When the Debian mirror cannot be reached the tests that need
these images are skipped and say why; every other failure fails them.

``python tests/debimage.py [APP...]`` builds (or finds) the layouts and prints their paths, for trying the
README's examples: ``podsec image load "$(python tests/debimage.py nginx)"``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from imagebuild import LayoutWriter, image_config, sha256_digest

BUILDER_VERSION = 1
SUITE = "bookworm"
MIRROR = os.environ.get("PODSEC_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("PODSEC_TEST_CACHE", "/var/cache/podsec-tests"))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PG_BIN = "/usr/lib/postgresql/15/bin"
EXCLUDES = ("./dev/*", "./proc/*", "./sys/*", "./var/cache/apt/archives/*.deb", "./var/lib/apt/lists/*",
            "./var/cache/debconf/*-old", "./var/log/bootstrap.log")
"""Left out of the layer: the runtime provides /dev, /proc, /sys; the rest is download cache and build logs."""


@dataclass(frozen=True)
class DebImage:
    """One app image: its reference in podsec's store, the packages debootstrap installs, its config."""

    name: str
    packages: tuple[str, ...]
    config: dict[str, object]

    @property
    def ref(self) -> str:
        return f"{self.name}:{SUITE}"

    @property
    def key(self) -> str:
        what = {"v": BUILDER_VERSION, "suite": SUITE, "variant": "minbase", "packages": self.packages,
                "config": self.config, "excludes": EXCLUDES}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def cached(self) -> Path:
        return CACHE / f"{self.name}-{self.key}"


APPS: dict[str, DebImage] = {
    # The package's usual foreground commands, as the Debian images people write run them.
    "nginx": DebImage("debian-nginx", ("nginx-light",), {
        "Env": [f"PATH={PATH}"], "Cmd": ["nginx", "-g", "daemon off;"], "ExposedPorts": {"80/tcp": {}},
        "StopSignal": "SIGQUIT"}),
    "redis": DebImage("debian-redis", ("redis-server",), {
        "Env": [f"PATH={PATH}"], "Cmd": ["redis-server", "--protected-mode", "no"], "WorkingDir": "/var/lib/redis",
        "ExposedPorts": {"6379/tcp": {}}}),
    "postgres": DebImage("debian-postgres", ("postgresql",), {
        "Env": [f"PATH={PG_BIN}:{PATH}", "PGDATA=/var/lib/postgresql/data/pgdata"], "User": "postgres",
        "Cmd": ["postgres"], "ExposedPorts": {"5432/tcp": {}}, "StopSignal": "SIGINT"}),
}


class MirrorUnreachable(Exception):
    """The Debian mirror did not answer: the images cannot be built here (a reason to skip, not to fail)."""


def mirror_reachable(timeout: float = 10.0) -> str | None:
    """None when the mirror answers for the suite, else why not."""
    url = f"{MIRROR}/dists/{SUITE}/Release"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as resp:
            return None if resp.status == 200 else f"{url}: HTTP {resp.status}"
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        return f"{url}: {getattr(e, 'reason', e)}"


def _layer(rootfs: Path, dest: Path) -> Path:
    """The root filesystem as one uncompressed tar layer (numeric owners, sorted, reproducible order)."""
    argv = ["tar", "--numeric-owner", "--sort=name", "-C", str(rootfs), "-cf", str(dest)]
    argv += [f"--exclude={e}" for e in EXCLUDES]
    subprocess.run([*argv, "."], check=True, capture_output=True)
    return dest


def _write_layout(img: DebImage, layer: Path, dest: Path) -> None:
    data = layer.read_bytes()
    w = LayoutWriter(dest)
    desc = w.image(image_config(dict(img.config), [sha256_digest(data)]), [data])
    w.add(desc, name=f"docker.io/library/{img.ref}", ref_name=SUITE,
          platform={"architecture": "amd64", "os": "linux"})
    w.finish()


def _start_debootstrap(img: DebImage, work: Path) -> subprocess.Popen[bytes]:
    log = open(work / "debootstrap.log", "wb")  # noqa: SIM115 (the child keeps it; closed with the process)
    try:
        return subprocess.Popen(
            ["debootstrap", "--variant=minbase", f"--include={','.join(img.packages)}", SUITE,
             str(work / "rootfs"), MIRROR], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        log.close()


def build(apps: Iterable[str] = tuple(APPS)) -> dict[str, Path]:
    """The OCI layout of each app's image, building the missing ones (in parallel) into the cache.

    Raises MirrorUnreachable when something must be built and the mirror does not answer."""
    wanted = {a: APPS[a] for a in apps}
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (two pytest sessions, or xdist workers)
        missing = {a: img for a, img in wanted.items() if not (img.cached / "index.json").exists()}
        if missing:
            if shutil.which("debootstrap") is None:
                raise RuntimeError("debootstrap is not installed (scripts/dev.sh installs it)")
            why = mirror_reachable()
            if why is not None:
                raise MirrorUnreachable(why)
            _build_all(missing)
    return {a: img.cached for a, img in wanted.items()}


def _build_all(missing: dict[str, DebImage]) -> None:
    works = {a: Path(tempfile.mkdtemp(prefix=f".build-{img.name}-", dir=CACHE)) for a, img in missing.items()}
    try:
        procs = {a: _start_debootstrap(img, works[a]) for a, img in missing.items()}
        failed = []
        for a, proc in procs.items():
            if proc.wait() != 0:
                tail = (works[a] / "debootstrap.log").read_text(errors="replace").splitlines()[-15:]
                failed.append(f"debootstrap {missing[a].packages} exited {proc.returncode}:\n" + "\n".join(tail))
        if failed:
            raise RuntimeError("\n".join(failed))
        for a, img in missing.items():
            layer = _layer(works[a] / "rootfs", works[a] / "layer.tar")
            staging = works[a] / "layout"
            _write_layout(img, layer, staging)
            os.replace(staging, img.cached)  # complete layouts only: a crash leaves a .build-* to remove
    finally:
        for w in works.values():
            with contextlib.suppress(OSError):
                shutil.rmtree(w)
        for stale in CACHE.glob(".build-*"):
            with contextlib.suppress(OSError):
                shutil.rmtree(stale)


if __name__ == "__main__":
    import sys

    for path in build(sys.argv[1:] or APPS).values():
        print(path)
