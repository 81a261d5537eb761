"""``podsec.trace.group``: from root-filesystem writes to the fewest emptyDir directories, judged against a real
image tree on disk (an nginx-like layout: content in /etc/nginx, /var/lib, /var/log; empty /var/cache/nginx,
/var/log/nginx and /tmp; no /run), and what an emptyDir would hide where no directory is empty (Debian's
nginx-light: /run holds lock/ and mount/, /var/log/nginx ships two empty logs).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from podsec.trace.diff import ImageTree
from podsec.trace.group import HIDES_EMPTY, NEVER_MOUNT, SEEDED, group_writes, hidden
from podsec.trace.model import Change
from test_trace_diff import make_tree

NGINX_LIKE = {
    "bin/busybox": "elf",
    "etc/passwd": "root:x:0:0::/root:/bin/sh\n",
    "etc/nginx/nginx.conf": "events {}\n",
    "etc/nginx/conf.d/default.conf": "server {}\n",
    "etc/nginx/conf.d/gzip.conf": "gzip on;\n",
    "tmp/": None,
    "usr/share/nginx/html/index.html": "<h1>hi</h1>\n",
    "var/cache/nginx/": None,
    "var/cache/apt/pkgcache.bin": "x" * 100,
    "var/lib/dpkg/status": "Package: nginx\n",
    "var/log/nginx/": None,
    "var/log/dpkg.log": "install nginx\n",
    "var/run": "->/run",
    "home/app/": None,
}


@pytest.fixture
def image(tmp_path: Path) -> ImageTree:
    return ImageTree(make_tree(tmp_path / "image", NGINX_LIKE))


def created(path: str, size: int = 0, type_: str = "file") -> Change:
    return Change(path, "created", type_, size)  # type: ignore[arg-type]


def test_nginx_writes_become_four_mounts(image: ImageTree) -> None:
    g = group_writes([
        created("/run", type_="dir"), created("/run/nginx.pid", 3),
        created("/tmp/upload.1", 100),
        created("/var/cache/nginx/client_temp", type_="dir"), created("/var/cache/nginx/client_temp/00/1", 2000),
        created("/var/cache/nginx/proxy_temp", type_="dir"),
        created("/var/log/nginx/access.log", 500), created("/var/log/nginx/error.log", 0),
    ], image)
    assert [(m.path, m.reason, m.files, m.size) for m in g.mounts] == [
        ("/run", "not in the image", 1, 3),
        ("/tmp", "empty in the image", 1, 100),
        ("/var/cache/nginx", "empty in the image", 1, 2000),
        ("/var/log/nginx", "empty in the image", 2, 500),
    ]
    assert g.problems == [] and g.uncovered == []


def test_new_directories_merge_under_the_shallowest_safe_one(tmp_path: Path) -> None:
    image = ImageTree(make_tree(tmp_path / "img", {"bin/sh": "x", "etc/passwd": "x", "tmp/": None}))
    g = group_writes([
        created("/var", type_="dir"), created("/var/cache", type_="dir"), created("/var/cache/app", type_="dir"),
        created("/var/cache/app/a/b/c", 7), created("/var/cache/app/d", 3), created("/var/cache/other", 1),
        created("/opt/app/data", type_="dir"),
    ], image)
    # /var is never proposed; /var/cache is not in the image, so it holds all three; /var itself will be made
    # by the runtime as the mount point's parent, so it is not a problem.
    assert [(m.path, m.files, m.size) for m in g.mounts] == [("/opt", 0, 0), ("/var/cache", 3, 11)]
    assert g.problems == []


def test_a_changed_image_file_is_a_problem_naming_the_directory_and_the_way_out(image: ImageTree) -> None:
    g = group_writes([
        Change("/etc/nginx/conf.d/default.conf", "changed", "file", 40),
        created("/etc/nginx/conf.d/extra.conf", 10),
        created("/tmp/x", 1),
    ], image)
    assert [m.path for m in g.mounts] == ["/tmp"]
    assert len(g.problems) == 1
    msg = g.problems[0]
    assert msg == ("changes /etc/nginx/conf.d/default.conf (from the image), creates /etc/nginx/conf.d/extra.conf: "
                   "/etc/nginx/conf.d holds image files (default.conf, gzip.conf) that an emptyDir at "
                   "/etc/nginx/conf.d would hide, and the image has no cp to copy them into it; bake the change "
                   "into the image (or ship /etc/nginx/conf.d with it), or make the app write elsewhere")
    assert {c.path for c in g.uncovered} == {"/etc/nginx/conf.d/default.conf", "/etc/nginx/conf.d/extra.conf"}


def test_deleting_image_content_is_a_problem(image: ImageTree) -> None:
    g = group_writes([Change("/var/cache/apt/pkgcache.bin", "deleted", "file", 100)], image)
    assert g.mounts == []
    assert g.problems == [
        "deletes /var/cache/apt/pkgcache.bin (from the image): /var/cache/apt holds image files (pkgcache.bin) "
        "that an emptyDir at /var/cache/apt would hide, and the image has no cp to copy them into it; bake the "
        "change into the image (or ship /var/cache/apt with it), or make the app write elsewhere"]


@pytest.mark.parametrize(("path", "where"), [
    ("/app.log", "/"), ("/etc/app.conf", "/etc"), ("/usr/share/nginx/html/cache.html", "/usr/share/nginx/html"),
])
def test_never_over_system_directories_or_image_content(image: ImageTree, path: str, where: str) -> None:
    g = group_writes([created(path, 5)], image)
    assert g.mounts == []
    assert len(g.problems) == 1
    if where in NEVER_MOUNT:
        assert f"an emptyDir never goes over {where}" in g.problems[0]
    else:
        assert f"{where} holds image files (index.html)" in g.problems[0]


def test_an_empty_system_directory_is_still_never_proposed(tmp_path: Path) -> None:
    image = ImageTree(make_tree(tmp_path / "img", {"etc/": None, "bin/sh": "x"}))
    g = group_writes([created("/etc/app.conf", 1), created("/var", type_="dir"), created("/var/x", 1)], image)
    assert g.mounts == []
    assert [p.split(":")[0] for p in g.problems] == ["creates /etc/app.conf", "creates /var, creates /var/x"]


def test_a_replaced_image_symlink_blocks_everything_below_it(image: ImageTree) -> None:
    g = group_writes([Change("/var/run", "changed", "dir", 0), created("/var/run/app/pid", 2)], image)
    assert g.mounts == []
    assert len(g.uncovered) == 2


def test_an_image_directory_changed_in_place(image: ImageTree) -> None:
    g = group_writes([Change("/tmp", "changed", "dir", 0), Change("/home/app", "changed", "dir", 0)], image)
    assert [(m.path, m.files) for m in g.mounts] == [("/home/app", 0), ("/tmp", 0)]


def test_random_writes_are_covered_minimally_and_safely(image: ImageTree) -> None:
    """Property: every placed write lies under exactly one mount, no mount lies under another, no mount is a
    system directory, and one that hides anything hides only empty entries (the image has no cp)."""
    rng = random.Random(7)
    names = ["a", "b", "nginx", "cache", "tmp", "run", "log", "app"]
    roots = ["/tmp", "/run", "/var/cache/nginx", "/var/log/nginx", "/var/cache", "/srv", "/etc/nginx", "/home"]
    for _ in range(200):
        changes = []
        for _ in range(rng.randint(1, 8)):
            depth = rng.randint(1, 3)
            path = rng.choice(roots) + "".join("/" + rng.choice(names) for _ in range(depth))
            changes.append(created(path, rng.randint(0, 100)))
        g = group_writes(changes, image)
        mounts = [m.path for m in g.mounts]
        for m in mounts:
            assert m not in NEVER_MOUNT
            h = hidden(image, m)
            assert image.kind(m) is None or (image.kind(m) == "dir" and (not image.entries(m) or h.harmless))
            assert not any(o != m and m.startswith(o + "/") for o in mounts)
        for c in changes:
            if c in g.uncovered:
                continue
            assert sum(1 for m in mounts if c.path.startswith(m + "/")) == 1, (c.path, mounts)
        assert sum(m.files for m in g.mounts) + len(g.uncovered) == len(changes)


DEBIAN_NGINX = {
    "usr/bin/cp": "elf",
    "bin": "->usr/bin",
    "etc/nginx/nginx.conf": "user www-data;\n",
    "etc/nginx/sites-enabled/default": "server {}\n",
    "run/lock/": None,
    "run/mount/": None,
    "var/lib/nginx/": None,
    "var/lib/dpkg/status": "Package: nginx-light\n",
    "var/log/nginx/access.log": "",
    "var/log/nginx/error.log": "",
    "var/log/apt/history.log": "Install: nginx-light\n",
}


def test_hiding_only_empty_entries_is_harmless(tmp_path: Path) -> None:
    """What Debian's nginx writes: every directory holding a write has something in the image, but only empty
    directories and empty files the app recreates."""
    image = ImageTree(make_tree(tmp_path / "img", DEBIAN_NGINX))
    g = group_writes([
        created("/run/nginx.pid", 3),
        created("/var/lib/nginx/body", type_="dir"), created("/var/lib/nginx/proxy", type_="dir"),
        Change("/var/log/nginx/access.log", "changed", "file", 120),
        Change("/var/log/nginx/error.log", "changed", "file", 0),
    ], image)
    assert [(m.path, m.reason, m.files, m.hides, m.seed) for m in g.mounts] == [
        ("/run", HIDES_EMPTY, 1, "2 empty directories: lock, mount", False),
        ("/var/lib/nginx", "empty in the image", 0, "", False),
        ("/var/log/nginx", HIDES_EMPTY, 2, "2 empty files: access.log, error.log", False),
    ]
    assert g.problems == [] and g.uncovered == []


def test_content_that_matters_is_copied_in_by_an_init_container_when_the_image_has_cp(tmp_path: Path) -> None:
    image = ImageTree(make_tree(tmp_path / "img", DEBIAN_NGINX))
    g = group_writes([created("/etc/nginx/sites-enabled/cache", 10),
                      Change("/etc/nginx/sites-enabled/default", "changed", "file", 30)], image)
    assert [(m.path, m.reason, m.files, m.hides, m.seed) for m in g.mounts] == [
        ("/etc/nginx/sites-enabled", SEEDED, 2, "1 file, 10 B: default", True)]
    assert g.problems == []


def test_without_cp_content_that_matters_says_what_to_bake_in(tmp_path: Path) -> None:
    image = ImageTree(make_tree(tmp_path / "img", {k: v for k, v in DEBIAN_NGINX.items() if k != "usr/bin/cp"}))
    g = group_writes([created("/etc/nginx/sites-enabled/cache", 10), created("/run/x.pid", 1)], image)
    assert [m.path for m in g.mounts] == ["/run"]
    assert g.problems == [
        "creates /etc/nginx/sites-enabled/cache: /etc/nginx/sites-enabled holds image files (default) that an "
        "emptyDir at /etc/nginx/sites-enabled would hide, and the image has no cp to copy them into it; bake the "
        "change into the image (or ship /etc/nginx/sites-enabled with it), or make the app write elsewhere"]


def test_too_much_to_copy_at_every_start_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from podsec.trace import group

    image = ImageTree(make_tree(tmp_path / "img", {**DEBIAN_NGINX, "srv/data/big": "x" * 5000}))
    monkeypatch.setattr(group, "SEED_MAX_BYTES", 4000)
    g = group_writes([created("/srv/data/new", 1)], image)
    assert g.mounts == []
    assert "and they are too much to copy at every start (1 file, 5 kB)" in g.problems[0]


def test_a_mount_inside_another_is_merged_into_it(tmp_path: Path) -> None:
    image = ImageTree(make_tree(tmp_path / "img", DEBIAN_NGINX))
    g = group_writes([created("/run/app/sub", type_="dir"), created("/run/app/sub/x", 4),
                      created("/run/nginx.pid", 3)], image)
    # /run/app alone would be enough for the first two, but /run is needed for the pid file and holds both
    assert [(m.path, m.files, m.size) for m in g.mounts] == [("/run", 2, 7)]
