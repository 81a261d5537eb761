"""Edit YAML/JSON manifests in place, keeping every untouched byte as it was.

A round trip through a YAML library re-indents, re-wraps and re-quotes what it did not need to
touch, so this module never re-emits a document. It composes each document with ruamel.yaml only
to learn where every node starts and ends, turns a patch (what to set, append or delete) into a
few text edits at those positions, and splices them in. New lines follow the document's own
style: its indentation step, its sequence dash offset, flow style inside flow collections, and
JSON syntax (quoted keys, pretty-printed at the document's indentation) for JSON documents, so a
JSON file stays JSON. Comments, key order, quoting and every line not edited stay byte-identical.

The main entry points are :func:`apply_patches` (used by ``podsec fix``) and
:func:`patch_writable_mounts` (``readOnlyRootFilesystem`` plus ``emptyDir`` mounts, used by
``podsec trace -o yaml`` and ``podsec fix --trace``).
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podsec.errors import InputError

# --------------------------------------------------------------------------------------------- patches


@dataclass
class MapPatch:
    """Changes to a mapping: ``set`` keys (a plain value, or a nested patch), ``delete`` keys.

    ``before`` places a new key in front of the first existing one of the named keys (where a human
    would put it, e.g. a pod's ``securityContext`` before ``containers``); otherwise new keys go last.
    """

    set: dict[str, Any] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    before: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.set or self.delete)


@dataclass
class SeqPatch:
    """Changes to a sequence: edit ``items`` by index, ``append`` new items, ``delete`` items by index."""

    items: dict[int, Any] = field(default_factory=dict)
    append: list[Any] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.items or self.append or self.delete)


Patch = MapPatch | SeqPatch


def patch_at(path: Sequence[str | int], leaf: Patch) -> Patch:
    """A patch that applies ``leaf`` at ``path`` below the document root."""
    out: Patch = leaf
    for seg in reversed(path):
        out = SeqPatch(items={seg: out}) if isinstance(seg, int) else MapPatch(set={seg: out})
    return out


def merge(a: Any, b: Any) -> Any:
    """Combine two patches for the same node (``b`` wins on plain values)."""
    if isinstance(a, MapPatch) and isinstance(b, MapPatch):
        out = MapPatch(dict(a.set), list(a.delete), dict(a.before))
        for k, v in b.set.items():
            out.set[k] = merge(out.set[k], v) if k in out.set else v
        out.delete += [k for k in b.delete if k not in out.delete]
        out.before.update(b.before)
        return out
    if isinstance(a, SeqPatch) and isinstance(b, SeqPatch):
        out_s = SeqPatch(dict(a.items), list(a.append), list(a.delete))
        for i, v in b.items.items():
            out_s.items[i] = merge(out_s.items[i], v) if i in out_s.items else v
        out_s.append += b.append
        out_s.delete += [i for i in b.delete if i not in out_s.delete]
        return out_s
    return b


def materialize(value: Any) -> Any:
    """The plain value a patch stands for when the node it edits does not exist yet."""
    if isinstance(value, MapPatch):
        return {k: materialize(v) for k, v in value.set.items()}
    if isinstance(value, SeqPatch):
        return [materialize(v) for v in value.append]
    return value


# ----------------------------------------------------------------------------------------- rendering

_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./-]*")
_PLAIN_RESERVED = re.compile(
    r"(?i:y|n|yes|no|on|off|true|false|null|~)|[-+]?(?:\.?[0-9][0-9_.:eE+-]*|\.inf|\.nan)|0[xob][0-9a-fA-F_]+"
)


@dataclass(frozen=True)
class _Quoted:
    """A new string that should be quoted like its neighbours."""

    value: str
    style: str


def scalar_text(value: Any, style: str | None = None, json_mode: bool = False) -> str:
    """A scalar as YAML (plain when that reads back the same, else double-quoted) or JSON."""
    if isinstance(value, _Quoted):
        return scalar_text(value.value, None if json_mode else value.style, json_mode)
    if json_mode or style == '"':
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    s = str(value)
    if style == "'":
        return "'" + s.replace("'", "''") + "'"
    if _PLAIN_SAFE.fullmatch(s) and not _PLAIN_RESERVED.fullmatch(s):
        return s
    return json.dumps(s)


def flow_text(value: Any, json_mode: bool = False) -> str:
    """A value on one line in flow style (``{type: RuntimeDefault}``) or compact JSON."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = [f"{scalar_text(k, json_mode=json_mode)}: {flow_text(v, json_mode)}" for k, v in value.items()]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow_text(v, json_mode) for v in value) + "]"
    return scalar_text(value, json_mode=json_mode)


