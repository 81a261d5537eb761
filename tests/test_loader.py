"""Loading manifests: documents, kinds, YAML 1.1 scalars, lines and one-line errors."""

from __future__ import annotations

import pytest

from podsec.errors import InputError
from podsec.manifest.kinds import workload_of
from podsec.manifest.loader import load, parse_documents, split_documents
from podsec.manifest.locate import locate_exact

POD = """apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: busybox
"""


def write(tmp_path, name: str, text: str):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_every_workload_kind_finds_its_pod_template(tmp_path):
    tmpl = "template:\n  metadata: {labels: {a: b}}\n  spec:\n    containers: [{name: c, image: x}]\n"
    ind = lambda s, n: "\n".join(" " * n + ln if ln else ln for ln in s.splitlines())  # noqa: E731
    docs = [POD]
    for kind, api in [("Deployment", "apps/v1"), ("ReplicaSet", "apps/v1"), ("StatefulSet", "apps/v1"),
                      ("DaemonSet", "apps/v1"), ("Job", "batch/v1"), ("ReplicationController", "v1")]:
        docs.append(f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: {kind.lower()}}}\nspec:\n{ind(tmpl, 2)}\n")
    docs.append(f"apiVersion: v1\nkind: PodTemplate\nmetadata: {{name: pt}}\n{tmpl}")
    docs.append("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec:\n  schedule: '* * * * *'\n"
                f"  jobTemplate:\n    spec:\n{ind(tmpl, 6)}\n")
    docs.append("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {k: v}\n")
    f = write(tmp_path, "all.yaml", "---\n".join(docs))
    objs = load([str(f)]).objects
    kinds = [o.kind for o in objs]
    assert kinds == ["Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
                     "ReplicationController", "PodTemplate", "CronJob", "ConfigMap"]
    wls = [workload_of(o) for o in objs]
    assert all(w is not None for w in wls[:-1]) and wls[-1] is None
    for w in wls[1:-1]:
        assert w.spec["containers"][0]["name"] == "c"
    cj = wls[8]
    assert cj.field(("spec", "containers", 0, "image")) == "spec.jobTemplate.spec.template.spec.containers[0].image"
    # The line of the CronJob's container image is where it is in the file.
    line = cj.line_of(("spec", "containers", 0))
    assert "containers: [{name: c, image: x}]" in f.read_text().splitlines()[line - 1]


def test_list_kind_and_json(tmp_path):
    lst = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": []}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},
         "spec": {"containers": [{"name": "c", "securityContext": {"runAsUser": 5}}]}},
    ]}
    import json

    f = write(tmp_path, "l.json", json.dumps(lst, indent=2))
    objs = load([str(f)]).objects
    assert [o.name for o in objs] == ["a", "b"]
    b = objs[1]
    assert b.root == ("items", 1)
    line = b.line_of(("spec", "containers", 0, "securityContext", "runAsUser"))
    assert '"runAsUser": 5' in f.read_text().splitlines()[line - 1]


def test_directories_are_walked_recursively_in_order(tmp_path):
    write(tmp_path, "b/two.yml", POD.replace("name: p", "name: two"))
    write(tmp_path, "a/one.yaml", POD.replace("name: p", "name: one"))
    write(tmp_path, "a/notes.txt", "not yaml: [")
    write(tmp_path, ".hidden/x.yaml", "broken: [")
    assert [o.name for o in load([str(tmp_path)]).objects] == ["one", "two"]


def test_yaml_11_scalars_as_kubernetes_reads_them():
    text = POD + "  volumes:\n  - name: v\n    secret:\n      secretName: s\n      defaultMode: 0644\n"
    (_src, obj), = parse_documents("f", text)
    assert obj["spec"]["volumes"][0]["secret"]["defaultMode"] == 0o644
    text = POD.replace("  containers:", "  hostNetwork: on\n  containers:")
    (_src, obj), = parse_documents("f", text)
    assert obj["spec"]["hostNetwork"] is True


def test_dates_become_strings():
    (_, obj), = parse_documents("f", POD.replace("name: p\n", "name: p\n  annotations:\n    since: 2024-01-02\n"))
    assert obj["metadata"]["annotations"]["since"] == "2024-01-02"


