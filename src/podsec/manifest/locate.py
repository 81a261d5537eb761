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


def locate(lines: list[str], text: str, path: tuple[PathSeg, ...]) -> int:
    """0-based line of ``path`` (or of its deepest existing ancestor) within a document."""
    if lines and not _looks_flow(lines):
        hit = locate_block(lines, path)
        if hit is not None:
            return hit
    exact = locate_exact(text, path)
    return exact if exact is not None else 0


def _looks_flow(lines: list[str]) -> bool:
    for line in lines:
        c = _content(line)
        if c >= 0:
            return line[c] in "{["
    return False
