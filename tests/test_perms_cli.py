"""``podsec perms`` on real trees through the real command: the seed-000 story without containers (the
runtime test runs it with runc), fixes, --apply, symlink safety, resuming, claims/NFS/read-only/root squash.

Every denial the command reports is also tried for real as that user (``setpriv``): the report and the
kernel must agree before and after the fix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podsec.kernel.acl import read_path
from test_perms_support import needs_root, needs_setpriv, reachable_dir, run_as

pytestmark = [needs_root, needs_setpriv]
PODSEC = str(Path(sys.executable).with_name("podsec"))


@pytest.fixture
def base() -> Iterator[Path]:
    yield from reachable_dir()


def seed_tree(base: Path) -> Path:
    """Seed 000 before anything is fixed: a root Audiobookshelf made books/ (root:root 0755), a uid-1000
    Jellyfin with umask 022 made movies/ (0755)."""
    media = base / "media"
    media.mkdir()
    os.chown(media, 1000, 1000)
    os.chmod(media, 0o755)
    (media / "books").mkdir(mode=0o755)
    (media / "books" / "old.epub").write_text("x")
    (media / "movies").mkdir()
    (media / "movies" / "film.mkv").write_text("x")
    for p in (media / "movies", media / "movies" / "film.mkv"):
        os.chown(p, 1000, 1000)
    os.chmod(media / "movies", 0o755)
    os.chmod(media / "books", 0o755)
    return media


def stack(base: Path, media: Path, *, ll_read_only: bool = False, abs_user: str = "") -> Path:
    text = f"""\
        apiVersion: v1
        kind: Pod
        metadata: {{name: audiobookshelf}}
        spec:
          {abs_user or 'securityContext: {}'}
          volumes: [{{name: media, hostPath: {{path: {media}, type: Directory}}}}]
          containers:
          - name: audiobookshelf
            image: advplyr/audiobookshelf
            volumeMounts: [{{name: media, mountPath: /audiobooks}}]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: lazylibrarian}}
        spec:
          selector: {{matchLabels: {{app: lazylibrarian}}}}
          template:
            metadata: {{labels: {{app: lazylibrarian}}}}
            spec:
              securityContext: {{runAsUser: 1000, runAsGroup: 1000}}
              volumes: [{{name: media, hostPath: {{path: {media}}}}}]
              containers:
              - name: lazylibrarian
                image: linuxserver/lazylibrarian
                volumeMounts: [{{name: media, mountPath: /books, subPath: books{', readOnly: true' if ll_read_only else ''}}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: jellyfin}}
        spec:
          securityContext: {{runAsUser: 1000, runAsGroup: 1000}}
          volumes: [{{name: media, hostPath: {{path: {media}}}}}]
          containers:
          - name: jellyfin
            image: jellyfin/jellyfin
            volumeMounts: [{{name: media, mountPath: /media}}]
        """
    p = base / "stack.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def perms(base: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODSEC, "--root", str(base / "store"), "perms", "--no-images", *args],
                          capture_output=True, text=True, timeout=120)


def snapshot(root: Path) -> dict[str, tuple[int, int, int, object, object]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            p = Path(dirpath) / name
            st = os.lstat(p)
            acl = None if p.is_symlink() else read_path(p)
            dacl = read_path(p, "system.posix_acl_default") if p.is_dir() and not p.is_symlink() else None
            out[str(p)] = (st.st_uid, st.st_gid, st.st_mode, acl, dacl)
    return out


def test_seed_000_denials_are_explained_and_true(base: Path) -> None:
    media = seed_tree(base)
    out = perms(base, "-f", str(stack(base, media)), "--path", str(media), "--identity", "smb=1001:1001")
    assert out.returncode == 1, out.stderr
    text = out.stdout
    # the issue's own sentence, and the SMB user of the seed's second story
    assert (f"lazylibrarian (uid 1000, groups 1000) cannot write {media}/books: owner root:root, mode 0755; "
            "it is neither the owner nor in group 0") in text
    assert (f"smb (uid 1001, groups 1001) cannot write {media} and {media}/movies: owner 1000:1000, mode 0755; "
            "it is neither the owner nor in group 1000") in text
    # what happens to new files: root's and jellyfin's umask 022
    assert (f"files audiobookshelf creates in {media}/books get root:root mode 0644 (umask 022), so lazylibrarian "
            "(uid 1000, groups 1000) cannot write them: it is neither the owner nor in group 0") in text
    assert (f"files jellyfin creates in {media} and {media}/movies get 1000:1000 mode 0644 (umask 022), so smb "
            "(uid 1001, groups 1001) cannot write them: it is neither the owner nor in group 1000") in text
    assert "assumed: uid 0: the image's USER is unknown" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("books/"))
    assert row.split()[1:] == ["root:root", "0755", "rwx", "r-x!", "r-x!", "r-x!"]
    # ... and the kernel agrees
    assert run_as(1000, 1000, f"touch {media}/books/new").returncode != 0
    assert run_as(1001, 1001, f"touch {media}/movies/new").returncode != 0
    assert run_as(1000, 1000, f"touch {media}/movies/new && rm {media}/movies/new").returncode == 0


def test_fix_proposes_least_privilege_and_changes_nothing(base: Path) -> None:
    media = seed_tree(base)
    before = snapshot(media)
    out = perms(base, "-f", str(stack(base, media)), "--path", str(media), "--identity", "smb=1001:1001", "--fix")
    assert out.returncode == 1, out.stderr
    assert snapshot(media) == before
    text = out.stdout
    assert f"$ chgrp -R 1000 {media}" in text
    assert f"$ find {media} -type d -exec chmod g+s {{}} +" in text
    assert f"$ setfacl -R -P -m u:1001:rwX,d:u:1001:rwx {media}" in text
    assert "or add uid 1001 to group 1000 on the file server" in text
    assert "after these fixes every party can do its job" in text
    assert "777" not in text and "o+w" not in text and "o::rw" not in text
    doc = json.loads(perms(base, "-f", str(stack(base, media)), "--path", str(media), "--identity",
                           "smb=1001:1001", "--fix", "-o", "json").stdout)
    assert [f["kind"] for f in doc["fixes"]] == ["tree", "identity-acl"]
    assert doc["treeFix"] == {"gid": 1000, "groupDir": 7, "groupFile": 6, "setgid": True, "defaultAcl": True,
                              "users": [[1001, 7]]}
    assert doc["after"] == {"ok": True, "denials": []}
    assert not doc["ok"] and {d["party"] for d in doc["denials"]} == {"lazylibrarian", "jellyfin", "smb"}


def test_apply_lets_every_party_do_its_job(base: Path) -> None:
    media = seed_tree(base)
    args = ("-f", str(stack(base, media)), "--path", str(media), "--identity", "smb=1001:1001")
    out = perms(base, *args, "--fix", "--apply")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "AFTER --apply (re-scanned)" in out.stdout
    assert not any(p.name.endswith(".journal") for p in (base / "store" / "perms").iterdir())
    again = perms(base, *args)
    assert again.returncode == 0, again.stdout
    assert "none: every party can do its job" in again.stdout
    # other bits never grew, owners never changed
    st = os.stat(media / "books" / "old.epub")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 1000, 0o664)
    assert os.stat(media / "movies").st_mode & 0o7007 == 0o2005
    # the proof: each party does its job, including on what the others create with umask 022
    assert run_as(0, 0, f"mkdir {media}/books/new && echo a > {media}/books/new/ch1.txt").returncode == 0
    ok = run_as(1000, 1000, f"echo b >> {media}/books/new/ch1.txt && mv {media}/books/new/ch1.txt "
                            f"{media}/books/new/chapter1.txt && mv {media}/books/old.epub {media}/books/renamed.epub")
    assert ok.returncode == 0, ok.stderr
    assert run_as(1000, 1000, f"echo c > {media}/movies/new.mkv").returncode == 0
    smb = run_as(1001, 1001, f"echo d >> {media}/movies/new.mkv && mkdir {media}/movies/show && "
                             f"echo e >> {media}/books/new/chapter1.txt && echo f > {media}/books/from-mac.epub")
    assert smb.returncode == 0, smb.stderr
    assert run_as(1000, 1000, f"echo g >> {media}/books/from-mac.epub && touch {media}/movies/show/s1").returncode == 0
    assert perms(base, *args).returncode == 0


def test_apply_a_second_time_has_nothing_to_do(base: Path) -> None:
    media = seed_tree(base)
    args = ("-f", str(stack(base, media)), "--path", str(media), "--identity", "smb=1001:1001")
    assert perms(base, *args, "--fix", "--apply").returncode == 0
    before = snapshot(media)
    out = perms(base, *args, "--fix", "--apply")
    assert out.returncode == 0 and "nothing to fix" in out.stdout
    assert snapshot(media) == before


def test_root_squash_needs_the_group_in_the_manifest(base: Path) -> None:
    media = seed_tree(base)
    args = ("-f", str(stack(base, media)), "--path", str(media), "--root-squash")
    out = perms(base, *args, "--fix")
    assert out.returncode == 1
    assert (f"audiobookshelf (uid 0 squashed to 65534, groups 65534) cannot write {media} and {media}/movies: "
            "owner 1000:1000, mode 0755; it is neither the owner nor in group 1000; root's capabilities do not count "
            "on the NFS server (root_squash)") in out.stdout
    assert "supplementalGroups:\n" not in out.stdout and "supplementalGroups: [1000]" in out.stdout
    applied = perms(base, *args, "--fix", "--apply")
    assert applied.returncode == 1  # the manifest edit is left to the user
    assert "audiobookshelf (uid 0 squashed to 65534" in applied.stdout.split("AFTER --apply")[1]
    # the kernel: nobody without the group cannot write, with group 1000 (the manifest fix) it can
    assert run_as(65534, 65534, f"touch {media}/books/x").returncode != 0
    assert run_as(65534, 65534, f"touch {media}/books/x", groups=(65534, 1000)).returncode == 0


def test_read_only_mount_is_not_a_denial(base: Path) -> None:
    media = seed_tree(base)
    out = perms(base, "-f", str(stack(base, media, ll_read_only=True)), "--path", str(media), "-o", "json")
    doc = json.loads(out.stdout)
    ll = next(p for p in doc["parties"] if p["name"] == "lazylibrarian")
    assert ll["needs"] == "r" and ll["mount"]["readOnly"] and ll["mount"]["readOnlyBecause"] == "volumeMount readOnly"
    assert not [d for d in doc["denials"] if d["party"] == "lazylibrarian"]
    assert perms(base, "-f", str(stack(base, media, ll_read_only=True)), "--path", str(media)).stdout.count(
        "lazylibrarian (ro)") == 1


def test_claims_and_nfs_exports_map_to_the_path(base: Path) -> None:
    data = base / "export" / "data"
    data.mkdir(parents=True)
    os.chmod(base / "export", 0o755)
    os.chmod(data, 0o775)
    os.chown(data, 0, 3000)
    manifest = base / "claims.yaml"
    manifest.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Pod
        metadata: {name: app}
        spec:
          securityContext: {runAsUser: 2000, runAsGroup: 2000, fsGroup: 3000}
          volumes:
          - {name: c, persistentVolumeClaim: {claimName: media}}
          - {name: n, nfs: {server: nas, path: /mnt/tank/data, readOnly: true}}
          containers:
          - {name: writer, image: x, volumeMounts: [{name: c, mountPath: /c}]}
          - {name: reader, image: x, securityContext: {runAsUser: 0}, volumeMounts: [{name: n, mountPath: /n}]}
        """))
    out = perms(base, "-f", str(manifest), "--path", str(data), "--volume-dir", f"media={data}",
                "--volume-dir", f"nas:/mnt/tank={base / 'export'}", "-o", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    writer, reader = doc["parties"]
    assert writer["mount"]["type"] == "persistentVolumeClaim" and 3000 in writer["groups"]
    assert reader["mount"] == {"volume": "n", "type": "nfs", "hostPath": str(data), "mountPath": "/n",
                               "readOnly": True, "readOnlyBecause": "nfs readOnly"}
    # an NFS server checks AUTH_SYS ids and gives uid 0 its own capabilities (no_root_squash)
    assert "CAP_DAC_READ_SEARCH" in reader["asSeenByFiles"]["capabilities"]


def test_bad_input_is_one_line_and_exit_2(base: Path) -> None:
    media = seed_tree(base)
    s = str(stack(base, media))
    out = perms(base, "-f", s, "--path", str(media), "--identity", "smb=1001")
    assert out.returncode == 2 and out.stderr == "podsec: --identity 'smb=1001': expected NAME=UID:GID[,GROUP...]\n"
    assert perms(base, "-f", s, "--path", str(base / "nope")).returncode == 2
    out = perms(base, "-f", s, "--path", str(base), "-o", "json")
    assert out.returncode == 1  # the stack mounts media/, below base: the containers are judged on that part
    assert {p["name"] for p in json.loads(out.stdout)["parties"]} == {"audiobookshelf", "lazylibrarian", "jellyfin"}
    empty = base / "empty"
    empty.mkdir()
    out = perms(base, "-f", s, "--path", str(empty))
    assert out.returncode == 2 and "no container" in out.stderr and "Traceback" not in out.stderr


def test_symlinks_are_never_followed(base: Path) -> None:
    media = seed_tree(base)
    canary = base / "canary"
    canary.mkdir(mode=0o700)
    (canary / "secret").write_text("s")
    os.chmod(canary / "secret", 0o600)
    os.symlink(canary, media / "books" / "escape")
    os.symlink(canary / "secret", media / "movies" / "secret-link")
    before = snapshot(canary)
    links = {p: os.lstat(p) for p in (media / "books" / "escape", media / "movies" / "secret-link")}
    out = perms(base, "-f", str(stack(base, media)), "--path", str(media), "--identity", "smb=1001:1001",
                "--fix", "--apply")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 symlinks (not followed)" in out.stdout
    assert snapshot(canary) == before
    for p, st in links.items():
        now = os.lstat(p)
        assert (now.st_uid, now.st_gid, now.st_mode) == (st.st_uid, st.st_gid, st.st_mode)
    assert run_as(1001, 1001, f"cat {canary}/secret").returncode != 0


def big_tree(root: Path, dirs: int, files: int) -> None:
    root.mkdir(mode=0o755)
    for d in range(dirs):
        sub = root / f"d{d:04d}"
        sub.mkdir(mode=0o755)
        fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for f in range(files):
                os.close(os.open(f"f{f:04d}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
        finally:
            os.close(fd)


def test_interrupted_apply_resumes_with_its_plan(base: Path) -> None:
    """kill -9 in the middle of --apply; the re-run says it resumes, uses the journal, and finishes."""
    tree = base / "tree"
    big_tree(tree, 60, 100)
    args = ["--path", str(tree), "--identity", "a=1000:1000,2000", "--identity", "b=1001:1001,2000"]
    store = base / "store"
    proc = subprocess.Popen([PODSEC, "--root", str(store), "perms", *args, "--fix", "--apply"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal_dir = store / "perms"
    deadline = time.monotonic() + 60
    killed = False
    while time.monotonic() < deadline and proc.poll() is None:
        journals = list(journal_dir.glob("*.journal")) if journal_dir.exists() else []
        if journals and journals[0].read_bytes().count(b"\n") >= 4:  # header + 3 finished directories
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.001)
    proc.wait()
    assert killed, "the apply finished before it could be interrupted"
    journal = next(journal_dir.glob("*.journal"))
    header = json.loads(journal.read_text().splitlines()[0])
    assert header["fix"]["gid"] == 2000 and header["root"] == str(tree)
    groups = {os.stat(p).st_gid for p in tree.glob("d*/f0000")}
    assert groups == {0, 2000}, groups  # half done
    out = subprocess.run([PODSEC, "--root", str(store), "perms", *args, "--fix", "--apply"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resuming the apply interrupted on" in out.stderr
    assert not journal.exists()
    assert {os.stat(p).st_gid for p in tree.glob("d*/f*")} == {2000}
    assert {os.stat(p).st_mode & 0o7777 for p in tree.glob("d*")} == {0o2775}
    assert run_as(1001, 1001, f"touch {tree}/d0000/new", groups=(1001, 2000)).returncode == 0


def test_big_trees_are_summarised(base: Path) -> None:
    tree = base / "tree"
    big_tree(tree, 60, 5)
    os.chmod(tree / "d0007", 0o700)
    out = perms(base, "--path", str(tree), "--identity", "a=1000:1000", "--max-rows", "10")
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    table = lines[2:lines.index(next(ln for ln in lines if ln.startswith("(r list")))]
    assert len(table) <= 12, table
    assert any("(61 dirs, 300 files)" in ln or "dirs," in ln for ln in table)
    assert f"a (uid 1000, groups 1000) cannot enter {tree}/d0007: owner root:root, mode 0700; it is neither the " \
           "owner nor in group 0" in out.stdout
    assert f"a (uid 1000, groups 1000) cannot write {tree} and 59 other directories like it" in out.stdout


def test_mounts_under_the_path_are_never_changed(base: Path) -> None:
    """A bind mount keeps its st_dev, and can bring any host directory (or file) under the path."""
    media = seed_tree(base)
    outside = base / "outside"
    outside.mkdir(mode=0o755)
    (outside / "passwd").write_text("p")
    (media / "books" / "bound").mkdir()
    (media / "movies" / "bound-file").write_text("")
    before = snapshot(outside)
    mounted = []
    try:
        for src, dst in ((outside, media / "books" / "bound"), (outside / "passwd", media / "movies" / "bound-file")):
            subprocess.run(["mount", "--bind", str(src), str(dst)], check=True)
            mounted.append(dst)
        out = perms(base, "-f", str(stack(base, media)), "--path", str(media), "--identity", "smb=1001:1001",
                    "--fix", "--apply")
        assert f"note: {media}/books/bound is a mount point: judged, never changed by --apply" in out.stdout
        assert snapshot(outside) == before
        assert os.stat(media / "books" / "old.epub").st_gid == 1000  # the rest was fixed
    finally:
        for dst in reversed(mounted):
            subprocess.run(["umount", str(dst)], check=True)


def test_the_printed_commands_do_what_apply_does(base: Path) -> None:
    """--fix prints coreutils/setfacl commands; run on a copy of the tree they give the same result."""
    trees = []
    for name in ("by-commands", "by-apply"):
        d = base / name
        d.mkdir()
        trees.append(seed_tree(d))
        for f, mode in (("tool", 0o4755), ("sgid-tool", 0o2755), ("lock", 0o2644)):  # chgrp drops s-bits
            (trees[-1] / "books" / f).write_text("")
            os.chmod(trees[-1] / "books" / f, mode)
    args = ("--identity", "smb=1001:1001,2000", "--identity", "ll=1000:1000,2000", "--identity", "mac=1002:1002")
    doc = json.loads(perms(base, "--path", str(trees[0]), *args, "--fix", "-o", "json").stdout)
    commands = [c for f in doc["fixes"] if f["appliedByApply"] for c in f["commands"]]
    assert commands and all(c.split()[0] in ("chgrp", "setfacl", "find") for c in commands)
    for c in commands:
        subprocess.run(["sh", "-c", c], check=True)
    assert perms(base, "--path", str(trees[1]), *args, "--fix", "--apply").returncode == 0

    def relative(tree: Path) -> dict[str, object]:
        return {k[len(str(tree)):]: v for k, v in snapshot(tree).items()}

    assert relative(trees[0]) == relative(trees[1])
    assert doc["treeFix"]["gid"] == 2000 and doc["treeFix"]["users"] == [[1002, 7]]
    assert os.stat(trees[1] / "books" / "tool").st_mode & 0o7777 == 0o775
    assert os.stat(trees[1] / "books" / "sgid-tool").st_mode & 0o7777 == 0o775
    assert os.stat(trees[1] / "books" / "lock").st_mode & 0o7777 == 0o2664
