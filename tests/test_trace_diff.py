"""``podsec.trace.diff``: reading an overlay upper directory against the image, and volume snapshots, on real
directories: hand-made upper trees with real whiteout devices and opaque xattrs, and a real overlay mount
whose upper directory the kernel itself fills.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from podsec.trace.diff import ImageTree, RuntimePaths, diff_snapshots, diff_upper, snapshot
from podsec.trace.model import Change

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts (mknod) and trusted.* xattrs need root")


def make_tree(root: Path, spec: dict[str, str | bytes | None]) -> Path:
    """``{"etc/passwd": "text", "tmp/": None, "bin/sh": "->/bin/busybox"}``: files, dirs (trailing /), symlinks."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in sorted(spec.items()):
        path = root / name.rstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir(exist_ok=True)
        elif isinstance(content, str) and content.startswith("->"):
            path.symlink_to(content[2:])
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else (content or b""))
    return root


def whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def same_times(upper: Path, lower: Path, rel: str) -> None:
    """Give an upper directory its image twin's times, as overlayfs' copy-up does."""
    st = os.lstat(lower / rel)
    os.utime(upper / rel, ns=(st.st_atime_ns, st.st_mtime_ns))


IMAGE = {
    "bin/busybox": b"\x7fELF" + b"\0" * 96,
    "bin/sh": "->/bin/busybox",
    "etc/passwd": "root:x:0:0::/root:/bin/sh\n",
    "etc/group": "root:x:0:\n",
    "etc/nginx/conf.d/default.conf": "server { listen 80; }\n",
    "etc/nginx/nginx.conf": "events {}\n",
    "tmp/": None,
    "var/cache/nginx/": None,
    "var/lib/apt/lists/x": "0123456789",
    "link": "->/",
}


@pytest.fixture
def image(tmp_path: Path) -> ImageTree:
    return ImageTree(make_tree(tmp_path / "lower", IMAGE))


def by_path(changes: list[Change]) -> dict[str, tuple[str, str, int]]:
    return {c.path: (c.action, c.type, c.size) for c in changes}


# -- the image view ---------------------------------------------------------------------------------


def test_image_tree_never_follows_symlinks_onto_the_host(image: ImageTree) -> None:
    assert image.kind("/link") == "symlink"
    assert image.kind("/link/etc/passwd") is None  # /link -> / would be the host's / if followed
    assert image.kind("/bin/sh") == "symlink"
    assert image.kind("/bin/sh/x") is None
    assert image.kind("/etc/nginx/conf.d") == "dir"
    assert image.entries("/etc/nginx/conf.d") == ["default.conf"]
    assert image.entries("/tmp") == []
    assert image.tree_size("/var/lib") == (10, 1)


# -- hand-made upper directories ----------------------------------------------------------------------


@needs_root
def test_created_changed_and_deleted_entries(tmp_path: Path, image: ImageTree) -> None:
    lower = image.root
    upper = make_tree(tmp_path / "upper", {
        "tmp/x": "hello",
        "run/app.pid": "42\n",
        "etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        "etc/nginx/conf.d/": None,
        "var/cache/app/sub/": None,
        "var/cache/app/sub/blob": b"\0" * 5000,
        "tmp/escape": "->/etc",
    })
    whiteout(upper / "etc/group")
    whiteout(upper / "var/lib/apt")  # rm -rf of an image directory is one whiteout
    whiteout(upper / "etc/nginx/conf.d/gone.conf")  # a whiteout for a name the image never had
    for rel in ("etc", "etc/nginx", "etc/nginx/conf.d", "var", "var/cache", "var/lib"):
        if (upper / rel).is_dir():
            same_times(upper, lower, rel)
    got = by_path(diff_upper(upper, image).changes)
    assert got == {
        "/etc/group": ("deleted", "file", 10),
        "/etc/passwd": ("changed", "file", 53),
        "/run": ("created", "dir", 0),
        "/run/app.pid": ("created", "file", 3),
        "/tmp/escape": ("created", "symlink", 4),
        "/tmp/x": ("created", "file", 5),
        "/var/cache/app": ("created", "dir", 0),
        "/var/cache/app/sub": ("created", "dir", 0),
        "/var/cache/app/sub/blob": ("created", "file", 5000),
        "/var/lib/apt": ("deleted", "dir", 10),
    }


@needs_root
def test_xattr_whiteout_counts_as_a_deletion(tmp_path: Path, image: ImageTree) -> None:
    upper = make_tree(tmp_path / "upper", {"etc/": None, "etc/passwd": b""})
    os.setxattr(upper / "etc/passwd", "trusted.overlay.whiteout", b"")
    same_times(upper, image.root, "etc")
    assert by_path(diff_upper(upper, image).changes) == {"/etc/passwd": ("deleted", "file", 26)}


@needs_root
def test_opaque_directory_hides_every_image_entry_in_it(tmp_path: Path, image: ImageTree) -> None:
    upper = make_tree(tmp_path / "upper", {"etc/nginx/nginx.conf": "new\n", "etc/nginx/conf.d/": None})
    os.setxattr(upper / "etc/nginx", "trusted.overlay.opaque", b"y")
    same_times(upper, image.root, "etc")
    got = by_path(diff_upper(upper, image).changes)
    assert got == {
        "/etc/nginx": ("changed", "dir", 0),
        "/etc/nginx/nginx.conf": ("changed", "file", 4),
        # conf.d exists again, but not merged with the image's: its default.conf is gone
        "/etc/nginx/conf.d": ("changed", "dir", 0),
        "/etc/nginx/conf.d/default.conf": ("deleted", "file", 22),
    }


