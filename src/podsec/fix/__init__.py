"""``podsec fix``: rewrite manifests toward Pod Security Standards restricted without breaking the app.

:mod:`podsec.fix.plan` decides the changes for one workload from its resolved pod (pure);
:mod:`podsec.fix.apply` turns a file's text into its fixed text and checks the result (pure);
:mod:`podsec.fix.files` reads, diffs and writes files. The text edits themselves are
:mod:`podsec.manifest.rewrite`.
"""

from podsec.fix.apply import FileFix, Leftover, add_writable_mounts, fix_text, verify
from podsec.fix.plan import DEFAULT_UID, NEEDS_HUMAN, Change, Human, WorkloadPlan, plan_workload

__all__ = [
    "DEFAULT_UID",
    "NEEDS_HUMAN",
    "Change",
    "FileFix",
    "Human",
    "Leftover",
    "WorkloadPlan",
    "add_writable_mounts",
    "fix_text",
    "plan_workload",
    "verify",
]
