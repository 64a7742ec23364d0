"""A small reader for protobuf text format (the syntax of Triton's config.pbtxt), schema-free.

It yields messages as lists of `(field name, value, line)` in file order, so repeated fields stay
repeated and the caller (server/config.py) checks names and types against its own schema. Values are
`str` (quoted strings, adjacent ones concatenated), `int`, `float`, `Ident` (bare words: enum names,
true/false) or a nested message. `name: [a, b]` yields one entry per element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Field", "Ident", "Message", "TextFormatError", "parse_text_format"]


class Ident(str):
    """A bare identifier: an enum value name or a boolean literal."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: str | int | float | Ident | list[Field]
    line: int


Message = list[Field]


class TextFormatError(ValueError):
    """Malformed text; `line` is 1-based."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}")


_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?(?![A-Za-z_]))
  | (?P<ident>-?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}\[\]<>:,;])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    line: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise TextFormatError(line, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return tokens


def _unquote(tok: _Tok) -> str:
    body = tok.text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise TextFormatError(tok.line, f"unsupported escape \\{nxt} in string")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1].line if self.tokens else 1
            raise TextFormatError(last, "unexpected end of file")
        self.pos += 1
        return tok

    def expect(self, text: str) -> _Tok:
        tok = self.take()
        if tok.text != text:
            raise TextFormatError(tok.line, f"expected '{text}', found '{tok.text}'")
        return tok

    def message(self, closer: str | None) -> Message:
        fields: Message = []
        while True:
            tok = self.peek()
            if tok is None:
                if closer is not None:
                    self.take()
                return fields
            if closer is not None and tok.text == closer:
                self.pos += 1
                return fields
            name = self.take()
            if name.kind != "ident" or name.text.startswith("-"):
                raise TextFormatError(name.line, f"expected a field name, found '{name.text}'")
            nxt = self.peek()
            if nxt is not None and nxt.text == ":":
                self.pos += 1
                nxt = self.peek()
            if nxt is not None and nxt.text == "[":
                self.pos += 1
                for value in self.list_values():
                    fields.append(Field(name.text, value, name.line))
            else:
                fields.append(Field(name.text, self.value(), name.line))
            sep = self.peek()
            if sep is not None and sep.text in (",", ";"):
                self.pos += 1

    def list_values(self) -> list[str | int | float | Ident | Message]:
        values: list[str | int | float | Ident | Message] = []
        tok = self.peek()
        if tok is not None and tok.text == "]":
            self.pos += 1
            return values
        while True:
            values.append(self.value())
            tok = self.take()
            if tok.text == "]":
                return values
            if tok.text != ",":
                raise TextFormatError(tok.line, f"expected ',' or ']' in list, found '{tok.text}'")

    def value(self) -> str | int | float | Ident | Message:
        tok = self.take()
        if tok.text in ("{", "<"):
            return self.message("}" if tok.text == "{" else ">")
        if tok.kind == "string":
            parts = [_unquote(tok)]
            while (nxt := self.peek()) is not None and nxt.kind == "string":
                parts.append(_unquote(self.take()))
            return "".join(parts)
        if tok.kind == "number":
            return _number(tok)
        if tok.kind == "ident":
            return Ident(tok.text)
        raise TextFormatError(tok.line, f"expected a value, found '{tok.text}'")


def _number(tok: _Tok) -> int | float:
    text = tok.text
    try:
        if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", text):
            return int(text, 16)
        if re.fullmatch(r"[-+]?\d+", text):
            return int(text)
        return float(text.rstrip("fF"))
    except ValueError:
        raise TextFormatError(tok.line, f"bad number '{text}'") from None


def parse_text_format(text: str) -> Message:
    """Parse protobuf text format into a list of fields.

    Raises:
        TextFormatError: with the line of the first syntax error.
    """
    parser = _Parser(_tokenize(text))
    return parser.message(None)