@dataclass
class Style:
    """How a document indents: nested mapping step, dash column offset of a key's sequence, and the
    column of an item's first key after its dash (``- name`` → 2)."""

    unit: int = 2
    seq_offset: int = 0
    item_pad: int = 2
    json_mode: bool = False
    quote_items: bool = False
    """The document double-quotes the strings in its lists (``add: ["NET_ADMIN"]``)."""


def block_entry(key: str, value: Any, col: int, st: Style) -> list[str]:
    """Lines for ``key: value`` in block style at column ``col``."""
    pad = " " * col
    k = scalar_text(key)
    if isinstance(value, dict) and value:
        lines = [f"{pad}{k}:"]
        for k2, v2 in value.items():
            lines += block_entry(k2, v2, col + st.unit, st)
        return lines
    if isinstance(value, list) and value:
        lines = [f"{pad}{k}:"]
        for item in value:
            lines += block_item(item, col + st.seq_offset, st)
        return lines
    return [f"{pad}{k}: {flow_text(value)}"]


def block_item(item: Any, dash_col: int, st: Style) -> list[str]:
    """Lines for one block sequence item whose dash is at ``dash_col``."""
    lead = " " * dash_col + "-" + " " * (st.item_pad - 1)
    if isinstance(item, dict) and item:
        lines: list[str] = []
        for k, v in item.items():
            lines += block_entry(k, v, dash_col + st.item_pad, st)
        lines[0] = lead + lines[0][dash_col + st.item_pad:]
        return lines
    if isinstance(item, list) and item:
        return [lead + flow_text(item)]
    return [lead + flow_text(item)]


def json_block(value: Any, col: int, unit: int) -> str:
    """Pretty JSON whose continuation lines are indented as if the value started at column ``col``."""
    text = json.dumps(value, indent=unit)
    return text.replace("\n", "\n" + " " * col)


# ---------------------------------------------------------------------------------- the text engine


@dataclass
class Edit:
    start: int
    end: int
    text: str


