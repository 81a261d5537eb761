"""Benchmark: ``podsec perms --fix --apply`` against the fsGroup walk and against coreutils + setfacl.

Why: ``--apply`` must be as fast as podsec's fsGroup walk (the kubelet's recursive ownership change) on
the same tree, and not slower than what an administrator would type. Identical fresh trees are built
(directories 0755, files 0644, owner and group 0, the layout of ``bench/ownership.py``), so every side
changes every inode. Two fixes are timed:

* **group** — what the seed-000 plan does for the containers: group G, ``g+rw``, setgid directories, a
  default ACL on every directory. Compared with ``change_ownership(fs_group=G)`` (the fsGroup walk:
  group G, ``g+rw``, setgid directories) and with ``chgrp -R; chmod -R g+rwX; find -type d chmod g+s;
  setfacl -R -d -m ...``.
* **group + named user** — the same plus ``u:1001:rwX`` on every inode and ``d:u:1001:rwx`` on every
  directory (the seed's SMB user): an ACL xattr on every file. Compared with the same coreutils plus
  ``setfacl -R -m u:1001:rwX,d:u:1001:rwx``.

For each, the apply walk alone (:func:`podsec.perms.apply.apply_fix`, what ``--apply`` adds) and the
whole command (scan, judge, plan, apply, re-scan to verify: ``podsec perms --identity ... --fix --apply``)
are timed; then a re-run of the apply on the fixed tree (stat only). Ratios < 1 mean podsec is faster.

Usage: ``python bench/perms.py [--dirs 2000] [--files 100] [--gid 1000] [--base /tmp]`` (root only).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from podsec.perms.apply import apply_fix
from podsec.perms.fixes import TreeFix
from podsec.volumes.ownership import change_ownership

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ownership import build_tree


def timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def coreutils(root: Path, gid: int, user: int | None) -> None:
    """What an administrator would type for the same result."""
    r = str(root)
    subprocess.run(["chgrp", "-R", str(gid), r], check=True)
    subprocess.run(["chmod", "-R", "g+rwX", r], check=True)
    subprocess.run(["find", r, "-type", "d", "-exec", "chmod", "g+s", "{}", "+"], check=True)
    entries = "u::rwx,g::rwx,o::rX"
    if user is not None:
        subprocess.run(["setfacl", "-R", "-P", "-m", f"u:{user}:rwX,d:u:{user}:rwx", r], check=True)
    subprocess.run(["setfacl", "-R", "-P", "-d", "-m", entries, r], check=True)


STACK = """\
apiVersion: v1
kind: Pod
metadata: {{name: app}}
spec:
  securityContext: {{runAsUser: {gid}, runAsGroup: {gid}}}
  volumes: [{{name: data, hostPath: {{path: {root}}}}}]
  containers: [{{name: app, image: app, volumeMounts: [{{name: data, mountPath: /data}}]}}]
"""


def cli_apply(root: Path, gid: int, user: int | None, store: Path) -> None:
    """The whole ``podsec perms`` command: a container running as G:G on the tree (and an outside user)."""
    stack = root.with_suffix(".yaml")
    stack.write_text(STACK.format(gid=gid, root=root))
    podsec = Path(sys.executable).with_name("podsec")
    argv = [str(podsec), "--root", str(store), "perms", "-f", str(stack), "--path", str(root), "--no-images",
            "--fix", "--apply", "-o", "json"]
    if user is not None:
        argv += ["--identity", f"outsider={user}:{user}"]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"podsec perms failed ({out.returncode}): {out.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirs", type=int, default=2000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--gid", type=int, default=1000)
    ap.add_argument("--user", type=int, default=1001)
    ap.add_argument("--base", default=None, help="directory for the temporary trees (default: $TMPDIR)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/perms.py must run as root", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="podsec-bench-perms-", dir=args.base))
    os.chmod(work, 0o755)
    store = work / "store"
    gid = args.gid
    rows: list[tuple[str, float, float]] = []
    try:
        for label, user in (("group", None), ("group + named user", args.user)):
            names = ("fsgroup", "core", "apply", "cli")
            trees = {n: work / f"{n}-{label.replace(' ', '')}" for n in names}
            t0 = time.perf_counter()
            for p in trees.values():
                n = build_tree(p, args.dirs, args.files)
            print(f"[{label}] trees: 4 x {n:,} paths ({args.dirs} dirs x {args.files} files) built in "
                  f"{time.perf_counter() - t0:.1f}s")
            fix = TreeFix(gid, 7, 6, True, True, ((user, 7),) if user is not None else ())
            os.sync()
            t_fs = timed(lambda p=trees["fsgroup"]: change_ownership(p, gid, read_only=False))
            os.sync()
            t_core = timed(lambda p=trees["core"], u=user: coreutils(p, gid, u))
            os.sync()
            t_apply = timed(lambda p=trees["apply"], f=fix: apply_fix(str(p), f, store / "perms", read_acls=False))
            os.sync()
            t_cli = timed(lambda p=trees["cli"], u=user: cli_apply(p, gid, u, store))
            os.sync()
            t_again = timed(lambda p=trees["apply"], f=fix: apply_fix(str(p), f, store / "perms", read_acls=True))
            check = subprocess.run(["getfacl", "-cn", str(trees["apply"] / "d00000" / "f0000")],
                                   capture_output=True, text=True).stdout
            core = subprocess.run(["getfacl", "-cn", str(trees["core"] / "d00000" / "f0000")],
                                  capture_output=True, text=True).stdout
            assert check == core, (check, core)
            cli = subprocess.run(["getfacl", "-cn", str(trees["cli"] / "d00000" / "f0000")],
                                 capture_output=True, text=True).stdout
            assert cli == core, (cli, core)
            rows += [
                (f"[{label}] fsGroup walk change_ownership(G)", t_fs, t_fs / t_fs),
                (f"[{label}] chgrp/chmod/find/setfacl -R", t_core, t_core / t_fs),
                (f"[{label}] perms apply walk (apply_fix)", t_apply, t_apply / t_fs),
                (f"[{label}] podsec perms --fix --apply (whole)", t_cli, t_cli / t_fs),
                (f"[{label}] apply re-run on the fixed tree", t_again, t_again / t_fs),
            ]
            print(f"[{label}] vs coreutils: apply walk {t_apply / t_core:.2f}x, whole command {t_cli / t_core:.2f}x")
            for p in trees.values():
                shutil.rmtree(p)
        w = 52
        print(f"{'case':<{w}} {'seconds':>9} {'vs fsGroup':>11}")
        for name, secs, ratio in rows:
            print(f"{name:<{w}} {secs:9.3f} {ratio:11.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
