"""``podsec perms``: who can read and write a directory tree shared by pods and outside users, why not, and
the least-privilege fix.

Pipeline: :mod:`.identity` (parties) → :mod:`.scan` (the real tree) → :mod:`.matrix` (decisions from
:mod:`podsec.kernel.access`, the kernel's algorithm, with :mod:`podsec.kernel.acl`) → :mod:`.explain` (one
sentence per denial) →
:mod:`.fixes` (ranked plan, judged before it is applied) → :mod:`.apply` (resumable, symlink-safe walk) →
:mod:`.report` (table / JSON).
"""
