"""Which modules ``podsec run --rm`` of a one-container pod imports — not how long it takes.

Start-up is most of ``run``'s cost, and a module added to its path is paid by every pod. This test lists
the podsec modules the path may import; one that is not listed (or a heavy library) fails it, and then
either the import goes behind the feature that needs it or the list grows on purpose.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import Podsec

RUN_PATH = frozenset({
    # command line, loading and admission
    "podsec", "podsec.cli", "podsec.errors", "podsec.features", "podsec.logger", "podsec.duration", "podsec.goquote",
    "podsec.manifest", "podsec.manifest.kinds", "podsec.manifest.loader", "podsec.manifest.locate", "podsec.admit",
    "podsec.api", "podsec.api.defaults", "podsec.api.fielderror", "podsec.api.strict", "podsec.api.types",
    "podsec.api.validation",
    "podsec.runtime", "podsec.runtime.admission", "podsec.runtime.run",
    # resolve and plan
    "podsec.model", "podsec.resolve", "podsec.downward", "podsec.puid_spec",
    "podsec.plan", "podsec.plan.node", "podsec.plan.pod", "podsec.plan.process", "podsec.plan.sandbox",
    "podsec.oci", "podsec.oci.caps", "podsec.oci.hostcaps", "podsec.oci.mounts", "podsec.oci.plan", "podsec.oci.seccomp",
    "podsec.oci.spec", "podsec.oci.steps",
    # images: the index and the rootfs cache
    "podsec.image", "podsec.image.fsutil", "podsec.image.model", "podsec.image.passwd",
    "podsec.image.reference", "podsec.image.store", "podsec.image.layout", "podsec.image.index",
    "podsec.image.rootfs_cache", "podsec.image.archive", "podsec.image.pull", "podsec.image.lookup",
    # executing the plan
    "podsec.runtime.backoff", "podsec.runtime.cleanup", "podsec.runtime.context", "podsec.runtime.lifecycle", "podsec.runtime.logs", "podsec.runtime.ociruntime",
    "podsec.runtime.pinns", "podsec.runtime.records", "podsec.runtime.rootfs", "podsec.runtime.sandbox", "podsec.runtime.state",
    "podsec.runtime.status", "podsec.runtime.volumes", "podsec.volumes", "podsec.volumes.claims",
    "podsec.volumes.mounts",
})
PACKAGES = ("podsec.api.validation",)
"""Packages whose every module is on the path (the API server's validation, one module per part of a pod)."""
"""Everything a pod without volumes, PUID/PGID image or shared PID namespace needs."""

NEVER = frozenset({
    "yaml", "fractions", "decimal", "importlib.resources", "asyncio", "tempfile", "podsec.volumes.setup",
    "podsec.volumes.plan", "podsec.volumes.ownership", "podsec.puid", "podsec.check", "podsec.policy",
    "podsec.image.unpack", "podsec.trace", "podsec.perms", "podsec.fix", "podsec.report",
})
"""Heavier modules a simple pod must not pay for (PyYAML: yaml-rs parses; fractions: only quantities)."""


@pytest.mark.runtime
def test_run_of_a_simple_pod_imports_only_its_path(podsec: Podsec, tmp_path: Path) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: imports
        spec:
          restartPolicy: Never
          containers:
          - name: app
            image: podsec-fixture:root
            command: ["true"]
        """))
    warm = podsec.run("run", "--rm", "-f", str(pod))  # the image's rootfs is unpacked once, by the first run
    assert warm.returncode == 0, warm.stderr
    proc = podsec.run("run", "--rm", "-f", str(pod), env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "podsec.runtime.lifecycle" in imported  # the profile really covers the run
    assert not imported & NEVER, sorted(imported & NEVER)
    extra = {m for m in imported if m.split(".")[0] == "podsec" and not m.startswith(PACKAGES)} - RUN_PATH
    assert not extra, f"new on the run path: {sorted(extra)}"


def test_the_lists_name_real_modules() -> None:
    """A renamed module must not leave a stale name here (which would make the checks pass vacuously)."""
    import importlib.util

    src = Path(__file__).resolve().parents[1] / "src"
    for name in sorted(RUN_PATH | set(PACKAGES) | {m for m in NEVER if m.startswith("podsec")}):
        parts = name.split(".")
        path = src.joinpath(*parts)
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), name
    assert all(importlib.util.find_spec(m) is not None for m in ("fractions", "decimal", "asyncio"))
