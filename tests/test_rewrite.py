"""The in-place YAML/JSON rewriter: edits land where a human would put them, every other byte stays."""

from __future__ import annotations

import difflib
import json

import pytest
import yaml

from podsec.errors import InputError
from podsec.manifest.kinds import workload_of
from podsec.manifest.loader import K8sObject, add_object, parse_documents
from podsec.manifest.rewrite import (
    MapPatch,
    SeqPatch,
    apply_patches,
    patch_writable_mounts,
    volume_name,
)


def objects(text: str) -> list[K8sObject]:
    out: list[K8sObject] = []
    for src, obj in parse_documents("t.yaml", text):
        add_object(out, obj, src)
    return out


def only_insertions(before: str, after: str) -> list[str]:
    """The inserted lines; fails if any original line was changed or removed."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    inserted: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        assert tag in ("equal", "insert"), (tag, a[i1:i2], b[j1:j2])
        if tag == "insert":
            inserted += b[j1:j2]
    return inserted


def containers(text: str, doc: int = 0) -> dict[str, dict]:
    out = {}
    for o in objects(text):
        if o.source.index != doc:
            continue
        wl = workload_of(o)
        if wl is None:
            continue
        for key in ("initContainers", "containers"):
            for c in wl.spec.get(key) or ():
                out[c["name"]] = c
    return out


def volumes(text: str, doc: int = 0) -> dict[str, dict]:
    for o in objects(text):
        wl = workload_of(o)
        if o.source.index == doc and wl is not None:
            return {v["name"]: v for v in wl.spec.get("volumes") or ()}
    return {}


COMMENTED = """\
# A deployment with comments everywhere, 4-space indentation and indented sequences.
apiVersion: apps/v1
kind: Deployment
metadata:
    name: web   # the web tier
    labels: {app: web, "tier": 'front'}
spec:
    replicas: 2
    template:
        metadata:
            labels: {app: web}
        spec:
            # the containers
            containers:
                -   name: nginx
                    image: "nginx:1.27"   # pinned
                    ports:
                        - containerPort: 80
                    # trailing comment inside the container

                -   name: sidecar
                    image: busybox
                    securityContext: {runAsUser: 1000}
                    volumeMounts:
                        -   name: data
                            mountPath: /data
            volumes:
                -   name: data
                    emptyDir: {}
                -   name: tmp   # taken on purpose
                    configMap: {name: x}
# end of document 1
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data:
  nginx.conf: |
    server { listen 80; }
