"""``podsec policy vap``: podsec's own cases beyond the PSA fixtures, the objects' schema, the CLI, and cost.

Every case runs through the generated policy with a real CEL engine at every version of its level and must
decide as podsec's Python checks do; the named expectations pin what a user would check by hand.
"""

from __future__ import annotations

import copy
import re
from functools import cache

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from podsec.cli import cli
from podsec.policy.pss import evaluate
from podsec.policy.pss.registry import DEFAULT_CHECKS
from podsec.vap import policy_documents, render_yaml
from vap_cel import admit

VERSIONS = [f"v1.{n}" for n in range(38)] + ["latest"]


@cache
def policy(level: str, version: str) -> dict:
    return policy_documents(level, version)[0]


def restricted_ok(**extra: object) -> dict:
    """A pod restricted allows at every version, with init/ephemeral containers, to be broken one field at a time."""
    sc = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [{"name": "init", "image": "busybox", "securityContext": copy.deepcopy(sc)}],
            "containers": [{"name": "app", "image": "busybox", "securityContext": copy.deepcopy(sc)}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox", "securityContext": copy.deepcopy(sc)}],
        },
    }
    pod["spec"].update(extra)
    return pod


def set_path(pod: dict, path: str, value: object) -> dict:
    """A copy of ``pod`` with ``spec.a.b[0].c`` set (``None`` keeps an explicit null)."""
    out = copy.deepcopy(pod)
    cur: object = out
    parts = re.findall(r"[^.\[\]]+", path)
    for i, part in enumerate(parts):
        key: object = int(part) if part.isdigit() else part
        last = i == len(parts) - 1
        if last:
            cur[key] = value  # type: ignore[index]
        else:
            if isinstance(cur, dict) and key not in cur:
                cur[key] = {}
            cur = cur[key]  # type: ignore[index]
    return out


