"""Read manifests from files, directories and stdin into Kubernetes objects with their sources.

Speed comes from parsing a whole stream at once with a Rust YAML parser and finding lines
only when something asks (:mod:`podsec.manifest.locate`). Kubernetes reads YAML the way
go-yaml v2 does (YAML 1.1: ``0644`` is octal, ``on`` is true); documents that use such
scalars are re-parsed with PyYAML's YAML 1.1 loader so modes and booleans come out as a
cluster would read them.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from podsec.errors import InputError, one_line
from podsec.manifest.locate import body_start, locate, looks_flow, shared_index

_DOC_MARKER = re.compile(r"^(---|\.\.\.)(?:[ \t]|$)", re.M)
_YAML11_TOKEN = r"[ \t]*(?:0[0-7]+|[yYnN]|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)[ \t]*(?=[,\]}#\r\n]|$)"
# A plain scalar that YAML 1.1 (go-yaml v2) reads as an octal or a boolean: after a value indicator or at a
# line start. The line start is spelled as the "\n" before it (plus a match at the very start), not as "^"
# with re.M: an alternation that starts with "^" is tried at every position, about 3x slower on manifests.
_YAML11 = re.compile(r"[:,\[{\-\n]" + _YAML11_TOKEN)
_YAML11_AT_START = re.compile(_YAML11_TOKEN)


def _yaml11_values(body: str) -> int:
    """How many YAML 1.1 octal/boolean plain values ``body`` holds (0: YAML 1.2 reads it the same)."""
    return len(_YAML11.findall(body)) + (1 if _YAML11_AT_START.match(body) else 0)


_MERGE_KEY = re.compile(r"(?:^[ \t]*(?:-[ \t]+)?|[{,][ \t]*)<<[ \t]*:", re.M)
_DATE = re.compile(r"[0-9]{4}-[0-9][0-9]?-[0-9][0-9]?")  # ASCII digits, as YAML timestamps
_HELM_SOURCE = re.compile(r"^# Source: (.+)$", re.M)
_YAML_ERR = re.compile(r"line (\d+), column (\d+)")

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(slots=True)
class Source:
    """Where a document came from; its lines are split only when a line number is asked for."""

    file: str
    index: int  # 0-based document number in the file
    first_line: int  # 1-based file line of the document's first text line
    text: str
    helm_source: str | None = None
    _lines: list[str] | None = None
    _index: dict | None = None
    _flow: bool | None = None

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines

    @property
    def line_index(self) -> dict:
        if self._index is None:
            self._index = shared_index(self.text, self.lines)
        return self._index

    @property
    def start_line(self) -> int:
        """1-based file line where the content starts: below any ``%`` directives and their ``---``."""
        return self.first_line + (body_start(self.lines) if self.text.startswith("%") else 0)

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """1-based file line of a field path (or its deepest existing ancestor)."""
        if self._flow is None:
            self._flow = looks_flow(self.lines)
        if self._flow:  # flow style and JSON are located by PyYAML's marks: no block index to build
            return self.first_line + locate(self.lines, self.text, path, None, True)
        index = self.line_index
        hit = index.get(path)  # the field itself is there (most asked for are): what locate would answer first
        if hit is not None:
            return self.first_line + hit
        return self.first_line + locate(self.lines, self.text, path, index, False)

    @property
    def display(self) -> str:
        """The file name people should see: Helm's template path when reading `helm template` output."""
        if self.helm_source and self.file == "<stdin>":
            return self.helm_source
        return self.file