"""


def test_writable_mounts_only_insert_lines_in_the_files_style() -> None:
    out = patch_writable_mounts(COMMENTED, "t.yaml", {(0, "nginx"): ["/var/cache/nginx", "/tmp"]})
    inserted = only_insertions(COMMENTED, out)
    assert inserted == [
        "                    securityContext:\n",
        "                        readOnlyRootFilesystem: true\n",
        "                    volumeMounts:\n",
        "                        -   name: var-cache-nginx\n",
        "                            mountPath: /var/cache/nginx\n",
        "                        -   name: tmp-2\n",
        "                            mountPath: /tmp\n",
        "                -   name: var-cache-nginx\n",
        "                    emptyDir: {}\n",
        "                -   name: tmp-2\n",
        "                    emptyDir: {}\n",
    ]
    # the new container keys follow the container's last field, before its trailing comment
    assert out.index("readOnlyRootFilesystem") < out.index("# trailing comment inside the container")
    c = containers(out)["nginx"]
    assert c["securityContext"] == {"readOnlyRootFilesystem": True}
    assert c["volumeMounts"] == [{"name": "var-cache-nginx", "mountPath": "/var/cache/nginx"},
                                 {"name": "tmp-2", "mountPath": "/tmp"}]
    assert volumes(out)["tmp-2"] == {"name": "tmp-2", "emptyDir": {}}
    assert "sidecar" in containers(out) and "readOnlyRootFilesystem" not in str(containers(out)["sidecar"])


def test_writable_mounts_is_idempotent() -> None:
    mounts = {(0, "nginx"): ["/var/cache/nginx", "/tmp"], (0, "sidecar"): ["/tmp"]}
    once = patch_writable_mounts(COMMENTED, "t.yaml", mounts)
    assert patch_writable_mounts(once, "t.yaml", mounts) == once


def test_flow_mapping_gets_the_key_inline_and_existing_mounts_are_not_shadowed() -> None:
    out = patch_writable_mounts(COMMENTED, "t.yaml", {(0, "sidecar"): ["/data/cache", "/data", "/run"]})
    inserted = only_insertions(COMMENTED.replace("{runAsUser: 1000}", "{runAsUser: 1000, readOnlyRootFilesystem: "
                                                 "true}"), out)
    assert "                    securityContext: {runAsUser: 1000, readOnlyRootFilesystem: true}\n" in out
    assert inserted == [
        "                        -   name: run\n",
        "                            mountPath: /run\n",
        "                -   name: run\n",
        "                    emptyDir: {}\n",
    ]


def test_json_stays_json_pretty_printed_at_its_indentation() -> None:
    text = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "app", "image": "busybox"}]}}, indent=4) + "\n"
    out = patch_writable_mounts(text, "p.json", {(0, "app"): ["/tmp"]})
    parsed = json.loads(out)
    assert parsed["spec"]["containers"][0]["securityContext"] == {"readOnlyRootFilesystem": True}
    assert parsed["spec"]["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    # the same bytes as json.dumps(indent=4) of the patched object: the file's own style
    assert out == json.dumps(parsed, indent=4) + "\n"


def test_compact_json_gets_compact_members() -> None:
    text = '{"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", ' \
           '"image": "busybox", "securityContext": {}}]}}'
    out = patch_writable_mounts(text, "p.json", {(0, "a"): ["/tmp"]})
    assert "\n" not in out
    assert json.loads(out)["spec"]["containers"][0] == {
        "name": "a", "image": "busybox", "securityContext": {"readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}


@pytest.mark.parametrize(("kind", "wrap"), [
    ("CronJob", lambda pod: {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": pod}}}}),
    ("StatefulSet", lambda pod: {"spec": {"serviceName": "s", "template": pod}}),
    ("PodTemplate", lambda pod: {"template": pod}),
    ("ReplicationController", lambda pod: {"spec": {"template": pod}}),
])
def test_every_workload_kind_is_found_through_its_template_path(kind: str, wrap) -> None:
    pod = {"metadata": {"labels": {"a": "b"}}, "spec": {
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{"name": "app", "image": "busybox"}]}}
    text = yaml.safe_dump({"apiVersion": "v1", "kind": kind, "metadata": {"name": "w"}, **wrap(pod)}, sort_keys=False)
    out = patch_writable_mounts(text, "w.yaml", {(0, "init"): ["/work"], (0, "app"): ["/tmp"]})
    only_insertions(text, out)
    cs = containers(out)
    assert cs["init"]["securityContext"] == {"readOnlyRootFilesystem": True}
    assert cs["init"]["volumeMounts"] == [{"name": "work", "mountPath": "/work"}]
    assert cs["app"]["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert set(volumes(out)) == {"work", "tmp"}


def test_list_items_and_later_documents_use_their_document_index() -> None:
    text = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: first}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: svc}
- apiVersion: v1
  kind: Pod
  metadata: {name: p}
  spec:
    containers:
    - name: app
      image: busybox
      securityContext:
        readOnlyRootFilesystem: false  # will be made true
"""
    out = patch_writable_mounts(text, "l.yaml", {(1, "app"): ["/tmp"]})
    assert "      securityContext:\n        readOnlyRootFilesystem: true  # will be made true\n" in out
    assert out.endswith("""\
      volumeMounts:
      - name: tmp
        mountPath: /tmp
    volumes:
    - name: tmp
      emptyDir: {}
""")


def test_crlf_files_keep_crlf_and_a_missing_final_newline_is_handled() -> None:
    text = "kind: Pod\r\napiVersion: v1\r\nmetadata:\r\n  name: p\r\nspec:\r\n  containers:\r\n  - name: a\r\n" \
           "    image: busybox"
    out = patch_writable_mounts(text, "p.yaml", {(0, "a"): []})
    assert out == text + "\r\n    securityContext:\r\n      readOnlyRootFilesystem: true"


def test_unknown_container_is_a_one_line_input_error() -> None:
    with pytest.raises(InputError, match=r'p.yaml: document 1: no container "nope"'):
        patch_writable_mounts(COMMENTED, "p.yaml", {(0, "nope"): ["/tmp"]})


def test_alias_is_refused_rather_than_edited_for_two_containers() -> None:
    text = """\
kind: Pod
apiVersion: v1
metadata: {name: p}
spec:
  containers:
  - name: a
    image: busybox
    securityContext: &sc
      runAsUser: 1000
  - name: b
    image: busybox
    securityContext: *sc
"""
    with pytest.raises(InputError, match=r"p.yaml:12: document 1: .*YAML alias"):
        patch_writable_mounts(text, "p.yaml", {(0, "b"): ["/tmp"]})


def test_volume_names_are_dns_labels_and_unique() -> None:
    assert volume_name("/var/cache/nginx", set()) == "var-cache-nginx"
    assert volume_name("/", set()) == "root"
    assert volume_name("/Tmp/My_Dir.d", {"tmp-my-dir-d"}) == "tmp-my-dir-d-2"
    long = volume_name("/" + "a" * 80, {"a" * 63})
    assert len(long) == 63 and long.endswith("-2")


