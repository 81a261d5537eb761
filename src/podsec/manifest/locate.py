"""Find the line of a field path in a YAML document's text, lazily.

Parsing with positions for every node is what makes YAML tools slow, yet only the few
fields a finding names need a line. So documents are parsed without positions and this
module finds a path on demand: a cheap indentation walk over block-style YAML (what
kubectl, Helm and people write), and an exact fallback that composes just that one
document with PyYAML's node marks when the text is flow style, JSON or otherwise unusual.
"""

from __future__ import annotations

import re
from functools import lru_cache

PathSeg = str | int

_KEY_RE_CACHE: dict[str, re.Pattern[str]] = {}


def _key_re(key: str) -> re.Pattern[str]:
    pat = _KEY_RE_CACHE.get(key)
    if pat is None:
        k = re.escape(key)
        pat = re.compile(rf"""(?:{k}|"{k}"|'{k}')[ \t]*:(?:[ \t]|$)""")
        _KEY_RE_CACHE[key] = pat
    return pat


def _content(line: str) -> int:
    """Column of the first content character, or -1 for blank/comment lines."""
    stripped = line.lstrip(" ")
    if not stripped or stripped.startswith("#"):
        return -1
    return len(line) - len(stripped)


def _after_dashes(line: str, col: int) -> int:
    """Column where a mapping key starts on a line that opens sequence items (``- - key``)."""
    while line.startswith("-", col) and (len(line) == col + 1 or line[col + 1] in " \t"):
        col += 1
        while col < len(line) and line[col] in " \t":
            col += 1
    return col


def _block_end(lines: list[str], start: int, end: int, col: int) -> int:
    """End of the block owned by a key at ``col`` whose line is ``start - 1``."""
    for i in range(start, end):
        c = _content(lines[i])
        if c < 0:
            continue
        if c < col or (c == col and not lines[i].startswith("-", c)):
            return i
    return end


def locate_block(lines: list[str], path: tuple[PathSeg, ...]) -> int | None:
    """0-based line index of ``path`` in block-style YAML, or None when this walk cannot tell."""
    start, end = 0, len(lines)
    first_key_col: int | None = None  # key column on the range's first line (after a "- ")
    found = 0
    for seg in path:
        # Skip blank and comment lines to find the range's first content line.
        first = start
        while first < end and _content(lines[first]) < 0:
            first += 1
        if first >= end:
            return None
        if isinstance(seg, int):
            col = _content(lines[first]) if first_key_col is None or first != start else first_key_col
            if first_key_col is not None and first == start:
                col = first_key_col
            line = lines[first]
            if not line.startswith("-", col):
                return None
            n = -1
            item_start = None
            for i in range(first, end):
                c = _content(lines[i]) if i != start or first_key_col is None else col
                if c < 0:
                    continue
                if c < col:
                    break
                if c == col:
                    if lines[i].startswith("-", c):
                        n += 1
                        if n == seg:
                            item_start = i
                            break
                    else:
                        break
            if item_start is None:
                return None
            item_end = item_start + 1
            while item_end < end:
                c = _content(lines[item_end])
                if c >= 0 and c <= col:
                    break
                item_end += 1
            found = item_start
            inner = _after_dashes(lines[item_start], col)
            # "- - x" or "- key: v": the item's content starts on its dash line.
            start, end = item_start, item_end
            first_key_col = inner
            if inner >= len(lines[item_start].rstrip()):
                # "-" alone on its line: the content starts below.
                start = item_start + 1
                first_key_col = None
            continue
        # Mapping key.
        if first == start and first_key_col is not None:
            col = first_key_col
        else:
            col = _content(lines[first])
            col = _after_dashes(lines[first], col) if lines[first].startswith("-", col) else col
            if lines[first].startswith("-", _content(lines[first])):
                return None  # a sequence where a mapping was expected
        pat = _key_re(seg)
        hit = None
        for i in range(first, end):
            line = lines[i]
            c = col if (i == first) else _content(line)
            if c < 0:
                continue
            if c < col:
                break
            if c == col and pat.match(line, c):
                hit = i
                break
        if hit is None:
            return None
        found = hit
        m = pat.match(lines[hit], col)
        assert m is not None
        rest = lines[hit][m.end() :].strip()
        if rest and not rest.startswith(("#", "|", ">", "&", "!")):
            # Inline value (scalar or one-line flow): deeper paths live on this line.
            return found
        start = hit + 1
        end = _block_end(lines, start, end, col)
        first_key_col = None
    return found