def test_multi_document_lines_and_helm_source():
    text = "---\n# Source: chart/templates/a.yaml\n" + POD + "---\n# Source: chart/templates/b.yaml\n" + POD
    docs = parse_documents("<stdin>", text)
    assert [s.helm_source for s, _ in docs] == ["chart/templates/a.yaml", "chart/templates/b.yaml"]
    assert docs[1][0].display == "chart/templates/b.yaml"
    lines = text.split("\n")
    for src, _ in docs:
        assert lines[src.line_of(("spec", "containers", 0, "image")) - 1].strip() == "image: busybox"


def test_empty_documents_are_skipped():
    assert len(parse_documents("f", "---\n# nothing\n---\n" + POD + "---\n")) == 1
    assert split_documents("a: 1\n---\n---\nb: 2\n") == [(0, "a: 1\n"), (2, ""), (3, "b: 2\n")]


def paths(o, pre=()):
    if pre:
        yield pre
    if isinstance(o, dict):
        for k, v in o.items():
            yield from paths(v, (*pre, k))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from paths(v, (*pre, i))


STYLES = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # comment
  labels: {app: web, tier: "x"}
spec:
  template:
    spec:

      securityContext:
        runAsUser: 1000
      containers:
        - name: a
          image: x
          securityContext: {runAsUser: 0, capabilities: {add: [NET_ADMIN]}}
          args:
          - |
            multi
            line
          - two
        - name: b
          "ports":
          - containerPort: 80
            hostPort: 80
          securityContext:
            capabilities:
              add:
              - NET_ADMIN
              - 'SYS_TIME'
      volumes:
      - name: v
        hostPath:
          path: /x
