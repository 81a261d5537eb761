"""Renderers for ``podsec check``: one analysis, several formats (table, JSON, YAML, SARIF, JUnit), streamed.

Results arrive one workload at a time and leave the same way, so checking 100,000 documents needs
memory for one at a time: JSON, YAML and SARIF are written as they come (SARIF's rules, known only at
the end, follow its results: JSON objects have no order); the plain table, whose columns are as wide
as their widest cell, and JUnit, whose header counts the cases, spool their lines to a temporary file
and write them at the end. Files or documents that could not be used are reported in every format:
a line on stderr, ``errors`` in JSON/YAML, SARIF tool notifications, JUnit ``<error>`` cases.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, TextIO

from podsec import __version__
from podsec.errors import one_line
from podsec.findings import SEVERITY_RANK

SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SARIF_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
RICH_MAX_ROWS = 5000
"""Above this many rows a terminal gets the plain table too (rich lays a table out in memory)."""

Results = list[dict]
"""``check -o json``'s ``results``: one dict per workload (see podsec.check.report_dict)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A file or document that could not be used: its one-line error (``podsec: FILE:LINE: …``)."""

    file: str
    line: int | None
    message: str
    """The whole line after ``podsec: `` (file, line, document and field included)."""

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "message": self.message}


def origin(r: dict) -> str:
    """The file a result came from, or for an object read from a cluster (``file`` null) where it lives."""
    return r["file"] if r["file"] is not None else f"{r['namespace']}/{r['kind']}/{r['name']}"


def place(r: dict, line: int | None) -> str:
    """``file:line``, or the cluster object's ``namespace/Kind/name`` (it has no line)."""
    return f"{r['file']}:{line}" if r["file"] is not None else origin(r)


