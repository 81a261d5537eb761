"""Benchmark: podsec's fsGroup walk against ``chgrp -R G dir && chmod -R g+rwX dir``.

Why: the kubelet's recursive ownership change is the slow part of starting a pod with a big
volume; podsec must not be slower than the obvious coreutils pipeline doing the same work.
Identical fresh trees are built (directories 0755, files 0644, group 0) so every side changes every
inode: one for coreutils, one for podsec's default walk (which forks a worker per CPU once it has
run for 50 ms), one for podsec kept in one process (``workers=1``). Then the OnRootMismatch re-run
(skipped: the root already matches) and an "Always" re-run (every inode already right: only stats)
are timed on the podsec tree.

Usage: ``python bench/ownership.py [--dirs 2000] [--files 100] [--gid 2000] [--base /tmp]``
(root only: it chowns).
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

from podsec.volumes.ownership import ON_ROOT_MISMATCH, change_ownership


def build_tree(root: Path, dirs: int, files: int) -> int:
    """Create ``dirs`` directories of ``files`` empty files each; returns the number of paths."""
    old = os.umask(0o022)
    try:
        root.mkdir(mode=0o755)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for d in range(dirs):
            sub = root / f"d{d:05d}"
            sub.mkdir(mode=0o755)
            dfd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for f in range(files):
                    os.close(os.open(f"f{f:04d}", flags, 0o644, dir_fd=dfd))
            finally:
                os.close(dfd)
    finally:
        os.umask(old)
    return 1 + dirs + dirs * files


def drop_caches() -> None:
    """Flush dirty inodes so neither side pays for the other's writeback."""
    os.sync()


def timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirs", type=int, default=2000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--gid", type=int, default=2000)
    ap.add_argument("--base", default=None, help="directory for the temporary trees (default: $TMPDIR)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/ownership.py must run as root", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="podsec-bench-", dir=args.base))
    try:
        a, b, c = work / "podsec", work / "coreutils", work / "podsec-seq"
        t0 = time.perf_counter()
        n = build_tree(a, args.dirs, args.files)
        build_tree(b, args.dirs, args.files)
        build_tree(c, args.dirs, args.files)
        print(
            f"trees: 3 x {n} paths ({args.dirs} dirs x {args.files} files) built in "
            f"{time.perf_counter() - t0:.1f}s under {work}"
        )
        drop_caches()

        gid = args.gid

        def coreutils() -> None:
            subprocess.run(["chgrp", "-R", str(gid), str(b)], check=True)
            subprocess.run(["chmod", "-R", "g+rwX", str(b)], check=True)

        processed = 0

        def podsec() -> None:
            nonlocal processed
            processed = change_ownership(a, gid, read_only=False)

        seq_processed = 0

        def podsec_seq() -> None:
            nonlocal seq_processed
            seq_processed = change_ownership(c, gid, read_only=False, workers=1)

        t_core = timed(coreutils)
        drop_caches()
        t_podsec = timed(podsec)
        drop_caches()
        t_seq = timed(podsec_seq)
        drop_caches()
        assert processed == seq_processed == n, (processed, seq_processed, n)
        skipped = 0

        def mismatch() -> None:
            nonlocal skipped
            skipped = change_ownership(a, gid, read_only=False, policy=ON_ROOT_MISMATCH)

        t_skip = timed(mismatch)
        t_again = timed(lambda: change_ownership(a, gid, read_only=False))

        st = os.stat(a / "d00000" / "f0000")
        assert st.st_gid == gid and st.st_mode & 0o777 == 0o664, oct(st.st_mode)
        assert os.stat(a / "d00000").st_mode & 0o7777 == 0o2775

        w = 44
        print(f"{'case':<{w}} {'seconds':>9} {'vs coreutils':>13}")
        print(f"{'chgrp -R G dir && chmod -R g+rwX dir':<{w}} {t_core:9.3f} {1.0:13.2f}")
        print(f"{'change_ownership(fs_group=G) fresh tree':<{w}} {t_podsec:9.3f} {t_podsec / t_core:13.2f}")
        print(f"{'  same, workers=1 (one process)':<{w}} {t_seq:9.3f} {t_seq / t_core:13.2f}")
        print(
            f"{'change_ownership OnRootMismatch re-run':<{w}} {t_skip:9.6f} {t_skip / t_core:13.6f}"
            f"   (paths walked: {skipped})"
        )
        print(f"{'change_ownership Always re-run (all right)':<{w}} {t_again:9.3f} {t_again / t_core:13.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