def splice(text: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits. At one position a deletion goes first, and insertions keep the order
    they were made in: the editor makes a nested node's edits before its parent's, so inner lines come first."""
    order = sorted(range(len(edits)), key=lambda i: (edits[i].start, edits[i].end != edits[i].start,
                                                     edits[i].end, i))
    pieces: list[str] = []
    pos = 0
    for e in (edits[i] for i in order):
        if e.start < pos:
            raise ValueError(f"overlapping edits at {e.start}..{e.end}")
        pieces += (text[pos: e.start], e.text)
        pos = e.end
    pieces.append(text[pos:])
    return "".join(pieces)


def _kind(node: Any) -> str:
    return type(node).__name__


def _is_null(node: Any) -> bool:
    return _kind(node) == "ScalarNode" and str(node.tag).endswith(":null")


def _is_null_empty(node: Any) -> bool:
    return _kind(node) == "ScalarNode" and node.start_mark.index == node.end_mark.index


class _Doc:
    """One YAML document of a file: its composed node tree with positions in the whole file's text."""

    def __init__(self, text: str, offset: int, root: Any, display: str, first_line: int, index: int,
                 line_offsets: list[int]) -> None:
        self.text = text  # the whole file
        self.line_offsets = line_offsets  # index of each line's first character
        self.offset = offset
        self.root = root
        self.display = display
        self.first_line = first_line
        self.index = index
        self.style = self._detect_style()

    # positions (absolute in the file text)
    def start(self, node: Any) -> int:
        return self.offset + node.start_mark.index

    def end(self, node: Any) -> int:
        return self.offset + node.end_mark.index

    def col(self, idx: int) -> int:
        return idx - (self.text.rfind("\n", 0, idx) + 1)

    def line_start(self, idx: int) -> int:
        return self.text.rfind("\n", 0, idx) + 1

    def line_end(self, idx: int) -> int:
        """Index just after the newline ending the line that holds ``idx`` (len(text) at the end)."""
        nl = self.text.find("\n", idx)
        return len(self.text) if nl < 0 else nl + 1

    def starts_line(self, idx: int) -> bool:
        return self.text[self.line_start(idx): idx].strip(" \t") == ""

    def line_no(self, idx: int) -> int:
        return bisect.bisect_right(self.line_offsets, idx)

    def content_end(self, node: Any) -> int:
        """Index just after the last character of a node's own text (comments and blank lines excluded)."""
        k = _kind(node)
        if k == "MappingNode" and not node.flow_style and node.value:
            key, val = node.value[-1]
            return self.content_end(key) if _is_null_empty(val) else self.content_end(val)
        if k == "SequenceNode" and not node.flow_style and node.value:
            return self.content_end(node.value[-1])
        e = self.end(node)
        s = self.start(node)
        while e > s and self.text[e - 1] in " \t\n":
            e -= 1
        return e

    def error(self, node: Any, message: str) -> InputError:
        return InputError(message, file=self.display, line=self.line_no(self.start(node)),
                          doc=f"document {self.index + 1}")

    def _detect_style(self) -> Style:
        units: Counter[int] = Counter()
        offsets: Counter[int] = Counter()
        pads: Counter[int] = Counter()
        quoting: Counter[str | None] = Counter()
        st = Style()
        root = self.root
        if _kind(root) == "MappingNode" and root.flow_style and root.value:
            st.json_mode = root.value[0][0].style == '"'
        stack = [root]
        while stack:
            n = stack.pop()
            k = _kind(n)
            if k == "MappingNode":
                for key, val in n.value:
                    stack.append(val)
                    if n.flow_style or getattr(val, "flow_style", True) or not val.value:
                        continue
                    kc = self.col(self.start(key))
                    if _kind(val) == "MappingNode":
                        units[self.col(self.start(val.value[0][0])) - kc] += 1
                    elif _kind(val) == "SequenceNode":
                        offsets[self.col(self.start(val)) - kc] += 1
            elif k == "SequenceNode":
                stack += n.value
                quoting.update(i.style or None for i in n.value
                               if _kind(i) == "ScalarNode" and str(i.tag).endswith(":str"))
                if not n.flow_style:
                    dash = self.col(self.start(n))
                    for item in n.value:
                        if _kind(item) == "MappingNode" and not item.flow_style and item.value:
                            pads[self.col(self.start(item.value[0][0])) - dash] += 1
        st.quote_items = quoting['"'] > quoting[None]
        if st.json_mode:
            st.unit = self._json_unit()
            return st
        if units:
            st.unit = max((u for u in units if u > 0), key=lambda u: (units[u], -u), default=2)
        if offsets:
            st.seq_offset = max((o for o in offsets if o >= 0), key=lambda o: (offsets[o], -o), default=0)
        if pads:
            st.item_pad = max((p for p in pads if p >= 2), key=lambda p: (pads[p], -p), default=2)
        return st

    def _json_unit(self) -> int:
        root = self.root
        s = self.start(root)
        first = self.start(root.value[0][0])
        if self.line_no(first) == self.line_no(s):
            return 2
        line_indent = len(self.text[self.line_start(s): s]) - len(self.text[self.line_start(s): s].lstrip(" "))
        return max(1, self.col(first) - line_indent)


def _composer() -> Any:
    """A function composing one YAML document into position-carrying nodes.

    libyaml's composer (PyYAML's C loader) is used when present: it is about 25 times faster than ruamel's
    pure-Python round-trip composer and gives the same nodes and character positions
    (``tests/test_rewrite.py`` checks that on every upstream Pod Security fixture); ruamel.yaml is the fallback.
    Only positions, styles and null/str tags are used, so the YAML 1.1/1.2 difference in resolving plain
    scalars does not matter.
    """
    if COMPOSER == "libyaml":
        import yaml

        loader = getattr(yaml, "CSafeLoader", None)
        if loader is not None:
            return lambda chunk: yaml.compose(chunk, Loader=loader)
    from ruamel.yaml import YAML

    return YAML(typ="rt").compose


COMPOSER = "libyaml"
"""``libyaml`` (fast, when PyYAML has its C extension) or ``ruamel``."""


def _compose_documents(text: str, display: str, wanted: set[int]) -> list[_Doc | None]:
    """The ``wanted`` documents of a stream, indexed as the loader indexes them (others and empty ones are None)."""
    from podsec.manifest.loader import split_documents

    compose = _composer()
    line_offsets = [0]
    for m in re.finditer("\n", text):
        line_offsets.append(m.end())
    docs: list[_Doc | None] = []
    for idx, (first, chunk) in enumerate(split_documents(text)):
        if idx not in wanted:
            docs.append(None)
            continue
        base = line_offsets[first] if first < len(line_offsets) else len(text)
        offset = text.find(chunk, base) if chunk else base
        try:
            root = compose(chunk)
        except Exception as exc:  # yaml.YAMLError or ruamel's: the loader parsed it, so this is rare
            mark = getattr(exc, "problem_mark", None)
            raise InputError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", file=display,
                             line=first + 1 + (mark.line if mark else 0), doc=f"document {idx + 1}") from None
        docs.append(None if root is None else _Doc(text, offset, root, display, first + 1, idx, line_offsets))
    return docs


