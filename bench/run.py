"""Benchmark ``podsec run --rm`` of a one-container pod against its floor and a peer, side by side.

Usage: python bench/run.py [-n 20] [--no-podman] [--keep] [--baseline-src DIR]

Three ways to run the same thing (the conformance fixture image, command ``true``), N times each,
interleaved so machine noise hits all of them alike; whole processes are timed, start to exit:

* ``podsec run --rm -f pod.yaml``: validation, kubelet/containerd semantics, a pause sandbox, an overlay
  rootfs, the container, and complete cleanup;
* ``runc run`` of a prepared bundle (``runc spec`` + the unpacked image rootfs, read-only): the floor;
* ``podman kube play`` of the same pod + ``podman wait`` + ``podman kube down``, if podman is installed
  (the image is copied into podman's storage with skopeo first; skipped with a note if that fails).
  podman asks for RLIMIT_NOFILE/NPROC above a hard limit a host without CAP_SYS_RESOURCE allows; a
  private containers.conf sets lower limits and selects runc.

``--baseline-src DIR`` adds a fourth, ``podsec`` from another source tree (e.g. ``git worktree add`` of the
previous commit, its ``src``), so a change is measured before/after side by side, with the same store.

Prints medians, p90s and the ratios (goals: podsec <= runc + 100 ms, >= 3x faster than podman).
Python's bytecode cache is allowed for podsec (``PYTHONDONTWRITEBYTECODE`` is dropped), as for a user.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: bench
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: app
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["true"]
"""
IMAGE = "docker.io/library/podsec-fixture:root"


def podsec_bin() -> list[str]:
    exe = Path(sys.executable).with_name("podsec")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "podsec.cli"]


def timed(cmd: list[str] | str, env: dict[str, str], shell: bool = False) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, shell=shell, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-400:]}")
    return elapsed


def setup_runc(work: Path, rootfs: Path) -> Path:
    bundle = work / "runc-bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    spec["root"] = {"path": str(rootfs), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def setup_podman(work: Path, layout: Path) -> tuple[str, dict[str, str]] | None:
    if shutil.which("podman") is None or shutil.which("skopeo") is None:
        print("note: podman or skopeo is not installed; skipping podman", file=sys.stderr)
        return None
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nproc = 4096 if nproc == resource.RLIM_INFINITY else min(4096, nproc)
    conf = work / "containers.conf"
    conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile=1024:1024", "nproc={nproc}:{nproc}"]\n'
        'log_driver = "k8s-file"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'events_logger = "file"\n'
    )
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    copy = subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout}:root", f"containers-storage:{IMAGE}"],
                          capture_output=True, text=True, env=env)
    if copy.returncode != 0:
        print(f"note: skopeo copy into podman's storage failed, skipping podman: {copy.stderr.strip()}",
              file=sys.stderr)
        return None
    pod = work / "podman-pod.yaml"
    pod.write_text(POD.format(image=IMAGE))
    script = (f"podman kube play {pod} >/dev/null && podman wait bench-app >/dev/null && "
              f"podman kube down {pod} >/dev/null")
    subprocess.run(f"podman kube down {pod}", shell=True, env=env, capture_output=True)
    try:
        timed(script, env, shell=True)
    except RuntimeError as e:
        print(f"note: podman kube play does not work here, skipping podman: {e}", file=sys.stderr)
        subprocess.run(f"podman kube down {pod}", shell=True, env=env, capture_output=True)
        return None
    return script, env


def summary(name: str, times: list[float]) -> tuple[float, str]:
    ms = sorted(t * 1000 for t in times)
    med = statistics.median(ms)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return med, f"{name:<22} median {med:8.1f} ms   p90 {p90:8.1f} ms   min {ms[0]:8.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20, help="repetitions of each (default 20)")
    ap.add_argument("--no-podman", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--baseline-src", metavar="DIR", help="also time podsec imported from DIR (a src directory)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/run.py needs root (runc)", file=sys.stderr)
        return 2
    from imagebuild import build_fixture_layout

    work = Path(tempfile.mkdtemp(prefix="podsec-bench-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    try:
        layout = build_fixture_layout(work / "layout")
        root, state = work / "root", work / "state"
        base = [*podsec_bin(), "--root", str(root), "--state", str(state)]
        timed([*base, "image", "load", str(layout)], env)
        pod = work / "pod.yaml"
        pod.write_text(POD.format(image="podsec-fixture:root"))
        podsec_cmd = [*base, "run", "--rm", "-f", str(pod)]
        for _ in range(3):  # unpack the rootfs once, write bytecode caches
            timed(podsec_cmd, env)
        rootfs = next((root / "rootfs").iterdir())
        bundle = setup_runc(work, rootfs)
        podman = None if args.no_podman else setup_podman(work, layout)

        results: dict[str, list[float]] = {"podsec run --rm": [], "runc run (floor)": []}
        base_env = None
        if args.baseline_src:
            base_env = {**env, "PYTHONPATH": str(Path(args.baseline_src).resolve())}
            for _ in range(2):  # its bytecode caches
                timed(podsec_cmd, base_env)
            results["baseline podsec"] = []
        if podman:
            results["podman kube play"] = []
        for i in range(args.n):
            results["podsec run --rm"].append(timed(podsec_cmd, env))
            if base_env is not None:
                results["baseline podsec"].append(timed(podsec_cmd, base_env))
            results["runc run (floor)"].append(
                timed(["runc", "run", "--bundle", str(bundle), f"podsec-bench-{os.getpid()}-{i}"], env)
            )
            if podman:
                results["podman kube play"].append(timed(podman[0], podman[1], shell=True))

        print(f"{args.n} runs each, one-container pod running `true` ({os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.2f})")
        medians = {}
        for name, times in results.items():
            medians[name], line = summary(name, times)
            print(line)
        over = medians["podsec run --rm"] - medians["runc run (floor)"]
        print(f"podsec - runc:          {over:8.1f} ms   (goal <= 100 ms){'  OK' if over <= 100 else ''}")
        if base_env is not None:
            gain = medians["baseline podsec"] - medians["podsec run --rm"]
            print(f"baseline - podsec:      {gain:8.1f} ms   (the change, side by side)")
        if podman:
            ratio = medians["podman kube play"] / medians["podsec run --rm"]
            print(f"podman / podsec:        {ratio:8.2f} x    (goal >= 3x){'  OK' if ratio >= 3 else ''}")
        listing = subprocess.run(["runc", "list", "--format", "json"], capture_output=True, text=True).stdout
        leftovers = [c["id"] for c in json.loads(listing or "null") or [] if str(c.get("bundle", "")).startswith(
            str(work))]
        if leftovers:
            print(f"warning: runtime containers left: {leftovers}", file=sys.stderr)
        return 0
    finally:
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            subprocess.run([*podsec_bin(), "--root", str(work / "root"), "--state", str(work / "state"), "gc"],
                           capture_output=True, env=env)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
