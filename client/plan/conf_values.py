"""Conf values as LoadGen's C library reads them: `strtoull` in base 0 and `strtod`, whole or prefix."""

from __future__ import annotations

import re

__all__ = ["UINT64_MAX", "c_int", "is_c_int", "loadgen_accepts", "strtod", "strtoull"]

UINT64_MAX = 2**64 - 1

# C literals as strtoull (base 0) and strtod accept them, whole token.
_C_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_C_DEC_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_C_HEX_FLOAT = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?")
_C_SPECIAL = re.compile(r"[+-]?(inf|infinity|nan(\([0-9A-Za-z_]*\))?)", re.IGNORECASE)


def strtod(token: str) -> float:
    if _C_HEX_FLOAT.fullmatch(token):
        sign = -1.0 if token.startswith("-") else 1.0
        return sign * float.fromhex(token.lstrip("+-"))
    return float(token.split("(")[0])


def c_int(text: str) -> int:
    """The exact value of a whole C integer literal (decimal, 0x hex or 0 octal), sign included."""
    digits = text.lstrip("+-")
    if digits[:2].lower() == "0x":
        value = int(digits[2:], 16)
    elif len(digits) > 1 and digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits, 10)
    return -value if text.startswith("-") else value


def strtoull(token: str) -> int:
    """C strtoull(token, nullptr, 0): the longest valid prefix, 0 if none; negatives wrap."""
    match = _C_INT.match(token)
    if not match:
        return 0
    value = c_int(match.group(0))
    if abs(value) > UINT64_MAX:
        return UINT64_MAX
    return value % 2**64


def loadgen_accepts(token: str) -> bool:
    """Whether FromConfig's parser takes the token as a value (a full strtoul or strtod parse)."""
    return bool(
        _C_INT.fullmatch(token)
        or _C_DEC_FLOAT.fullmatch(token)
        or _C_HEX_FLOAT.fullmatch(token)
        or _C_SPECIAL.fullmatch(token)
    )


def is_c_int(token: str) -> bool:
    """Whether the whole token is a C integer literal (decimal, 0x hex or 0 octal, optional sign)."""
    return _C_INT.fullmatch(token) is not None