class _Editor:
    """Turns a patch on one document into text edits."""

    def __init__(self, doc: _Doc) -> None:
        self.doc = doc
        self.edits: list[Edit] = []

    # -- dispatch
    def apply(self, node: Any, patch: Any) -> None:
        if isinstance(patch, MapPatch):
            if _kind(node) != "MappingNode":
                raise self.doc.error(node, "expected a mapping here; podsec cannot edit it")
            self.map(node, patch)
        elif isinstance(patch, SeqPatch):
            if _kind(node) != "SequenceNode":
                raise self.doc.error(node, "expected a list here; podsec cannot edit it")
            self.seq(node, patch)
        else:
            self.replace(node, patch)

    def _no_alias(self, parent_end: int, child: Any, where: Any) -> None:
        """A node defined before its place in the text is an alias: editing it would edit every user."""
        if self.doc.start(child) < parent_end:
            raise self.doc.error(where, "this value is a YAML alias (*name); podsec cannot edit it in place, "
                                        "write it out in full")

    # -- scalars and whole values
    def replace(self, node: Any, value: Any) -> None:
        d = self.doc
        if _is_null_empty(node):
            raise AssertionError("replace on an empty value goes through set_value")
        if isinstance(value, (dict, list)):
            text = json_block(value, d.col(d.start(node)), d.style.unit) if d.style.json_mode else \
                flow_text(self._styled(value))
        else:
            style = getattr(node, "style", None)
            text = scalar_text(value, style if style in ('"', "'") else None, d.style.json_mode)
        self.edits.append(Edit(d.start(node), d.end(node), text))

    def set_value(self, key: Any, val: Any, value: Any, flow: bool) -> None:
        """Give ``key`` (whose value is empty, i.e. null) a new value."""
        d = self.doc
        colon = d.text.index(":", d.end(key))
        if flow or d.style.json_mode or not isinstance(value, (dict, list)) or not value:
            self.edits.append(Edit(colon + 1, colon + 1, " " + flow_text(self._styled(value), d.style.json_mode)))
            return
        kc = d.col(d.start(key))
        lines = block_entry("x", value, kc, d.style)[1:]
        self.edits.append(Edit(*(2 * [d.line_end(colon)]), text=self._lines(d.line_end(colon), lines)))

    def _lines(self, at: int, lines: list[str]) -> str:
        text = "".join(line + "\n" for line in lines)
        if at == len(self.doc.text) and not self.doc.text.endswith("\n"):
            text = "\n" + text[:-1]
        return text

    # -- mappings
    def map(self, node: Any, patch: MapPatch) -> None:
        d = self.doc
        entries: dict[str, tuple[Any, Any]] = {}
        for k, v in node.value:
            if _kind(k) == "ScalarNode":
                entries.setdefault(k.value, (k, v))
        new: dict[str, Any] = {}
        for key, want in patch.set.items():
            if key not in entries:
                if isinstance(want, (MapPatch, SeqPatch)) and not materialize(want):
                    continue  # only edits of things that are not there
                new[key] = materialize(want)
                continue
            k, v = entries[key]
            self._no_alias(d.end(k), v, k)
            if _is_null_empty(v) or (isinstance(want, (MapPatch, SeqPatch)) and _is_null(v)):
                value = materialize(want)
                if _is_null_empty(v):
                    self.set_value(k, v, value, bool(node.flow_style))
                else:
                    self.replace(v, value)
            elif isinstance(want, (MapPatch, SeqPatch)):
                self.apply(v, want)
            else:
                self.replace(v, want)
        if node.flow_style:
            gone = [i for i, (k, _) in enumerate(node.value) if _kind(k) == "ScalarNode" and k.value in patch.delete]
            members = [(k, self._flow_member(k, v, node)) for k, v in new.items()]
            if gone:
                self._flow_rewrite(node, gone, [m for _, m in members])
            elif members:
                self._flow_insert(node, members, patch.before)
            return
        for key in patch.delete:
            if key in entries:
                self.delete_entry(entries[key][0], entries[key][1])
        if new:
            self.insert_entries(node, new, patch.before)

    def insert_entries(self, node: Any, new: dict[str, Any], before: dict[str, tuple[str, ...]]) -> None:
        """New keys of a block mapping: in front of a ``before`` key (above its comments), else after the last."""
        d = self.doc
        key_col = d.col(d.start(node.value[0][0]))
        existing = {k.value: k for k, _ in node.value if _kind(k) == "ScalarNode"}
        tail: list[str] = []
        at_key: dict[int, list[str]] = {}
        for key, value in new.items():
            anchor = next((existing[b] for b in before.get(key, ()) if b in existing), None)
            lines = block_entry(key, value, key_col, d.style)
            if anchor is not None and d.starts_line(d.start(anchor)):
                at_key.setdefault(self._above_comments(d.line_start(d.start(anchor))), []).extend(lines)
            else:
                tail += lines
        for at, lines in at_key.items():
            self.edits.append(Edit(at, at, self._lines(at, lines)))
        if tail:
            at = d.line_end(d.content_end(node))
            self.edits.append(Edit(at, at, self._lines(at, tail)))

    def _above_comments(self, at: int) -> int:
        """Move an insertion point above the comment lines directly in front of it."""
        d = self.doc
        while at > 0:
            prev = d.line_start(at - 1)
            if d.text[prev:at].strip().startswith("#") and prev >= d.offset:
                at = prev
            else:
                break
        return at

    def _styled(self, value: Any) -> Any:
        """Strings inside new flow lists quoted as the document quotes its list items (``drop: ["ALL"]``)."""
        if not self.doc.style.quote_items or self.doc.style.json_mode:
            return value
        if isinstance(value, dict):
            return {k: self._styled(v) for k, v in value.items()}
        if isinstance(value, list):
            return [_Quoted(v, '"') if isinstance(v, str) else self._styled(v) for v in value]
        return value

    def _flow_member(self, key: str, value: Any, node: Any) -> str:
        d = self.doc
        k = scalar_text(key, json_mode=d.style.json_mode)
        if d.style.json_mode and self._multiline(node):
            return f"{k}: {json_block(value, self._member_col(node), d.style.unit)}"
        return f"{k}: {flow_text(self._styled(value), d.style.json_mode)}"

    def _multiline(self, node: Any) -> bool:
        d = self.doc
        return d.line_no(d.start(node)) != d.line_no(d.end(node))

    def _member_col(self, node: Any) -> int:
        d = self.doc
        if node.value:
            first = node.value[0][0] if _kind(node) == "MappingNode" else node.value[0]
            return d.col(d.start(first))
        s = d.start(node)
        ls = d.line_start(s)
        return len(d.text[ls:s]) - len(d.text[ls:s].lstrip(" ")) + d.style.unit

    def _span(self, node: Any, i: int) -> tuple[int, int]:
        """Start and content end of member ``i`` of a flow collection (key to value for a mapping)."""
        d = self.doc
        if _kind(node) == "MappingNode":
            k, v = node.value[i]
            return d.start(k), (d.content_end(k) if _is_null_empty(v) else d.content_end(v))
        return d.start(node.value[i]), d.content_end(node.value[i])

    def _separator(self, node: Any) -> str:
        """What stands between two members: the collection's own separator, else ``, `` or a new line."""
        d = self.doc
        if len(node.value) > 1:
            gap = d.text[self._span(node, 0)[1]: self._span(node, 1)[0]]
            if gap.strip() == ",":
                return gap
        if node.value and self._multiline(node) and \
                d.line_no(d.start(node)) != d.line_no(self._span(node, len(node.value) - 1)[0]):
            return ",\n" + " " * self._member_col(node)
        return ", "

    def _flow_insert(self, node: Any, members: list[tuple[str | None, str]],
                     before: dict[str, tuple[str, ...]] | None = None) -> None:
        """Add members to a flow collection: before a named key where asked, else after the last member."""
        d = self.doc
        if not node.value:
            close = d.end(node) - 1
            texts = [m for _, m in members]
            if d.style.json_mode and self._multiline(node):
                col = self._member_col(node)
                text = "\n" + ",\n".join(" " * col + m for m in texts) + "\n" + " " * (col - d.style.unit)
                self.edits.append(Edit(d.start(node) + 1, close, text))
            else:
                self.edits.append(Edit(d.start(node) + 1, close, ", ".join(texts)))
            return
        sep = self._separator(node)
        keys = {k.value: i for i, (k, _) in enumerate(node.value)} if _kind(node) == "MappingNode" else {}
        tail: list[str] = []
        for key, text in members:
            anchor = next((keys[b] for b in (before or {}).get(key or "", ()) if b in keys), None)
            if anchor is None:
                tail.append(text)
            else:
                at = self._span(node, anchor)[0]
                self.edits.append(Edit(at, at, text + sep))
        if tail:
            last_end = self._span(node, len(node.value) - 1)[1]
            self.edits.append(Edit(last_end, last_end, "".join(sep + t for t in tail)))

    def _flow_rewrite(self, node: Any, indexes: list[int], new: list[str]) -> None:
        """Remove members of a flow collection (each run of removed members with one separator) and append new
        ones; the text of kept members is not touched, so edits inside them still apply."""
        n = len(node.value)
        gone = sorted(set(indexes))
        sep = self._separator(node)
        runs: list[list[int]] = []
        for i in gone:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        kept = [i for i in range(n) if i not in gone]
        for run in runs:
            a, b = run[0], run[-1]
            if b + 1 < n:
                self.edits.append(Edit(self._span(node, a)[0], self._span(node, b + 1)[0], ""))
            elif a > 0:
                self.edits.append(Edit(self._span(node, a - 1)[1], self._span(node, b)[1], ""))
            else:
                self.edits.append(Edit(self._span(node, a)[0], self._span(node, b)[1], sep.join(new)))
                return
        if new:
            at = self._span(node, kept[-1])[1]
            self.edits.append(Edit(at, at, "".join(sep + t for t in new)))

    def delete_entry(self, key: Any, value: Any) -> None:
        """Remove a block mapping entry with its lines."""
        d = self.doc
        if not d.starts_line(d.start(key)):
            raise d.error(key, f"cannot remove {key.value!r}: it shares its line with other content")
        end = d.content_end(key) if _is_null_empty(value) else d.content_end(value)
        self.edits.append(Edit(d.line_start(d.start(key)), d.line_end(end), ""))

    # -- sequences
    def seq(self, node: Any, patch: SeqPatch) -> None:
        d = self.doc
        prev_end = d.start(node)
        for i, item in enumerate(node.value):
            if i in patch.items and i not in patch.delete:
                self._no_alias(prev_end, item, node)
                self.apply(item, patch.items[i])
            prev_end = d.end(item)
        deleting = sorted(i for i in set(patch.delete) if 0 <= i < len(node.value))
        if node.flow_style:
            texts = [self._flow_item(v, node) for v in patch.append]
            if deleting:
                self._flow_rewrite(node, deleting, texts)
            elif texts:
                self._flow_insert(node, [(None, t) for t in texts])
            return
        if deleting and len(deleting) == len(node.value) and not patch.append:
            raise d.error(node, "cannot delete every item of a block list in place")
        for i in deleting:
            item = node.value[i]
            dash = d.text.rfind("-", d.start(node), d.start(item))
            if dash < 0 or not d.starts_line(dash):
                raise d.error(item, "cannot remove this list item: it shares its line with other content")
            self.edits.append(Edit(d.line_start(dash), d.line_end(d.content_end(item)), ""))
        if patch.append:
            dash_col = d.col(d.start(node))
            lines: list[str] = []
            for v in patch.append:
                lines += block_item(self._item_styled(v, node), dash_col, d.style)
            at = d.line_end(d.content_end(node))
            if len(deleting) == len(node.value):
                at = d.line_start(d.text.rfind("-", d.start(node), d.start(node.value[0])))
            self.edits.append(Edit(at, at, self._lines(at, lines)))

    def _item_styled(self, value: Any, node: Any) -> Any:
        """A new string item quoted like the list's existing string items (``["ALL"]`` next to ``["NET_RAW"]``)."""
        if isinstance(value, str):
            for item in node.value:
                if _kind(item) == "ScalarNode" and str(item.tag).endswith(":str"):
                    return _Quoted(value, item.style) if item.style in ('"', "'") else value
            return self._styled([value])[0] if node.flow_style else value
        return self._styled(value) if node.flow_style else value

    def _flow_item(self, value: Any, node: Any) -> str:
        d = self.doc
        if d.style.json_mode and self._multiline(node):
            return json_block(value, self._member_col(node), d.style.unit)
        return flow_text(self._item_styled(value, node), d.style.json_mode)


