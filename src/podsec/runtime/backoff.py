"""The kubelet's restart back-off (client-go ``flowcontrol.Backoff``, no jitter): 10s doubling up to 300s;
``PODSEC_BACKOFF_SECONDS`` sets the initial value, the cap stays 30×."""

from __future__ import annotations

import os

BACKOFF_ENV = "PODSEC_BACKOFF_SECONDS"
DEFAULT_BACKOFF = 10.0
BACKOFF_CAP_FACTOR = 30


class Backoff:
    """client-go ``flowcontrol.Backoff`` as the kubelet uses it for container restarts (no jitter)."""

    def __init__(self, initial: float) -> None:
        self.initial = initial
        self.maximum = initial * BACKOFF_CAP_FACTOR
        self.entries: dict[str, tuple[float, float]] = {}

    @classmethod
    def from_env(cls) -> Backoff:
        try:
            initial = float(os.environ.get(BACKOFF_ENV, DEFAULT_BACKOFF))
        except ValueError:
            initial = DEFAULT_BACKOFF
        return cls(max(initial, 0.0))

    def _expired(self, event: float, last: float) -> bool:
        return event - last > 2 * self.maximum

    def wait_until(self, key: str, finished_at: float, now: float) -> float | None:
        """The time the restart may happen, or None when it may happen now (``IsInBackOffSince``)."""
        entry = self.entries.get(key)
        if entry is None or self._expired(finished_at, entry[1]):
            return None
        return finished_at + entry[0] if now - finished_at < entry[0] else None

    def current(self, key: str) -> float:
        return self.entries.get(key, (self.initial, 0.0))[0]

    def next(self, key: str, finished_at: float, now: float) -> None:
        entry = self.entries.get(key)
        if entry is None or self._expired(finished_at, entry[1]):
            delay = self.initial
        else:
            delay = min(entry[0] * 2, self.maximum)
        self.entries[key] = (delay, now)
