"""Image reference normalisation, as the kubelet and containerd see a name.

A pod says ``busybox``; containerd stores and looks up ``docker.io/library/busybox:latest``.
Every lookup in the store goes through :func:`normalize` so the two spellings meet.
The grammar is distribution's ``reference`` package (``ParseNormalizedNamed`` + ``TagNameOnly``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from podsec.errors import ImageError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"

_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_HEX64_RE = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed, normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.repository
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out


def _bad(ref: str, why: str) -> ImageError:
    return ImageError(f"invalid image reference {ref!r}: {why}")


def _split_domain(name: str) -> tuple[str, str]:
    """distribution's splitDockerDomain: the first component is a host only if it looks like one."""
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i < 0 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1 :]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(ref: str) -> Reference:
    """Parse and normalise ``ref``; ``:latest`` is added only when neither tag nor digest is given."""
    if not isinstance(ref, str) or not ref or ref != ref.strip():
        raise _bad(str(ref), "empty or surrounded by whitespace")
    if _HEX64_RE.fullmatch(ref):
        raise _bad(ref, "cannot specify 64-byte hexadecimal strings")
    rest, _, digest = ref.partition("@")
    if "@" in ref:
        if not _DIGEST_RE.fullmatch(digest):
            raise _bad(ref, "invalid digest")
        algo, _, hexpart = digest.partition(":")
        want = _DIGEST_HEX_LEN.get(algo)
        if want is not None and len(hexpart) != want:
            raise _bad(ref, f"invalid {algo} digest length")
    tag: str | None = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise _bad(ref, "invalid tag")
    if not rest:
        raise _bad(ref, "missing repository name")
    domain, path = _split_domain(rest)
    if not _DOMAIN_RE.fullmatch(domain):
        raise _bad(ref, "invalid registry host")
    if not _PATH_RE.fullmatch(path):
        if path.lower() != path and _PATH_RE.fullmatch(path.lower()):
            raise _bad(ref, "repository name must be lowercase")
        raise _bad(ref, "invalid repository name")
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise _bad(ref, f"repository name longer than {NAME_TOTAL_LENGTH_MAX} characters")
    if tag is None and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest or None)


def normalize(ref: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``; raises ImageError for invalid refs."""
    return str(parse(ref))


def familiar(ref: str) -> str:
    """The short form docker prints (``docker.io/library/busybox:latest`` → ``busybox:latest``)."""
    r = parse(ref)
    name = r.repository
    if r.domain == DEFAULT_DOMAIN:
        short = r.path.removeprefix(OFFICIAL_REPO_PREFIX)
        name = short if "/" not in short else r.path
    if r.tag is not None:
        name += ":" + r.tag
    if r.digest is not None:
        name += "@" + r.digest
    return name
