"""`edgeperf-server`: build a model repository from the built-in models, or serve one.

    edgeperf-server build --out DIR [--size full|small] [--precision fp32|fp16|int8] [--from-file PATH] MODEL...
    edgeperf-server serve --model-repository DIR [--listen HOST:PORT] [--metrics-listen HOST:PORT] ...

Exit status: 0 on success (serve: after a clean drain on SIGTERM/SIGINT), 2 for bad arguments, a bad
repository or a bad model configuration (the message names the file, the model and the field).
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, cast

from google.protobuf.message import DecodeError

from edgeperf.benchmarks import registry
from edgeperf.benchmarks.base import Benchmark, Size
from edgeperf.server.errors import EdgeperfServerError
from edgeperf.server.settings import DEFAULT_MAX_INFLIGHT, ServerConfig, environment_variables

__all__ = ["build_parser", "main"]

_PROG = "edgeperf-server"


def _version() -> str:
    try:
        return metadata.version("edgeperf")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _number(flag: str, text: str, *, unit: str, positive: bool) -> float:
    """A finite number >= 0 (> 0 with `positive`) or a one-line usage error; float() alone takes inf and nan."""
    try:
        value = float(text)
    except ValueError:
        raise _UsageError(f"{flag}: expected a number ({unit}), got {text!r}") from None
    bound = "> 0" if positive else ">= 0"
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise _UsageError(f"{flag}: expected a finite number {bound} ({unit}), got {text!r}")
    return value


def _environment_epilog() -> str:
    rows = environment_variables()
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name:<{width}}  {text}" for name, text in rows]
    return "environment variables (a flag beats its variable):\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description="KServe v2 / Triton-compatible gRPC inference server"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="write a ready model repository for built-in models")
    build.add_argument("--out", type=Path, required=True, help="model repository folder to write into")
    build.add_argument(
        "--size",
        choices=("full", "small"),
        default="full",
        help="stand-in size: full architecture or a small one",
    )
    build.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        default="fp32",
        help="stand-in variant: fp32 (default), fp16, or int8 (static quantisation); not with --from-file",
    )
    build.add_argument(
        "--from-file",
        type=Path,
        default=None,
        help="the official ONNX model instead of a stand-in (one MODEL only)",
    )
    build.add_argument("models", nargs="+", metavar="MODEL", help=f"one of: {', '.join(registry.names())}")

    serve = commands.add_parser(
        "serve",
        help="serve a model repository over gRPC",
        epilog=_environment_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--model-repository", type=Path, default=None, help="env EDGEPERF_MODEL_REPOSITORY")
    serve.add_argument(
        "--listen", default=None, help="gRPC HOST:PORT (default 127.0.0.1:8001; port 0 picks one)"
    )
    serve.add_argument("--metrics-listen", default=None, help="Prometheus HOST:PORT (default 127.0.0.1:8002)")
    serve.add_argument("--no-metrics", action="store_true", help="serve no Prometheus endpoint")
    serve.add_argument("--max-message-mb", default=None, help="largest gRPC message (default 64)")
    serve.add_argument(
        "--max-queued-mb",
        default=None,
        help="budget for request data held in the server (default 512); beyond it requests answer UNAVAILABLE",
    )
    serve.add_argument(
        "--max-inflight",
        type=int,
        default=None,
        help=f"inference RPCs held at once (default {DEFAULT_MAX_INFLIGHT}); beyond it requests answer "
        "RESOURCE_EXHAUSTED at once, counted in edgeperf_requests_refused_total",
    )
    serve.add_argument("--grace-s", default=None, help="drain time for in-flight requests (default 30)")
    serve.add_argument(
        "--drain-delay-s",
        default=None,
        help="keep serving this long after health turns NOT_SERVING",
    )
    serve.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate chain (enables TLS)")
    serve.add_argument("--tls-key", type=Path, default=None, help="PEM private key")
    serve.add_argument(
        "--tls-client-ca", type=Path, default=None, help="PEM CA for client certificates (mTLS)"
    )
    serve.add_argument(
        "--auth-token",
        default=None,
        help="require 'authorization: Bearer TOKEN' metadata (health and reflection stay open)",
    )
    serve.add_argument(
        "--auth-token-file",
        type=Path,
        default=None,
        help="as --auth-token, the token read from this file (keeps it out of the process list)",
    )
    serve.add_argument(
        "--power",
        default=None,
        metavar="SOURCE[,SOURCE]",
        help="power sources: auto (default: what this machine has), none, or rapl[=ROOT], hwmon[=ROOT], "
        "jetson[:RAIL][=ROOT], nvml[:INDEX], scpi=RESOURCE[@BACKEND][;query=COMMAND] (last)",
    )
    serve.add_argument("--no-warmup", action="store_true", help="skip warm-up runs at load")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes on one port (SO_REUSEPORT) with summed statistics and metrics (default 1)",
    )
    serve.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING, ERROR")
    serve.add_argument(
        "--log-format", choices=("json", "text"), default=None, help="stderr log format (default json)"
    )
    return parser


def _serve_config(args: argparse.Namespace) -> ServerConfig:
    overrides: dict[str, Any] = {}
    for name in ("grace_s", "drain_delay_s"):
        if getattr(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            overrides[name] = _number(flag, getattr(args, name), unit="seconds", positive=False)
    for name in (
        "model_repository",
        "listen",
        "metrics_listen",
        "auth_token",
        "power",
        "log_level",
        "workers",
        "max_inflight",
    ):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    for name in ("tls_cert", "tls_key", "tls_client_ca", "auth_token_file"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.max_message_mb is not None:
        mebibytes = _number("--max-message-mb", args.max_message_mb, unit="MiB", positive=True)
        overrides["max_message_bytes"] = int(mebibytes * 1024 * 1024)
    if args.max_queued_mb is not None:
        mebibytes = _number("--max-queued-mb", args.max_queued_mb, unit="MiB", positive=True)
        overrides["max_queued_bytes"] = int(mebibytes * 1024 * 1024)
    if args.no_metrics:
        overrides["metrics_listen"] = None
    if args.no_warmup:
        overrides["warmup"] = False
    if args.log_format is not None:
        overrides["log_json"] = args.log_format == "json"
    return ServerConfig.from_env(**overrides)


def _build(args: argparse.Namespace) -> int:
    if args.from_file is not None and len(args.models) != 1:
        raise _UsageError("--from-file needs exactly one MODEL")
    if args.from_file is not None and args.precision != "fp32":
        raise _UsageError(
            f"--precision {args.precision} is for stand-ins; --from-file uses the file as it is"
        )
    benchmarks = []
    for name in args.models:
        try:
            benchmarks.append((name, registry.get(name)))
        except KeyError as err:
            raise _UsageError(str(err.args[0])) from None
    _prepare_out(args.out)
    for name, benchmark in benchmarks:
        try:
            _write_model(name, benchmark, args)
        except ValueError as err:  # every benchmark error: a bad model file, a precision it lacks
            raise _UsageError(f"{name}: {err}") from None
        except (
            DecodeError,
            OSError,
        ) as err:  # --from-file not an ONNX file; a file that cannot be read or written
            raise _UsageError(_build_failure(name, args.from_file, err)) from None
        print(f"wrote {args.out / name}", flush=True)
    return 0


def _prepare_out(out: Path) -> None:
    """Create `--out` (or accept an existing folder) and make sure it can be written into."""
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _UsageError(f"--out {out}: cannot create the folder: {err.strerror or err}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise _UsageError(f"--out {out}: the folder is not writable")


def _build_failure(name: str, from_file: Path | None, err: Exception) -> str:
    if from_file is not None and isinstance(err, DecodeError):
        return f"{name}: --from-file {from_file}: not an ONNX model ({err})"
    return f"{name}: {type(err).__name__}: {err}"


class _WritesPrecision(Protocol):
    def write_model(
        self, model_dir: Path, *, size: Size = ..., from_file: Path | None = ..., precision: str = ...
    ) -> None: ...


def _write_model(name: str, benchmark: Benchmark, args: argparse.Namespace) -> None:
    size = cast(Size, args.size)
    if "precision" in inspect.signature(benchmark.write_model).parameters:
        writer = cast(_WritesPrecision, benchmark)
        writer.write_model(args.out / name, size=size, from_file=args.from_file, precision=args.precision)
    elif args.precision == "fp32":
        benchmark.write_model(args.out / name, size=size, from_file=args.from_file)
    else:
        raise _UsageError(f"{name} has no --precision variants (fp32 only)")


def _serve(args: argparse.Namespace) -> int:
    from edgeperf.server.app import run  # NOTE: imported late so `build` does not load onnxruntime and grpc

    config = _serve_config(args)
    repository = config.model_repository
    if not repository.is_dir():
        raise _UsageError(f"--model-repository {repository}: not a directory")
    if config.tls_cert is not None and config.tls_key is not None:
        from edgeperf.server.auth import TlsMaterialError, check_tls_material

        try:  # NOTE: here, before any worker process starts or any model loads
            check_tls_material(config.tls_cert, config.tls_key, config.tls_client_ca)
        except TlsMaterialError as err:
            raise _UsageError(f"TLS: {err}") from None
    if config.workers > 1:
        from edgeperf.server.workers import run_workers

        return run_workers(config)
    return run(config)


class _UsageError(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "build":
            return _build(args)
        return _serve(args)
    except (_UsageError, EdgeperfServerError) as err:
        print(f"{_PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
