"""Untrusted text made safe to print: control characters removed, rich markup escaped.

Everything that came out of a container or a file (log lines, file names, case ids, error
messages that quote them) passes through :func:`printable` before it reaches a terminal, and
through :func:`markup_safe` before it reaches :mod:`rich`, so that ANSI escape sequences cannot
drive the terminal and ``[/]`` cannot crash rich's markup parser.
"""

from __future__ import annotations

import re

from rich.markup import escape

__all__ = ["markup_safe", "printable"]

# ANSI CSI / OSC sequences first (so their parameters go too), then any other control character
# except newline and tab: C0, DEL and the C1 range, plus the Unicode bidi overrides that can make
# a name read as something else.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object, *, limit: int | None = None, oneline: bool = False) -> str:
    """``str(text)`` without escape sequences and control characters (newline and tab kept).

    Parameters
    ----------
    text
        Anything; converted with ``str``.
    limit
        Cut to this many characters (an ellipsis marks the cut).
    oneline
        Show newlines, carriage returns and tabs as the visible escapes ``\\n``, ``\\r``,
        ``\\t``: for a name or status printed on one line of a table or a log, where a newline
        would let the text forge a line of its own.

    Examples
    --------
    >>> printable("red \\x1b[31malert\\x1b[0m\\x07 done")
    'red alert done'
    >>> printable("a" * 10, limit=4)
    'aaa…'
    >>> printable("case.nii.gz\\nscoring: 2/2 FAKE", oneline=True)
    'case.nii.gz\\\\nscoring: 2/2 FAKE'
    """
    text = str(text)
    if oneline:
        text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    out = _CONTROL.sub("", _ANSI.sub("", text))
    if limit is not None and len(out) > limit:
        out = out[: max(limit - 1, 0)] + "…"
    return out


def markup_safe(text: object, *, limit: int | None = None, oneline: bool = False) -> str:
    """:func:`printable` text with rich markup escaped, ready for ``console.print``.

    Examples
    --------
    >>> markup_safe("[/] \\x1b[2Jcleared [bold]x[/bold]")
    '\\\\[/] cleared \\\\[bold]x\\\\[/bold]'
    """
    return escape(printable(text, limit=limit, oneline=oneline))
