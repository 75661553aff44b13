"""Untrusted text made safe to print in a terminal.

Trace content (prompts, tool results, error messages, span and dimension names) can hold terminal
control sequences: ESC starts CSI sequences (colours, cursor moves, clearing the screen), OSC sequences
(setting the window title, OSC 8 hyperlinks whose text lies about their target), and C1 controls
(U+0080-U+009F, e.g. the one-character CSI U+009B) do the same on some terminals; bidi overrides
(U+202A-U+202E, U+2066-U+2069) reorder what follows so that text reads differently from what it is.
`visible` shows every one of them instead of letting the terminal act on it:

- C0 controls and DEL as their Unicode control pictures (ESC is `␛`, BEL `␇`, DEL `␡`), except newline
  (kept when `newlines`, else `␤`) and tab (kept when `tabs`, else shown as a space);
- C1 controls and the bidi and other invisible format characters as `\\x9b`, `\\u202e` (text that says what it is).

`picture` is the one-character form used by the terminal's last line of defence (present/terminal.py),
which must keep the width of what it replaces.
"""

from __future__ import annotations

import re

_BIDI_AND_FORMAT = "\u061c\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_UNSAFE = re.compile(f"[\x00-\x08\x0a-\x1f\x7f\x80-\x9f{_BIDI_AND_FORMAT}\t]")
_UNSAFE_KEEP_NL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f{_BIDI_AND_FORMAT}\t]")


def _show(ch: str, tabs: bool) -> str:
    o = ord(ch)
    if ch == "\t":
        return "\t" if tabs else " "
    if o < 0x20:
        return chr(0x2400 + o)  # ␀ ... ␟
    if o == 0x7F:
        return "\u2421"  # ␡
    if o <= 0x9F:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}"


def visible(text: str, newlines: bool = True, tabs: bool = False) -> str:
    """`text` with every control and bidi character shown rather than acted on (see the module)."""
    pattern = _UNSAFE_KEEP_NL if newlines else _UNSAFE
    if not pattern.search(text):
        return text
    return pattern.sub(lambda m: _show(m.group(), tabs), text)


def picture(text: str) -> str:
    """Like `visible`, one character for one: controls as control pictures, C1 and bidi characters as
    U+FFFD. For text already laid out (its width counted), keeping newlines and tabs."""
    pattern = _UNSAFE_KEEP_NL
    if not pattern.search(text):
        return text

    def one(m: re.Match[str]) -> str:
        ch = m.group()
        if ch == "\t":
            return ch
        o = ord(ch)
        return chr(0x2400 + o) if o < 0x20 else "\u2421" if o == 0x7F else "\ufffd"

    return pattern.sub(one, text)
