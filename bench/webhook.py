"""Benchmark ``podsec webhook serve``: latency at a fixed request rate and memory over many reviews.

Usage: python bench/webhook.py [--rate 200] [--seconds 30] [--reviews 100000] [--max-seconds 900]

Loopback only. Starts a Kubernetes API emulator (kmock, from the tests; in its own process) holding one
namespace per PSA level/version, and ``podsec webhook serve`` with a fresh trustme certificate. Then, over ONE
keep-alive HTTPS connection (TLS included in every figure):

1. latency: AdmissionReviews built from the PSA fixtures sent on a fixed schedule (``--rate`` per second for
   ``--seconds``); each latency is measured from the request's *scheduled* send time, so a stall delays every
   request behind it instead of hiding (no coordinated omission). Side by side, the same schedule of
   ``GET /healthz``: the transport's own floor (HTTP + TLS + Python's server) on the same connection.
2. memory: ``--reviews`` reviews back to back; the server's RSS after the first 10 % and at the end.

Bounded: every loop stops at its count or at ``--max-seconds``. Prints the load average beside the figures,
since two cores shared with other work make tail latency noisy.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

TESTDATA = REPO / ".." / "shared" / "psa-testdata"
EMULATOR = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from cluster_objects import namespace
from kube_emulator import running
testdata = Path(sys.argv[2])
with running() as emu:
    for level in ("baseline", "restricted"):
        for vdir in (testdata / level).iterdir():
            emu.add(namespace(f"{level}-{vdir.name.replace('.', '-')}", enforce=level, enforce_version=vdir.name,
                              warn=level, warn_version=vdir.name, audit="restricted"))
    emu.kubeconfig(Path(sys.argv[3]))
    print("ready", flush=True)
    sys.stdin.read()  # until the bench closes our stdin
"""


def reviews() -> list[bytes]:
    """One AdmissionReview body per PSA fixture, for the namespace of its level and version."""
    import yaml

    out = []
    for level in ("baseline", "restricted"):
        for vdir in sorted((TESTDATA / level).iterdir()):
            for f in sorted(vdir.glob("*/*.yaml")):
                pod = yaml.safe_load(f.read_text())
                for v in pod["spec"].get("volumes") or []:
                    if set(v) == {"name"}:
                        v["emptyDir"] = {}
                ns = f"{level}-{vdir.name.replace('.', '-')}"
                req = {"uid": str(uuid.uuid4()), "kind": {"group": "", "version": "v1", "kind": "Pod"},
                       "resource": {"group": "", "version": "v1", "resource": "pods"},
                       "name": pod["metadata"]["name"], "namespace": ns, "operation": "CREATE",
                       "userInfo": {"username": "bench"}, "object": pod, "oldObject": None, "dryRun": False}
                out.append(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                       "request": req}).encode())
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (from /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


class Client:
    def __init__(self, port: int, ctx: ssl.SSLContext) -> None:
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)

    def review(self, body: bytes) -> None:
        self.conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200 or b'"response"' not in data:
            raise SystemExit(f"bad answer: {r.status} {data[:200]!r}")

    def healthz(self, _: bytes) -> None:
        self.conn.request("GET", "/healthz")
        r = self.conn.getresponse()
        r.read()


def scheduled(call, bodies: list[bytes], rate: float, seconds: float, deadline: float) -> list[float]:
    """Latencies (ms) from each request's scheduled time, at ``rate`` per second."""
    n = int(rate * seconds)
    period = 1.0 / rate
    lat = []
    start = time.perf_counter() + 0.05
    for i in range(n):
        due = start + i * period
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        call(bodies[i % len(bodies)])
        lat.append((time.perf_counter() - due) * 1000)
        if time.monotonic() > deadline:
            break
    return lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--reviews", type=int, default=100_000)
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    deadline = time.monotonic() + args.max_seconds

    import trustme

    bodies = reviews()
    tmp = Path(tempfile.mkdtemp(prefix="podsec-bench-webhook-"))
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(tmp / "tls.crt"))
    leaf.private_key_pem.write_to_path(str(tmp / "tls.key"))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    kc = tmp / "kubeconfig"
    # The emulator runs in its own process: in this one it would share the GIL (and the CPU account) with the client.
    emu = subprocess.Popen([sys.executable, "-c", EMULATOR, str(REPO / "tests"), str(TESTDATA), str(kc)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert emu.stdout is not None and emu.stdout.readline().strip() == "ready", "the API emulator did not start"
    try:
        log = open(tmp / "webhook.log", "w")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "podsec.cli", "--root", str(tmp / "no-store"), "webhook",
                                 "serve", "--cert", str(tmp / "tls.crt"), "--key", str(tmp / "tls.key"), "--port",
                                 "0", "--address", "127.0.0.1", "--kubeconfig", str(kc), "--ready-file",
                                 str(tmp / "ready")], stdout=log, stderr=log, env={**os.environ})
        try:
            while not (tmp / "ready").exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("webhook did not start: " + (tmp / "webhook.log").read_text())
                time.sleep(0.05)
            port = int((tmp / "ready").read_text())
            client = Client(port, ctx)
            for b in bodies[:2000]:  # warm up: imports, plan caches, the namespace cache
                client.review(b)
            load_before = os.getloadavg()
            health = scheduled(client.healthz, bodies, args.rate, args.seconds, deadline)
            lat = scheduled(client.review, bodies, args.rate, args.seconds, deadline)
            load_after = os.getloadavg()
            print(f"latency at {args.rate:.0f} requests/s for {args.seconds:.0f} s over one keep-alive HTTPS "
                  f"connection, from each request's scheduled send time (ms):")
            print(f"  {'':24}{'n':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
            for name, xs in (("GET /healthz (floor)", health), ("POST /validate (review)", lat)):
                print(f"  {name:24}{len(xs):>7}{statistics.median(xs):>9.2f}{pct(xs, 90):>9.2f}{pct(xs, 99):>9.2f}"
                      f"{max(xs):>9.2f}")
            print(f"  review / floor: p50 {statistics.median(lat) / statistics.median(health):.1f}x, "
                  f"p99 {pct(lat, 99) / pct(health, 99):.1f}x")
            print(f"  load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} "
                  f"(1 min; {os.cpu_count()} CPUs)")

            tenth = max(1, args.reviews // 10)
            cpu0, own0 = cpu_seconds(proc.pid), time.process_time()
            t0 = time.perf_counter()
            done = 0
            rss_early = 0
            for i in range(args.reviews):
                client.review(bodies[i % len(bodies)])
                done += 1
                if done == tenth:
                    rss_early = rss_kib(proc.pid)
                if time.monotonic() > deadline:
                    break
            took = time.perf_counter() - t0
            server_cpu, client_cpu = cpu_seconds(proc.pid) - cpu0, time.process_time() - own0
            rss_end = rss_kib(proc.pid)
            print(f"memory over {done:,} reviews back to back ({done / took:,.0f} reviews/s): server RSS "
                  f"{rss_early / 1024:.1f} MiB after {tenth:,}, {rss_end / 1024:.1f} MiB at the end "
                  f"(growth {(rss_end - rss_early) / 1024:+.1f} MiB)")
            print(f"  CPU per review (independent of the load): server {server_cpu / done * 1000:.2f} ms (TLS, HTTP, "
                  f"decision), client {client_cpu / done * 1000:.2f} ms; one core serves "
                  f"{done / server_cpu:,.0f} reviews/s")
            print(f"  load average now: {os.getloadavg()[0]:.2f}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    finally:
        assert emu.stdin is not None
        emu.stdin.close()
        emu.wait(timeout=30)


if __name__ == "__main__":
    main()
