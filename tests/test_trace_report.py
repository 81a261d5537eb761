"""``podsec trace``'s pure parts: duration spelling, sizes, which containers a patch may touch, and how the text
report summarises a huge file list."""

from __future__ import annotations

import pytest

from podsec.duration import parse_duration
from podsec.trace.model import Change, ContainerTrace, MountDir, PodTrace
from podsec.trace.report import human_size, render_text, traces_dict


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("2m", 120), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("45", 45), ("2.5", 2.5),
    ("1.5m", 90), (" 10s ", 10),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "10x", "1m 30s", "-5", "0", "0s", "inf", "nan", "30s2"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (999, "999 B"), (1000, "1 kB"), (2048, "2.05 kB"),
                                         (5_000_000, "5 MB"), (123_456_789, "123 MB")])
def test_human_size(n: int, text: str) -> None:
    assert human_size(n) == text


def container(name: str, **kw: object) -> ContainerTrace:
    return ContainerTrace(name=name, init=False, ran=True, status="exited 0 after 0.1s", exit_code=0, **kw)  # type: ignore[arg-type]


def test_only_containers_that_ran_without_problems_are_patched() -> None:
    pod = PodTrace("pod.yaml", 2, "Deployment", "web", [
        container("ok", mount_dirs=["/tmp"]),
        container("clean"),
        container("bad", mount_dirs=["/run"], problems=["changes /etc/passwd (from the image): …"]),
        ContainerTrace(name="never", init=True, ran=False, status="never ran: CreateContainerConfigError"),
    ])
    assert pod.mounts_for_patch() == {(2, "ok"): ["/tmp"], (2, "clean"): []}
    assert not pod.ok


def test_a_huge_file_list_is_summarised_per_mount() -> None:
    changes = [Change(f"/var/cache/app/f{i:05}", "created", "file", 10) for i in range(1000)]
    changes += [Change(f"/tmp/t{i}", "created", "file", 1) for i in range(5)]
    changes.sort(key=lambda c: c.path)
    c = container("app", changes=changes, mount_dirs=["/tmp", "/var/cache/app"],
                  mounts=[MountDir("/tmp", "empty in the image", 5, 5),
                          MountDir("/var/cache/app", "not in the image", 10_000, 1000)])
    text = render_text([PodTrace("pod.yaml", 0, "Pod", "p", [c], line=1, duration=1.25)], max_files=3)
    assert text == (
        "Pod/p (pod.yaml:1) — traced 1.2s\n"
        "  container 'app': exited 0 after 0.1s\n"
        "    mount an emptyDir at:\n"
        "      /tmp            5 files, 5 B       empty in the image\n"
        "      /var/cache/app  1000 files, 10 kB  not in the image\n"
        "    writes to the root filesystem (1005):\n"
        "      created  file    /tmp/t0  1 B\n"
        "      created  file    /tmp/t1  1 B\n"
        "      created  file    /tmp/t2  1 B\n"
        "      … and 2 more under /tmp (2 B)\n"
        "      … and 1000 more under /var/cache/app (10 kB)\n"
        "\n"
        "1 of 1 container(s) can run with readOnlyRootFilesystem: true given 2 emptyDir mount(s); podsec trace "
        "-o yaml prints the manifest patched that way.\n")


def test_json_shape() -> None:
    c = container("app", changes=[Change("/tmp/x", "created", "file", 2048)], mount_dirs=["/tmp"],
                  mounts=[MountDir("/tmp", "empty in the image", 2048, 1)],
                  volume_writes=[Change("/data/y", "deleted", "dir", 5)], verified="still running after 5.0s", rounds=1,
                  user=(33, 33))
    doc = traces_dict([PodTrace("-", 0, "Pod", "p", [c], display="<stdin>", line=3, duration=0.5,
                                listening=["80/tcp"])])
    assert doc == {"pods": [{
        "file": "<stdin>", "source": "-", "document": 0, "line": 3, "kind": "Pod", "name": "p",
        "namespace": "default", "seconds": 0.5, "error": "", "interrupted": False, "listening": ["80/tcp"],
        "fsGroup": None, "notes": [],
        "containers": [{
            "name": "app", "init": False, "ran": True, "status": "exited 0 after 0.1s", "exitCode": 0, "stopped": False,
            "readOnlyRootFilesystemInManifest": False, "mountDirs": ["/tmp"],
            "mounts": [{"path": "/tmp", "reason": "empty in the image", "files": 1, "bytes": 2048,
                        "size": "2.05 kB", "hides": "", "seed": False}],
            "problems": [], "fixable": True, "verified": "still running after 5.0s", "rounds": 1, "stopCode": None,
            "user": [33, 33],
            "changes": [{"path": "/tmp/x", "action": "created", "type": "file", "bytes": 2048, "size": "2.05 kB"}],
            "volumeWrites": [{"path": "/data/y", "action": "deleted", "type": "dir", "bytes": 5, "size": "5 B"}],
            "logTail": [],
        }],
    }]}


def test_the_summary_agrees_with_the_findings() -> None:
    """A container that cannot go read-only, or that failed while traced, is named in the summary (and makes
    ``podsec trace`` exit 1: tests/test_trace_cli.py)."""
    ok = container("ok", mount_dirs=["/tmp"], mounts=[MountDir("/tmp", "empty in the image", 0, 0)],
                   verified="still running after 5.0s")
    blocked = container("blocked", problems=["changes /etc/passwd (from the image): …"])
    failed = ContainerTrace(name="failed", init=False, ran=True, status="exited 2 after 0.3s", exit_code=2)
    never = ContainerTrace(name="never", init=True, ran=False, status="never ran: CreateContainerConfigError")
    text = render_text([PodTrace("pod.yaml", 0, "Pod", "p", [ok, blocked, failed, never], line=1)])
    assert text.splitlines()[-1] == (
        "1 of 4 container(s) can run with readOnlyRootFilesystem: true given 1 emptyDir mount(s) (checked by "
        "running them again under the mounts); podsec trace -o yaml prints the manifest patched that way; 2 "
        "container(s) failed or never ran while traced (failed, never), so their writes may be incomplete; 1 "
        "cannot (blocked): see their problems.")
    assert [c.fixable for c in (ok, blocked, failed, never)] == [True, False, False, False]
