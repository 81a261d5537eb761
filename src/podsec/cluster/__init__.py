"""podsec on a live cluster: ``podsec audit`` (read every workload through the API) and ``podsec webhook``
(a validating admission webhook). Both are callers of the judgement ``podsec check`` uses
(:func:`podsec.admit.admit`, :func:`podsec.check.judge`, :mod:`podsec.policy.pss`); nothing here
re-decides a rule.

Modules: ``judge`` (a stored object through admit and check's judgement), ``kube`` (the official client,
raw JSON, pagination), ``audit`` (owner roll-up), ``images`` (image configs through skopeo), ``decide`` (the
pure admission decision), ``webhook`` (the HTTPS server around it), ``manifests`` (what installs the webhook).
"""
