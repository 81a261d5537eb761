"""Benchmark `podsec check` against checkov and bare YAML parses of the same corpus, side by side.

Usage: python bench/check.py [--docs 10000] [--repeat 3] [--no-checkov]
       python bench/check.py --scale [--scale-docs 100000] [--baseline-src DIR]

``--scale`` measures bounded memory instead: ``check`` of 100,000 small Pods (one file, and 100 files),
for table, json and sarif output, printing wall time and the peak resident memory of the whole process
tree (podsec and its workers, sampled from /proc every 20 ms), its CPU time (user + system of the tree: the
figure to compare on a shared machine) and the 1-minute load average when it ended. Goal: under 8 s and 300 MB
on 2 cores.
With ``--baseline-src`` (a ``src`` directory of another podsec checkout) the same runs of that code are
printed beside, for before/after figures.

Generates a corpus of mixed workload documents (Pods, Deployments, StatefulSets, DaemonSets,
Jobs, CronJobs, with good and bad securityContexts) in a temp dir, then times whole processes
(start to exit): podsec check, checkov (installed in this bench's own venv under bench/out/),
PyYAML's CSafeLoader and yaml-rs parsing the same files. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

SC_VARIANTS = [
    "",
    """        securityContext:
          runAsNonRoot: true
          runAsUser: 1000
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            drop: ["ALL"]
""",
    """        securityContext:
          privileged: true
""",
    """        securityContext:
          runAsUser: 0
          runAsNonRoot: true
          capabilities:
            add: ["CAP_NET_ADMIN", "sys_time"]
""",
    """        securityContext:
          allowPrivilegeEscalation: false
          capabilities:
            drop: [ALL]
            add: [NET_BIND_SERVICE]
          seccompProfile:
            type: Unconfined
""",
]
POD_SC = [
    "",
    """      securityContext:
        runAsUser: 1000
        runAsGroup: 3000
        fsGroup: 2000
        seccompProfile:
          type: RuntimeDefault
""",
    """      securityContext:
        runAsNonRoot: true
        sysctls:
        - name: kernel.msgmax
          value: "65536"
""",
    "      hostNetwork: true\n      hostPID: true\n",
]
VOLUMES = [
    "",
    """      volumes:
      - name: tmp
        emptyDir: {}
      - name: host
        hostPath:
          path: /var/log
""",
    """      volumes:
      - name: cfg
        configMap:
          name: app-config
          defaultMode: 0644
""",
]


def pod_spec(rnd: random.Random, i: int) -> str:
    c_sc = rnd.choice(SC_VARIANTS)
    p_sc = rnd.choice(POD_SC)
    vols = rnd.choice(VOLUMES)
    mounts = ""
    if "name: tmp" in vols:
        mounts = "        volumeMounts:\n        - name: tmp\n          mountPath: /tmp\n"
    env = "        env:\n        - name: PUID\n          value: \"1000\"\n" if i % 17 == 0 else ""
    return (
        p_sc
        + f"""      containers:
      - name: app-{i}
        image: registry.example/team/app:{i % 50}
        ports:
        - containerPort: 8080
{c_sc}{mounts}{env}{vols}"""
    )


def document(rnd: random.Random, i: int) -> str:
    kind = rnd.choice(["Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"])
    spec = pod_spec(rnd, i)
    if kind == "Pod":
        body = "\n".join(line[4:] for line in spec.splitlines())
        return f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i}\n  namespace: team-{i % 7}\nspec:\n{body}\n"
    api = {"Job": "batch/v1", "CronJob": "batch/v1"}.get(kind, "apps/v1")
    head = f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {kind.lower()}-{i}\n  namespace: team-{i % 7}\n"
    tmpl = f"  template:\n    metadata:\n      labels:\n        app: a{i}\n    spec:\n{spec}\n"
    if kind == "CronJob":
        ind = "\n".join(("    " + ln) if ln else ln for ln in tmpl.splitlines())
        return head + f"spec:\n  schedule: '*/5 * * * *'\n  jobTemplate:\n    spec:\n{ind}\n"
    sel = "" if kind == "Job" else f"  selector:\n    matchLabels:\n      app: a{i}\n"
    return head + "spec:\n" + sel + tmpl


def make_corpus(n: int, dest: Path, per_file: int = 10) -> None:
    rnd = random.Random(42)
    dest.mkdir(parents=True, exist_ok=True)
    for f in range(0, n, per_file):
        docs = [document(rnd, i) for i in range(f, min(n, f + per_file))]
        (dest / f"w{f // per_file:05d}.yaml").write_text("---\n".join(docs))


PARSE_CSAFE = (
    "import sys,glob,yaml\n"
    "for f in sorted(glob.glob(sys.argv[1]+'/*.yaml')):\n"
    "    list(yaml.load_all(open(f).read(), Loader=yaml.CSafeLoader))\n"
)
PARSE_YAMLRS = (
    "import sys,glob,yaml_rs\n"
    "for f in sorted(glob.glob(sys.argv[1]+'/*.yaml')):\n"
    "    yaml_rs.loads(open(f).read())\n"
)


def timed(cmd: list[str], repeat: int, env: dict | None = None) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        times.append(time.perf_counter() - t)
        if r.returncode not in (0, 1):
            sys.exit(f"bench: {' '.join(cmd[:3])}… failed ({r.returncode}): {r.stderr.decode()[-500:]}")
    return statistics.median(times)


def checkov_bin(skip: bool) -> str | None:
    if skip:
        return None
    exe = shutil.which("checkov")
    if exe:
        return exe
    venv = OUT / "checkov-venv"
    exe = str(venv / "bin" / "checkov")
    if not os.path.exists(exe):
        print("bench: installing checkov into bench/out/checkov-venv (one time)…", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "checkov"], capture_output=True)
        if r.returncode != 0:
            print(f"bench: checkov could not be installed: {r.stderr.decode()[-300:]}", file=sys.stderr)
            return None
    return exe


SMALL_POD = """apiVersion: v1
kind: Pod
metadata:
  name: pod-{i}
  namespace: team-{ns}
