"""What the Job controller does around its pods, for a Job (or a CronJob's Job) that ``run`` runs.

A pod that fails is replaced by a new pod (a new name) until ``backoffLimit`` failures; with
``restartPolicy: OnFailure`` the kubelet restarts the container in place and those restarts count
instead. ``activeDeadlineSeconds`` bounds the whole Job, from its first pod. The words are the
Job controller's condition reasons and messages.
"""

from __future__ import annotations

from typing import Any

from podsec.runtime.lifecycle import PodRunner
from podsec.runtime.state import ContainerStatus

BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
JOB_BACKOFF_CAP = 360.0
"""The Job controller's longest wait before a new pod (6 minutes)."""


class JobPodRunner(PodRunner):
    """A Job's pod: with ``OnFailure`` a container is restarted at most ``backoff_limit`` times."""

    def __init__(self, *args: Any, backoff_limit: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.backoff_limit = backoff_limit

    def _should_restart(self, c: ContainerStatus) -> bool:
        return super()._should_restart(c) and c.restart_count < self.backoff_limit


def retry_delay(failures: int, initial: float) -> float:
    """The Job controller's back-off before pod number ``failures + 1``: initial × 2^(failures-1), capped."""
    return min(initial * 2 ** max(failures - 1, 0), JOB_BACKOFF_CAP)


__all__ = ["BACKOFF_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED", "JobPodRunner", "retry_delay"]