def at_least(severity: str, floor: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[floor]


def _dumps(doc: object, indent: int = 0) -> str:
    """Pretty JSON (orjson, in C), every line but the first indented by ``indent`` spaces."""
    import orjson

    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()
    return text.replace("\n", "\n" + " " * indent) if indent else text


def write_indented_json(doc: object, out: TextIO) -> None:
    """Pretty JSON, fast: non-ASCII is written as UTF-8, not as \\u escapes."""
    out.write(_dumps(doc))
    out.write("\n")


def failed_result(r: dict, fail_on: str) -> bool:
    """Exit status 1: a Pod Security denial or a finding at least ``fail_on`` severe."""
    return not r["pss"]["allowed"] or any(at_least(f["severity"], fail_on) for f in r["findings"])


def summary_line(r: dict) -> str:
    verdict = "allowed" if r["pss"]["allowed"] else "DENIED"
    return one_line(f"{r['kind']}/{r['name']} ({place(r, r['line'])}): "
                    f'PodSecurity "{r["pss"]["level"]}:{r["pss"]["version"]}" {verdict}; '
                    f"{len(r['findings'])} finding(s)")


class Sink:
    """Receives results and problems in input order; ``close`` finishes the document."""

    def __init__(self, out: TextIO, fail_on: str = "high") -> None:
        self.out = out
        self.fail_on = fail_on
        self.failed = False
        self.count = 0
        self.problems: list[Problem] = []

    def result(self, r: dict) -> None:
        self.count += 1
        if not self.failed and failed_result(r, self.fail_on):
            self.failed = True
        self._result(r)

    def problem(self, p: Problem) -> None:
        self.problems.append(p)

    def _result(self, r: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class JsonSink(Sink):
    """``{"results": [...], "errors": [...]}``, each result written as it comes (``errors`` only when any)."""

    def _result(self, r: dict) -> None:
        self.out.write(("{\n  \"results\": [\n    " if self.count == 1 else ",\n    ") + _dumps(r, 4))

    def close(self) -> None:
        self.out.write("\n  ]" if self.count else '{\n  "results": []')
        if self.problems:
            self.out.write(',\n  "errors": ' + _dumps([p.as_dict() for p in self.problems], 2))
        self.out.write("\n}\n")


class YamlSink(Sink):
    def _result(self, r: dict) -> None:
        import yaml

        if self.count == 1:
            self.out.write("results:\n")
        yaml.dump([r], self.out, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                  allow_unicode=True)

    def close(self) -> None:
        import yaml

        if not self.count:
            self.out.write("results: []\n")
        if self.problems:
            yaml.dump({"errors": [p.as_dict() for p in self.problems]}, self.out,
                      Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)


def _rule(f: dict) -> dict:
    from podsec.policy.checks import REGISTRY

    fid = f["id"]
    info = next((c for c in REGISTRY if c.id == fid), None)
    if info:
        title = info.title
    elif fid.startswith("PSS:"):
        title = "Pod Security Standards: " + fid.split(":", 1)[1]
    else:
        title = "Kubernetes API validation"
    return {
        "id": fid,
        "name": fid.replace(":", "_"),
        "shortDescription": {"text": title},
        "fullDescription": {"text": f["why"] or title},
        "help": {"text": f"{f['why']} Fix: {f['fix']}".strip()},
        "defaultConfiguration": {"level": SARIF_LEVEL[f["severity"]]},
        "properties": {"security-severity": SARIF_SECURITY_SEVERITY[f["severity"]], "tags": ["security"]},
    }


class SarifSink(Sink):
    """SARIF 2.1.0: results as they come, then the invocation (with a notification per unusable file) and the
    tool with the rules the results used (in first-use order, which ``ruleIndex`` counts)."""

    def __init__(self, out: TextIO, fail_on: str = "high") -> None:
        super().__init__(out, fail_on)
        self.rules: list[dict] = []
        self.index: dict[str, int] = {}
        self.written = 0
        out.write('{\n  "$schema": "https://json.schemastore.org/sarif-2.1.0.json",\n  "version": "2.1.0",\n'
                  '  "runs": [\n    {\n      "results": [')

    def _result(self, r: dict) -> None:
        uri = "stdin" if r["file"] == "<stdin>" else origin(r).removeprefix("./")
        who = f"{r['kind']}/{r['name']}"
        for f in r["findings"]:
            if f["id"] not in self.index:
                self.index[f["id"]] = len(self.rules)
                self.rules.append(_rule(f))
            doc = {
                "ruleId": f["id"],
                "ruleIndex": self.index[f["id"]],
                "level": SARIF_LEVEL[f["severity"]],
                "message": {"text": f"{who}: {f['message']} ({f['field']}). Fix: {f['fix']}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri},
                            "region": {"startLine": max(1, f["line"] or 1)},
                        },
                        "logicalLocations": [{"fullyQualifiedName": f"{who}/{f['field']}"}],
                    }
                ],
                "partialFingerprints": {
                    "podsec/v1": f"{r['kind']}/{r['namespace']}/{r['name']}/{f['id']}/{f['field']}"
                },
            }
            self.out.write(("\n        " if not self.written else ",\n        ") + _dumps(doc, 8))
            self.written += 1

    def close(self) -> None:
        self.out.write("\n      ],\n" if self.written else "],\n")
        invocation = {
            "executionSuccessful": not self.problems,
            "toolExecutionNotifications": [
                {"level": "error", "message": {"text": p.message},
                 **({"locations": [{"physicalLocation": {"artifactLocation": {"uri": p.file.removeprefix("./")},
                                                         **({"region": {"startLine": p.line}} if p.line else {})}}]}
                    if p.file else {})}
                for p in self.problems
            ],
        }
        tool = {"driver": {"name": "podsec", "version": __version__,
                           "informationUri": "https://github.com/podsec/podsec", "rules": self.rules}}
        self.out.write(f'      "invocations": [\n        {_dumps(invocation, 8)}\n      ],\n')
        self.out.write(f'      "tool": {_dumps(tool, 6)}\n    }}\n  ]\n}}\n')


class _Spool:
    """Lines kept in a temporary file (in memory while small), read back once."""

    BATCH = 512
    """Lines gathered before one write (a write to the spooled file costs more than joining them)."""

    def __init__(self) -> None:
        self.fh: IO[str] = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8",  # noqa: SIM115
                                                          newline="\n")
        self.pending: list[str] = []

    def add(self, line: str) -> None:
        self.pending.append(line)
        if len(self.pending) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.fh.write("\n".join(self.pending) + "\n")
            self.pending.clear()

    def lines(self) -> Iterable[str]:
        self._flush()
        self.fh.seek(0)
        for line in self.fh:
            yield line[:-1]
        self.fh.close()