BASE = restricted_ok()
CASES: dict[str, dict] = {
    "ok": BASE,
    "init container adds NET_RAW": set_path(BASE, "spec.initContainers.0.securityContext.capabilities.add", ["NET_RAW"]),
    "init container lacks drop ALL": set_path(BASE, "spec.initContainers.0.securityContext.capabilities.drop", ["NET_RAW"]),
    "ephemeral container privileged": set_path(BASE, "spec.ephemeralContainers.0.securityContext.privileged", True),
    "ephemeral container may escalate": set_path(
        BASE, "spec.ephemeralContainers.0.securityContext.allowPrivilegeEscalation", True
    ),
    "ephemeral hostPort": set_path(BASE, "spec.ephemeralContainers.0.ports", [{"containerPort": 80, "hostPort": 80}]),
    "container overrides pod runAsNonRoot": set_path(BASE, "spec.containers.0.securityContext.runAsNonRoot", False),
    "containers cover unset pod runAsNonRoot": set_path(
        set_path(set_path(BASE, "spec.securityContext.runAsNonRoot", None), "spec.containers.0.securityContext.runAsNonRoot",
                 True), "spec.initContainers.0.securityContext.runAsNonRoot", True),
    "one container not covered by runAsNonRoot": set_path(
        set_path(BASE, "spec.securityContext.runAsNonRoot", None), "spec.containers.0.securityContext.runAsNonRoot", True
    ),
    "container overrides pod seccomp": set_path(
        BASE, "spec.containers.0.securityContext.seccompProfile", {"type": "Unconfined"}
    ),
    "container seccomp Localhost under pod default": set_path(
        BASE, "spec.containers.0.securityContext.seccompProfile", {"type": "Localhost", "localhostProfile": "p.json"}
    ),
    "no pod seccomp, containers set it": set_path(
        set_path(set_path(set_path(BASE, "spec.securityContext.seccompProfile", None),
                          "spec.initContainers.0.securityContext.seccompProfile", {"type": "RuntimeDefault"}),
                 "spec.containers.0.securityContext.seccompProfile", {"type": "RuntimeDefault"}),
        "spec.ephemeralContainers.0.securityContext.seccompProfile", {"type": "RuntimeDefault"}),
    "pod runAsUser 0": set_path(BASE, "spec.securityContext.runAsUser", 0),
    "container runAsUser 0 with hostUsers false": set_path(
        set_path(BASE, "spec.containers.0.securityContext.runAsUser", 0), "spec.hostUsers", False
    ),
    "hostUsers false, runAsNonRoot unset": set_path(
        set_path(BASE, "spec.securityContext.runAsNonRoot", None), "spec.hostUsers", False
    ),
    "null securityContext on a container": set_path(BASE, "spec.containers.0.securityContext", None),
    "empty securityContext on a container": set_path(BASE, "spec.containers.0.securityContext", {}),
    "empty capabilities": set_path(BASE, "spec.containers.0.securityContext.capabilities", {}),
    "empty drop list": set_path(BASE, "spec.containers.0.securityContext.capabilities.drop", []),
    "null seccompProfile on pod": set_path(BASE, "spec.securityContext.seccompProfile", None),
    "empty seLinuxOptions type": set_path(BASE, "spec.securityContext.seLinuxOptions", {"type": ""}),
    "seLinux user and bad type": set_path(
        BASE, "spec.containers.0.securityContext.seLinuxOptions", {"type": "spc_t", "user": "root"}
    ),
    "empty annotations": set_path(BASE, "metadata.annotations", {}),
    "AppArmor unconfined annotation": set_path(
        BASE, "metadata.annotations", {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
    ),
    "seccomp annotation unconfined for the init container": set_path(
        BASE, "metadata.annotations", {"container.seccomp.security.alpha.kubernetes.io/init": "unconfined"}
    ),
    "Windows pod without Linux fields": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w"},
        "spec": {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True},
                 "containers": [{"name": "app", "image": "mcr.microsoft.com/windows/nanoserver"}]},
    },
    "Windows HostProcess pod": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w"},
        "spec": {"os": {"name": "windows"}, "hostNetwork": True,
                 "securityContext": {"runAsNonRoot": True, "windowsOptions": {"hostProcess": True}},
                 "containers": [{"name": "app", "image": "nano"}]},
    },
    "procMount Unmasked with hostUsers false": set_path(
        set_path(BASE, "spec.containers.0.securityContext.procMount", "Unmasked"), "spec.hostUsers", False
    ),
    "newer sysctls": set_path(BASE, "spec.securityContext.sysctls",
                              [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]),
    "volume with only a name": set_path(BASE, "spec.volumes", [{"name": "scratch"}]),
    "hostPath and nfs volumes": set_path(
        BASE, "spec.volumes", [{"name": "a", "hostPath": {"path": "/"}}, {"name": "b", "nfs": {"server": "s", "path": "/"}}]
    ),
    "probe host": set_path(BASE, "spec.containers.0.livenessProbe", {"httpGet": {"host": "10.0.0.1", "port": 80}}),
    "hostPID and hostIPC": set_path(set_path(BASE, "spec.hostPID", True), "spec.hostIPC", True),
    "no init or ephemeral containers": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    },
}


