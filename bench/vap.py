"""How the cost of the generated ValidatingAdmissionPolicy grows with the number of containers.

Usage: python bench/vap.py [--repeat 5] [--sizes 10,30,100]

Runs the restricted policy (``podsec policy vap --level restricted``) with the test suite's real CEL engine
(tests/vap_cel.py: cel-expr-python) on pods of N containers, once all allowed and once with every container
failing every container check (so every messageExpression runs too), and prints the fastest time per container
(the least disturbed by a loaded machine) and its ratio to the smallest pod: a flat ratio means cost linear in
containers. Wall time of cel-cpp stands in for the API server's cost units, which count the same selections
and comparisons. cel-cpp stops an evaluation after a fixed number of comprehension iterations ("Iteration
budget exceeded"), a limit of this engine, not of the API server, which is why the pods stay small.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from podsec.vap import policy_documents
from vap_cel import admit

GOOD = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"}}
BAD = {"allowPrivilegeEscalation": True, "privileged": True, "capabilities": {"add": ["NET_RAW", "SYS_ADMIN"]},
       "runAsUser": 0, "runAsNonRoot": False, "seccompProfile": {"type": "Unconfined"}, "procMount": "Unmasked",
       "seLinuxOptions": {"type": "spc_t", "user": "u"}, "windowsOptions": {"hostProcess": True}}


def pod(n: int, sc: dict) -> dict:
    containers = [{"name": f"c{i}", "image": "busybox", "securityContext": copy.deepcopy(sc),
                   "ports": [{"containerPort": 80, "hostPort": 8000 + i % 7}] if sc is BAD else [],
                   "livenessProbe": {"httpGet": {"host": f"h{i % 5}", "port": 80}} if sc is BAD else {"exec": {}}}
                  for i in range(n)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sizes", default="10,30,100")
    args = ap.parse_args()
    policy = policy_documents("restricted", "latest")[0]
    sizes = [int(s) for s in args.sizes.split(",")]
    admit(policy, pod(1, GOOD))  # compile every expression once, outside the timings
    admit(policy, pod(1, BAD))
    for label, sc in (("allowed", GOOD), ("denied, every check failing", BAD)):
        print(f"{label}:")
        base = None
        for n in sizes:
            p = pod(n, sc)
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                d = admit(policy, p)
                times.append(time.perf_counter() - t)
            assert d.allowed == (sc is GOOD)
            per = min(times) / n
            base = base or per
            print(f"  {n:>6} containers: {min(times) * 1000:9.1f} ms, "
                  f"{per * 1e6:8.1f} µs per container, ratio {per / base:5.2f}")


if __name__ == "__main__":
    main()
