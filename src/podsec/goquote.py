"""Go's ``strconv.Quote`` (``%q``): how Kubernetes quotes a string in its messages and in downward-API files.

One copy for the API server's field errors (:mod:`podsec.api.fielderror`), Pod Security Admission's messages
(:mod:`podsec.policy.pss`) and the kubelet's ``fieldpath.FormatMap`` (:mod:`podsec.volumes.sources`).
Printable runes are kept (Python's ``str.isprintable`` and Go's ``unicode.IsPrint`` agree: letters, marks,
numbers, punctuation, symbols and the ASCII space); the rest is escaped as Go escapes it: ``\\a``…``\\v``,
``\\xHH`` below U+0020 and for DEL, ``\\uHHHH``/``\\UHHHHHHHH`` above; an invalid byte (kept by Python's
``surrogateescape``) as ``\\xHH``, another lone surrogate as U+FFFD (``\\ufffd``), as Go reads invalid UTF-8.
"""

from __future__ import annotations

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            '"': '\\"', "\\": "\\\\"}


def go_quote(s: str) -> str:
    """``strconv.Quote(s)``."""
    if s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
            continue
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # an invalid byte kept by surrogateescape: Go prints the byte
            out.append(f"\\x{o - 0xDC00:02x}")
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")  # not a valid rune: Go substitutes U+FFFD
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)
