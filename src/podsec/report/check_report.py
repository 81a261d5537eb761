"""Renderers for ``podsec check``: one analysis, several formats (table, JSON, YAML, SARIF, JUnit)."""

from __future__ import annotations

from typing import TextIO

from podsec import __version__
from podsec.findings import SEVERITY_RANK

SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SARIF_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


Results = list[dict]
"""``check -o json``'s ``results``: one dict per workload (see podsec.check.report_dict)."""


def at_least(severity: str, floor: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[floor]


def to_dict(results: Results) -> dict:
    return {"results": results}


def write_indented_json(doc: object, out: TextIO) -> None:
    """Pretty JSON, fast: orjson in C (the stdlib encoder falls back to pure Python when indenting, 2.4x slower
    on 10,000 workloads); non-ASCII is written as UTF-8, not as \\u escapes."""
    import orjson

    out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    out.write("\n")


def write_json(results: Results, out: TextIO) -> None:
    write_indented_json(to_dict(results), out)


def write_yaml(results: Results, out: TextIO) -> None:
    import yaml

    yaml.dump(to_dict(results), out, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
              allow_unicode=True)


def _rules(results: Results) -> list[dict]:
    from podsec.policy.checks import REGISTRY

    rules: dict[str, dict] = {}
    own = {c.id: c for c in REGISTRY}
    for r in results:
        for f in r["findings"]:
            fid = f["id"]
            if fid in rules:
                continue
            info = own.get(fid)
            if info:
                title = info.title
            elif fid.startswith("PSS:"):
                title = "Pod Security Standards: " + fid.split(":", 1)[1]
            else:
                title = "Kubernetes API validation"
            rules[fid] = {
                "id": fid,
                "name": fid.replace(":", "_"),
                "shortDescription": {"text": title},
                "fullDescription": {"text": f["why"] or title},
                "help": {"text": f"{f['why']} Fix: {f['fix']}".strip()},
                "defaultConfiguration": {"level": SARIF_LEVEL[f["severity"]]},
                "properties": {"security-severity": SARIF_SECURITY_SEVERITY[f["severity"]], "tags": ["security"]},
            }
    return list(rules.values())


def to_sarif(results: Results) -> dict:
    rules = _rules(results)
    index = {r["id"]: i for i, r in enumerate(rules)}
    sarif_results = []
    for r in results:
        uri = "stdin" if r["file"] == "<stdin>" else r["file"].removeprefix("./")
        who = f"{r['kind']}/{r['name']}"
        for f in r["findings"]:
            sarif_results.append(
                {
                    "ruleId": f["id"],
                    "ruleIndex": index[f["id"]],
                    "level": SARIF_LEVEL[f["severity"]],
                    "message": {"text": f"{who}: {f['message']} ({f['field']}). Fix: {f['fix']}"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": uri},
                                "region": {"startLine": max(1, f["line"])},
                            },
                            "logicalLocations": [{"fullyQualifiedName": f"{who}/{f['field']}"}],
                        }
                    ],
                    "partialFingerprints": {
                        "podsec/v1": f"{r['kind']}/{r['namespace']}/{r['name']}/{f['id']}/{f['field']}"
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
                "results": sarif_results,
            }
        ],
    }


def write_sarif(results: Results, out: TextIO) -> None:
    write_indented_json(to_sarif(results), out)


def write_junit(results: Results, out: TextIO, fail_on: str) -> None:
    from xml.sax.saxutils import escape, quoteattr

    cases = []
    failures = 0
    for r in results:
        name = f"{r['kind']}/{r['namespace']}/{r['name']}"
        bad = [f for f in r["findings"] if at_least(f["severity"], fail_on) or f["id"].startswith("PSS:")]
        body = ""
        if bad or not r["pss"]["allowed"]:
            failures += 1
            text = "\n".join(f"{r['file']}:{f['line']}: {f['id']} [{f['severity']}] {f['field']}: {f['message']}"
                             for f in bad)
            msg = r["pss"]["message"] or f"{len(bad)} finding(s) at or above {fail_on}"
            body = f'<failure message={quoteattr(msg)} type="podsec">{escape(text)}</failure>'
        cases.append(f"    <testcase classname={quoteattr(r['file'])} name={quoteattr(name)}>{body}</testcase>")
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(f'<testsuites name="podsec" tests="{len(cases)}" failures="{failures}">\n')
    out.write(f'  <testsuite name="podsec check" tests="{len(cases)}" failures="{failures}">\n')
    out.write("\n".join(cases) + ("\n" if cases else ""))
    out.write("  </testsuite>\n</testsuites>\n")


def _rows(results: Results, min_severity: str) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for r in results:
        who = f"{r['kind']}/{r['name']}"
        for f in r["findings"]:
            if at_least(f["severity"], min_severity):
                rows.append((who, f["severity"], f["id"], f"{r['file']}:{f['line']} {f['field']}", f["message"]))
    return rows


def summary_lines(results: Results) -> list[str]:
    lines = []
    for r in results:
        verdict = "allowed" if r["pss"]["allowed"] else "DENIED"
        lines.append(f"{r['kind']}/{r['name']} ({r['file']}:{r['line']}): "
                     f'PodSecurity "{r["pss"]["level"]}:{r["pss"]["version"]}" {verdict}; '
                     f"{len(r['findings'])} finding(s)")
    return lines


def failed(results: Results, fail_on: str) -> bool:
    """Exit status 1: a Pod Security denial or a finding at least ``fail_on`` severe."""
    return any(not r["pss"]["allowed"] or any(at_least(f["severity"], fail_on) for f in r["findings"])
               for r in results)


def write_table(results: Results, out: TextIO, min_severity: str = "info", color: bool | None = None) -> None:
    """A rich table on a terminal; a plain aligned table when piped (fast for thousands of rows)."""
    rows = _rows(results, min_severity)
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
        for line in summary_lines(results):
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
    parts.extend(line + "\n" for line in summary_lines(results))
    out.write("".join(parts))