_KEY = re.compile(r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^\s#'"{\[\]},&*!|>%@`-][^#]*?|-[^\s#][^#]*?))[ \t]*:(?:[ \t]+|$)""")  # noqa: E501
_BLOCK_SCALAR = re.compile(r"[|>][-+0-9]*[ \t]*(?:#.*)?$")
# A plain key after the indent and at most one "- ": _KEY reads the same key there (it holds no
# ":", so the first ": " is the one), which lets build_index skip its general walk for most lines.
_SIMPLE_KEY = re.compile(r"( *)(?:-[ \t]+)?(\w[\w./-]*):(?:[ \t]+|$)")


class _Frame:
    __slots__ = ("col", "counter", "is_seq", "path", "pending")

    def __init__(self, col: int, is_seq: bool, path: tuple[PathSeg, ...]) -> None:
        self.col = col
        self.is_seq = is_seq
        self.path = path
        self.counter = -1
        self.pending: tuple[PathSeg, ...] | None = None


def build_index(lines: list[str]) -> dict[tuple[PathSeg, ...], int]:
    """Map every block-style path of a document to its 0-based line, in one pass.

    A small indentation walker, not a YAML parser: keys and sequence items in block style are
    indexed; flow collections and scalars are leaves on their key's line; block scalars
    (``|``/``>``) are skipped. Paths it cannot see are answered by their nearest ancestor.
    """
    index: dict[tuple[PathSeg, ...], int] = {}
    root = _Frame(-1, False, ())
    root.pending = ()
    stack = [root]
    skip_deeper: int | None = None
    simple = _SIMPLE_KEY.match
    for i, line in enumerate(lines):
        m = simple(line)
        if m is not None:
            # Fast path for most lines, "<indent>[- ]key: value" with a plain key: the general walk
            # below reaches the same frames, key and value for them, with less work.
            c = m.end(1)
            pos = m.start(2)
            if skip_deeper is not None:
                if c > skip_deeper:
                    continue
                skip_deeper = None
            while stack[-1].col > c:
                stack.pop()
            top = stack[-1]
            if pos != c:  # "- key: value": a new item of the sequence at c, holding a mapping at pos
                if top.is_seq and top.col == c:
                    seq = top
                else:
                    seq = _Frame(c, True, top.pending if top.pending is not None else top.path)
                    stack.append(seq)
                seq.counter += 1
                item = (*seq.path, seq.counter)
                if item not in index:
                    index[item] = i
                seq.pending = item
                frame = _Frame(pos, False, item)
                stack.append(frame)
            else:
                if top.col == c and top.is_seq:
                    stack.pop()
                    top = stack[-1]
                if not top.is_seq and top.col == c:
                    frame = top
                else:
                    frame = _Frame(c, False, top.pending if top.pending is not None else top.path)
                    stack.append(frame)
            kp = (*frame.path, m.group(2))
            if kp not in index:
                index[kp] = i
            v = line[m.end():].strip()
            if not v or v[0] == "#":
                frame.pending = kp
            elif v[0] in "|>" and _BLOCK_SCALAR.match(v):
                frame.pending = None
                skip_deeper = pos
            elif v[0] in "&!" and " " not in v:
                frame.pending = kp
            else:
                frame.pending = None
            continue
        stripped = line.lstrip(" ")
        if not stripped or stripped[0] == "#":
            continue
        c = len(line) - len(stripped)
        if skip_deeper is not None:
            if c > skip_deeper:
                continue
            skip_deeper = None
        if c == 0 and (stripped.startswith("---") or stripped.startswith("...")):
            continue
        while stack[-1].col > c:
            stack.pop()
        pos = c
        owner_col = c
        # Sequence items, possibly nested on one line ("- - x").
        while line.startswith("-", pos) and (len(line) == pos + 1 or line[pos + 1] in " \t"):
            top = stack[-1]
            if top.is_seq and top.col == pos:
                frame = top
            else:
                if top.col == pos and not top.is_seq:
                    parent_path = top.pending
                else:
                    parent_path = top.pending
                if parent_path is None:
                    parent_path = top.path
                frame = _Frame(pos, True, parent_path)
                stack.append(frame)
            frame.counter += 1
            item = (*frame.path, frame.counter)
            index.setdefault(item, i)
            frame.pending = item
            pos += 1
            while pos < len(line) and line[pos] in " \t":
                pos += 1
            owner_col = pos
            if pos < len(line) and line.startswith("-", pos) and (len(line) == pos + 1 or line[pos + 1] in " \t"):
                nested = _Frame(pos, True, item)
                stack.append(nested)
                continue
        rest = line[pos:]
        if not rest or rest[0] == "#":
            continue
        m = _KEY.match(line, pos)
        if m is None:
            if _BLOCK_SCALAR.match(rest):
                skip_deeper = owner_col - 1 if owner_col > c else c
            continue
        key = m.group(1) if m.group(1) is not None else m.group(2) if m.group(2) is not None else m.group(3)
        key = key.rstrip()
        # Leave any sequence frame at this column when a plain key line appears there.
        top = stack[-1]
        if top.is_seq and top.col == pos and pos == c:
            stack.pop()
            top = stack[-1]
        if not top.is_seq and top.col == pos:
            frame = top
        else:
            base = top.pending if top.pending is not None else top.path
            frame = _Frame(pos, False, base)
            stack.append(frame)
        kp = (*frame.path, key)
        index.setdefault(kp, i)
        value = line[m.end():]
        v = value.strip()
        if not v or v[0] == "#":
            frame.pending = kp
        elif _BLOCK_SCALAR.match(v):
            frame.pending = None
            skip_deeper = pos
        elif v[0] in "&!" and " " not in v:
            frame.pending = kp  # an anchor or tag alone: the value follows on the next lines
        else:
            frame.pending = None
    return index


# A line the fast path of build_index reads as "<indent>[- ]key: <plain value>": its value can be any scalar
# without changing the index, so documents that differ only in such values (names, images, numbers: a stream of
# generated pods) share one index. Values that start with a character that build_index treats otherwise
# (comments, block scalars, anchors, tags, aliases, flow collections, quotes) are kept as they are.
_PLAIN_VALUE = re.compile(r"^( *(?:-[ \t]+)?\w[\w./-]*:[ \t]+)[^\s#|>&!*{\[\"'][^\n]*", re.M)
_SHARED_INDEXES: dict[str, dict[tuple[PathSeg, ...], int]] = {}
SHARED_INDEX_MAX_CHARS = 4096
"""Documents up to this size share indexes (a bounded cache: at most 512 of them are kept)."""


def _blank_value(m: re.Match[str]) -> str:
    return m[1] + "v"  # (a function: re's template expansion costs twice the match)


def shared_index(text: str, lines: list[str]) -> dict[tuple[PathSeg, ...], int]:
    """:func:`build_index` of ``lines`` (the lines of ``text``), shared with earlier documents of the same shape.

    The shape is the text with the plain values of simple ``key: value`` lines blanked: build_index reads such a
    line by its indent, dash, key and the class of its value only, so equal shapes give equal indexes. The index
    returned may be shared: callers must not change it.
    """
    if len(text) > SHARED_INDEX_MAX_CHARS:
        return build_index(lines)
    shape = _PLAIN_VALUE.sub(_blank_value, text)
    index = _SHARED_INDEXES.get(shape)
    if index is None:
        index = build_index(lines)
        if len(_SHARED_INDEXES) >= 512:
            _SHARED_INDEXES.clear()
        _SHARED_INDEXES[shape] = index
    return index


@lru_cache(maxsize=256)
def _compose_lines(text: str) -> object:
    import yaml

    try:
        return yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None


def locate_exact(text: str, path: tuple[PathSeg, ...]) -> int | None:
    """0-based line of the deepest existing node on ``path``, using PyYAML node marks."""
    import yaml

    node = _compose_lines(text)
    if node is None:
        return None
    line = node.start_mark.line  # type: ignore[attr-defined]
    for seg in path:
        if isinstance(node, yaml.MappingNode) and isinstance(seg, str):
            for k, v in node.value:
                if getattr(k, "value", None) == seg:
                    line = k.start_mark.line
                    node = v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(seg, int) and seg < len(node.value):
            node = node.value[seg]
            line = node.start_mark.line
        else:
            return line
    return line


def locate(lines: list[str], text: str, path: tuple[PathSeg, ...],
           index: dict[tuple[PathSeg, ...], int] | None = None, flow: bool | None = None) -> int:
    """0-based line of ``path`` (or of its deepest existing ancestor) within a document.

    ``flow`` is ``looks_flow(lines)`` when the caller has it: a document asked for many lines need
    not look again each time.
    """
    if flow is None:
        flow = looks_flow(lines)
    if lines and not flow:
        if index is None:
            index = build_index(lines)
        for n in range(len(path), 0, -1):
            hit = index.get(path[:n])
            if hit is not None:
                return hit
        if not path:
            return body_start(lines)
    exact = locate_exact(text, path)
    return exact if exact is not None else 0


def _is_start_marker(line: str) -> bool:
    return line.startswith("---") and (len(line) == 3 or line[3] in " \t")


def body_start(lines: list[str]) -> int:
    """0-based line where a document's content starts: below its ``%`` directives and ``---``, else 0.

    Only documents that open with directives carry their marker line (see ``split_documents``);
    pointing at the ``%YAML`` line for the whole object would name the wrong line.
    """
    if not lines or not lines[0].startswith("%"):
        return 0
    for i, line in enumerate(lines):
        if _is_start_marker(line):
            rest = line[3:].strip()
            return i if rest and not rest.startswith("#") else min(i + 1, len(lines) - 1)
    return 0


def looks_flow(lines: list[str]) -> bool:
    """Whether the first content (past directives and a bare ``---``) opens a flow collection or JSON."""
    for line in lines:
        c = _content(line)
        if c < 0 or (c == 0 and line.startswith("%")):
            continue
        if c == 0 and _is_start_marker(line):
            rest = line[3:].lstrip(" \t")
            if not rest or rest.startswith("#"):
                continue
            return rest[0] in "{["
        return line[c] in "{["
    return False