@dataclass(slots=True)
class K8sObject:
    """One Kubernetes object; ``root`` is its path inside the document (``("items", 3)`` in a List)."""

    obj: dict
    source: Source
    root: tuple[str | int, ...] = ()

    @property
    def kind(self) -> str:
        k = self.obj.get("kind")
        return k if isinstance(k, str) else ""

    @property
    def metadata(self) -> dict:
        m = self.obj.get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def name(self) -> str:
        n = self.metadata.get("name")
        if isinstance(n, str):
            return n
        g = self.metadata.get("generateName")
        return g if isinstance(g, str) else ""

    @property
    def namespace(self) -> str:
        n = self.metadata.get("namespace")
        return n if isinstance(n, str) and n else ""

    def line_of(self, path: tuple[str | int, ...] = ()) -> int:
        return self.source.line_of(self.root + path)

    def label(self) -> str:
        """``Deployment/web`` as messages name a document (control characters escaped)."""
        return one_line(f"{self.kind or 'document'}/{self.name}" if self.name else (self.kind or "document"))

    def error(self, message: str, path: tuple[str | int, ...] = (), field: str | None = None) -> InputError:
        from podsec.model import render_path

        return InputError(
            message,
            file=self.source.display,
            line=self.line_of(path),
            doc=f"document {self.source.index + 1} ({self.label()})",
            field=field if field is not None else (render_path(self.root + path) if path else None),
        )


@dataclass(slots=True)
class LoadResult:
    objects: list[K8sObject] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    skipped: int = 0
    """Documents in files found in directories that are not Kubernetes objects (no apiVersion and kind)."""


MAX_FILE_BYTES = 64 << 20
"""The most a manifest file may hold (``--max-file-size``): a device or a runaway file never feeds an endless
stream into memory."""
MAX_LIST_DEPTH = 64
"""How deep ``kind: List`` may nest (each level is also two YAML levels)."""

_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def _stderr_warning(message: str) -> None:
    print(f"podsec: warning: {message}", file=sys.stderr)


warn: Callable[[str], None] = _stderr_warning
"""Where the loader's warnings go (skipped files); the CLI prints them on stderr."""


