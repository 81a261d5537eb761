"""The shortcuts ``check`` takes per document give what the long way gives: spooled table rows in order across
write batches, ConfigMap/Secret lookups when the input has none, and unknown fields in the decoder's order."""

from __future__ import annotations

import io

from podsec.report.check_report import TableSink, _Spool


def test_spooled_lines_come_back_in_order_across_batches() -> None:
    spool = _Spool()
    lines = [f"row {i}\x1fx" for i in range(_Spool.BATCH * 2 + 7)]
    for line in lines:
        spool.add(line)
    assert list(spool.lines()) == lines


def test_a_long_table_has_every_row_in_order() -> None:
    out = io.StringIO()
    sink = TableSink(out, color=False)
    n = _Spool.BATCH + 3
    for i in range(n):
        sink.result({"file": "f.yaml", "line": i + 1, "kind": "Pod", "namespace": "default", "name": f"p{i}",
                     "pss": {"level": "restricted", "version": "latest", "source": "default", "allowed": True,
                             "message": ""},
                     "findings": [{"id": "PS001", "severity": "high", "message": f"m{i}", "field": "spec",
                                   "line": i + 1, "container": None, "why": "", "fix": ""}]})
    sink.close()
    rows = out.getvalue().splitlines()
    assert rows[0].split()[:2] == ["WORKLOAD", "SEVERITY"]
    assert [r.split()[0] for r in rows[1:n + 1]] == [f"Pod/p{i}" for i in range(n)]
    assert rows[n + 1].startswith("Pod/p0 (f.yaml:1)") and len(rows) == 2 * n + 1


def test_without_configmaps_or_secrets_every_source_is_unknown() -> None:
    from podsec.check import env_sources

    none_given = env_sources([], "default")
    given = env_sources([{"kind": "ConfigMap", "metadata": {"name": "ids"}, "data": {"PUID": "1000"}}], "default")
    assert none_given("ConfigMap", "ids") is None and none_given("Secret", "s") is None
    assert given("ConfigMap", "ids") == {"PUID": "1000"} and given("Secret", "s") is None


def test_unknown_fields_are_in_the_decoders_order_whatever_the_document_order() -> None:
    from podsec.api.strict import unknown_fields

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "zz": 1, "aa": 2},
           "spec": {"zeta": 1, "containers": [{"name": "c", "image": "i", "securityContext": {"runAsUsr": 1}},
                                              {"name": "d", "bogus": True}], "alpha": 2}}
    found = [u.path for u in unknown_fields(pod)]
    assert found == [("metadata", "aa"), ("metadata", "zz"), ("spec", "alpha"),
                     ("spec", "containers", 0, "securityContext", "runAsUsr"), ("spec", "containers", 1, "bogus"),
                     ("spec", "zeta")]