@pytest.mark.parametrize("level", ["baseline", "restricted"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_policy_decides_like_podsec_at_every_version(name: str, level: str) -> None:
    pod = CASES[name]
    for version in VERSIONS:
        want = evaluate(pod["metadata"], pod["spec"], level, version)
        got = admit(policy(level, version), pod)
        assert got.allowed == want.allowed, f"{name} at {level}:{version}: policy {got.messages}, podsec {want.message}"
        if not want.allowed:
            first = want.failures[0]
            assert got.message.startswith(f'violates PodSecurity "{level}:{version}": {first.reason} ('), got.message


@pytest.mark.parametrize(
    ("name", "level", "version", "allowed"),
    [
        ("Windows pod without Linux fields", "restricted", "v1.24", False),
        ("Windows pod without Linux fields", "restricted", "v1.25", True),
        ("container runAsUser 0 with hostUsers false", "restricted", "v1.34", False),
        ("container runAsUser 0 with hostUsers false", "restricted", "v1.35", True),
        ("container runAsUser 0 with hostUsers false", "restricted", "v1.22", True),  # runAsUser starts at v1.23
        ("procMount Unmasked with hostUsers false", "baseline", "v1.35", True),
        ("procMount Unmasked with hostUsers false", "restricted", "v1.35", False),
        ("newer sysctls", "baseline", "v1.31", False),
        ("newer sysctls", "baseline", "v1.32", True),
        ("probe host", "baseline", "v1.33", True),
        ("probe host", "baseline", "v1.34", False),
        ("container overrides pod runAsNonRoot", "restricted", "latest", False),
        ("containers cover unset pod runAsNonRoot", "restricted", "latest", False),  # the ephemeral one is not
        ("volume with only a name", "restricted", "latest", True),
        ("null securityContext on a container", "baseline", "latest", True),
        ("empty drop list", "restricted", "latest", False),
        ("seccomp annotation unconfined for the init container", "baseline", "v1.18", False),
        ("seccomp annotation unconfined for the init container", "baseline", "v1.19", True),
    ],
)
def test_version_rules(name: str, level: str, version: str, allowed: bool) -> None:
    assert admit(policy(level, version), CASES[name]).allowed is allowed


def test_messages_read_like_psa() -> None:
    got = admit(policy("restricted", "v1.30"), CASES["hostPath and nfs volumes"]).message
    assert got == ('violates PodSecurity "restricted:v1.30": restricted volume types '
                   '(volumes "a", "b" use restricted volume types "hostPath", "nfs")')
    got = admit(policy("restricted", "latest"), CASES["init container adds NET_RAW"]).message
    assert got == ('violates PodSecurity "restricted:latest": unrestricted capabilities '
                   '(container "init" must not include "NET_RAW" in securityContext.capabilities.add)')


def test_updates_are_checked_only_when_psa_would() -> None:
    """A metadata-only update of a pod admitted before the policy passes; a new image is checked."""
    bad = CASES["pod runAsUser 0"]
    relabelled = set_path(bad, "metadata.labels", {"team": "a"})
    assert not admit(policy("restricted", "latest"), bad).allowed
    assert admit(policy("restricted", "latest"), relabelled, old=bad, operation="UPDATE").allowed
    new_image = set_path(bad, "spec.containers.0.image", "busybox:2")
    assert not admit(policy("restricted", "latest"), new_image, old=bad, operation="UPDATE").allowed
    debug = set_path(bad, "spec.ephemeralContainers", [*bad["spec"]["ephemeralContainers"], {"name": "d2", "image": "x"}])
    assert not admit(policy("restricted", "latest"), debug, old=bad, operation="UPDATE").allowed


def test_exempt_users_and_runtime_classes_pass_as_in_psa() -> None:
    pol = policy_documents("restricted", "latest", exempt_users=("system:serviceaccount:ci:builder",),
                           exempt_runtime_classes=("kata",))[0]
    bad = CASES["pod runAsUser 0"]
    assert not admit(pol, bad).allowed
    assert admit(pol, bad, user="system:serviceaccount:ci:builder").allowed
    assert admit(pol, set_path(bad, "spec.runtimeClassName", "kata")).allowed
    assert not admit(pol, set_path(bad, "spec.runtimeClassName", "runc")).allowed


def test_every_check_variant_has_a_cel_form() -> None:
    missing = [f"{c.id}@v1.{v.minimum_version}" for c in DEFAULT_CHECKS for v in c.versions if v.cel is None]
    assert not missing


@pytest.mark.parametrize("level", ["baseline", "restricted"])
@pytest.mark.parametrize("version", ["v1.0", "v1.19", "v1.25", "v1.30", "v1.35", "latest"])
@pytest.mark.parametrize("k8s", ["1.30", "1.37"])
def test_objects_validate_against_the_official_schema(level: str, version: str, k8s: str) -> None:
    docs = policy_documents(level, version, ("Warn", "Audit"), {"matchLabels": {"env": "prod"}}, ("kube-system",),
                            exempt_users=("system:serviceaccount:ci:builder",), exempt_runtime_classes=("kata",))
    for doc in [*docs, *policy_documents(level, version)]:
        kubernetes_validate.validate(doc, k8s, strict=True)


def test_one_validation_per_check_in_psa_order() -> None:
    from podsec.policy.pss import check_ids

    for level in ("baseline", "restricted"):
        for version in VERSIONS:
            got = [v["expression"].split("\n", 1)[0].removeprefix("// ") for v in policy(level, version)["spec"]["validations"]]
            assert got == check_ids(level, version)


_LISTS = ("variables.containers", "variables.volumes", "variables.annotations", "podSecurityContext.?sysctls")


_WALK = re.compile(r"(" + "|".join(re.escape(x) for x in _LISTS) + r")(?:\.orValue\(\[\]\))?\.(?:all|exists|filter|map)\(")


def _macro_bodies(expr: str) -> list[tuple[str, str]]:
    """(list, body) for each ``<list>.all/exists/filter/map(...)`` over an input-sized list."""
    out = []
    for m in _WALK.finditer(expr):
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        out.append((m.group(1), expr[m.end(): i - 1]))
    return out


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_cost_is_linear_in_containers(level: str) -> None:
    """No expression walks an input-sized list inside a walk of another: each is a fixed number of passes.

    Inner walks are over one container's own fields (ports, capabilities, handlers) or over the fixed
    lists of allowed values, so the work is linear in the size of the pod.
    """
    spec = policy(level, "latest")["spec"]
    exprs = [v["expression"] for v in spec["validations"]] + [v["messageExpression"] for v in spec["validations"]]
    exprs += [v["expression"] for v in spec["variables"]] + [m["expression"] for m in spec["matchConditions"]]
    for expr in exprs:
        for outer, body in _macro_bodies(expr):
            inner = _WALK.search(body)
            assert inner is None, f"{inner and inner.group(1)} walked inside a walk of {outer} in: {expr[:120]}"


def test_cli_prints_policy_and_binding() -> None:
    res = CliRunner().invoke(cli, ["policy", "vap", "--level", "restricted", "--version", "v1.30",
                                   "--action", "Warn", "--action", "Audit", "--exempt-namespace", "kube-system"])
    assert res.exit_code == 0, res.output
    policy_doc, binding = yaml.safe_load_all(res.output)
    assert policy_doc["kind"] == "ValidatingAdmissionPolicy" and policy_doc["metadata"]["name"] == "podsec-pss-restricted-v1.30"
    assert binding["spec"] == {
        "policyName": "podsec-pss-restricted-v1.30",
        "validationActions": ["Warn", "Audit"],
        "matchResources": {"namespaceSelector": {
            "matchLabels": {"pod-security.kubernetes.io/enforce": "restricted"},
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}],
        }},
    }
    docs = policy_documents("restricted", "v1.30", ("Warn", "Audit"), None, ("kube-system",))
    assert res.output == render_yaml(docs)
    assert [policy_doc, binding] == docs  # the YAML reads back as the objects, CEL text unchanged


