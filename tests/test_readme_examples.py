"""The README's examples, run as the README shows them, so the documented output stays true.

Each test runs a command on a file in ``examples/`` and checks that lines the README quotes as its output
come out the same (lines with times, dates or random names are left out), plus what a reader would check
next (the patched manifest runs, the fixed manifest passes restricted, the gate changes the owner).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import Podsec

pytestmark = pytest.mark.runtime

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
README = (REPO / "README.md").read_text()


def quoted(*lines: str) -> None:
    """The README shows each of these lines (so a test that finds them in real output keeps it honest)."""
    for line in lines:
        assert line in README, f"the README no longer shows: {line!r}"


def test_trace_writer(podsec: Podsec, tmp_path: Path) -> None:
    out = podsec.run("trace", "-f", str(EXAMPLES / "writer.yaml"))
    assert out.returncode == 0, out.stderr
    lines = [
        "    mount an emptyDir at:",
        "      /run        temporary files only  not in the image",
        "      /var/cache  1 file, 200 kB        not in the image",
        "      created  file    /data/state  8 B",
        "      created  file    /var/cache/app/v1/index.bin  200 kB",
        "1 of 1 container(s) can run with readOnlyRootFilesystem: true given 3 emptyDir mount(s) (checked by "
        "running them again under the mounts); podsec trace -o yaml prints the manifest patched that way.",
    ]
    quoted(*lines)
    for line in lines:
        assert line in out.stdout.splitlines(), (line, out.stdout)
    assert re.search(r"^      /tmp        1 file, 0 B           empty in the image$", out.stdout, re.M)

    patched = podsec.run("trace", "-f", str(EXAMPLES / "writer.yaml"), "-o", "yaml")
    assert patched.returncode == 0, patched.stderr
    assert patched.stdout.startswith("# An app that writes where people forget")  # comments kept
    path = tmp_path / "writer-ro.yaml"
    path.write_text(patched.stdout)
    ran = podsec.run("run", "--rm", "-f", str(path))
    assert (ran.returncode, ran.stdout) == (0, "done\n"), ran.stderr

    bare = tmp_path / "writer-ro-bare.yaml"
    bare.write_text((EXAMPLES / "writer.yaml").read_text().replace(
        "      mountPath: /data\n", "      mountPath: /data\n    securityContext: {readOnlyRootFilesystem: true}\n"))
    failed = podsec.run("run", "--rm", "-f", str(bare))
    assert failed.returncode != 0
    assert "mkdir: can't create directory '/run': Read-only file system" in failed.stdout + failed.stderr


def test_fix_cache_app_then_check_restricted(podsec: Podsec, tmp_path: Path) -> None:
    out = podsec.run("fix", "--trace", "--duration", "5s", str(EXAMPLES / "cache-app.yaml"))
    assert out.returncode == 0, out.stderr
    lines = [
        "examples/cache-app.yaml:14: Deployment/cache-app: pod: runAsNonRoot: true, seccompProfile: RuntimeDefault",
        'examples/cache-app.yaml:16: Deployment/cache-app: container "app": allowPrivilegeEscalation: false, '
        "capabilities.drop: [ALL]",
        "podsec fix: fixed 1 of 1 workload (1 file)",
    ]
    quoted(*lines)
    err = out.stderr.replace(str(EXAMPLES) + "/", "examples/")
    for line in lines:
        assert line in err.splitlines(), (line, out.stderr)
    assert 'container "app": readOnlyRootFilesystem: true, emptyDir: /home/app, /tmp (traced: 1 run as uid 1000, ' \
           "then read-only: still running when the trace stopped it after " in err
    fixed = tmp_path / "cache-app.yaml"
    fixed.write_text(out.stdout)
    check = podsec.run("check", "--level", "restricted", str(fixed))
    assert check.returncode == 0, check.stdout
    assert f'Deployment/cache-app ({fixed}:1): PodSecurity "restricted:latest" allowed; 0 finding(s)' in check.stdout
    # the README's diff: every added line is in the fixed manifest, and nothing else changed
    block = README.split("$ diff examples/cache-app.yaml cache-app.yaml\n", 1)[1].split("```", 1)[0]
    added = [ln[2:] for ln in block.splitlines() if ln.startswith("> ")]
    original = (EXAMPLES / "cache-app.yaml").read_text().splitlines()
    assert [ln for ln in out.stdout.splitlines() if ln not in original] == added


def test_creds_need_the_gate(podsec: Podsec) -> None:
    example = str(EXAMPLES / "creds.yaml")
    off = podsec.run("run", "--rm", "-f", example)
    assert off.returncode == 1
    assert "cat: can't open '/home/app/.pgpass': Permission denied" in off.stdout + off.stderr
    assert "to honour it use --feature-gates PodSecurityContextFSUser=true" in off.stderr
    on = podsec.run("run", "--rm", "--feature-gates", "PodSecurityContextFSUser=true", "-f", example)
    assert on.returncode == 0, on.stderr
    owners = re.findall(r"^-rw-------\s+1 (\d+)\s+(\d+)\s+\d+ .* (/home/app/\S+)$", on.stdout, re.M)
    assert sorted(owners) == [("1000", "0", "/home/app/.pgpass"), ("1000", "0", "/home/app/.ssh/authorized_keys")]
    assert on.stdout.rstrip().endswith("db.example:5432:app:app:s3cret")
    quoted("cat: can't open '/home/app/.pgpass': Permission denied", "db.example:5432:app:app:s3cret")


def test_linuxserver_explain_and_check(podsec: Podsec) -> None:
    example = str(EXAMPLES / "linuxserver.yaml")
    explain = podsec.run("explain", example)
    assert explain.returncode == 0, explain.stderr
    lines = [
        "    - PUID/PGID image: /init starts as uid 1000, gid ?, not root, and fails before the app starts",
        "    - PUID/PGID warning: the image is not in the local store: assuming its ENTRYPOINT is /init",
    ]
    quoted(*lines)
    for line in lines:
        assert line in explain.stdout.splitlines(), (line, explain.stdout)
    check = podsec.run("check", "--min-severity", "high", example)
    assert check.returncode == 1 and "PS008" in check.stdout


def _table(text: str, media: str) -> list[list[str]]:
    """The matrix rows (PATH … access), whitespace-split, with the shared path spelled as in the README."""
    rows = []
    for line in text.replace(media, "/srv/media").splitlines():
        if line.startswith(("PATH ", "/srv/media/ ")) or re.match(r"^ {2,4}(\S+/|\d+ files?) ", line):
            rows.append(line.split())
    return rows


def test_perms_media_stack(podsec: Podsec) -> None:
    from test_perms_support import reachable_dir

    for base in reachable_dir():
        media = base / "media"
        (media / "books").mkdir(parents=True)
        (media / "movies").mkdir()
        (media / "books" / "old.epub").write_text("x\n")
        (media / "movies" / "film.mkv").write_text("x\n")
        for p in (media, media / "movies", media / "movies" / "film.mkv"):
            os.chown(p, 1000, 1000)
        stack = base / "media-stack.yaml"
        stack.write_text((EXAMPLES / "media-stack.yaml").read_text().replace("/srv/media", str(media)))
        args = ("perms", "-f", str(stack), "--path", str(media), "--identity", "smb=1001:1001")

        before = podsec.run(*args)
        assert before.returncode == 1, before.stdout + before.stderr
        block = README.split("$ podsec perms -f examples/media-stack.yaml --path /srv/media --identity smb=1001:1001\n",
                             1)[1].split("\n\n", 2)[1]
        assert _table(before.stdout, str(media)) == _table(block, "/srv/media") != []
        assert "DENIALS (16)" in before.stdout and "DENIALS (16)" in README

        applied = podsec.run(*args, "--fix", "--apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        after = podsec.run(*args)
        assert after.returncode == 0 and "none: every party can do its job" in after.stdout
        block = README.split("--identity smb=1001:1001 --fix --apply\n", 1)[1].split("```", 1)[0]
        assert _table(after.stdout, str(media)) == _table(block, "/srv/media") != []
        new_files = [ln for ln in after.stdout.splitlines() if " creates files as " in ln]
        assert new_files and all(ln in README for ln in new_files)
