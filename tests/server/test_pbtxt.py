"""The protobuf text-format reader behind config.pbtxt."""

from __future__ import annotations

import pytest

from edgeperf.server.pbtxt import Field, Ident, TextFormatError, parse_text_format


def test_scalars_messages_lists_and_comments() -> None:
    text = """
    # comment
    name: "a" 'b'   # adjacent strings join
    n: -3 h: 0x10 f: 1.5e2 flag: true kind: TYPE_FP32
    m { x: 1; y: [2, 3], } m2: < z: "q\\n\\"" >
    empty: [ ]
    """
    fields = parse_text_format(text)
    values = {f.name: f.value for f in fields if f.name not in ("y",)}
    assert values["name"] == "ab"
    assert values["n"] == -3 and values["h"] == 16 and values["f"] == 150.0
    assert isinstance(values["flag"], Ident) and values["flag"] == "true"
    assert isinstance(values["kind"], Ident)
    assert values["m"] == [Field("x", 1, 5), Field("y", 2, 5), Field("y", 3, 5)]
    assert values["m2"] == [Field("z", 'q\n"', 5)]
    assert "empty" not in values


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a: {\n b: 1", 2, "unexpected end of file"),
        ("a: [1 2]", 1, "expected ',' or ']'"),
        ("\n\n: 3", 3, "expected a field name"),
        ('a: "\\q"', 1, "unsupported escape"),
        ("a: $", 1, "unexpected character"),
        ("a: }", 1, "expected a value"),
    ],
)
def test_syntax_errors_name_the_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(TextFormatError) as info:
        parse_text_format(text)
    assert info.value.line == line
    assert reason in str(info.value)