class JunitSink(Sink):
    def __init__(self, out: TextIO, fail_on: str = "high") -> None:
        super().__init__(out, fail_on)
        self.cases = _Spool()
        self.failures = 0

    def _result(self, r: dict) -> None:
        from xml.sax.saxutils import escape, quoteattr

        name = f"{r['kind']}/{r['namespace']}/{r['name']}"
        bad = [f for f in r["findings"] if at_least(f["severity"], self.fail_on) or f["id"].startswith("PSS:")]
        body = ""
        if bad or not r["pss"]["allowed"]:
            self.failures += 1
            text = "&#10;".join(escape(f"{place(r, f['line'])}: {f['id']} [{f['severity']}] {f['field']}: "
                                       f"{f['message']}") for f in bad)
            msg = r["pss"]["message"] or f"{len(bad)} finding(s) at or above {self.fail_on}"
            body = f'<failure message={quoteattr(msg)} type="podsec">{text}</failure>'
        case = f"    <testcase classname={quoteattr(origin(r))} name={quoteattr(name)}>{body}</testcase>"
        self.cases.add(one_line(case))

    def close(self) -> None:
        from xml.sax.saxutils import quoteattr

        tests = self.count + len(self.problems)
        head = f'tests="{tests}" failures="{self.failures}" errors="{len(self.problems)}"'
        self.out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        self.out.write(f'<testsuites name="podsec" {head}>\n')
        self.out.write(f'  <testsuite name="podsec check" {head}>\n')
        for line in self.cases.lines():
            self.out.write(line + "\n")
        for p in self.problems:
            self.out.write(f"    <testcase classname={quoteattr(p.file)} name={quoteattr(p.file)}>"
                           f'<error message={quoteattr(p.message)} type="input"/></testcase>\n')
        self.out.write("  </testsuite>\n</testsuites>\n")


class TableSink(Sink):
    """A plain aligned table when piped (rows spooled, widths counted as they come); rich on a terminal."""

    HEADER = ("WORKLOAD", "SEVERITY", "ID", "WHERE", "MESSAGE")

    def __init__(self, out: TextIO, fail_on: str = "high", min_severity: str = "low",
                 color: bool | None = None) -> None:
        super().__init__(out, fail_on)
        self.min_severity = min_severity
        self.color = out.isatty() if color is None else color
        self.rows = _Spool()
        self.summary = _Spool()
        self.widths = [len(h) for h in self.HEADER[:-1]]
        self.nrows = 0

    def _result(self, r: dict) -> None:
        who = one_line(f"{r['kind']}/{r['name']}")
        w = self.widths
        for f in r["findings"]:
            if at_least(f["severity"], self.min_severity):
                row = (who, f["severity"], f["id"], one_line(f"{place(r, f['line'])} {f['field']}"),
                       one_line(f["message"]))
                for i in range(4):
                    if len(row[i]) > w[i]:
                        w[i] = len(row[i])
                self.rows.add("\x1f".join(row))
                self.nrows += 1
        self.summary.add(summary_line(r))

    def close(self) -> None:
        if self.color and self.nrows <= RICH_MAX_ROWS:
            self._rich()
            return
        fmt = "  ".join(f"{{:<{w}}}" for w in self.widths) + "  {}\n"
        out = self.out
        if self.nrows:
            out.write(fmt.format(*self.HEADER))
            for line in self.rows.lines():
                out.write(fmt.format(*line.split("\x1f", 4)))
        for line in self.summary.lines():
            out.write(line + "\n")

    def _rich(self) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=self.out)
        table = Table(show_lines=False, header_style="bold")
        for h in self.HEADER:
            table.add_column(h, overflow="fold")
        style = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
        for line in self.rows.lines():
            row = line.split("\x1f", 4)
            table.add_row(row[0], f"[{style[row[1]]}]{row[1]}[/]", *row[2:])
        if self.nrows:
            console.print(table)
        for line in self.summary.lines():
            console.print(line, markup=False, highlight=False)


def sink_for(output: str, out: TextIO, fail_on: str = "high", min_severity: str = "low") -> Sink:
    """The renderer of ``check -o OUTPUT``."""
    if output == "table":
        return TableSink(out, fail_on, min_severity)
    return {"json": JsonSink, "yaml": YamlSink, "sarif": SarifSink, "junit": JunitSink}[output](out, fail_on)


def render(results: Iterable[dict], output: str, out: TextIO, fail_on: str = "high",
           min_severity: str = "low", problems: Iterable[Problem] = ()) -> bool:
    """Render a whole list at once (tests, small inputs); True when the results fail ``fail_on``."""
    sink = sink_for(output, out, fail_on, min_severity)
    for r in results:
        sink.result(r)
    for p in problems:
        sink.problem(p)
    sink.close()
    return sink.failed