def human_size(n: int) -> str:
    """``64Mi`` (the spelling ``--max-file-size`` takes)."""
    for unit, shift in (("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def parse_size(value: str) -> int:
    """``64Mi``, ``1G``, ``500000`` (Kubernetes quantity suffixes) → bytes; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*", value)
    if not m:
        raise ValueError(f"invalid size {value!r} (e.g. 64Mi, 1Gi, 500M)")
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 10**3, "K": 10**3,
            "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2)]
    return int(m.group(1)) * mult


@dataclass(frozen=True, slots=True)
class Entry:
    """A manifest file to read: ``named`` when given on the command line, not found in a directory."""

    path: str
    named: bool
    error: InputError | None = None
    """It cannot be used (a broken link, a symbolic link loop, a device given by name)."""
    skip: str | None = None
    """Why a file found in a directory is not read (a FIFO, a device)."""


def _kind_of(mode: int) -> str | None:
    for test, word in _FILE_KINDS:
        if test(mode):
            return word
    return None


def _os_error(exc: OSError, path: str) -> InputError:
    return InputError(one_line(exc.strerror or str(exc)), file=path)


def walk(paths: Iterable[str]) -> Iterator[Entry]:
    """Every file to read, in a stable order; ``-`` is stdin; directories are walked recursively (symbolic
    links to directories are not followed) for ``*.yaml``, ``*.yml`` and ``*.json``."""
    for p in paths:
        if p == "-":
            yield Entry(p, True)
            continue
        try:
            st = os.stat(p)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and not os.path.islink(p):
                yield Entry(p, True, InputError("no such file or directory", file=p))
            else:
                yield Entry(p, True, _os_error(exc, p))
            continue
        if not stat.S_ISDIR(st.st_mode):
            yield _named_file(p, st.st_mode)
            continue
        found = []
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [os.path.join(dirpath, f) for f in filenames if f.endswith(MANIFEST_SUFFIXES)]
        for f in sorted(found):
            try:
                mode = os.stat(f).st_mode
            except OSError as exc:
                yield Entry(f, False, _os_error(exc, f))
                continue
            kind = None if stat.S_ISREG(mode) else (_kind_of(mode) or "not a regular file")
            yield Entry(f, False, skip=f"not a regular file ({kind})" if kind else None)


def _named_file(path: str, mode: int) -> Entry:
    """A file given by name: a regular file or a pipe (``-f <(helm template …)``); anything else is an error."""
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return Entry(path, True)
    return Entry(path, True, InputError(f"not a regular file ({_kind_of(mode) or 'unknown type'})", file=path))


def iter_manifest_files(paths: Iterable[str]) -> Iterator[str]:
    """Files to read, in a stable order; the first unusable one raises, skipped ones are warned about."""
    for e in walk(paths):
        if e.error is not None:
            raise e.error
        if e.skip:
            warn(f"{e.path}: skipped: {e.skip}")
            continue
        yield e.path


def _read_capped(fh: object, name: str, size: int | None = None) -> bytes:
    """At most :data:`MAX_FILE_BYTES` (one byte more tells it is too big); a regular file's own size is asked for
    first, a pipe is read in pieces, so no buffer of the cap's size is allocated for a small file."""
    cap = MAX_FILE_BYTES
    if size is not None and size <= cap:
        data = fh.read(size + 1)  # type: ignore[attr-defined]
        if len(data) <= size:
            return data
        data += fh.read(cap + 1 - len(data))  # type: ignore[attr-defined]  # it grew meanwhile
    else:
        parts, got = [], 0
        while got <= cap:
            piece = fh.read(min(1 << 20, cap + 1 - got))  # type: ignore[attr-defined]
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        data = b"".join(parts)
    if len(data) > cap:
        raise InputError(f"larger than --max-file-size ({human_size(cap)}); raise it to read this file", file=name)
    return data


def read_text(path: str) -> tuple[str, str]:
    """(display name, text) of a file or stdin, at most :data:`MAX_FILE_BYTES`, with one-line errors.

    A file is opened without blocking (a FIFO with no writer would block ``open``) and must be a regular
    file or a pipe: a device is never read.
    """
    if path == "-":
        name = "<stdin>"
        data = _read_capped(sys.stdin.buffer, name)
    else:
        name = path
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise _os_error(exc, path) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISFIFO(st.st_mode):
                os.set_blocking(fd, True)
            elif not stat.S_ISREG(st.st_mode):
                raise InputError(f"not a regular file ({_kind_of(st.st_mode) or 'unknown type'})", file=path)
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = _read_capped(fh, name, st.st_size if stat.S_ISREG(st.st_mode) else None)
        except OSError as exc:
            raise _os_error(exc, path) from None
        finally:
            os.close(fd)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", file=name) from None
    return name, text.replace("\r\n", "\n")


def load(paths: Iterable[str]) -> LoadResult:
    """Load every object from ``paths`` (files, directories, ``-``); the first unusable file raises."""
    result = LoadResult()
    for e in walk(paths):
        if e.error is not None:
            raise e.error
        if e.skip:
            warn(f"{e.path}: skipped: {e.skip}")
            continue
        name, text = read_text(e.path)
        result.files.append(name)
        result.skipped += load_text(result.objects, name, text, e.named)
    return result


def load_text(out: list[K8sObject], name: str, text: str, named: bool = True) -> int:
    """Append the objects of one file's text to ``out``; returns how many documents were skipped because they
    are not Kubernetes objects (only for files found in a directory: ``named`` files raise)."""
    skipped = 0
    for src, obj in parse_documents(name, text):
        if not named and not _looks_like_object(obj):
            skipped += 1
            continue
        add_object(out, obj, src)
    return skipped


def _looks_like_object(obj: object) -> bool:
    """A Kubernetes object has an apiVersion or a kind; config files and Helm values have neither."""
    return isinstance(obj, dict) and ("kind" in obj or "apiVersion" in obj)


def add_object(out: list[K8sObject], obj: object, src: Source, root: tuple[str | int, ...] = ()) -> None:
    """Append an object, expanding ``kind: List`` (at most :data:`MAX_LIST_DEPTH` deep) and rejecting what is
    not an object. Iterative: nesting never reaches Python's recursion limit."""
    todo: list[tuple[object, tuple[str | int, ...], int]] = [(obj, root, 0)]
    while todo:
        item, path, depth = todo.pop()
        items = _add_one(out, item, src, path)
        if items is None:
            continue
        if depth >= MAX_LIST_DEPTH:
            raise K8sObject(item, src, path).error(  # type: ignore[arg-type]
                f"kind: List nested more than {MAX_LIST_DEPTH} levels deep", ("kind",))
        todo.extend((it, (*path, "items", i), depth + 1) for i, it in reversed(list(enumerate(items))))


def _add_one(out: list[K8sObject], obj: object, src: Source, root: tuple[str | int, ...]) -> list | None:
    """Append one object; a List's items are returned for the caller to expand."""
    if not isinstance(obj, dict):
        kind = type(obj).__name__
        kind = {"list": "a list", "str": "a string", "int": "a number", "bool": "a boolean",
                "NoneType": "null", "float": "a number"}.get(kind, "a scalar")
        line = src.line_of(root) if root else src.start_line
        raise InputError(
            f"expected a Kubernetes object (a mapping), got {kind}",
            file=src.display,
            line=line,
            doc=f"document {src.index + 1}",
        )
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        o = K8sObject(obj, src, root)
        raise o.error("kind: Required value: Object 'Kind' is missing", ("kind",) if "kind" in obj else ())
    if kind == "List" or (kind.endswith("List") and isinstance(obj.get("items"), list)):
        items = obj.get("items")
        if items is None:
            return []
        if not isinstance(items, list):
            raise K8sObject(obj, src, root).error("items: expected a list", ("items",))
        return items
    out.append(K8sObject(obj, src, root))
    return None


def split_documents(text: str) -> list[tuple[int, str]]:
    """(0-based first line, text) of each YAML document, keeping empty ones as the parser does.

    Directive lines (``%YAML 1.1``, ``%TAG``) just above a ``---`` belong to the document that marker
    starts, as in YAML: that document's text starts at its first directive so parsers see them.
    Lines are counted once, front to back, so long streams cost linear time. The result is cached
    for the last few texts because ``podsec fix`` splits the same text several times.
    """
    return list(_split_cached(text))


@lru_cache(maxsize=4)
def _split_cached(text: str) -> tuple[tuple[int, str], ...]:
    markers = list(_DOC_MARKER.finditer(text))
    if not markers:
        return ((0, text),)
    # Where each marker's document begins: at the marker, or at the directives above a "---".
    starts: list[int] = []
    floor = 0
    for m in markers:
        starts.append(m.start() if m.group(1) == "..." else _directives_start(text, m.start(), floor))
        eol = text.find("\n", m.start())
        floor = len(text) if eol < 0 else eol + 1
    docs: list[tuple[int, str]] = []
    pre = text[: starts[0]]
    if _has_content(pre):
        docs.append((0, pre))
    pos = line = 0  # ``line`` is the 0-based line of ``pos``; both only move forward
    for i, m in enumerate(markers):
        start = starts[i]
        line += text.count("\n", pos, start)
        pos = start
        eol = text.find("\n", m.start())
        body_start = len(text) if eol < 0 else eol + 1
        body_end = starts[i + 1] if i + 1 < len(markers) else len(text)
        if m.group(1) == "...":
            # An end marker: any content up to the next document is a new document only if real.
            body = text[body_start:body_end]
            if _has_content(body):
                docs.append((line + 1, body))
            continue
        if start < m.start():
            docs.append((line, text[start:body_end]))  # directives, the "---" line and the body
            continue
        inline = text[m.end() : body_start].strip()
        if inline:
            docs.append((line, text[m.start() + 3 : body_end]))
        else:
            docs.append((line + 1, text[body_start:body_end]))
    return tuple(docs)


def forget_splits() -> None:
    """Drop the cached splits (their texts are big): before forking workers that read the files themselves."""
    _split_cached.cache_clear()


def _directives_start(text: str, at: int, floor: int) -> int:
    """Start of the ``%`` directive lines above the ``---`` at ``at`` (comments may sit between), else ``at``.

    Only lines after ``floor`` (the end of the previous marker's line) are looked at, and the walk
    stops at the first content line, so all calls together read each line at most once.
    """
    start = cur = at
    while cur > floor:
        nl = text.rfind("\n", floor, cur - 1)
        ls = floor if nl < 0 else nl + 1
        ln = text[ls : cur - 1]
        if ln.startswith("%"):
            start = ls
        elif ln.strip() and not ln.lstrip().startswith("#"):
            break
        cur = ls
    return start


_DIRECTIVE = re.compile(r"%(\S*)(?:[ \t]+(\S+))?")
_VERSION = re.compile(r"(\d+)\.(\d+)")


def _check_directives(name: str, first: int, body: str, index: int) -> None:
    """Refuse the directives go-yaml refuses: ``%YAML`` other than 1.1 and unknown directive names.

    yaml-rs accepts ``%YAML 1.2`` and ignores unknown directives, but the API server's decoder
    (sigs.k8s.io/yaml on go-yaml) fails the whole document, so podsec says so rather than judge it.
    """
    for n, ln in enumerate(body.split("\n")):
        if ln.startswith("---"):
            return
        m = _DIRECTIVE.match(ln)
        if m is None:
            continue
        problem = None
        if m.group(1) == "YAML":
            v = _VERSION.fullmatch(m.group(2) or "")
            if v is None or (int(v.group(1)), int(v.group(2))) != (1, 1):
                problem = (f"found incompatible YAML document (%YAML {m.group(2) or ''}; "
                           "Kubernetes reads only %YAML 1.1)")
        elif m.group(1) != "TAG":
            problem = f"found unknown directive name %{m.group(1)}"
        if problem:
            raise InputError(f"invalid YAML: {problem}", file=name, line=first + n + 1,
                             doc=f"document {index + 1}")


def _has_content(chunk: str) -> bool:
    for ln in chunk.split("\n"):
        s = ln.strip()
        if s and not s.startswith("#"):
            return True
    return False


def parse_documents(name: str, text: str) -> list[tuple[Source, object]]:
    """Parse a stream into (source, object) pairs, skipping empty documents."""
    chunks = split_documents(text)
    return parse_chunks(name, text if len(chunks) > 1 else chunks[0][1], chunks)


def parse_chunks(name: str, text: str | None, chunks: list[tuple[int, str]], start: int = 0) -> list[tuple[Source,
                                                                                                           object]]:
    """Parse documents ``chunks`` (from :func:`split_documents`; ``start``: the index of the first) into
    (source, object) pairs; ``text`` is their whole text when it is exactly those chunks (one parse), else None.
    """
    objs = _parse_fast(name, text, chunks, start)
    out: list[tuple[Source, object]] = []
    for idx, ((first, body), obj) in enumerate(zip(chunks, objs), start):
        if body.startswith("%"):
            _check_directives(name, first, body, idx)
        if obj is None:
            continue
        helm = _HELM_SOURCE.search(body) if "# Source: " in body else None
        src = Source(name, idx, first + 1, body, helm.group(1).strip() if helm else None)
        if "&" in body and "*" in body:
            _check_aliases(src)  # before any YAML 1.1 re-parse, which would build the cycle
        if "<<" in body and _MERGE_KEY.search(body):
            obj = _parse_yaml11(src)  # go-yaml v2 merges "<<: *anchor" (YAML 1.1); yaml-rs keeps "<<" as a key
        elif _YAML11.search(body) or _YAML11_AT_START.match(body):
            fixed = _fix_octal(src, obj)
            obj = fixed if fixed is not None else _parse_yaml11(src)
        elif _DATE.search(body):
            obj = _stringify_dates(obj)
        if _may_have_complex_key(body):
            _check_keys(src, obj)
        out.append((src, obj))
    return out


def _may_have_complex_key(body: str) -> bool:
    """Whether a mapping or a sequence may be used as a key (``{{cell}}``, ``[a]: b``, ``? {a: b}``): substring
    tests, far cheaper than a regular expression on every document."""
    return "{{" in body or "{[" in body or "[[" in body or "? " in body or "]:" in body or "}:" in body


def _check_aliases(src: Source) -> None:
    """Refuse an alias inside the node its anchor names, as go-yaml does ("anchor 'c' value contains itself"):
    yaml-rs would read it as null, PyYAML would build a list that contains itself."""
    import yaml

    open_anchors: list[str | None] = []
    try:
        for ev in yaml.parse(src.text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                open_anchors.append(ev.anchor)
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                open_anchors.pop()
            elif isinstance(ev, yaml.AliasEvent) and ev.anchor in open_anchors:
                raise InputError(f"invalid YAML: anchor '{ev.anchor}' value contains itself", file=src.display,
                                 line=src.first_line + ev.start_mark.line, doc=f"document {src.index + 1}")
    except yaml.YAMLError:
        return  # a syntax error: the parse reports it


def _check_keys(src: Source, obj: object) -> None:
    """A mapping or a sequence used as a key: go-yaml's ``invalid map key`` (yaml-rs makes it a frozenset)."""
    todo: list[tuple[object, tuple[str | int, ...]]] = [(obj, ())]
    while todo:
        node, path = todo.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, (frozenset, tuple)):
                    raise InputError(f"invalid YAML: invalid map key: {_go_value(k)}", file=src.display,
                                     line=src.line_of(path), doc=f"document {src.index + 1}")
                todo.append((v, (*path, k)))
        elif isinstance(node, list):
            todo.extend((v, (*path, i)) for i, v in enumerate(node))


def _go_value(v: object) -> str:
    """Go's ``%#v`` of a decoded YAML value, as go-yaml prints an invalid key."""
    if isinstance(v, frozenset):
        items = sorted(((_go_value(k), _go_value(x)) for k, x in v), key=lambda kv: kv[0])
        return "map[interface {}]interface {}{" + ", ".join(f"{k}:{x}" for k, x in items) + "}"
    if isinstance(v, (tuple, list)):
        return "[]interface {}{" + ", ".join(_go_value(x) for x in v) + "}"
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        import json

        return json.dumps(v)
    return str(v)


_LONG_INT = re.compile(r"(?<![\w.\"'])[-+]?[0-9]{1000,}")


def _parse_fast(name: str, text: str | None, chunks: list[tuple[int, str]], start: int = 0) -> list[object]:
    import yaml_rs

    if text is not None and len(chunks) > 1:
        try:
            parsed = yaml_rs.loads(text)
        except Exception:
            parsed = None
        if isinstance(parsed, list) and len(parsed) == len(chunks):
            return parsed
    out: list[object] = []
    for first, body in chunks:
        try:
            out.append(yaml_rs.loads(body) if _has_content(body) else None)
        except ValueError as exc:
            if "integer string conversion" in str(exc):
                raise _long_int_error(name, first, start + len(out), body) from None
            raise _yaml_error(exc, name, first, start + len(out), body) from None
        except Exception as exc:
            raise _yaml_error(exc, name, first, start + len(out), body) from None
    return out


def _long_int_error(name: str, first: int, index: int, body: str) -> InputError:
    """An integer too long to convert (Python's int-string limit, far past int64): the API server cannot decode
    it into any integer field; named by its field path and line."""
    import yaml_rs

    m = _LONG_INT.search(body)
    if m is None:
        return InputError("invalid YAML: an integer too long to read", file=name, line=first + 1,
                          doc=f"document {index + 1}")
    digits = len(m.group().lstrip("+-"))
    line0 = body.count("\n", 0, m.start())
    patched = body[: m.start()] + "0" + body[m.end():]
    msg = f"Invalid value: <a number of {digits} digits>: expected integer (int64), got integer out of range"
    try:
        obj = yaml_rs.loads(patched)
    except Exception:
        obj = None
    src = Source(name, index, first + 1, patched)
    if not isinstance(obj, dict):
        return InputError(msg, file=name, line=first + line0 + 1, doc=f"document {index + 1}")
    path = max((p for p, ln in src.line_index.items() if ln == line0), key=len, default=())
    return K8sObject(obj, src).error(msg, path)


def _yaml_error(exc: Exception, name: str, first: int, index: int, body: str = "") -> InputError:
    msg = str(exc)
    m = _YAML_ERR.search(msg)
    line = first + int(m.group(1)) if m else first + 1
    if not m and "duplicate mapping key" in msg:
        dup = _duplicate_key_line(body)
        line = first + dup + 1 if dup is not None else line
    reason = msg.strip().splitlines()[-1].strip() if msg.strip() else "invalid YAML"
    reason = re.sub(r"^\|?\s*\^*\s*", "", reason) or msg.splitlines()[0]
    return InputError(f"invalid YAML: {one_line(reason)[:500]}", file=name, line=line, doc=f"document {index + 1}")


def _duplicate_key_line(body: str) -> int | None:
    """0-based line of the second occurrence of a key in one mapping (yaml-rs names the key, not the line)."""
    import yaml

    try:
        root = yaml.compose(body, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    lines: list[int] = []
    todo = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for k, v in node.value:
                key = getattr(k, "value", None)
                if isinstance(key, str) and key in seen:
                    lines.append(k.start_mark.line)
                seen.add(key)
                todo.append(v)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return min(lines, default=None)


_OCTAL_LINE = re.compile(r"^[^#\n]*?:[ \t]+(0[0-7]+)[ \t]*(?:#[^\n]*)?$", re.M)


def _fix_octal(src: Source, obj: object) -> object | None:
    """Patch ``key: 0644`` values to octal in place; None when the document needs a YAML 1.1 parse."""
    body = src.text
    if _yaml11_values(body) != len(_OCTAL_LINE.findall(body)):
        return None
    by_line: dict[int, tuple] = {}
    for path, line in src.line_index.items():
        if len(path) > len(by_line.get(line, ())):
            by_line[line] = path
    pos = line = 0
    for m in _OCTAL_LINE.finditer(body):
        line += body.count("\n", pos, m.start())  # counted forward: linear however many matches
        pos = m.start()
        path = by_line.get(line)
        if not path:
            return None
        parent: object = obj
        for seg in path[:-1]:
            try:
                parent = parent[seg]  # type: ignore[index]
            except (KeyError, IndexError, TypeError):
                return None
        tok = m.group(1)
        if not isinstance(parent, dict) or parent.get(path[-1]) != int(tok, 10):
            return None
        parent[path[-1]] = int(tok, 8)
    return obj


def _parse_yaml11(src: Source) -> object:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        obj = yaml.load(src.text, Loader=loader)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
        raise _long_int_error(src.display, src.first_line - 1, src.index, src.text) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = src.first_line + (mark.line if mark else 0)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"invalid YAML: {problem}", file=src.display, line=line,
                         doc=f"document {src.index + 1}") from None
    return _stringify_dates(obj)


def _stringify_dates(obj: object) -> object:
    """Timestamps become strings, as the JSON round trip of sigs.k8s.io/yaml makes them."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list, datetime.date)):
                obj[k] = _stringify_dates(v)
        return obj
    if isinstance(obj, list):
        return [_stringify_dates(v) for v in obj]
    if isinstance(obj, datetime.datetime):
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, datetime.date):
        return obj.isoformat()
    return obj
