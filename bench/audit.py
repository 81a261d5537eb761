"""Benchmark ``podsec audit`` on a large cluster: 10,000 pods and 2,000 controllers on the API emulator.

Usage: python bench/audit.py [--deployments 1000] [--pods-per-rs 10] [--chunk-size 500]

Loopback only. The emulator (kmock, from the tests, with paging) holds namespaces with Pod Security labels,
N Deployments with one ReplicaSet each (2N controllers) and 10 pods per ReplicaSet. Timed side by side, as
whole processes:

- ``podsec audit -A -o json`` (reads every page, rolls pods up to their Deployment, judges each Deployment);
- a bare paged read of the same lists through the same client (the floor: what reading costs);
- ``podsec check -o json`` on the same 2N controllers written as files (the judgement without a cluster).

Prints times and ratios, and the audit's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from cluster_objects import deployment, namespace, pod, replicaset, template  # noqa: E402
from kube_emulator import running  # noqa: E402

FLOOR = """
import sys
from podsec.cluster import kube
api = kube.connect(sys.argv[1])
n = 0
for res in (*kube.CONTROLLERS, kube.PODS, kube.NAMESPACES):
    for obj in kube.list_objects(api, res, None, int(sys.argv[2])):
        n += 1
print(n)
"""


def timed(cmd: list[str], out: Path) -> tuple[float, int, int]:
    """Seconds, exit status and peak RSS (KiB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    with open(out, "wb") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.PIPE, check=False).returncode
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return took, rc, max(peak, before)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deployments", type=int, default=1000)
    ap.add_argument("--pods-per-rs", type=int, default=10)
    ap.add_argument("--chunk-size", type=int, default=500)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="podsec-bench-audit-"))
    levels = ["restricted", "baseline", "privileged"]
    files = tmp / "manifests"
    files.mkdir()
    with running() as emu:
        for i in range(10):
            emu.add(namespace(f"team-{i}", enforce=levels[i % 3], warn="restricted"))
        n_pods = 0
        docs = []
        for d in range(args.deployments):
            ns = f"team-{d % 10}"
            tmpl = template(image=f"registry.example/app-{d % 50}:1", restricted=d % 2 == 0,
                            **({"runAsUser": 0} if d % 7 == 0 else {}))
            dep = deployment(ns, f"app-{d}", tmpl)
            rs = replicaset(dep, f"h{d:05x}")
            emu.add(dep)
            emu.add(rs)
            docs.append(dep)
            docs.append(rs)
            for p in range(args.pods_per_rs):
                emu.add(pod(ns, f"app-{d}-h{d:05x}-{p}", rs["spec"]["template"], rs))
                n_pods += 1
        for k in range(0, len(docs), 500):
            (files / f"part-{k // 500:03d}.yaml").write_text(yaml.safe_dump_all(docs[k:k + 500]))
        kc = emu.kubeconfig(tmp / "kubeconfig")
        print(f"emulator: 10 namespaces, {2 * args.deployments:,} controllers, {n_pods:,} pods "
              f"(pages of {args.chunk_size})")
        py = sys.executable
        audit = [py, "-m", "podsec.cli", "--root", str(tmp / "no-store"), "audit", "--kubeconfig", str(kc), "-A",
                 "-o", "json", "--chunk-size", str(args.chunk_size)]
        t_audit, rc, peak = timed(audit, tmp / "audit.json")  # first: the children's peak RSS is the audit's
        assert rc in (0, 1), rc
        t_floor, rc, _ = timed([py, "-c", FLOOR, str(kc), str(args.chunk_size)], tmp / "floor.out")
        assert rc == 0, rc
        t_check, rc, _ = timed([py, "-m", "podsec.cli", "--root", str(tmp / "no-store"), "check", "-o", "json",
                                str(files)], tmp / "check.json")
        assert rc in (0, 1), rc
    import json

    results = json.loads((tmp / "audit.json").read_text())["results"]
    pods = sum(r["pods"] for r in results)
    print(f"  {'bare paged read (floor)':34}{t_floor:8.2f} s")
    print(f"  {'podsec audit -A -o json':34}{t_audit:8.2f} s  ({t_audit / t_floor:.1f}x the floor; "
          f"{len(results):,} workloads, {pods:,} live pods rolled up; peak RSS {peak / 1024:.0f} MiB)")
    print(f"  {'podsec check on the same objects':34}{t_check:8.2f} s  (files, {2 * args.deployments:,} docs)")
    print(f"  load average: {os.getloadavg()[0]:.2f} (1 min; {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
