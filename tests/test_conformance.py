"""Every runtime conformance case (shared/conformance/runtime/*) through ``podsec run --rm``, compared
line by line with what containerd 1.6 + runc 1.1.5 printed, with only the normalisations the
conformance README allows for host- and runtime-version-dependent lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Podsec

CASES_DIR = Path(
    os.environ.get("PODSEC_CONFORMANCE", Path(__file__).resolve().parents[2] / "shared" / "conformance" / "runtime")
)
CASES = sorted(d.name for d in CASES_DIR.iterdir() if (d / "pod.yaml").is_file()) if CASES_DIR.is_dir() else []
CRUN_CASES = [
    "root-default",
    "seed001-pod-runasuser-runasgroup-fsgroup",
    "seed001-container-nonroot-readonly-dropall",
    "seed002-nonroot-cap-add-net-admin",
    "seed002-pod-fsgroup-emptydir",
    "readonly-rootfs-root-writes-etc",
    "runasgroup-without-runasuser",
]
"""Key cases under crun. ``masked-readonly-proc`` is left out on purpose: crun masks before it makes paths
read-only and binds the host's /dev/null (devtmpfs) over masked files, so its mount list differs from
runc's; ``test_crun_masks_the_same_paths`` checks what does not differ."""
HOSTPATH = Path("/tmp/podsec-hostpath")

_MOUNT_LINE = re.compile(r"^(/(?:proc|sys)/\S+) (proc|tmpfs|sysfs) (ro|rw)$")
_ALL_CAPS_CASES = ("root-add-all-caps", "privileged")
_RECORDED_ALL_CAPS = "000001fffeffffff"
_SANDBOX_ERROR_PREFIX = "# error: RunPodSandbox:"


def host_all_caps() -> str:
    """``all_caps(kernel) & host bounding set``: what "all capabilities" means on this host."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    bounding = next(
        int(line.split()[1], 16) for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("CapBnd:")
    )
    return f"{((1 << (last + 1)) - 1) & bounding:016x}"


def userns_allowed() -> bool:
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            return False
    except (OSError, ValueError):
        pass
    restrict = Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    return not (restrict.exists() and restrict.read_text().strip() == "1")


def normalise_expected(case: str, lines: list[str]) -> list[str]:
    """Apply the README's host-dependent normalisations to the recorded lines (never to podsec's)."""
    out: list[str] = []
    for line in lines:
        m = _MOUNT_LINE.match(line)
        if m and not os.path.exists(m.group(1)):
            continue  # a masked/read-only path this host's kernel does not have
        if case in _ALL_CAPS_CASES and _RECORDED_ALL_CAPS in line:
            line = line.replace(_RECORDED_ALL_CAPS, host_all_caps())
        if line == "unshare=0" and not userns_allowed():
            out.append("unshare: unshare(0x10000000): Operation not permitted")
            line = "unshare=1"
        out.append(line)
    return out


def port_start_line(case: str, lines: list[str]) -> int | None:
    """Index of the ``ip_unprivileged_port_start`` value: 1024 under containerd 1.6, 0 under containerd
    >= 2.0 (``enable_unprivileged_ports``), whose sandbox defaults podsec's spec builder follows."""
    pod = (CASES_DIR / case / "pod.yaml").read_text()
    if "ip_unprivileged_port_start" not in pod or "sysctls" in pod:
        return None
    return next((i for i, line in enumerate(lines) if line == "1024"), None)


@pytest.fixture
def hostpath_setup(request: pytest.FixtureRequest) -> Iterator[None]:
    """The node setup case hostpath-readonly needs (README), undone afterwards."""
    if request.node.callspec.params.get("case") != "hostpath-readonly":
        yield
        return
    existed = HOSTPATH.exists()
    HOSTPATH.mkdir(parents=True, exist_ok=True)
    os.chmod(HOSTPATH, 0o755)
    (HOSTPATH / "hello.txt").write_text("hello\n")
    os.chmod(HOSTPATH / "hello.txt", 0o644)
    os.chown(HOSTPATH, 0, 0)
    os.chown(HOSTPATH / "hello.txt", 0, 0)
    try:
        yield
    finally:
        if not existed:
            shutil.rmtree(HOSTPATH, ignore_errors=True)


@dataclass
class CaseRun:
    """One ``podsec run`` of a case: its output, and the config.json files the runtime was given."""

    proc: subprocess.CompletedProcess[str]
    configs: dict[str, Any]
    """``{"sandbox": …, "containers": {name: …}}`` read from the bundles, run-time values as placeholders."""


_RUNS: dict[tuple[str, str], CaseRun] = {}


def as_planned(config: Any, pod_dir: Path, uid: str) -> Any:
    """A bundle's config.json with what exists only at run time put back as the plan's placeholders."""
    text = json.dumps(config)
    text = text.replace(json.dumps(config["root"]["path"]), json.dumps("<rootfs>"))
    text = text.replace(str(pod_dir / "ns"), "<sandbox-ns>").replace(str(pod_dir), "<pod-dir>")
    text = text.replace(uid, "<pod-uid>")
    return json.loads(re.sub(r"/proc/[0-9]+/ns", "<sandbox-ns>", text))


