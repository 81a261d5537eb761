"""A repository is checked whole: unusable files are reported (in every output format) and the rest is still
checked; YAML that is not a Kubernetes object is skipped in directories; exit 2 at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: app\n    image: busybox\n"


def podsec(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PODSEC_ROOT": str(cwd / "no-store")}
    return subprocess.run([sys.executable, "-m", "podsec.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60, env=env)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    (r / "apps").mkdir(parents=True)
    (r / "apps" / "a.yaml").write_text(POD.format(name="a"))
    (r / "apps" / "dup.yaml").write_text(POD.format(name="dup").replace("spec:\n", "spec:\n  hostPID: true\n  hostPID: false\n"))
    (r / "apps" / "z.yaml").write_text(POD.format(name="z"))
    (r / "conf").mkdir()
    (r / "conf" / "cassandra.yaml").write_text("cluster_name: Test Cluster\nnum_tokens: 256\n")
    (r / "conf" / "values.yaml").write_text("replicaCount: 1\n---\nimage: {repository: nginx}\n")
    return tmp_path


def test_a_bad_file_is_reported_and_the_rest_still_checked(repo: Path) -> None:
    r = podsec(repo, "check", "-o", "json", "repo")
    assert r.returncode == 2, r.stderr
    doc = json.loads(r.stdout)
    assert [x["name"] for x in doc["results"]] == ["a", "z"]
    (err,) = doc["errors"]
    assert err["file"] == "repo/apps/dup.yaml" and "duplicate" in err["message"]
    assert "podsec: repo/apps/dup.yaml:" in r.stderr
    assert "podsec: note: skipped 3 YAML documents that are not Kubernetes objects (no apiVersion/kind) in " \
           "2 files" in r.stderr


@pytest.mark.parametrize("fmt", ["table", "sarif", "junit", "yaml"])
def test_every_format_reports_the_unusable_file(repo: Path, fmt: str) -> None:
    r = podsec(repo, "check", "-o", fmt, "repo")
    assert r.returncode == 2, r.stderr
    assert "Pod/a" in r.stdout or '"a"' in r.stdout or "/a" in r.stdout
    if fmt == "sarif":
        run = json.loads(r.stdout)["runs"][0]
        (note,) = run["invocations"][0]["toolExecutionNotifications"]
        assert run["invocations"][0]["executionSuccessful"] is False
        assert note["level"] == "error" and "duplicate" in note["message"]["text"]
        assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "repo/apps/dup.yaml"
    elif fmt == "junit":
        root = ET.fromstring(r.stdout)
        suite = root.find("testsuite")
        assert suite is not None and suite.get("errors") == "1"
        (case,) = [c for c in suite.iter("testcase") if c.find("error") is not None]
        assert case.get("name") == "repo/apps/dup.yaml"
    elif fmt == "yaml":
        import yaml

        assert yaml.safe_load(r.stdout)["errors"][0]["file"] == "repo/apps/dup.yaml"
    else:
        assert "repo/apps/dup.yaml" in r.stderr


def test_yaml_that_is_no_kubernetes_object_is_an_error_only_when_named(repo: Path) -> None:
    r = podsec(repo, "check", "repo/conf/cassandra.yaml")
    assert r.returncode == 2
    assert "repo/conf/cassandra.yaml:1: document 1 (document): kind: Required value: Object 'Kind' is missing" in r.stderr


def test_messages_never_show_python_representations(repo: Path) -> None:
    (repo / "repo" / "apps" / "tmpl.yaml").write_text(POD.format(name="t") + "  nodeSelector: {cell: {{cell}}}\n")
    r = podsec(repo, "check", "repo")
    assert "frozenset" not in r.stdout + r.stderr
    assert "Pod/a" in r.stdout


STREAM_BLOCKS = [
    "# lead comment\napiVersion: v1\nkind: Pod\nmetadata: {name: a%d}\nspec: {containers: [{name: c, image: i}]}\n",
    "%YAML 1.1\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b%d}\nspec: {containers: [{name: c, image: i}]}\n",
    "--- {apiVersion: v1, kind: Pod, metadata: {name: c%d}, spec: {containers: [{name: c, image: i}]}}\n",
    "\n",
    "apiVersion: v1\nkind: Pod\nmetadata: {name: d%d}\nspec:\n  containers: [{name: c, image: i}]\n...\n",
    "apiVersion: v1\nkind: Pod\nmetadata: {name: e%d}\nspec: {containers: [{name: c, image: i, securityContext: "
    "{runAsUsr: 1}}]}\n",
    "apiVersion: v1\nkind: Pod\nmetadata: {name: f%d}\n  bad: [\n",
    "apiVersion: v1\nkind: Pod\nmetadata: {name: g%d}\nspec: {containers: [{name: c, image: i, securityContext: "
    "{runAsUser: abc}}]}\n",
]


def test_a_big_file_shared_among_workers_gives_what_one_process_gives(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way a document can start (directives, inline content, "..."), a broken document and an undecodable
    one in each share: the workers' results are the serial run's, in the same order; nothing stops the file."""
    import podsec.check as check

    text = ""
    for i in range(40):
        for block in STREAM_BLOCKS:
            part = block.replace("%d", str(i))
            text += part if part.startswith("---") else ("---\n" if text else "") + part
    f = tmp_path / "stream.yaml"
    f.write_text(text)
    monkeypatch.setattr(check, "SPLIT_MIN_BYTES", 1000)
    monkeypatch.setattr(check, "PARALLEL_MIN_BYTES", 1000)
    serial = list(check.iter_results([str(f)], jobs=1))
    shared = list(check.iter_results([str(f)], jobs=2))
    assert serial == shared
    assert len(serial) == 40 * 7 and sum(1 for x in serial if not isinstance(x, dict)) == 80
    assert [x["name"] for x in serial if isinstance(x, dict)][-5:] == ["a39", "b39", "c39", "d39", "e39"]
