"""Generate ``src/podsec/data/fields.json``: the field table strict decoding reads, from the official schemas.

The source is the OpenAPI-derived JSON schemas that the ``kubernetes-validate`` package ships for each
Kubernetes minor version (``pip install kubernetes-validate``). Only the kinds podsec reads are kept, and
only what strict decoding needs: each object type's field names and which types their values are.
Run ``python scripts/gen_fields.py`` after upgrading kubernetes-validate; ``tests/test_strict.py`` checks
that the committed table matches the installed package.

Table format (compact, shared across versions): ``{"types": [FIELDS, ...], "versions": {"1.37": {"kinds":
{"apps/v1/Deployment": TYPE}, "names": {TYPE: INDEX}}}}`` where FIELDS maps a field name to ``""`` (a
value strict decoding does not look into), ``"T"`` (an object of type T), ``"[T"`` (a list of T) or
``"{T"`` (a map of string to T).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KINDS = (
    ("v1", "Pod"), ("v1", "PodTemplate"), ("v1", "ReplicationController"), ("apps/v1", "ReplicaSet"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"), ("batch/v1", "Job"),
    ("batch/v1", "CronJob"), ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"),
)
OUT = Path(__file__).resolve().parent.parent / "src" / "podsec" / "data" / "fields.json"


def _short(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    for prefix in ("io.k8s.api.", "io.k8s.apimachinery.pkg.apis.", "io.k8s.apimachinery.pkg."):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _is_object(schema: dict) -> bool:
    t = schema.get("type")
    return t == "object" or (isinstance(t, list) and "object" in t)


def _value(schema: dict, defs: dict, todo: list[str]) -> str:
    """The table's spelling of what a field holds."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = defs[name]
        if target.get("x-kubernetes-preserve-unknown-fields") or "properties" not in target:
            if "additionalProperties" in target and isinstance(target["additionalProperties"], dict):
                inner = _value(target["additionalProperties"], defs, todo)
                return "{" + inner if inner else ""
            return ""
        todo.append(name)
        return _short(name)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return ""
    items = schema.get("items")
    if isinstance(items, dict):
        inner = _value(items, defs, todo)
        return "[" + inner if inner else ""
    extra = schema.get("additionalProperties")
    if _is_object(schema) and isinstance(extra, dict):
        inner = _value(extra, defs, todo)
        return "{" + inner if inner else ""
    return ""


def version_table(schema_dir: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    defs = json.loads((schema_dir / "_definitions.json").read_text())["$defs"]
    kinds: dict[str, str] = {}
    for name, d in defs.items():
        for gvk in d.get("x-kubernetes-group-version-kind", ()):
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            if (api, gvk["kind"]) in KINDS:
                kinds[f"{api}/{gvk['kind']}"] = name
    types: dict[str, dict[str, str]] = {}
    todo = list(kinds.values())
    while todo:
        name = todo.pop()
        if _short(name) in types:
            continue
        props = defs[name].get("properties", {})
        types[_short(name)] = {f: _value(s, defs, todo) for f, s in sorted(props.items())}
    return {k: _short(v) for k, v in sorted(kinds.items())}, types


def build(root: Path) -> dict:
    pool: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    versions: dict[str, dict] = {}
    dirs = sorted((d for d in root.iterdir() if d.name.endswith("-local-strict")),
                  key=lambda d: tuple(int(x) for x in d.name[1:].split("-")[0].split(".")))
    for d in dirs:
        minor = ".".join(d.name[1:].split("-")[0].split(".")[:2])
        kinds, types = version_table(d)
        names: dict[str, int] = {}
        for tname, fields in sorted(types.items()):
            key = json.dumps(fields, sort_keys=True)
            if key not in seen:
                seen[key] = len(pool)
                pool.append(fields)
            names[tname] = seen[key]
        versions[minor] = {"kinds": kinds, "names": names}
    return {"source": "kubernetes-validate", "types": pool, "versions": versions}


def schema_root() -> Path:
    import kubernetes_validate

    return Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else schema_root()
    table = build(root)
    OUT.write_text(json.dumps(table, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"{OUT}: {len(table['versions'])} versions, {len(table['types'])} distinct types, "
          f"{OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