spec:
  containers:
  - name: app
    image: registry.example/app:{tag}
    securityContext:
      runAsUser: {uid}
"""


def make_small_pods(n: int, dest: Path, files: int) -> None:
    """``n`` small Pods spread over ``files`` files."""
    dest.mkdir(parents=True, exist_ok=True)
    per = -(-n // files)
    for f in range(files):
        docs = [SMALL_POD.format(i=i, ns=i % 7, tag=i % 50, uid=1000 + i % 3)
                for i in range(f * per, min(n, (f + 1) * per))]
        (dest / f"pods{f:04d}.yaml").write_text("---\n".join(docs))


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (0 when gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def measured(cmd: list[str], env: dict | None = None) -> tuple[float, int, float]:
    """(wall seconds, peak resident bytes of the process tree, CPU seconds of the tree) of one run."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        sys.exit(f"bench: {' '.join(cmd[:4])}… failed ({proc.returncode}): {err[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, peak, cpu


def scale(args: argparse.Namespace, podsec: str) -> None:
    runner = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from podsec.cli import main; "
              "sys.argv[0] = 'podsec'; main()")
    variants = [("new", [podsec])]
    if args.baseline_src:
        variants.append(("baseline", [sys.executable, "-c", runner, args.baseline_src]))
    with tempfile.TemporaryDirectory(prefix="podsec-bench-") as tmp:
        env = {**os.environ, "PODSEC_ROOT": str(Path(tmp) / "no-store")}
        for files in (1, 100):
            corpus = Path(tmp) / f"pods-{files}"
            make_small_pods(args.scale_docs, corpus, files)
            print(f"{args.scale_docs} small Pods in {files} file(s), best of {args.repeat}:")
            for fmt in ("table", "json", "sarif"):
                for name, cmd in variants:
                    runs = [measured([*cmd, "check", "--no-images", "-o", fmt, str(corpus)], env)
                            for _ in range(args.repeat)]
                    wall = min(r[0] for r in runs)
                    peak = max(r[1] for r in runs)
                    cpu = min(r[2] for r in runs)
                    ok = "ok" if wall < 8 and peak < 300 * 2**20 else "over goal"
                    print(f"  -o {fmt:<6} {name:<9} {wall:7.2f} s wall  {cpu:7.2f} s CPU   peak RSS "
                          f"{peak / 2**20:7.0f} MB   load {os.getloadavg()[0]:5.2f}   ({ok})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", action="store_true", help="bounded-memory runs on 100,000 small Pods")
    ap.add_argument("--scale-docs", type=int, default=100_000)
    ap.add_argument("--baseline-src", help="with --scale: a podsec src/ directory to measure beside")
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--checkov-docs", type=int, default=1000,
                    help="checkov is slow: run it on the first N documents and scale linearly")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-checkov", action="store_true")
    args = ap.parse_args()
    podsec = shutil.which("podsec") or str(Path(sys.executable).parent / "podsec")
    if args.scale:
        scale(args, podsec)
        return
    with tempfile.TemporaryDirectory(prefix="podsec-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        make_corpus(args.docs, corpus)
        small = Path(tmp) / "small"
        make_corpus(min(args.checkov_docs, args.docs), small)
        env = {**os.environ, "PODSEC_ROOT": str(Path(tmp) / "no-store")}
        res: dict[str, float] = {}
        res["podsec check"] = timed([podsec, "check", "--no-images", str(corpus)], args.repeat, env)
        res["podsec check -o json"] = timed([podsec, "check", "--no-images", "-o", "json", str(corpus)],
                                            args.repeat, env)
        res["CSafeLoader parse"] = timed([sys.executable, "-c", PARSE_CSAFE, str(corpus)], args.repeat)
        res["yaml-rs parse"] = timed([sys.executable, "-c", PARSE_YAMLRS, str(corpus)], args.repeat)
        ck = checkov_bin(args.no_checkov)
        if ck:
            t = timed([ck, "--framework", "kubernetes", "-d", str(small), "--quiet", "--compact"], 1)
            res[f"checkov (scaled from {min(args.checkov_docs, args.docs)} docs)"] = t * args.docs / min(
                args.checkov_docs, args.docs)
        base = res["podsec check"]
        fastest = min(res["CSafeLoader parse"], res["yaml-rs parse"])
        print(f"corpus: {args.docs} documents in {len(list(corpus.iterdir()))} files; median of {args.repeat}")
        for name, t in res.items():
            print(f"  {name:<40} {t:8.3f} s   {t / base:7.2f}x podsec")
        print(f"podsec vs fastest bare parse: {base / fastest:.2f}x (goal ≤ 3x)")
        ck_key = next((k for k in res if k.startswith("checkov")), None)
        if ck_key:
            print(f"podsec vs checkov: {res[ck_key] / base:.0f}x faster (goal ≥ 200x)")
        else:
            print("checkov: not measured (--no-checkov or install failed)")


if __name__ == "__main__":
    main()
