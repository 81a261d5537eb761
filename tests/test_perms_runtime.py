"""Seed 000 end to end with real containers: a root Audiobookshelf, a uid-1000 LazyLibrarian, a Jellyfin with
umask 022 and an SMB user that is not 1000 share one hostPath. The containers make the start state
themselves; ``podsec perms`` explains what is denied; ``--fix --apply`` fixes the tree; then every party
really does its job — in runc containers and, for the SMB user, on the host through ``setpriv`` — including
on the files and directories the others create afterwards.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Podsec
from test_perms_support import needs_setpriv, reachable_dir, run_as

pytestmark = [pytest.mark.runtime, needs_setpriv]

PODS = {
    # name: (image, securityContext, mountPath, subPath)
    "audiobookshelf": ("podsec-fixture:root", "{}", "/media", ""),
    "lazylibrarian": ("podsec-fixture:uid1000", "{runAsUser: 1000, runAsGroup: 1000}", "/books", "books"),
    "jellyfin": ("podsec-fixture:uid1000", "{runAsUser: 1000, runAsGroup: 1000}", "/media", ""),
}


def pod_yaml(name: str, media: Path, script: str = "true") -> str:
    image, sc, mount, sub = PODS[name]
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}}}
        spec:
          restartPolicy: Never
          securityContext: {sc}
          volumes: [{{name: media, hostPath: {{path: {media}, type: Directory}}}}]
          containers:
          - name: {name}
            image: {image}
            command: ["sh", "-c", {script!r}]
            volumeMounts: [{{name: media, mountPath: {mount}{', subPath: ' + sub if sub else ''}}}]
        """).replace("'", '"')


def run_pod(podsec: Podsec, base: Path, name: str, script: str) -> tuple[int, str]:
    path = base / f"{name}.yaml"
    path.write_text(pod_yaml(name, base / "media", script))
    out = podsec.run("run", "--rm", "-f", str(path))
    return out.returncode, out.stdout + out.stderr


@pytest.fixture
def base() -> Iterator[Path]:
    yield from reachable_dir()


def test_seed_000_every_party_does_its_job(podsec: Podsec, base: Path) -> None:
    media = base / "media"
    media.mkdir()
    os.chown(media, 1000, 1000)  # the share, handed to the media apps' user
    os.chmod(media, 0o755)
    stack = base / "stack.yaml"
    stack.write_text("---\n".join(pod_yaml(n, media) for n in PODS))
    args = ("perms", "-f", str(stack), "--path", str(media), "--identity", "smb=1001:1001")

    # The start state, made by the containers themselves.
    code, out = run_pod(podsec, base, "audiobookshelf", "mkdir -p /media/books && echo x > /media/books/old.epub")
    assert code == 0, out
    code, out = run_pod(podsec, base, "jellyfin", "umask 022; mkdir /media/movies && echo x > /media/movies/film.mkv")
    assert code == 0, out
    st = os.stat(media / "books")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o755)
    st = os.stat(media / "movies" / "film.mkv")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o644)

    # What podsec says is denied ...
    before = podsec.run(*args)
    assert before.returncode == 1, before.stdout + before.stderr
    text = before.stdout
    # (uid 1000 is "app" in the fixture image, a member of its group "extra" (5000): containerd merges it)
    assert (f"lazylibrarian (uid 1000, groups 1000,5000) cannot write {media}/books: owner root:root, mode 0755; "
            "it is neither the owner nor in group 0") in text
    assert (f"smb (uid 1001, groups 1001) cannot write {media} and {media}/movies: owner 1000:1000, mode 0755; "
            "it is neither the owner nor in group 1000") in text
    assert (f"files audiobookshelf creates in {media}/books get root:root mode 0644 (umask 022), so lazylibrarian "
            "(uid 1000, groups 1000,5000) cannot write them: it is neither the owner nor in group 0") in text
    assert (f"files jellyfin creates in {media} and {media}/movies get 1000:1000 mode 0644 (umask 022), so smb (uid "
            "1001, groups 1001) cannot write them: it is neither the owner nor in group 1000") in text
    assert "assumed" not in text  # the image store told podsec who the images run as
    # ... really is denied.
    code, out = run_pod(podsec, base, "lazylibrarian", "touch /books/new")
    assert code != 0 and "Permission denied" in out
    assert run_as(1001, 1001, f"touch {media}/movies/new").returncode != 0

    proposed = podsec.run(*args, "--fix")
    assert proposed.returncode == 1
    assert f"$ chgrp -R 1000 {media}" in proposed.stdout
    assert f"$ setfacl -R -P -m u:1001:rwX,d:u:1001:rwx {media}" in proposed.stdout
    applied = podsec.run(*args, "--fix", "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = podsec.run(*args)
    assert after.returncode == 0 and "none: every party can do its job" in after.stdout, after.stdout

    # Every party does its job, on what the others create too (all with umask 022).
    code, out = run_pod(podsec, base, "audiobookshelf",
                        "mkdir /media/books/new-book && echo a > /media/books/new-book/ch1.txt && "
                        "mv /media/books/old.epub /media/books/old-renamed.epub")
    assert code == 0, out
    code, out = run_pod(podsec, base, "lazylibrarian",
                        "echo b >> /books/new-book/ch1.txt && mv /books/new-book/ch1.txt /books/new-book/chapter-1.txt"
                        " && mv /books/old-renamed.epub /books/Old.epub && mkdir /books/by-ll && echo l > /books/by-ll/x")
    assert code == 0, out
    code, out = run_pod(podsec, base, "jellyfin",
                        "umask 022; echo c > /media/movies/new.mkv && mkdir /media/movies/show && "
                        "mv /media/books/new-book/chapter-1.txt /media/books/new-book/chapter-01.txt")
    assert code == 0, out
    smb = run_as(1001, 1001, f"echo d >> {media}/movies/new.mkv && echo e > {media}/movies/show/s01.mkv && "
                             f"echo f >> {media}/books/by-ll/x && mkdir {media}/books/from-mac && "
                             f"echo g > {media}/books/from-mac/b.epub && mv {media}/movies/film.mkv {media}/movies/f.mkv")
    assert smb.returncode == 0, smb.stderr
    code, out = run_pod(podsec, base, "lazylibrarian",
                        "echo h >> /books/from-mac/b.epub && touch /books/from-mac/c && rm /books/by-ll/x")
    assert code == 0, out
    code, out = run_pod(podsec, base, "jellyfin", "umask 022; echo i >> /media/movies/show/s01.mkv")
    assert code == 0, out
    for path, uid in (("books/new-book/chapter-01.txt", 0), ("movies/new.mkv", 1000), ("books/from-mac/b.epub", 1001)):
        st = os.stat(media / path)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (uid, 1000, 0o664), path
    assert (media / "books" / "new-book" / "chapter-01.txt").read_text() == "a\nb\n"
    assert (media / "movies" / "show" / "s01.mkv").read_text() == "e\ni\n"
    final = podsec.run(*args)
    assert final.returncode == 0, final.stdout
