"""Benchmark `podsec check` against checkov and bare YAML parses of the same corpus, side by side.

Usage: python bench/check.py [--docs 10000] [--repeat 3] [--no-checkov]

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=10000)
    ap.add_argument("--checkov-docs", type=int, default=1000,
                    help="checkov is slow: run it on the first N documents and scale linearly")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-checkov", action="store_true")
    args = ap.parse_args()
    podsec = shutil.which("podsec") or str(Path(sys.executable).parent / "podsec")
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
