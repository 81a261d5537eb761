"""What the Linux kernel decides about a file: permission checks (``generic_permission``) and POSIX ACLs.

Pure rules plus the ACL syscalls, below every command: ``perms`` explains and fixes shared directories with
them, and ``check`` (PS012) judges the files the kubelet writes into Secret/ConfigMap volumes with the same
rules.
"""
