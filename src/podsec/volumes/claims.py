"""persistentVolumeClaim (and generic ephemeral) volumes: a host directory the user names.

There is no API server to bind claims, so ``--volume-dir CLAIM=DIR`` says which host directory
stands for which claim. It is handled like a kubelet *local* PV: bind-mounted into the pod's volume
directory (read-only when the claim source says so) and chowned to the fsGroup honouring
``fsGroupChangePolicy``, unless read-only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from podsec.errors import InputError, RuntimeFailure

FLAG = "--volume-dir"


def parse_volume_dirs(values: Iterable[str], *, must_exist: bool = True) -> dict[str, Path]:
    """``CLAIM=DIR`` strings (from repeated ``--volume-dir``) → {claim: absolute dir}: the one parser of the
    flag for run, apply, trace, fix and perms. ``must_exist``: each DIR must be an existing directory now
    (podsec never creates claim storage), so a typo fails before any pod starts."""
    out: dict[str, Path] = {}
    for value in values:
        claim, sep, directory = value.partition("=")
        if not sep or not claim or not directory:
            raise InputError(f"{FLAG} {value!r}: expected CLAIM=DIR")
        if claim in out:
            raise InputError(f"{FLAG}: claim {claim!r} given twice")
        if must_exist and not os.path.isdir(directory):
            raise InputError(f"{FLAG} {value!r}: {directory}: not an existing directory")
        out[claim] = Path(os.path.abspath(directory))
    return out


def volume_dir_strings(values: Iterable[str]) -> dict[str, str]:
    """:func:`parse_volume_dirs` as plain strings (what a pod record and a trace keep)."""
    return {claim: str(path) for claim, path in parse_volume_dirs(values).items()}


def ephemeral_claim_name(pod_name: str, volume: str) -> str:
    """The PVC a generic ephemeral volume gets: ``<pod name>-<volume name>``."""
    return f"{pod_name}-{volume}"


def claim_dir(claim: str, claim_dirs: Mapping[str, Path], volume: str, field: str | None = None) -> Path:
    """The host directory for ``claim`` or an error telling which flag to pass (pure)."""
    directory = claim_dirs.get(claim)
    if directory is None:
        raise InputError(
            f'volume "{volume}": persistentVolumeClaim "{claim}" has no host directory; '
            f"pass {FLAG} {claim}=/path/to/dir",
            field=field,
        )
    return Path(directory)


def check_claim_dir(directory: Path, claim: str, volume: str) -> Path:
    """The directory must exist (podsec never creates claim storage); returns its real path."""
    if not directory.is_dir():
        raise RuntimeFailure(f'volume "{volume}": {FLAG} {claim}={directory}: not an existing directory')
    return Path(os.path.realpath(directory))