def apply_patches(text: str, patches: Mapping[int, Patch], display: str = "<input>",
                  errors: list[tuple[int, InputError]] | None = None) -> str:
    """Apply a patch per document index (0-based, as the loader counts documents) and return the new text.

    Raises InputError for YAML podsec cannot edit in place (aliases, unusual layouts) with its line; with
    ``errors`` given, such a document is left unchanged and (index, error) is appended there instead.
    """
    if not patches:
        return text
    crlf = "\r\n" in text
    body = text.replace("\r\n", "\n") if crlf else text
    bom = body.startswith("\ufeff")
    if bom:
        body = body[1:]
    docs = _compose_documents(body, display, {i for i, p in patches.items() if p})
    editors: list[_Editor] = []
    for index, patch in sorted(patches.items()):
        if not patch:
            continue
        doc = docs[index] if 0 <= index < len(docs) else None
        if doc is None:
            raise InputError(f"no document {index + 1} to edit", file=display)
        ed = _Editor(doc)
        try:
            ed.apply(doc.root, patch)
        except InputError as exc:
            if errors is None:
                raise
            errors.append((index, exc))
            continue
        editors.append(ed)
    out = splice(body, [e for ed in editors for e in ed.edits])
    if bom:
        out = "\ufeff" + out
    return out.replace("\n", "\r\n") if crlf else out