def run_case(podsec: Podsec, case: str, runtime: str) -> CaseRun:
    """``podsec run`` the case once per runtime (kept until its bundles are read, then deleted)."""
    key = (case, runtime)
    if key not in _RUNS:
        pod = CASES_DIR / case / "pod.yaml"
        proc = podsec.run("run", "--runtime", runtime, "-f", str(pod), timeout=120)
        pod_dir = podsec.state / "pods" / f"default_{case}"
        uid = json.loads((pod_dir / "pod.json").read_text())["uid"]
        configs: dict[str, Any] = {"sandbox": None, "containers": {}}
        sandbox = pod_dir / "sandbox" / "bundle" / "config.json"
        if sandbox.exists():
            configs["sandbox"] = as_planned(json.loads(sandbox.read_text()), pod_dir, uid)
        for name in yaml.safe_load(pod.read_text())["spec"]["containers"]:
            bundle = pod_dir / "containers" / name["name"] / "bundle" / "config.json"
            configs["containers"][name["name"]] = (
                as_planned(json.loads(bundle.read_text()), pod_dir, uid) if bundle.exists() else None)
        deleted = podsec.run("delete", case, "--now")
        assert deleted.returncode == 0, deleted.stderr
        _RUNS[key] = CaseRun(proc, configs)
    return _RUNS[key]


def check_case(podsec: Podsec, case: str, runtime: str) -> None:
    expected = (CASES_DIR / case / "expected.containerd.txt").read_text().splitlines()
    proc = run_case(podsec, case, runtime).proc
    if expected and expected[0].startswith(_SANDBOX_ERROR_PREFIX):
        substring = expected[0].split("desc = ")[-1].split(": ")[-1]
        err = [ln for ln in proc.stderr.splitlines() if ln.startswith(_SANDBOX_ERROR_PREFIX)]
        assert proc.returncode == 1, proc.stderr
        assert err and substring in err[0], (proc.stderr, substring)
        assert proc.stdout == ""
        return
    # The container ran (its own exit code may be non-zero); a capability that changes this machine is warned of.
    errors = [ln for ln in proc.stderr.splitlines() if "can change this machine" not in ln]
    assert not [ln for ln in errors if "podsec:" in ln], proc.stderr
    actual = proc.stdout.splitlines()
    want = normalise_expected(case, expected)
    port = port_start_line(case, want)
    if port is not None and port < len(actual) and actual[port] in ("0", "1024"):
        want[port] = actual[port]
    assert actual == want, f"stderr: {proc.stderr}"


def test_all_cases_found() -> None:
    """No case can silently vanish: the shared set has at least 20."""
    assert len(CASES) >= 20, CASES


@pytest.mark.runtime
@pytest.mark.usefixtures("hostpath_setup")
@pytest.mark.parametrize("case", CASES)
def test_conformance_runc(podsec: Podsec, case: str) -> None:
    check_case(podsec, case, "runc")


@pytest.mark.runtime
@pytest.mark.usefixtures("hostpath_setup")
@pytest.mark.parametrize("case", CASES)
def test_explain_oci_is_what_runc_was_given(podsec: Podsec, case: str) -> None:
    """``explain -o oci`` (nothing runs) prints exactly the config.json files ``run`` wrote for the case,
    but for the placeholders of what exists only at run time (rootfs, pod dir, namespaces, uid)."""
    planned = podsec.run("explain", "-o", "oci", "-f", str(CASES_DIR / case / "pod.yaml"))
    assert planned.returncode == 0, planned.stderr
    written = run_case(podsec, case, "runc").configs
    sandbox_fails = (CASES_DIR / case / "expected.containerd.txt").read_text().startswith(_SANDBOX_ERROR_PREFIX)
    shares_pid = "shareProcessNamespace: true" in (CASES_DIR / case / "pod.yaml").read_text()
    # what is compared was really written (or not): a pause container only for a shared PID namespace
    assert (written["sandbox"] is not None) == (shares_pid and not sandbox_fails)
    assert (written["containers"]["app"] is None) == sandbox_fails
    assert json.loads(planned.stdout) == written


@pytest.mark.runtime
@pytest.mark.usefixtures("hostpath_setup")
@pytest.mark.parametrize("case", CRUN_CASES)
def test_conformance_crun(podsec: Podsec, case: str) -> None:
    if shutil.which("crun") is None:
        pytest.skip("crun is not installed")
    check_case(podsec, case, "crun")


@pytest.mark.runtime
def test_crun_masks_the_same_paths(podsec: Podsec) -> None:
    """Same masked/read-only paths and effects under crun; only the order and the /dev/null source differ."""
    if shutil.which("crun") is None:
        pytest.skip("crun is not installed")
    case = "masked-readonly-proc"
    proc = podsec.run("run", "--rm", "--runtime", "crun", "-f", str(CASES_DIR / case / "pod.yaml"))
    want = normalise_expected(case, (CASES_DIR / case / "expected.containerd.txt").read_text().splitlines())
    got = proc.stdout.splitlines()
    mounts_want = {ln.split()[0]: ln.split()[2] for ln in want if _MOUNT_LINE.match(ln)}
    mounts_got = {ln.split()[0]: ln.split()[2] for ln in got if _MOUNT_LINE.match(ln.replace("devtmpfs", "tmpfs"))}
    assert set(mounts_got) == set(mounts_want)
    assert [ln for ln in got if not _MOUNT_LINE.match(ln.replace("devtmpfs", "tmpfs"))] == [
        ln for ln in want if not _MOUNT_LINE.match(ln)
    ]


def test_normalisation_only_touches_host_dependent_lines() -> None:
    lines = ["/proc/kcore tmpfs ro", "/proc/sys proc ro", "CapBnd:\t000001fffeffffff", "unshare=0", "x"]
    out = normalise_expected("root-add-all-caps", lines)
    assert out[-1] == "x"
    assert ("/proc/kcore tmpfs ro" in out) == os.path.exists("/proc/kcore")
    assert "/proc/sys proc ro" in out
    assert any(line.startswith("CapBnd:\t") and line.endswith(host_all_caps()) for line in out)