"""


def test_fast_locator_agrees_with_exact_marks():
    (src, obj), = parse_documents("f", STYLES)
    checked = 0
    for p in paths(obj):
        exact = src.first_line + locate_exact(src.text, p)
        assert src.line_of(p) == exact, p
        checked += 1
    assert checked >= 40


def test_missing_field_points_at_nearest_parent():
    (src, _), = parse_documents("f", POD)
    assert src.line_of(("spec", "containers", 0, "securityContext", "runAsUser")) == 7


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("a: [1\n", "f.yaml:1: document 1: invalid YAML"),
        (POD + "---\nkind: Pod\nspec: {containers: [\n", "f.yaml:11: document 2: invalid YAML"),
        ("- 1\n- 2\n", "f.yaml:1: document 1: expected a Kubernetes object (a mapping), got a list"),
        ("apiVersion: v1\nmetadata: {name: x}\n", "f.yaml:1: document 1 (document/x): kind: Required value"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: 3\n", "f.yaml:4: document 1 (Pod/x): spec: expected"),
        # the second occurrence of a duplicated key, found with PyYAML (yaml-rs names only the key)
        ("a: 1\n---\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: b}\n  - name: c\n    image: d\n"
         "    image: e\n", "f.yaml:9: document 2: invalid YAML: duplicate mapping key: 'image'"),
    ],
)
def test_bad_input_errors_name_file_line_and_document(tmp_path, text, expect):
    f = write(tmp_path, "f.yaml", text)
    with pytest.raises(InputError) as ei:
        for o in load([str(f)]).objects:
            workload_of(o)
    assert ei.value.render().replace(str(tmp_path) + "/", "").startswith(expect), ei.value.render()


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load([str(tmp_path / "nope.yaml")])


# -- YAML directives (%YAML, %TAG): they belong to the document their "---" starts

SC_POD = POD + "    securityContext:\n      privileged: true\n"


def _line(text: str, n: int) -> str:
    return text.split("\n")[n - 1]


def test_yaml_directive_before_the_first_document(tmp_path):
    text = "%YAML 1.1\n---\n" + SC_POD
    f = write(tmp_path, "d.yaml", text)
    (o,) = load([str(f)]).objects
    assert o.name == "p"
    assert _line(text, o.line_of(("spec", "containers", 0, "securityContext", "privileged"))) == "      privileged: true"
    assert o.line_of() == 3  # the object starts below the directive and its marker
    assert o.source.start_line == 3


def test_yaml_directive_document_lines_agree_with_exact_marks():
    text = "# leading comment\n%YAML 1.1\n# between\n--- # marker comment\n" + STYLES
    (src, obj), = parse_documents("f", text)
    checked = 0
    for p in paths(obj):
        assert src.line_of(p) == src.first_line + locate_exact(src.text, p), p
        checked += 1
    assert checked >= 40


def test_tag_directive_and_its_handle():
    text = "%TAG !k! tag:example.com,2000:\n---\n" + SC_POD.replace("name: p", "name: !k!x p")
    (src, obj), = parse_documents("f", text)
    assert obj["metadata"]["name"] == "p"
    assert _line(text, src.line_of(("spec", "containers", 0, "image"))) == "    image: busybox"


def test_yaml_12_and_unknown_directives_are_refused_like_go_yaml():
    # go-yaml (sigs.k8s.io/yaml) accepts only %YAML 1.1 and knows only %YAML and %TAG.
    with pytest.raises(InputError, match="incompatible YAML document") as ei:
        parse_documents("f", POD + "...\n%YAML 1.2\n---\n" + POD)
    assert ei.value.line == 10 and "document 2" in (ei.value.doc or "")
    for bad, why in [("%YAML 2.0", "incompatible"), ("%YAML 1.10", "incompatible"), ("%YAML", "version"),
                     ("%YAML x", "version")]:
        with pytest.raises(InputError, match=f"invalid YAML: .*{why}"):
            parse_documents("f", bad + "\n---\n" + POD)
    assert parse_documents("f", "%YAML 1.1 # comment\n---\n" + POD)[0][1]["kind"] == "Pod"
    with pytest.raises(InputError, match="unknown directive name %FOO") as ei:
        parse_documents("f", "%FOO bar\n---\n" + POD)
    assert ei.value.line == 1


def test_directives_before_later_documents():
    a, b, c, d = (SC_POD.replace("name: p", f"name: {n}") for n in "abcd")
    text = (a + "---\n" + b                      # no directive
            + "...\n%YAML 1.1\n---\n" + c       # after an explicit end marker
            + "%YAML 1.1\n# note\n%TAG !k! tag:example.com,2000:\n---\n" + d)  # libyaml/go-yaml: no "..." needed
    docs = parse_documents("f", text)
    assert [obj["metadata"]["name"] for _, obj in docs] == ["a", "b", "c", "d"]
    lines = text.split("\n")
    for src, obj in docs:
        priv = src.line_of(("spec", "containers", 0, "securityContext", "privileged"))
        assert lines[priv - 1] == "      privileged: true"
        name = src.line_of(("metadata", "name"))
        assert lines[name - 1] == f"  name: {obj['metadata']['name']}"
    assert [s.first_line for s, _ in docs] == [1, 12, 23, 35]
    assert [s.start_line for s, _ in docs] == [1, 12, 25, 39]
    # Chunks end where the next document's directives begin: no directive-only "document".
    assert [first for first, _ in split_documents(text)] == [0, 11, 22, 34]


def test_directive_document_keeps_yaml_11_octal_and_errors_name_its_lines(tmp_path):
    text = POD + "---\n%YAML 1.1\n---\n" + POD + "  volumes:\n  - name: v\n    secret:\n      defaultMode: 0644\n"
    _, (src, obj) = parse_documents("f", text)
    assert obj["spec"]["volumes"][0]["secret"]["defaultMode"] == 0o644
    assert _line(text, src.line_of(("spec", "volumes", 0, "secret", "defaultMode"))) == "      defaultMode: 0644"
    f = write(tmp_path, "l.yaml", "%YAML 1.1\n---\n- 1\n")
    with pytest.raises(InputError, match="got a list") as ei:
        load([str(f)])
    assert ei.value.line == 3
    f = write(tmp_path, "bad.yaml", POD + "...\n%YAML 1.1\n---\nkind: Pod\nspec: {containers: [\n")
    with pytest.raises(InputError, match="invalid YAML") as ei:
        load([str(f)])
    assert ei.value.line == 13 and "document 2" in (ei.value.doc or "")


def test_fix_keeps_directives_and_edits_the_right_document():
    from podsec.fix import fix_text

    text = "%YAML 1.1\n---\n" + SC_POD + "...\n%YAML 1.1\n---\n" + SC_POD.replace("name: p", "name: q")
    r = fix_text("d.yaml", text)
    assert r.fixed.startswith("%YAML 1.1\n---\napiVersion: v1\n")
    assert r.fixed.count("%YAML 1.1\n---\n") == 2
    assert r.fixed.count("- ALL") == 2
    assert [o["metadata"]["name"] for _, o in parse_documents("d.yaml", r.fixed)] == ["p", "q"]


def test_split_documents_lines_on_a_long_stream():
    docs = [POD.replace("name: p", f"name: p{i}") for i in range(300)]
    text = "---\n".join(docs) + "...\n%YAML 1.1\n---\n" + POD
    chunks = split_documents(text)
    assert len(chunks) == 301
    lines = text.split("\n")
    for first, body in chunks:
        assert "\n".join(lines[first:]).startswith(body)
    chunks.append((0, "mutated"))  # results are cached; callers get their own list
    assert len(split_documents(text)) == 301


DASHES = """apiVersion: v1
kind: List
items:
-   kind: Pod
    metadata: {name: a}
    spec:
      containers:
      -    name: wide
           args:
           - |
             - name: not a key
           -   >-
             folded
      - name: b
        env:
        -  name: X
           value: |
             k: v
        -  name: "Y"
           value: &v one
        - name: Z
          value: *v
      - - nested
        - name: inner
