"""kubectl habits: -f on check and explain, global options after the subcommand, defaults and environment
variables in --help, one duration parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podsec.cli import hoist_global_options
from podsec.duration import parse_duration

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: app\n    image: busybox\n"


def podsec(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODSEC_")}
    return subprocess.run([sys.executable, "-m", "podsec.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60, env=env)


def test_check_and_explain_take_repeatable_filename(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POD.format(name="a"))
    (tmp_path / "b.yaml").write_text(POD.format(name="b"))
    r = podsec(tmp_path, "check", "-o", "json", "-f", "a.yaml", "--filename", "b.yaml", "--root", str(tmp_path))
    assert [x["name"] for x in json.loads(r.stdout)["results"]] == ["a", "b"], r.stderr
    r = podsec(tmp_path, "explain", "-o", "json", "-f", "a.yaml", "-f", "b.yaml")
    assert [p["name"] for p in json.loads(r.stdout)["pods"]] == ["a", "b"], r.stderr


def test_global_options_after_the_subcommand(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POD.format(name="a"))
    r = podsec(tmp_path, "run", "--root", str(tmp_path / "store"), "-f", "a.yaml")
    assert "Did you mean" not in r.stderr
    assert f"not in the local store ({tmp_path / 'store'})" in r.stderr, r.stderr
    assert hoist_global_options(["check", "x", "--state=/s", "--root", "/r"], lambda _: set()) == \
        ["--state=/s", "--root", "/r", "check", "x"]
    assert hoist_global_options(["check", "--", "--root", "x"], lambda _: set()) == ["check", "--", "--root", "x"]
    assert hoist_global_options(["perms", "--root", "x"], lambda _: {"--root"}) == ["perms", "--root", "x"]


def test_help_shows_the_defaults_and_environment_variables(tmp_path: Path) -> None:
    out = podsec(tmp_path, "--help").stdout
    for text in ("PODSEC_ROOT", "/var/lib/podsec", "PODSEC_STATE", "/run/podsec", "PODSEC_MAX_FILE_SIZE"):
        assert text in out


@pytest.mark.parametrize(("text", "seconds"), [("5s", 5.0), ("1m30s", 90.0), ("500ms", 0.5), ("2.5", 2.5)])
def test_one_duration_parser(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_run_timeout_takes_a_duration(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POD.format(name="a"))
    r = podsec(tmp_path, "--root", str(tmp_path / "store"), "run", "--timeout", "5s", "-f", "a.yaml")
    assert "--timeout" not in r.stderr, r.stderr
    r = podsec(tmp_path, "run", "--timeout", "soon", "-f", "a.yaml")
    assert "not a duration" in r.stderr
