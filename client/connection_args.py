"""The TLS and bearer-token options `edgeperf run` and `edgeperf suite` share, and keeping the token secret.

The token comes from `--auth-token`, `--auth-token-file`, `$EDGEPERF_AUTH_TOKEN` or
`$EDGEPERF_AUTH_TOKEN_FILE`, in that order (a file keeps it out of the process list and shell history).
Wherever edgeperf writes its command line (the detail log), the token is replaced by `REDACTED`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.grpc_connection import TlsFiles
from edgeperf.protos.auth import TokenFileError, read_token_file

__all__ = [
    "REDACTED",
    "Connection",
    "add_connection_arguments",
    "connection_from_args",
    "redacted_command_line",
]

REDACTED = "REDACTED"
TOKEN_ENV = "EDGEPERF_AUTH_TOKEN"
TOKEN_FILE_ENV = "EDGEPERF_AUTH_TOKEN_FILE"
_TOKEN_OPTION = "--auth-token"


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """How to reach a server: TLS files (None: plaintext) and the bearer token (None: none)."""

    tls: TlsFiles | None = None
    auth_token: str | None = None


def add_connection_arguments(group: argparse._ActionsContainer) -> None:
    """Add --tls-root-cert, --tls-client-cert, --tls-client-key, --auth-token and --auth-token-file."""
    group.add_argument("--tls-root-cert", type=Path, metavar="PEM", help="CA certificate: connect with TLS")
    group.add_argument("--tls-client-cert", type=Path, metavar="PEM", help="client certificate (mutual TLS)")
    group.add_argument("--tls-client-key", type=Path, metavar="PEM", help="client private key (mutual TLS)")
    group.add_argument(
        _TOKEN_OPTION,
        metavar="TOKEN",
        help=f"bearer token for a server started with --auth-token (default: ${TOKEN_ENV}); "
        "logged as REDACTED",
    )
    group.add_argument(
        "--auth-token-file",
        type=Path,
        metavar="FILE",
        help=f"as --auth-token, read from FILE, which keeps it out of the process list (default: ${TOKEN_FILE_ENV})",
    )


def _read_token(path: Path, setting: str) -> str:
    try:
        return read_token_file(path, setting)
    except TokenFileError as exc:
        raise RunSetupError(str(exc)) from None


def _token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    given: str | None = args.auth_token
    token_file: Path | None = args.auth_token_file
    if given is not None and token_file is not None:
        raise RunSetupError("give the token once: --auth-token or --auth-token-file, not both")
    if given is not None:
        return given
    if token_file is not None:
        return _read_token(token_file, "--auth-token-file")
    if environ.get(TOKEN_ENV):
        return environ[TOKEN_ENV]
    if environ.get(TOKEN_FILE_ENV):
        return _read_token(Path(environ[TOKEN_FILE_ENV]), f"${TOKEN_FILE_ENV}")
    return None


def connection_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Connection:
    """The `Connection` the options give (environment variables for an absent token).

    Raises:
        RunSetupError: both token options, or a token file that cannot be used.
    """
    tls = TlsFiles(
        root_cert=args.tls_root_cert, client_cert=args.tls_client_cert, client_key=args.tls_client_key
    )
    return Connection(
        tls=None if tls == TlsFiles() else tls,
        auth_token=_token(args, os.environ if environ is None else environ),
    )


def redacted_command_line(argv: Sequence[str], secret: str | None) -> str:
    """`argv` joined for a log, with the token's value (and any argument holding it) replaced by REDACTED."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        name, sep, _ = arg.partition("=")
        # NOTE: argparse accepts any unambiguous prefix (--auth-tok), so match prefixes too.
        is_token_option = len(name) > 3 and _TOKEN_OPTION.startswith(name)
        if hide_next:
            out.append(REDACTED)
        elif is_token_option and sep:
            out.append(f"{name}={REDACTED}")
        elif secret and secret in arg:
            out.append(arg.replace(secret, REDACTED))
        else:
            out.append(arg)
        hide_next = is_token_option and not sep and not hide_next
    return " ".join(out)
