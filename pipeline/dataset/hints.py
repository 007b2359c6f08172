"""Hints added to "not valid JSON" messages for mistakes people make when pasting.

Text copied from a word processor, a chat app or a web page often has typographic quotes (“ ” ‘ ’)
where JSON needs straight ones; the parser's own message ("Expecting property name enclosed in double
quotes") does not say that.
"""

from __future__ import annotations

import json
import re

_STRAIGHTEN = str.maketrans({c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u2018\u2019\u201a\u201b"})
#: A typographic quote where JSON's structure needs a straight one: after { [ , or before a colon.
_STRUCTURAL = re.compile(r"[{\[,]\s*[\u201c\u201d\u201e\u2018\u2019]|[\u201c\u201d\u2018\u2019]\s*:")


def json_paste_hint(text: str) -> str:
    """' Curly quotes: ...' when typographic quotes are why `text` is not JSON, else ''.

    Only called on text that failed to parse: a curly quote inside a valid string is fine, so the hint
    is given when straightening the quotes makes the text parse, or when one stands where JSON's
    structure needs a straight quote."""
    straight = text.translate(_STRAIGHTEN)
    if straight == text:
        return ""
    try:
        json.loads(straight)
    except (ValueError, RecursionError):  # not JSON, or JSON too deep / a number too long to read
        if not _STRUCTURAL.search(text):
            return ""
    return ' Curly quotes: replace \u201c \u201d (and \u2018 \u2019 around keys and values) with straight quotes (").'
