"""Image facts for workloads on a cluster: the local store first, then (``--inspect-images``) the registry's
image config through ``skopeo inspect --config``, which reads the config blob only and pulls no layer.

A registry config has no rootfs, so ``/etc/passwd`` is unknown (``None``): resolve then knows the USER but
not a named user's uid, exactly as with an image that has no passwd file.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import orjson

from podsec.image.model import ImageInfo, info_from_config

SKOPEO_TIMEOUT = 30.0
MAX_CACHED = 10_000


class RegistryImages:
    """A cached lookup ``ref -> ImageInfo | None``; an image skopeo cannot read is ``None`` with a note."""

    def __init__(self, local: Callable[[str], Any] | None = None, *, inspect: bool = False,
                 tls_verify: bool = True, skopeo: str | None = None) -> None:
        self.local = local
        self.inspect = inspect
        self.tls_verify = tls_verify
        self.skopeo = skopeo or shutil.which("skopeo")
        self.notes: list[str] = []
        self._cache: dict[str, ImageInfo | None] = {}

    def __call__(self, ref: str) -> ImageInfo | None:
        if ref in self._cache:
            return self._cache[ref]
        info = self.local(ref) if self.local is not None else None
        if info is None and self.inspect:
            info = self._inspect(ref)
        if len(self._cache) < MAX_CACHED:
            self._cache[ref] = info
        return info

    def _inspect(self, ref: str) -> ImageInfo | None:
        if not self.skopeo:
            self._note(f"--inspect-images needs skopeo, which is not installed: image {ref} not read")
            self.inspect = False
            return None
        cmd = [self.skopeo, "inspect", "--config", "--retry-times", "0"]
        if not self.tls_verify:
            cmd.append("--tls-verify=false")
        cmd.append("docker://" + ref)
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=SKOPEO_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._note(f"image {ref}: skopeo inspect failed: {exc}")
            return None
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            self._note(f"image {ref}: skopeo inspect failed: {err[-1] if err else 'exit ' + str(done.returncode)}")
            return None
        try:
            doc = orjson.loads(done.stdout)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            return info_from_config(doc, ref, "", None, None, f"docker://{ref}")
        except (ValueError, orjson.JSONDecodeError) as exc:
            self._note(f"image {ref}: unreadable image config: {exc}")
            return None
        except Exception as exc:  # ImageError from a malformed config
            self._note(f"image {ref}: {exc}")
            return None

    def _note(self, text: str) -> None:
        if len(self.notes) < 100:
            self.notes.append(text)