# ------------------------------------------------------------------------- readOnlyRootFilesystem + emptyDir

_NAME_BAD = re.compile(r"[^a-z0-9]+")


def volume_name(path: str, taken: set[str]) -> str:
    """A DNS-1123 volume name for a container path (``/var/cache/nginx`` → ``var-cache-nginx``), unique in ``taken``."""
    base = _NAME_BAD.sub("-", path.lower()).strip("-")[:63].strip("-") or "root"
    name, n = base, 2
    while name in taken:
        suffix = f"-{n}"
        name = base[: 63 - len(suffix)].strip("-") + suffix
        n += 1
    return name


def _under(path: str, mount: str) -> bool:
    mount = mount.rstrip("/") or "/"
    return path == mount or path.startswith(mount if mount.endswith("/") else mount + "/")


SEED_MOUNT = "/mnt/seed"
"""Where a seed init container sees the emptyDir it fills."""


def seed_container(name: str, image: Any, path: str, volume: str, security_context: Any) -> dict:
    """An init container of the app's image that copies the image's ``path`` into the emptyDir ``volume``
    before the app starts, so the mount hides nothing the app needs (``cp -a`` keeps modes and links)."""
    c: dict[str, Any] = {"name": name, "image": image, "command": ["cp", "-a", f"{path.rstrip('/')}/.", SEED_MOUNT]}
    base = materialize(security_context) if isinstance(security_context, dict) else {}
    c["securityContext"] = {**base, "readOnlyRootFilesystem": True}
    c["volumeMounts"] = [{"name": volume, "mountPath": SEED_MOUNT}]
    return c


