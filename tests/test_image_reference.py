"""Image name normalisation: the spellings a pod uses must meet the names containerd stores."""

from __future__ import annotations

import pytest

from podsec.errors import ImageError
from podsec.image.reference import familiar, normalize, parse

D64 = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/busybox:1", "docker.io/library/busybox:1"),
        ("podsec-fixture:root", "docker.io/library/podsec-fixture:root"),
        ("podsec-fixture:uid1000-gid2222", "docker.io/library/podsec-fixture:uid1000-gid2222"),
        ("user/repo", "docker.io/user/repo:latest"),
        ("user/repo/deeper:v1", "docker.io/user/repo/deeper:v1"),
        ("quay.io/x/y", "quay.io/x/y:latest"),
        ("quay.io/x/y:v1.2.3-rc_1", "quay.io/x/y:v1.2.3-rc_1"),
        ("ghcr.io/a/b/c:1", "ghcr.io/a/b/c:1"),
        ("localhost/a", "localhost/a:latest"),
        ("localhost:5000/a:b", "localhost:5000/a:b"),
        ("127.0.0.1:5000/podsec-fixture:uid1000", "127.0.0.1:5000/podsec-fixture:uid1000"),
        ("myhost:5000/a", "myhost:5000/a:latest"),
        ("[::1]:5000/a", "[::1]:5000/a:latest"),
        ("registry.example.com/a__b/c-d.e", "registry.example.com/a__b/c-d.e:latest"),
        ("Host/repo", "Host/repo:latest"),  # an uppercase first component can only be a host
        (f"busybox@{D64}", f"docker.io/library/busybox@{D64}"),
        (f"busybox:1.36@{D64}", f"docker.io/library/busybox:1.36@{D64}"),
        (f"quay.io/x/y@{D64}", f"quay.io/x/y@{D64}"),
        ("a" * 30 + ":" + "t" * 128, "docker.io/library/" + "a" * 30 + ":" + "t" * 128),
    ],
)
def test_normalize(ref: str, want: str) -> None:
    assert normalize(ref) == want
    assert normalize(want) == want  # idempotent


@pytest.mark.parametrize(
    "ref",
    [
        "",
        " busybox",
        "busybox ",
        "Busybox",
        "user/Repo",
        "busybox:",
        ":tag",
        "busybox:bad tag",
        "busybox:" + "t" * 129,
        "a//b",
        "a/b/",
        "/a",
        "-a",
        "a-",
        "a:b:c",
        "busybox@sha256:abc",
        "busybox@sha256:" + "a" * 63,
        "busybox@",
        "ab" * 32,  # a bare 64-hex string is an ID, never a name
        "bad_host_/x",
        "quay.io/" + "a" * 250,
        "busybox:tag@@" + D64,
    ],
)
def test_invalid(ref: str) -> None:
    with pytest.raises(ImageError, match="invalid image reference"):
        normalize(ref)


def test_parse_parts() -> None:
    r = parse("localhost:5000/team/app:v2")
    assert (r.domain, r.path, r.tag, r.digest) == ("localhost:5000", "team/app", "v2", None)
    assert r.repository == "localhost:5000/team/app"
    r = parse(f"app@{D64}")
    assert (r.domain, r.path, r.tag, r.digest) == ("docker.io", "library/app", None, D64)


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox", "busybox:latest"),
        ("docker.io/user/repo:1", "user/repo:1"),
        ("docker.io/library/a/b:1", "library/a/b:1"),
        ("quay.io/x/y", "quay.io/x/y:latest"),
    ],
)
def test_familiar(ref: str, want: str) -> None:
    assert familiar(ref) == want
    assert normalize(familiar(ref)) == normalize(ref)
