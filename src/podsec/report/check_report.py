"""Renderers for ``podsec check``: one analysis, several formats (table, JSON, YAML, SARIF, JUnit)."""

from __future__ import annotations

import json
from typing import TextIO

from podsec import __version__
from podsec.check import Analysis, WorkloadReport
from podsec.findings import SEVERITY_RANK

SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SARIF_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def _workload_dict(r: WorkloadReport) -> dict:
    wl = r.workload
    pss = r.pss
    return {
        "file": wl.obj.source.display,
        "line": wl.obj.line_of(),
        "kind": wl.kind,
        "namespace": wl.namespace or "default",
        "name": wl.name,
        "pss": {
            "level": r.policy.level,
            "version": r.policy.version,
            "source": r.policy.source,
            "allowed": r.pss_allowed,
            "message": getattr(pss, "message", "") or "",
        },
        "findings": [
            {
                "id": f.id,
                "severity": f.severity,
                "message": f.message,
                "field": f.field,
                "line": f.line,
                "container": f.container,
                "why": f.why,
                "fix": f.fix,
            }
            for f in sorted(r.findings, key=_finding_order)
        ],
    }


def _finding_order(f: object) -> tuple:
    return (-SEVERITY_RANK[f.severity], f.line, f.id)  # type: ignore[attr-defined]


def to_dict(analysis: Analysis) -> dict:
    return {"results": [_workload_dict(r) for r in analysis.reports]}


def write_json(analysis: Analysis, out: TextIO) -> None:
    try:
        import orjson

        out.write(orjson.dumps(to_dict(analysis), option=orjson.OPT_INDENT_2).decode())
        out.write("\n")
    except ImportError:
        json.dump(to_dict(analysis), out, indent=2)
        out.write("\n")


def write_yaml(analysis: Analysis, out: TextIO) -> None:
    import yaml

    yaml.dump(to_dict(analysis), out, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
              allow_unicode=True)


def _rules(analysis: Analysis) -> list[dict]:
    from podsec.policy.checks import REGISTRY

    rules: dict[str, dict] = {}
    own = {c.id: c for c in REGISTRY}
    for r in analysis.reports:
        for f in r.findings:
            if f.id in rules:
                continue
            info = own.get(f.id)
            title = info.title if info else (
                "Pod Security Standards: " + f.id.split(":", 1)[1] if f.id.startswith("PSS:")
                else "Kubernetes API validation"
            )
            rules[f.id] = {
                "id": f.id,
                "name": f.id.replace(":", "_"),
                "shortDescription": {"text": title},
                "fullDescription": {"text": f.why or title},
                "help": {"text": f"{f.why} Fix: {f.fix}".strip()},
                "defaultConfiguration": {"level": SARIF_LEVEL[f.severity]},
                "properties": {"security-severity": SARIF_SECURITY_SEVERITY[f.severity], "tags": ["security"]},
            }
    return list(rules.values())


def to_sarif(analysis: Analysis) -> dict:
    rules = _rules(analysis)
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    for r in analysis.reports:
        uri = r.workload.obj.source.display
        if uri == "<stdin>":
            uri = "stdin"
        for f in r.findings:
            results.append(
                {
                    "ruleId": f.id,
                    "ruleIndex": index[f.id],
                    "level": SARIF_LEVEL[f.severity],
                    "message": {"text": f"{r.workload.kind}/{r.workload.name}: {f.message} ({f.field}). Fix: {f.fix}"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": uri.removeprefix("./")},
                                "region": {"startLine": max(1, f.line)},
                            },
                            "logicalLocations": [{"fullyQualifiedName": f"{r.workload.kind}/{r.workload.name}/{f.field}"}],
                        }
                    ],
                    "partialFingerprints": {
                        "podsec/v1": f"{r.workload.kind}/{r.workload.namespace}/{r.workload.name}/{f.id}/{f.field}"
                    },
                }
            )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "podsec",
                        "version": __version__,
                        "informationUri": "https://github.com/podsec/podsec",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def write_sarif(analysis: Analysis, out: TextIO) -> None:
    json.dump(to_sarif(analysis), out, indent=2)
    out.write("\n")


def write_junit(analysis: Analysis, out: TextIO, fail_on: str) -> None:
    from xml.sax.saxutils import escape, quoteattr

    cases = []
    failures = 0
    for r in analysis.reports:
        wl = r.workload
        name = f"{wl.kind}/{wl.namespace or 'default'}/{wl.name}"
        bad = [f for f in r.findings if f.at_least(fail_on) or f.id.startswith("PSS:")]
        body = ""
        if bad or not r.pss_allowed:
            failures += 1
            text = "\n".join(f"{wl.obj.source.display}:{f.line}: {f.id} [{f.severity}] {f.field}: {f.message}"
                             for f in bad)
            msg = getattr(r.pss, "message", "") or f"{len(bad)} finding(s) at or above {fail_on}"
            body = f"<failure message={quoteattr(msg)} type=\"podsec\">{escape(text)}</failure>"
        cases.append(
            f'    <testcase classname={quoteattr(wl.obj.source.display)} name={quoteattr(name)}>{body}</testcase>'
        )
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(f'<testsuites name="podsec" tests="{len(cases)}" failures="{failures}">\n')
    out.write(f'  <testsuite name="podsec check" tests="{len(cases)}" failures="{failures}">\n')
    out.write("\n".join(cases) + ("\n" if cases else ""))
    out.write("  </testsuite>\n</testsuites>\n")


def _rows(analysis: Analysis, min_severity: str) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for r in analysis.reports:
        wl = r.workload
        who = f"{wl.kind}/{wl.name}"
        for f in sorted(r.findings, key=_finding_order):
            if not f.at_least(min_severity):
                continue
            rows.append((who, f.severity, f.id, f"{wl.obj.source.display}:{f.line} {f.field}", f.message))
    return rows


def summary_lines(analysis: Analysis) -> list[str]:
    lines = []
    for r in analysis.reports:
        wl = r.workload
        verdict = "allowed" if r.pss_allowed else "DENIED"
        lines.append(f"{wl.kind}/{wl.name} ({wl.obj.source.display}:{wl.obj.line_of()}): "
                     f'PodSecurity "{r.policy.level}:{r.policy.version}" {verdict}; {len(r.findings)} finding(s)')
    return lines


def write_table(analysis: Analysis, out: TextIO, min_severity: str = "info", color: bool | None = None) -> None:
    """A rich table on a terminal; a plain aligned table when piped (fast for thousands of rows)."""
    rows = _rows(analysis, min_severity)
    header = ("WORKLOAD", "SEVERITY", "ID", "WHERE", "MESSAGE")
    if color is None:
        color = out.isatty()
    if color:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=out)
        table = Table(show_lines=False, header_style="bold")
        for h in header:
            table.add_column(h, overflow="fold")
        style = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
        for row in rows:
            table.add_row(row[0], f"[{style[row[1]]}]{row[1]}[/]", *row[2:])
        if rows:
            console.print(table)
        for line in summary_lines(analysis):
            console.print(line, markup=False, highlight=False)
        return
    widths = [len(h) for h in header[:-1]]
    for row in rows:
        for i in range(4):
            if len(row[i]) > widths[i]:
                widths[i] = len(row[i])
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}\n"
    parts = []
    if rows:
        parts.append(fmt.format(*header))
        parts.extend(fmt.format(*row) for row in rows)
    parts.extend(line + "\n" for line in summary_lines(analysis))
    out.write("".join(parts))