def writable_mounts_patch(spec: dict, key: str, index: int, paths: Sequence[str], taken: set[str],
                          extra_volumes: list[dict], seeds: Sequence[str] = (),
                          seed_containers: list[dict] | None = None) -> tuple[MapPatch, list[str]]:
    """The pod-spec patch making one container's root read-only with an emptyDir per path.

    ``taken`` (volume and container names in use, grows) and ``extra_volumes`` (new volumes, appended to) are
    shared by all containers of the pod so names stay unique. Paths also in ``seeds`` get an init container
    (appended to ``seed_containers``) filling the emptyDir from the image first. Returns the patch and the
    paths it mounted.
    """
    container = spec[key][index]
    mounts = [m for m in container.get("volumeMounts") or () if isinstance(m, dict)]
    mount_paths = [str(m.get("mountPath") or "") for m in mounts]
    seeded = {"/" + s.strip("/") for s in seeds}
    new_mounts: list[dict] = []
    added: list[str] = []
    for p in paths:
        p = "/" + p.strip("/") if p != "/" else p
        if any(_under(p, mp) for mp in mount_paths if mp):
            continue
        name = volume_name(p, taken)
        taken.add(name)
        extra_volumes.append({"name": name, "emptyDir": {}})
        new_mounts.append({"name": name, "mountPath": p})
        mount_paths.append(p)
        added.append(p)
        if p in seeded and seed_containers is not None:
            cname = volume_name("seed-" + name, taken)
            taken.add(cname)
            seed_containers.append(seed_container(cname, container.get("image"), p, name,
                                                  container.get("securityContext")))
    sc = container.get("securityContext")
    cpatch = MapPatch()
    if not (isinstance(sc, dict) and sc.get("readOnlyRootFilesystem") is True):
        cpatch.set["securityContext"] = MapPatch(set={"readOnlyRootFilesystem": True})
    if new_mounts:
        cpatch.set["volumeMounts"] = SeqPatch(append=new_mounts)
    return MapPatch(set={key: SeqPatch(items={index: cpatch})} if cpatch else {}), added