def test_patch_engine_replaces_deletes_and_appends_in_block_and_flow() -> None:
    text = """\
kind: Pod   # c1
spec:
  securityContext:
    runAsNonRoot: false   # was false
  containers:
  - name: a
    securityContext:
      capabilities:
        add:
        - NET_ADMIN   # gone
        - NET_BIND_SERVICE
        drop: [NET_RAW]
  - name: b
    securityContext: {capabilities: {add: [SYS_ADMIN, CHOWN], drop: ['all']}, privileged: true}
"""
    patch = MapPatch(set={"spec": MapPatch(set={
        "securityContext": MapPatch(set={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}),
        "containers": SeqPatch(items={
            0: MapPatch(set={"securityContext": MapPatch(set={"capabilities": MapPatch(set={
                "add": SeqPatch(delete=[0]), "drop": SeqPatch(append=["ALL"])})})}),
            1: MapPatch(set={"securityContext": MapPatch(set={"capabilities": MapPatch(
                set={"drop": SeqPatch(items={0: "ALL"})}, delete=["add"])})}),
        })})})
    out = apply_patches(text, {0: patch}, "p.yaml")
    assert out == """\
kind: Pod   # c1
spec:
  securityContext:
    runAsNonRoot: true   # was false
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: a
    securityContext:
      capabilities:
        add:
        - NET_BIND_SERVICE
        drop: [NET_RAW, ALL]
  - name: b
    securityContext: {capabilities: {drop: ['ALL']}, privileged: true}
"""


def _positions(node: object, out: list[tuple]) -> list[tuple]:
    kind = type(node).__name__
    style = (getattr(node, "style", None) or None) if kind == "ScalarNode" else getattr(node, "flow_style", None)
    tag = str(getattr(node, "tag", ""))
    out.append((kind, node.start_mark.index, node.end_mark.index, style,  # type: ignore[attr-defined]
                tag if tag.endswith((":null", ":str")) else None))
    if kind == "MappingNode":
        for k, v in node.value:  # type: ignore[attr-defined]
            _positions(k, out)
            _positions(v, out)
    elif kind == "SequenceNode":
        for v in node.value:  # type: ignore[attr-defined]
            _positions(v, out)
    return out


def test_libyaml_and_ruamel_composers_agree_on_every_position(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast composer (libyaml) stands in for ruamel's only because they give the same nodes and offsets."""
    from pathlib import Path

    from podsec.manifest import rewrite
    from podsec.manifest.loader import split_documents

    psa = Path("/work/shared/psa-testdata/restricted")
    if not psa.exists():
        psa = Path(__file__).resolve().parents[2] / "shared" / "psa-testdata" / "restricted"
    texts = [p.read_text() for p in sorted(psa.glob("v1.3*/*/*.yaml"))]
    texts += [COMMENTED, '{"kind": "Pod", "spec": {"containers": [{"name": "é€😀", "image": "x"}]}}\n',
              "a: |+\n  keep\n\nb: [1, {c: ~}, 'q', \"d\"]\n", "--- {a: 1}\n--- {a: &y 1, b: *y}\n"]
    assert len(texts) > 300
    libyaml, ruamel = rewrite._composer(), None
    monkeypatch.setattr(rewrite, "COMPOSER", "ruamel")
    ruamel = rewrite._composer()
    compared = 0
    for text in texts:
        for _, chunk in split_documents(text):
            a, b = libyaml(chunk), ruamel(chunk)
            assert (a is None) == (b is None)
            if a is not None:
                assert _positions(a, []) == _positions(b, []), chunk
                compared += 1
    assert compared > 300


def test_both_composers_rewrite_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    from podsec.manifest import rewrite

    mounts = {(0, "nginx"): ["/var/cache/nginx", "/tmp"], (0, "sidecar"): ["/run"]}
    fast = patch_writable_mounts(COMMENTED, "t.yaml", mounts)
    monkeypatch.setattr(rewrite, "COMPOSER", "ruamel")
    assert patch_writable_mounts(COMMENTED, "t.yaml", mounts) == fast


SEEDED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      securityContext:
        runAsUser: 33
      containers:
      - name: web
        image: debian-nginx:bookworm
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
"""


def test_a_seeded_mount_gets_an_init_container_of_the_same_image_and_fs_group_goes_to_the_pod() -> None:
    out = patch_writable_mounts(SEEDED, "d.yaml", {(0, "web"): ["/etc/nginx/conf.d", "/run"]},
                                seeds={(0, "web"): ["/etc/nginx/conf.d"]}, fs_groups={0: 33})
    spec = yaml.safe_load(out)["spec"]["template"]["spec"]
    assert spec["securityContext"] == {"runAsUser": 33, "fsGroup": 33}
    assert spec["initContainers"] == [{
        "name": "seed-etc-nginx-conf-d",
        "image": "debian-nginx:bookworm",
        "command": ["cp", "-a", "/etc/nginx/conf.d/.", "/mnt/seed"],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "etc-nginx-conf-d", "mountPath": "/mnt/seed"}],
    }]
    assert [m["mountPath"] for m in spec["containers"][0]["volumeMounts"]] == ["/etc/nginx/conf.d", "/run"]
    assert out.index("initContainers:") < out.index("containers:\n      - name: web")
    assert patch_writable_mounts(out, "d.yaml", {(0, "web"): ["/etc/nginx/conf.d", "/run"]},
                                 seeds={(0, "web"): ["/etc/nginx/conf.d"]}, fs_groups={0: 33}) == out
