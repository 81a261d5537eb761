"""The Pod Security Standards as a ValidatingAdmissionPolicy: ``podsec policy vap``.

Public API: ``policy_documents`` (the objects as plain data), ``render_yaml`` and ``ACTIONS``.
The CEL comes from the check modules (``VersionedCheck.cel``); this package only assembles it.
"""

from podsec.vap.generate import ACTIONS, ENFORCE_LABEL, policy_documents, render_yaml

__all__ = ["ACTIONS", "ENFORCE_LABEL", "policy_documents", "render_yaml"]
