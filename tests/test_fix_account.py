"""``podsec.fix.account``: the app's own account, read from an image tree on disk (Debian's layouts)."""

from __future__ import annotations

import os
from pathlib import Path

from podsec.fix.account import choose_account, program, stems
from podsec.image.model import ImageInfo, PasswdEntry
from test_trace_diff import make_tree

PASSWD = (PasswdEntry("root", 0, 0), PasswdEntry("www-data", 33, 33), PasswdEntry("redis", 100, 101),
          PasswdEntry("postgres", 101, 102), PasswdEntry("nobody", 65534, 65534))
INFO = ImageInfo("debian:app", passwd=PASSWD)


def test_program_and_its_stems() -> None:
    assert program(["/usr/sbin/nginx", "-g", "daemon off;"]) == "nginx"
    assert program(["sh", "-c", "nginx"]) is None and program([]) is None
    assert stems("redis-server") == ["redis-server", "redis"]
    assert stems("sshd") == ["sshd", "ssh"]


def test_a_systemd_unit_that_starts_the_program_names_the_user(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "img", {
        "usr/lib/systemd/system/redis-server.service":
            "[Service]\nExecStart=/usr/bin/redis-server /etc/redis/redis.conf\nUser=redis\n",
        "usr/lib/systemd/system/other.service": "[Service]\nExecStart=/usr/bin/other\nUser=www-data\n",
    })
    got = choose_account(INFO, root, ["redis-server", "--protected-mode", "no"])
    assert got is not None and (got.entry.name, got.why) == (
        "redis", "its systemd unit redis-server.service runs redis-server as User=redis")


def test_the_apps_config_names_the_user(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "img", {"etc/nginx/nginx.conf": "user www-data;\nworker_processes auto;\n"})
    got = choose_account(INFO, root, ["nginx", "-g", "daemon off;"])
    assert got is not None and (got.entry.uid, got.why) == (33, "its /etc/nginx/nginx.conf runs nginx as www-data")


def test_the_owner_of_the_apps_files(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "img", {"var/lib/postgresql/": None, "var/lib/postgresql/15/": None})
    os.chown(root / "var/lib/postgresql", 101, 102)
    got = choose_account(INFO, root, ["postgres"])
    assert got is not None and got.entry.name == "postgres"
    assert got.why == "the image's files for postgres (/var/lib/postgresql) belong to postgres"


def test_an_account_named_after_the_program_and_no_evidence_at_all(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "img", {"etc/": None})
    got = choose_account(INFO, root, ["/usr/bin/redis-server"])
    assert got is not None and got.why == "its account redis is named after redis-server"
    assert choose_account(INFO, root, ["myapp"]) is None
    assert choose_account(INFO, root, ["sh", "-c", "redis-server"]) is None  # a shell names no program


def test_a_symlink_in_the_image_is_never_followed(tmp_path: Path) -> None:
    """An image's /etc/nginx pointing at the host's /etc must not make podsec read the host."""
    outside = make_tree(tmp_path / "host", {"nginx.conf": "user www-data;\n"})
    root = make_tree(tmp_path / "img", {"etc/nginx": f"->{outside}"})
    assert choose_account(INFO, root, ["nginx"]) is None