-   &anchor
    kind: Pod
    meta data: x
    weird:key: y
    x.y/z-w: 1
"""


def test_fast_index_agrees_with_exact_marks_on_dash_and_scalar_forms():
    (src, obj), = parse_documents("f", DASHES)
    checked = 0
    for p in paths(obj):
        assert src.line_of(p) == src.first_line + locate_exact(src.text, p), p
        checked += 1
    assert checked >= 25


MERGE = """\
apiVersion: v1
kind: Pod
metadata: {name: m}
spec:
  containers:
  - &c
    name: a
    image: busybox
    securityContext: &sc {runAsNonRoot: true, runAsUser: 1000}
  - <<: *c
    name: b
    securityContext:
      <<: *sc
      runAsUser: 0
  - {<<: *c, name: d}
"""


def test_merge_keys_are_merged_as_go_yaml_v2_does():
    """``<<: *anchor`` (YAML 1.1): keys given next to it win; yaml-rs alone would keep "<<" as a key."""
    [(src, obj)] = parse_documents("m.yaml", MERGE)
    _, b, d = obj["spec"]["containers"]
    assert b == {"name": "b", "image": "busybox", "securityContext": {"runAsNonRoot": True, "runAsUser": 0}}
    assert d["name"] == "d" and d["image"] == "busybox" and "<<" not in d
    assert src.line_of(("spec", "containers", 1, "securityContext", "runAsUser")) == 14
    # a quoted "<<" is an ordinary key, not a merge
    [(_, plain)] = parse_documents("q.yaml", 'a: 1\n"<<": 2\n')
    assert plain == {"a": 1, "<<": 2}


def test_documents_of_one_shape_share_a_line_index_that_is_their_own():
    """Generated streams repeat one shape under other names: the index is built once and is exactly the index
    of each document; a value that changes how lines are read (block scalar, anchor, alias, comment, flow,
    quotes) gives another shape."""
    from podsec.manifest.locate import build_index, shared_index

    base = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: app\n    image: {v}\n"
    a = base.format(name="pod-1", v="registry.example/app:1")
    b = base.format(name="another-name", v="busybox")
    assert shared_index(a, a.split("\n")) is shared_index(b, b.split("\n"))
    for v in ("|\n      text", ">-\n      x: y", "&x\n      k: v", "*x", "# c\n      k: v", "{a: 1}", "[1, 2]",
              '"quoted: x"', "'q'", "!!str x"):
        text = base.format(name="p", v=v)
        lines = text.split("\n")
        assert shared_index(text, lines) == build_index(lines), v
    for text in (STYLES, DASHES, MERGE, POD):
        for src, _ in parse_documents("f", text):
            assert src.line_index == build_index(src.lines)
