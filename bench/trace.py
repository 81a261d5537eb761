"""Benchmark ``podsec trace`` against ``podsec run --rm`` of the same pod, side by side.

Why: trace is run then diff; what it adds over run (the writable upper dir kept until the pod stops, the
walk of it against the image, the grouping, the report) should stay small next to the run itself, also when
the app writes many files. Two pods, each run N times interleaved, whole processes timed start to exit:

* ``true``: writes nothing (the fixed cost of tracing);
* ``writes``: creates FILES files in DIRS directories under /var/cache and /tmp (the walk's cost).

Usage: ``python bench/trace.py [-n 10] [--files 10000] [--dirs 100]`` (root only). Prints medians and
trace - run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import POD, podsec_bin, summary, timed  # the same pod and timing as bench/run.py

WRITER = POD.replace('command: ["true"]', 'command: ["sh", "-c", {script!r}]')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=10, help="repetitions of each (default 10)")
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--dirs", type=int, default=100)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/trace.py needs root (runc)", file=sys.stderr)
        return 2
    from imagebuild import build_fixture_layout

    work = Path(tempfile.mkdtemp(prefix="podsec-bench-trace-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base = [*podsec_bin(), "--root", str(work / "root"), "--state", str(work / "state")]
    try:
        timed([*base, "image", "load", str(build_fixture_layout(work / "layout"))], env)
        per_dir = max(1, args.files // args.dirs)
        script = (f"for d in $(seq {args.dirs}); do mkdir -p /var/cache/app/$d; "
                  f"for f in $(seq {per_dir}); do echo x > /var/cache/app/$d/$f; done; done; "
                  "echo y > /tmp/pid")
        pods = {"true": POD.format(image="podsec-fixture:root"),
                "writes": WRITER.format(image="podsec-fixture:root", script=script)}
        results: dict[str, list[float]] = {}
        for name, text in pods.items():
            path = work / f"{name}.yaml"
            path.write_text(text)
            cmds = {f"run --rm  ({name})": [*base, "run", "--rm", "-f", str(path)],
                    f"trace     ({name})": [*base, "trace", "-f", str(path)]}
            for cmd in cmds.values():
                timed(cmd, env)  # unpack the rootfs, write bytecode caches
            for _ in range(args.n):
                for label, cmd in cmds.items():
                    results.setdefault(label, []).append(timed(cmd, env))
        print(f"{args.n} runs each; the writer creates {per_dir * args.dirs} files in {args.dirs} directories "
              f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
        medians = {}
        for label, times in results.items():
            medians[label], line = summary(label, times)
            print(line)
        for name in pods:
            run, trace = medians[f"run --rm  ({name})"], medians[f"trace     ({name})"]
            print(f"trace - run ({name}): {trace - run:8.1f} ms   trace / run: {trace / run:5.2f}x")
        return 0
    finally:
        subprocess.run([*base, "gc"], capture_output=True, env=env)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