@needs_root
def test_image_directory_changes_without_children(tmp_path: Path, image: ImageTree) -> None:
    upper = make_tree(tmp_path / "upper", {"tmp/": None, "var/cache/nginx/": None, "etc/": None})
    same_times(upper, image.root, "etc")
    same_times(upper, image.root, "var")
    same_times(upper, image.root, "var/cache")
    os.utime(upper / "tmp", (1_700_000_000, 1_700_000_000))  # a file was created and removed again
    same_times(upper, image.root, "var/cache/nginx")
    os.chmod(upper / "var/cache/nginx", 0o700)  # chmod of an image directory
    got = by_path(diff_upper(upper, image).changes)
    assert got == {"/tmp": ("changed", "dir", 0), "/var/cache/nginx": ("changed", "dir", 0)}


@needs_root
def test_runtime_mount_points_are_not_app_writes(tmp_path: Path, image: ImageTree) -> None:
    upper = make_tree(tmp_path / "upper", {
        "etc/hosts": b"", "etc/hostname": b"", "etc/resolv.conf": b"",
        "data/x/": None, "work/here/": None, "work/here/out": "written",
        "etc/app/cfg/": None,
    })
    os.utime(upper / "etc", (1_700_000_000, 1_700_000_000))  # the mount points changed /etc's mtime
    runtime = RuntimePaths.of(["/proc", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/data/x",
                               "/etc/app/cfg"], "/work/here")
    got = by_path(diff_upper(upper, image, runtime).changes)
    assert got == {"/work/here/out": ("created", "file", 7)}
    without = by_path(diff_upper(upper, image).changes)  # the same tree, not told about the runtime
    assert "/etc/hosts" in without and "/data/x" in without and "/work/here" in without


def test_a_directory_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    lower = make_tree(tmp_path / "lower", {"tmp/": None})
    secret = make_tree(tmp_path / "host-secret", {"key": "s3cret"})
    upper = make_tree(tmp_path / "upper", {"tmp/": None})
    (upper / "tmp" / "d").symlink_to(secret)
    got = by_path(diff_upper(upper, ImageTree(lower)).changes)
    assert got == {"/tmp/d": ("created", "symlink", len(str(secret)))}  # and nothing of host-secret/key


# -- a real overlay mount -------------------------------------------------------------------------------


@needs_root
def test_real_overlay_upper_directory(tmp_path: Path, image: ImageTree) -> None:
    """The kernel writes the whiteouts, opaque directories and copy-ups; the diff reads them back."""
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    opts = f"lowerdir={image.root},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        (merged / "tmp/x").write_text("hello")
        (merged / "var/cache/nginx/client_temp").mkdir()
        (merged / "var/cache/nginx/client_temp/1").write_bytes(b"a" * 1234)
        (merged / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:101:101::/:/bin/sh\n")
        (merged / "etc/group").unlink()
        subprocess.run(["rm", "-rf", str(merged / "etc/nginx/conf.d")], check=True)
        (merged / "etc/nginx/conf.d").mkdir()
        (merged / "etc/nginx/conf.d/site.conf").write_text("server {}\n")
        (merged / "run").mkdir()
        (merged / "run/nginx.pid").write_text("1\n")
        (merged / "run/nginx.pid").unlink()
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    got = by_path(diff_upper(upper, image).changes)
    assert got == {
        "/etc/group": ("deleted", "file", 10),
        "/etc/nginx/conf.d": ("changed", "dir", 0),
        "/etc/nginx/conf.d/default.conf": ("deleted", "file", 22),
        "/etc/nginx/conf.d/site.conf": ("created", "file", 10),
        "/etc/passwd": ("changed", "file", 51),
        "/run": ("created", "dir", 0),
        "/tmp/x": ("created", "file", 5),
        "/var/cache/nginx/client_temp": ("created", "dir", 0),
        "/var/cache/nginx/client_temp/1": ("created", "file", 1234),
    }


# -- volume snapshots -------------------------------------------------------------------------------------


def test_volume_snapshots(tmp_path: Path) -> None:
    vol = make_tree(tmp_path / "vol", {"keep": "same", "edit": "old", "old/a": "12345", "old/b/c": "123",
                                        "sub/": None})
    outside = make_tree(tmp_path / "outside", {"big": "x" * 100})
    before = snapshot(vol)
    (vol / "edit").write_text("new content")
    (vol / "new").write_text("hello")
    subprocess.run(["rm", "-rf", str(vol / "old")], check=True)
    (vol / "link").symlink_to(outside)
    (vol / "sub" / "mountpoint").mkdir()  # made by the runtime for a nested mount
    after = snapshot(vol)
    got = by_path(diff_snapshots(before, after, lambda rel: "/data/" + rel if rel else "/data",
                                 skip={"sub/mountpoint"}))
    assert got == {
        "/data/edit": ("changed", "file", 11),
        "/data/new": ("created", "file", 5),
        "/data/old": ("deleted", "dir", 8),
        "/data/link": ("created", "symlink", len(str(outside))),
    }


def test_snapshot_limit_turns_off_deletions(tmp_path: Path) -> None:
    vol = make_tree(tmp_path / "vol", {f"f{i}": "x" for i in range(20)})
    before = snapshot(vol, limit=5)
    assert not before.complete and len(before.entries) == 5
    (vol / "f0").unlink()
    after = snapshot(vol, limit=5)
    assert not [c for c in diff_snapshots(before, after, str) if c.action == "deleted"]
