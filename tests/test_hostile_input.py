"""Inputs that used to hang, crash or eat memory: each gives one clear line (or the right result), never a
traceback, an exit 3, a hang or unbounded memory. Every reproducer of the issue's battery is kept here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: app
    image: busybox
    securityContext:
      runAsUser: 1000
"""


def podsec(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """podsec as a user runs it, in ``tmp_path``, with a timeout so a hang fails the test instead of the suite."""
    env = {**os.environ, "PODSEC_ROOT": str(tmp_path / "no-store"), "PODSEC_STATE": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "podsec.cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=timeout, env=env)


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("podsec: ") and "warning" not in ln]
    assert errors, r.stderr
    for needle in needles:
        assert any(needle in ln for ln in errors), (needle, r.stderr)


RECURSIVE = """apiVersion: v1
kind: Pod
metadata: {name: rec}
spec:
  containers: &c [{name: c, image: i, args: *c}]
"""


@pytest.mark.parametrize("command", ["check", "explain", "fix"])
def test_an_alias_inside_its_own_anchor_is_refused_as_go_yaml_refuses_it(tmp_path: Path, command: str) -> None:
    (tmp_path / "rec.yaml").write_text(RECURSIVE)
    one_line_error(podsec(tmp_path, command, "rec.yaml", timeout=30), "anchor 'c' value contains itself")


def test_a_recursive_alias_with_a_yaml_1_1_value_is_no_recursion_error(tmp_path: Path) -> None:
    (tmp_path / "rec.yaml").write_text(RECURSIVE.replace("spec:\n", "spec:\n  hostNetwork: on\n"))
    for command in ("check", "explain", "fix"):
        one_line_error(podsec(tmp_path, command, "rec.yaml", timeout=30), "anchor 'c' value contains itself")


def test_an_integer_too_long_to_convert_is_an_error_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text(POD.format(name="big").replace("1000", "9" * 5000))
    for command in ("check", "explain", "fix"):
        r = podsec(tmp_path, command, "big.yaml")
        one_line_error(r, "big.yaml:10", "spec.containers[0].securityContext.runAsUser", "5000 digits")
        assert len(r.stderr) < 1000


def test_lists_nested_too_deep_are_one_line(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n"
    indent = ""
    for _ in range(300):
        indent += "  "
        text += f"{indent}- apiVersion: v1\n{indent}  kind: List\n{indent}  items:\n"
    (tmp_path / "deep.yaml").write_text(text)
    for command in ("check", "explain", "fix"):
        r = podsec(tmp_path, command, "deep.yaml")
        one_line_error(r, "deep.yaml")
        assert len(r.stderr.splitlines()) == 1, r.stderr


def test_control_characters_in_messages_stay_on_one_line(tmp_path: Path) -> None:
    (tmp_path / "ctl.yaml").write_text(POD.format(name='"bad\\0name\\e[31m"'))
    for command in ("check", "explain", "fix"):
        r = podsec(tmp_path, command, "ctl.yaml")
        assert "Traceback" not in r.stderr
        assert "\x00" not in r.stderr + r.stdout and "\x1b" not in r.stderr + r.stdout
        for line in r.stderr.splitlines():
            if "bad" in line:
                assert "\\x00" in line or "\\u0000" in line or "\\x1b" in line, line


def test_a_map_used_as_a_key_is_refused_in_go_yamls_words(tmp_path: Path) -> None:
    (tmp_path / "tmpl.yaml").write_text(POD.format(name="t") + "  nodeSelector:\n    cell: {{cell}}\n")
    r = podsec(tmp_path, "check", "tmpl.yaml")
    one_line_error(r, 'invalid map key: map[interface {}]interface {}{"cell":interface {}(nil)}')
    assert "frozenset" not in r.stderr + r.stdout


def test_a_fifo_in_a_directory_is_skipped_with_a_warning(tmp_path: Path) -> None:
    d = tmp_path / "repo"
    d.mkdir()
    (d / "pod.yaml").write_text(POD.format(name="ok"))
    os.mkfifo(d / "pipe.yaml")
    r = podsec(tmp_path, "check", "-o", "json", "repo", timeout=30)
    assert r.returncode == 1, r.stderr  # the pod's findings; nothing unusable
    assert "podsec: warning: repo/pipe.yaml: skipped: not a regular file (a FIFO)" in r.stderr
    assert [x["name"] for x in json.loads(r.stdout)["results"]] == ["ok"]


def test_a_device_given_directly_is_an_error_and_in_a_directory_skipped(tmp_path: Path) -> None:
    d = tmp_path / "repo"
    d.mkdir()
    (d / "pod.yaml").write_text(POD.format(name="ok"))
    os.symlink("/dev/zero", d / "zero.yaml")
    r = podsec(tmp_path, "check", "repo", timeout=30)
    assert r.returncode == 1, r.stderr  # the pod's findings; nothing unusable
    assert "podsec: warning: repo/zero.yaml: skipped: not a regular file (a character device)" in r.stderr
    one_line_error(podsec(tmp_path, "check", "repo/zero.yaml", timeout=30),
                   "repo/zero.yaml: not a regular file (a character device)")


def test_files_are_read_with_a_size_cap_that_a_flag_raises(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(POD.format(name="big") + "#" + "x" * (2 << 20) + "\n")
    one_line_error(podsec(tmp_path, "check", "--max-file-size", "1Mi", "big.yaml"),
                   "big.yaml: larger than --max-file-size (1Mi)")
    assert podsec(tmp_path, "check", "--max-file-size", "4Mi", "big.yaml").returncode == 1  # read and judged


def test_a_symlink_loop_is_reported_as_one(tmp_path: Path) -> None:
    d = tmp_path / "repo"
    d.mkdir()
    (d / "pod.yaml").write_text(POD.format(name="ok"))
    os.symlink("loop.yaml", d / "loop.yaml")
    r = podsec(tmp_path, "check", "repo")
    one_line_error(r, "repo/loop.yaml: Too many levels of symbolic links")
    assert "Pod/ok" in r.stdout  # the rest was checked
