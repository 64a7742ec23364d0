"""The bearer token both programs read from a file: the server to require it, the client to send it."""

from __future__ import annotations

from pathlib import Path

__all__ = ["TokenFileError", "read_token_file"]


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names the setting and the file."""


def read_token_file(path: Path, setting: str) -> str:
    """The token in `path`: its text without surrounding whitespace (a trailing newline is usual).

    Raises:
        TokenFileError: the file cannot be read, is not UTF-8 text, holds no token or more than one word.
    """
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise TokenFileError(f"{setting} {path}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise TokenFileError(f"{setting} {path}: not UTF-8 text") from None
    if not token:
        raise TokenFileError(f"{setting} {path}: the file holds no token")
    if any(c.isspace() for c in token):
        raise TokenFileError(f"{setting} {path}: the token must be one line without spaces")
    return token