def patch_writable_mounts(text: str, display: str, mounts: Mapping[tuple[int, str], Sequence[str]],
                          seeds: Mapping[tuple[int, str], Sequence[str]] | None = None,
                          fs_groups: Mapping[int, int] | None = None) -> str:
    """Set ``readOnlyRootFilesystem: true`` and back each path with an ``emptyDir`` mount, idempotently.

    ``mounts`` maps (document index, container name) to container paths; ``seeds`` the paths among them to
    fill from the image with an init container (added after the pod's own); ``fs_groups`` maps a document
    index to the ``fsGroup`` its pod gets when it has none. Every workload kind works
    (the pod template is found through :data:`podsec.manifest.kinds.TEMPLATE_PATHS`); init containers
    too. In a ``kind: List`` document every item with a container of that name is patched. A path that
    already is (or lies below) a mountPath of the container gets no new volume. JSON stays JSON.
    """
    from podsec.manifest.kinds import TEMPLATE_PATHS
    from podsec.manifest.loader import K8sObject, add_object, parse_documents

    wanted: dict[int, dict[str, Sequence[str]]] = {}
    for (doc_index, cname), paths in mounts.items():
        wanted.setdefault(doc_index, {})[cname] = paths
    if not wanted:
        return text
    objects: list[K8sObject] = []
    for src, obj in parse_documents(display, text.replace("\r\n", "\n").removeprefix("\ufeff")):
        if src.index in wanted:
            add_object(objects, obj, src)
    patches: dict[int, Patch] = {}
    found: set[tuple[int, str]] = set()
    for obj in objects:
        tpath = TEMPLATE_PATHS.get(obj.kind)
        if tpath is None:
            continue
        tmpl: Any = obj.obj
        for seg in tpath:
            tmpl = tmpl.get(seg) if isinstance(tmpl, dict) else None
        spec = tmpl.get("spec") if isinstance(tmpl, dict) else None
        if not isinstance(spec, dict):
            continue
        taken = {str(v.get("name")) for v in spec.get("volumes") or () if isinstance(v, dict)}
        taken |= {str(c.get("name")) for k in ("initContainers", "containers") for c in spec.get(k) or ()
                  if isinstance(c, dict)}
        new_volumes: list[dict] = []
        new_inits: list[dict] = []
        pod_patch = MapPatch()
        for key in ("initContainers", "containers"):
            for i, c in enumerate(spec.get(key) or ()):
                if not isinstance(c, dict):
                    continue
                paths = wanted[obj.source.index].get(str(c.get("name")))
                if paths is None:
                    continue
                found.add((obj.source.index, str(c.get("name"))))
                want_seeds = (seeds or {}).get((obj.source.index, str(c.get("name"))), ())
                cp, _ = writable_mounts_patch(spec, key, i, paths, taken, new_volumes, want_seeds, new_inits)
                pod_patch = merge(pod_patch, cp)
        if new_volumes:
            pod_patch = merge(pod_patch, MapPatch(set={"volumes": SeqPatch(append=new_volumes)}))
        if new_inits:
            inits = SeqPatch(append=new_inits) if isinstance(spec.get("initContainers"), list) else new_inits
            pod_patch = merge(pod_patch, MapPatch(set={"initContainers": inits}, before={"initContainers": (
                "containers",)}))
        gid = (fs_groups or {}).get(obj.source.index)
        psc = spec.get("securityContext")
        if gid is not None and not (isinstance(psc, dict) and psc.get("fsGroup") is not None):
            pod_patch = merge(pod_patch, MapPatch(set={"securityContext": MapPatch(set={"fsGroup": gid})},
                                                  before={"securityContext": ("initContainers", "containers")}))
        if pod_patch:
            p = patch_at((*obj.root, *tpath, "spec"), pod_patch)
            idx = obj.source.index
            patches[idx] = merge(patches[idx], p) if idx in patches else p
    missing = sorted(set(mounts) - found)
    if missing:
        doc_index, cname = missing[0]
        raise InputError(f'no container "{cname}" in a workload of this document', file=display,
                         doc=f"document {doc_index + 1}")
    return apply_patches(text, patches, display)
