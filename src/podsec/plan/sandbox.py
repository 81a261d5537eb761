"""What the pod sandbox is made of, decided without touching the machine: the pod's hostname, the files
every container binds (kubelet ``/etc/hosts``, ``/etc/hostname``, containerd's ``/etc/resolv.conf``)
and the identity the kubelet sends for the sandbox.

The host's own ``/etc/hosts`` and ``/etc/resolv.conf`` are node facts (:class:`podsec.plan.NodeFacts`),
passed in as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
POD_IP = "127.0.0.1"
"""There is no CNI: a pod's network namespace has only ``lo``, and its IP is the loopback address."""
PAUSE_ARGS = ("/pause",)
"""The sandbox process: podsec's ``/pause`` (x86-64 only; see :func:`pause_args`)."""


def pause_args(arch: str) -> list[str]:
    """``/pause`` where podsec has one (amd64), else busybox ``sleep infinity`` from the pause rootfs."""
    return list(PAUSE_ARGS) if arch == "amd64" else ["sleep", "infinity"]


def pod_hostname(metadata: Mapping[str, Any], spec: Mapping[str, Any], node_name: str) -> str:
    """kubelet ``GeneratePodHostNameAndDomain``: spec.hostname, else the pod name cut to 63 characters;
    the node's name for hostNetwork pods."""
    if spec.get("hostNetwork") is True:
        return node_name
    name = spec.get("hostname") or metadata.get("name") or ""
    if len(name) > 63:
        name = name[:63].rstrip("-.")
    return str(name)


def hosts_file(hostname: str, pod_ip: str, spec: Mapping[str, Any], node_hosts: str = "") -> str:
    """kubelet ``managedHostsFileContent`` (or the node's hosts file for hostNetwork) + hostAliases."""
    if spec.get("hostNetwork") is True:
        content = node_hosts
    else:
        content = (
            HOSTS_HEADER
            + "127.0.0.1\tlocalhost\n"
            + "::1\tlocalhost ip6-localhost ip6-loopback\n"
            + "fe00::0\tip6-localnet\n"
            + "fe00::0\tip6-mcastprefix\n"
            + "fe00::1\tip6-allnodes\n"
            + "fe00::2\tip6-allrouters\n"
            + f"{pod_ip}\t{hostname}\n"
        )
    aliases = [a for a in spec.get("hostAliases") or () if isinstance(a, Mapping)]
    if aliases:
        content += "\n# Entries added by HostAliases.\n"
        for alias in aliases:
            names = "\t".join(str(h) for h in alias.get("hostnames") or ())
            content += f"{alias.get('ip', '')}\t{names}\n"
    return content


def resolv_conf(spec: Mapping[str, Any], node_resolv: str = "") -> str:
    """The kubelet's DNS config as containerd writes it: ``search``, ``nameserver``, ``options`` lines.

    dnsPolicy None uses only ``dnsConfig``; any other policy starts from the host's file (there is no
    cluster DNS here, so ClusterFirst falls back to Default, as the kubelet does) plus ``dnsConfig``.
    """
    servers: list[str] = []
    searches: list[str] = []
    options: dict[str, str] = {}
    if spec.get("dnsPolicy") != "None":
        for line in node_resolv.splitlines():
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if fields[0] == "nameserver" and len(fields) > 1:
                servers.append(fields[1])
            elif fields[0] in ("search", "domain"):
                searches = fields[1:]
            elif fields[0] == "options":
                for opt in fields[1:]:
                    options[opt.split(":", 1)[0]] = opt
    cfg = spec.get("dnsConfig") if isinstance(spec.get("dnsConfig"), Mapping) else {}
    servers += [str(s) for s in cfg.get("nameservers") or ()]
    searches += [str(s) for s in cfg.get("searches") or () if str(s) not in searches]
    for opt in cfg.get("options") or ():
        if isinstance(opt, Mapping) and opt.get("name"):
            value = opt.get("value")
            options[str(opt["name"])] = f"{opt['name']}:{value}" if value not in (None, "") else str(opt["name"])
    out = ""
    if searches:
        out += "search " + " ".join(searches) + "\n"
    if servers:
        out += "".join(f"nameserver {s}\n" for s in servers)
    if options:
        out += "options " + " ".join(options.values()) + "\n"
    return out
