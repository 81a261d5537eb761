"""Fixtures for the image tests (a plugin module: test files list it in ``pytest_plugins``).

Kept out of conftest.py so the image tests carry their own support: the fixture layout is
built once per session, and a throw-away ``docker-registry`` serves the pull tests.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagebuild import build_fixture_layout
from podsec.image.store import ImageStore

REGISTRY_BIN = Path("/usr/bin/docker-registry")
BUSYBOX = Path("/bin/busybox")


@pytest.fixture(scope="session")
def fixture_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The podsec-fixture OCI layout, built from /bin/busybox (read-only for tests)."""
    if not BUSYBOX.exists():
        pytest.fail("/bin/busybox (Debian busybox-static) is needed to build the fixture image")
    return build_fixture_layout(tmp_path_factory.mktemp("fixture") / "layout", BUSYBOX)


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


@pytest.fixture
def fixture_store(store: ImageStore, fixture_layout: Path) -> ImageStore:
    """A fresh store holding the five podsec-fixture tags."""
    store.load(fixture_layout)
    return store


@pytest.fixture(scope="session")
def shared_fixture_store(tmp_path_factory: pytest.TempPathFactory, fixture_layout: Path) -> ImageStore:
    """One store with the fixture loaded, for tests that only read (saves an unpack per test)."""
    store = ImageStore(tmp_path_factory.mktemp("shared-store") / "store")
    store.load(fixture_layout)
    return store


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plain-HTTP docker-registry on 127.0.0.1:<free port>; yields ``127.0.0.1:PORT``."""
    if not REGISTRY_BIN.exists() or shutil.which("skopeo") is None:
        pytest.skip("needs /usr/bin/docker-registry (Debian docker-registry) and skopeo")
    base = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(base / "registry.log", "wb")  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen([str(REGISTRY_BIN), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"docker-registry exited: {(base / 'registry.log').read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("docker-registry did not answer GET /v2/ within 15s")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