def test_cli_namespace_selector() -> None:
    res = CliRunner().invoke(cli, ["policy", "vap", "--level", "baseline", "--namespace-selector",
                                   "env in (prod,staging),team=a,!legacy"])
    assert res.exit_code == 0, res.output
    binding = list(yaml.safe_load_all(res.output))[1]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"team": "a"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]},
                             {"key": "legacy", "operator": "DoesNotExist"}],
    }
    res = CliRunner().invoke(cli, ["policy", "vap", "--level", "baseline", "--namespace-selector", ""])
    assert list(yaml.safe_load_all(res.output))[1]["spec"]["matchResources"]["namespaceSelector"] == {}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--action", "Deny", "--action", "Warn"], "Deny and Warn may not be used together"),
        (["--namespace-selector", "a b"], "--namespace-selector: cannot parse 'a b'"),
        (["--version", "1.30"], 'must be "latest" or "v1.x"'),
    ],
)
def test_cli_bad_options_exit_2_with_one_line(args: list[str], words: str) -> None:
    res = CliRunner().invoke(cli, ["policy", "vap", "--level", "restricted", *args])
    assert res.exit_code == 2
    assert words in res.output
    assert "Traceback" not in res.output


def test_readme_denial_is_what_the_policy_says() -> None:
    """The README's kubectl line for examples/security-demo.yaml is this policy's message in kubectl's words."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    pod = next(yaml.safe_load_all((repo / "examples" / "security-demo.yaml").read_text()))
    pol, binding = policy_documents("restricted", "latest")
    decision = admit(pol, pod)
    line = (f'The pods "{pod["metadata"]["name"]}" is invalid: : ValidatingAdmissionPolicy '
            f"'{pol['metadata']['name']}' with binding '{binding['metadata']['name']}' denied request: {decision.message}")
    assert line in (repo / "README.md").read_text().splitlines()


def test_readme_sizes_are_current() -> None:
    """The sizes the README gives are the generated objects' (validations, KB rounded, lines)."""
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    for level in ("baseline", "restricted"):
        for version in ("v1.30", "latest"):
            text = render_yaml(policy_documents(level, version))
            n = len(policy(level, version)["spec"]["validations"])
            size = f"{round(len(text.encode()) / 1000)} KB / {text.count(chr(10))} lines at {version}"
            assert size in readme, size
            assert (f"{level} {n} validations" in readme) or (f"({n}, {size}" in readme), (level, version, n)
