"""``podsec.trace.group``: from root-filesystem writes to the fewest emptyDir directories, judged against a real
image tree on disk (an nginx-like layout: content in /etc/nginx, /var/lib, /var/log; empty /var/cache/nginx,
/var/log/nginx and /tmp; no /run).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from podsec.trace.diff import ImageTree
from podsec.trace.group import NEVER_MOUNT, group_writes
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
    assert msg.startswith("changes /etc/nginx/conf.d/default.conf (from the image), creates "
                          "/etc/nginx/conf.d/extra.conf: /etc/nginx/conf.d holds image files (default.conf, "
                          "gzip.conf) that an emptyDir at /etc/nginx/conf.d would hide")
    assert "bake the change into the image" in msg and "cp -a /etc/nginx/conf.d/. /mnt/" in msg
    assert {c.path for c in g.uncovered} == {"/etc/nginx/conf.d/default.conf", "/etc/nginx/conf.d/extra.conf"}


def test_deleting_image_content_is_a_problem(image: ImageTree) -> None:
    g = group_writes([Change("/var/cache/apt/pkgcache.bin", "deleted", "file", 100)], image)
    assert g.mounts == []
    assert g.problems == [
        "deletes /var/cache/apt/pkgcache.bin (from the image): /var/cache/apt holds image files (pkgcache.bin) "
        "that an emptyDir at /var/cache/apt would hide; bake the change into the image, or mount an emptyDir at "
        "/var/cache/apt and fill it from an init container of the same image (cp -a /var/cache/apt/. /mnt/), "
        "or make the app write elsewhere"]


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
    """Property: every placed write lies under exactly one mount, no mount lies under another, and no mount
    hides image content or is a system directory."""
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
            assert image.kind(m) is None or (image.kind(m) == "dir" and not image.entries(m))
            assert not any(o != m and m.startswith(o + "/") for o in mounts)
        for c in changes:
            if c in g.uncovered:
                continue
            assert sum(1 for m in mounts if c.path.startswith(m + "/")) == 1, (c.path, mounts)
        assert sum(m.files for m in g.mounts) + len(g.uncovered) == len(changes)
