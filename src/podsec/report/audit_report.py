"""Renderers for ``podsec audit``: check's formats over the same result dicts (``file``/``line`` null, plus
``pods`` and ``notes``), and ``wgpolicyk8s.io/v1alpha2`` PolicyReports, one per namespace, as Kyverno and
kubescape publish them."""

from __future__ import annotations

import time
from typing import TextIO

from podsec.report.check_report import Results, at_least

API_VERSIONS = {"Pod": "v1", "ReplicationController": "v1", "Deployment": "apps/v1", "ReplicaSet": "apps/v1",
                "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1"}


def summary_lines(results: Results) -> list[str]:
    lines = []
    for r in results:
        pss = r["pss"]
        verdict = "allowed" if pss["allowed"] else "DENIED"
        extra = [f'{m} "{pss[m]["level"]}:{pss[m]["version"]}" violated' for m in ("warn", "audit")
                 if m in pss and not pss[m]["allowed"] and pss[m]["level"] != pss["level"]]
        text = (f"{r['namespace']}/{r['kind']}/{r['name']}: {r['pods']} live pod(s); "
                f'PodSecurity "{pss["level"]}:{pss["version"]}" ({pss["source"]}) {verdict}'
                + "".join(f"; {e}" for e in extra) + f"; {len(r['findings'])} finding(s)")
        lines.append(text)
        lines.extend(f"  note: {n}" for n in r.get("notes") or ())
    return lines


def write_table(results: Results, out: TextIO, min_severity: str = "info") -> None:
    """The findings table (one row per finding of each reported workload), then one line per workload."""
    header = ("WORKLOAD", "SEVERITY", "ID", "FIELD", "MESSAGE")
    widths = [len(h) for h in header[:-1]]
    rows = [(f"{r['namespace']}/{r['kind']}/{r['name']}", f["severity"], f["id"], f["field"], f["message"])
            for r in results for f in r["findings"] if at_least(f["severity"], min_severity)]
    for row in rows:
        for i in range(4):
            widths[i] = max(widths[i], len(row[i]))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}\n"
    parts = []
    if rows:
        parts.append(fmt.format(*header))
        parts.extend(fmt.format(*row) for row in rows)
        parts.append("\n")
    parts.extend(line + "\n" for line in summary_lines(results))
    out.write("".join(parts))


def _result(r: dict, policy: str, rule: str, outcome: str, severity: str, message: str, now: int,
            category: str, properties: dict[str, str]) -> dict:
    return {
        "policy": policy,
        "rule": rule,
        "category": category,
        "severity": severity,
        "result": outcome,
        "message": message,
        "source": "podsec",
        "scored": True,
        "timestamp": {"seconds": now, "nanos": 0},
        "resources": [{"apiVersion": API_VERSIONS.get(r["kind"], "v1"), "kind": r["kind"], "name": r["name"],
                       "namespace": r["namespace"]}],
        "properties": properties,
    }


def policy_reports(results: Results, fail_on: str = "high", now: int | None = None) -> list[dict]:
    """One PolicyReport per namespace: a ``fail`` per Pod Security violation and per finding at least
    ``fail_on`` severe, a ``warn`` per lesser finding, a ``pass`` for a workload with no finding."""
    now = int(time.time()) if now is None else now
    by_ns: dict[str, list[dict]] = {}
    for r in results:
        pss = r["pss"]
        out = by_ns.setdefault(r["namespace"], [])
        props = {"pods": str(r["pods"]), "level": f'{pss["level"]}:{pss["version"]}'}
        if not r["findings"]:
            out.append(_result(r, "podsec", "pod-security", "pass", "info", "no finding", now,
                               f'Pod Security Standards ({pss["level"]})', props))
        for f in r["findings"]:
            is_pss = f["id"].startswith("PSS:")
            outcome = "fail" if is_pss or at_least(f["severity"], fail_on) else "warn"
            category = f'Pod Security Standards ({pss["level"]})' if is_pss else "podsec"
            out.append(_result(r, "podsec", f["id"], outcome, f["severity"], f["message"], now, category,
                               {**props, "field": f["field"], **({"container": f["container"]}
                                                                  if f["container"] else {})}))
    reports = []
    for ns, items in sorted(by_ns.items()):
        summary = {k: sum(1 for i in items if i["result"] == k) for k in ("pass", "fail", "warn", "error", "skip")}
        reports.append({
            "apiVersion": "wgpolicyk8s.io/v1alpha2",
            "kind": "PolicyReport",
            "metadata": {"name": "podsec", "namespace": ns,
                         "labels": {"app.kubernetes.io/managed-by": "podsec"}},
            "summary": summary,
            "results": items,
        })
    return reports


def write_policyreport(results: Results, out: TextIO, fail_on: str = "high") -> None:
    import yaml

    yaml.dump_all(policy_reports(results, fail_on), out, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                  sort_keys=False, allow_unicode=True, explicit_start=True)
