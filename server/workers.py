"""`serve --workers N`: N server processes on one port (SO_REUSEPORT), statistics and metrics summed.

For many-core CPU devices, where one process's event loop and gRPC threads become the limit. The parent
process is a supervisor and serves no gRPC itself:

* it reserves the port (a bound, never listening SO_REUSEPORT socket; port 0 picks one), then starts N
  worker processes (multiprocessing "spawn": no forked gRPC or ONNX Runtime state). Each worker is a whole
  edgeperf server with its own model sessions, whose ONNX Runtime `intra_op_threads` are split between
  the workers (the configured count, or one per core when 0, divided by N, at least 1) and an Nth of
  `max_queued_bytes`, listening on the shared port, where the kernel spreads connections over them;
* each worker also listens on a private unix socket; ModelStatistics asked of any worker asks its peers
  there and answers the sum (`peers.merge_statistics`), so a client sees one server;
* the parent serves /metrics itself: each scrape reads every worker's exposition (on private loopback
  ports) and sums the samples (`sum_expositions`);
* SIGTERM or SIGINT to the parent is passed to every worker, which drains as a single server does
  (health NOT_SERVING, in-flight requests finish within grace_s); the parent exits once all have. A
  worker that dies on its own stops the others, and the parent exits 1 (let the service manager restart
  the whole server, not one worker with stale statistics).

Logs: workers log to the same stderr with `"worker": i`; the worker's ready line is `"event":
"worker_ready"`, the parent's (after all are ready) is the usual `"event": "ready"` with `"workers": N`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any, Final

from edgeperf.server.app import serve_worker
from edgeperf.server.logs import configure_logging
from edgeperf.server.peers import WorkerRole
from edgeperf.server.settings import ServerConfig, SettingsError, parse_address

__all__ = ["run_workers", "sum_expositions"]

logger = logging.getLogger("edgeperf.server")

_READY_TIMEOUT_S: Final = 600.0
"""How long a worker may take to load its models (ResNet50-size repositories on small devices: minutes)."""


def sum_expositions(texts: Iterable[str]) -> str:
    """Prometheus text expositions of several workers as one: samples with the same name and labels add
    (counters, histogram buckets, sums and counts, queue-depth gauges); `*_created` keeps the earliest;
    device readings (labelled `gpu_uuid`: every worker reads the same GPU) keep the first worker's."""
    families: dict[str, tuple[list[str], dict[str, float]]] = {}
    family = ""
    for text in texts:
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(maxsplit=3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    family = parts[2]
                comments, _ = families.setdefault(family, ([], {}))
                if line not in comments:
                    comments.append(line)
                continue
            key, _, raw = line.rpartition(" ")
            value = float(raw)
            _, samples = families.setdefault(family, ([], {}))
            if key not in samples:
                samples[key] = value
            elif 'gpu_uuid="' in key:
                continue
            elif key.split("{", 1)[0].endswith("_created"):
                samples[key] = min(samples[key], value)
            else:
                samples[key] += value
    lines: list[str] = []
    for comments, samples in families.values():
        lines += comments
        lines += [f"{key} {_number(value)}" for key, value in samples.items()]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


class _SummedMetrics:
    """What the parent's /metrics serves: every worker's exposition, summed at scrape time."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = ports

    def render(self) -> bytes:
        texts = []
        for port in self._ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                texts.append(reply.read().decode())
        return sum_expositions(texts).encode()


# ---------------------------------------------------------------- the processes


def _reserve_port(listen: str) -> socket.socket:
    """A socket bound to `listen` with SO_REUSEPORT and never listening: it holds the port (and picks one
    for port 0) while the workers bind the same port; the kernel gives connections to listening sockets."""
    host, port = parse_address(listen)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[
            0
        ]
        holder = socket.socket(family, kind, proto)
    except OSError as err:
        raise SettingsError(f"listen: cannot bind {listen}: {err}") from None
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(address)
    except OSError as err:
        holder.close()
        raise SettingsError(f"listen: cannot bind {listen}: {err.strerror or err}") from None
    return holder


def _worker_main(config: ServerConfig, role: WorkerRole, conn: Connection) -> None:
    """A worker process: one whole server; reports ("ready", port, metrics_port, models) or ("error", text)."""
    configure_logging(config.log_level, json_lines=config.log_json, worker=role.index)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # NOTE: until the loop installs its own handlers
    try:
        import uvloop

        uvloop.run(serve_worker(config, role, conn.send))
    except BaseException as err:  # NOTE: reported to the parent, which names it and stops the others
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(err).__name__}: {err}"))
        raise SystemExit(2) from None
    finally:
        conn.close()


def run_workers(config: ServerConfig) -> int:
    """The parent of `config.workers` worker processes; returns the exit status (0 after a clean drain).

    Raises:
        ModelConfigError: a bad repository or model configuration, found before any worker starts.
        SettingsError: the address cannot be bound.
    """
    from edgeperf.server.repository import scan_repository

    configure_logging(config.log_level, json_lines=config.log_json)
    scan_repository(config.model_repository)  # NOTE: config errors once, as a single server reports them
    holder = _reserve_port(config.listen)
    host, _ = parse_address(config.listen)
    port = holder.getsockname()[1]
    peer_dir = tempfile.mkdtemp(prefix="edgeperf-workers-")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    context = multiprocessing.get_context("spawn")
    processes: list[Any] = []
    metrics_http = None
    try:
        peers = tuple(f"unix:{peer_dir}/worker-{i}.sock" for i in range(config.workers))
        worker_config = dataclasses.replace(
            config,
            listen=f"{host}:{port}",
            metrics_listen="127.0.0.1:0" if config.metrics_listen is not None else None,
            # NOTE: the budget protects the machine's memory, so the workers share it.
            max_queued_bytes=max(1, config.max_queued_bytes // config.workers),
        )
        pipes = []
        for index in range(config.workers):
            ours, theirs = context.Pipe(duplex=False)
            role = WorkerRole(index=index, count=config.workers, peer_addresses=peers)
            process = context.Process(
                target=_worker_main, args=(worker_config, role, theirs), name=f"edgeperf-worker-{index}"
            )
            process.start()
            theirs.close()
            processes.append(process)
            pipes.append(ours)
        ready = _await_ready(pipes, processes, stop)
        if ready is None:
            return 0 if stop.is_set() else 2
        metrics_port = None
        if config.metrics_listen is not None:
            from edgeperf.server.metrics_http import MetricsHttpThread

            metrics_http = MetricsHttpThread(_SummedMetrics([r[2] for r in ready]))
            metrics_host, metrics_wanted = parse_address(config.metrics_listen)
            try:
                metrics_port = metrics_http.start(metrics_host, metrics_wanted)
            except OSError as err:
                raise SettingsError(f"metrics_listen: cannot bind {config.metrics_listen}: {err}") from err
        logger.info(
            "edgeperf-server ready on %s:%d with %d workers",
            host,
            port,
            config.workers,
            extra={
                "event": "ready",
                "address": f"{host}:{port}",
                "port": port,
                "metrics_port": metrics_port,
                "models": ready[0][3],
                "workers": config.workers,
                "pids": [p.pid for p in processes],
            },
        )
        while not stop.wait(0.2):
            dead = [p for p in processes if not p.is_alive()]
            if dead:
                logger.error(
                    "worker %s exited with %s; stopping the others",
                    dead[0].name,
                    dead[0].exitcode,
                    extra={"event": "worker_exited", "worker": dead[0].name, "exitcode": dead[0].exitcode},
                )
                return 1
        logger.info("signal received", extra={"event": "signal"})
        return 0
    finally:
        _stop_all(processes, config.grace_s + config.drain_delay_s + 30.0)
        if metrics_http is not None:
            metrics_http.close()
        holder.close()
        shutil.rmtree(peer_dir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _await_ready(
    pipes: list[Connection], processes: list[Any], stop: threading.Event
) -> list[tuple[str, int, int, list[str]]] | None:
    """Every worker's ready report, in worker order; None after an error (logged) or a stop signal."""
    reports: dict[int, tuple[str, int, int, list[str]]] = {}
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while len(reports) < len(pipes):
        if stop.is_set():
            return None
        for index, pipe in enumerate(pipes):
            if index in reports or not pipe.poll(0.05):
                continue
            try:
                report = pipe.recv()
            except EOFError:
                report = ("error", f"exited with {processes[index].exitcode} before it was ready")
            if report[0] != "ready":
                logger.error(
                    "worker %d failed to start: %s",
                    index,
                    report[1],
                    extra={"event": "worker_failed", "worker": index},
                )
                return None
            reports[index] = report
        if time.monotonic() > deadline:
            logger.error("workers not ready after %.0f s", _READY_TIMEOUT_S, extra={"event": "worker_failed"})
            return None
    return [reports[i] for i in range(len(pipes))]


def _stop_all(processes: list[Any], timeout_s: float) -> None:
    """SIGTERM every live worker (each drains), wait up to `timeout_s`, then SIGKILL what is left."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        process.join(max(deadline - time.monotonic(), 0.0))
        if process.is_alive():
            logger.error(
                "worker %s did not stop in time; killed", process.name, extra={"event": "worker_killed"}
            )
            process.kill()
            process.join(5)
