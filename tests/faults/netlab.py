"""Two network namespaces joined by a veth pair: the client's and the server's, made and removed by a test.

Everything lives inside namespaces with names unique to this lab, so concurrent runs cannot collide and the
host's own interfaces, addresses and ruleset are never touched. Loss is nftables `numgen random` in the
server's namespace (this kernel has no netem); a cut is the server's end of the link taken down.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from tests._child import LineWatch, stop_child

# NOTE: link-local addresses that exist only inside this lab's two namespaces; never reachable from outside.
CLIENT_ADDR = "169.254.77.1"
SERVER_ADDR = "169.254.77.2"
SERVER_PORT = 8001
READY_TIMEOUT_S = 60.0


def unavailable_reason() -> str | None:
    """Why the fault suite cannot run here, or None when it can (root, `ip` and `nft`)."""
    if os.geteuid() != 0:
        return "fault suite needs root (network namespaces, veth, nftables)"
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        return f"fault suite needs {' and '.join(missing)} (apt-get install iproute2 nftables)"
    return None


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


class ServerInNamespace:
    """An `edgeperf-server serve` process inside the server namespace, ready once it logged its ready line."""

    def __init__(self, netns: str, model_repository: Path, log_path: Path) -> None:
        self.netns = netns
        self.log_path = log_path
        self._log = log_path.open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            [
                "ip", "netns", "exec", netns,
                sys.executable, "-m", "edgeperf.server.cli", "serve",
                "--model-repository", str(model_repository),
                "--listen", f"{SERVER_ADDR}:{SERVER_PORT}",
                "--metrics-listen", "127.0.0.1:0",
                "--no-warmup",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.process.stderr is not None
        self._watch = LineWatch(self.process.stderr, lambda line: '"event": "ready"' in line, self._write_log)
        if not self._watch.marked.wait(READY_TIMEOUT_S) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"edgeperf-server did not become ready; see {log_path}")

    def _write_log(self, line: str) -> None:
        self._log.write(line)
        self._log.flush()  # NOTE: whole lines in the log even when a hung test is killed

    def signal(self, sig: signal.Signals) -> None:
        # NOTE: `ip netns exec` execs the command, so this pid is the server's own.
        with suppress(ProcessLookupError):
            os.kill(self.process.pid, sig)

    def stop(self) -> None:
        self.signal(signal.SIGCONT)
        stop_child(self.process)
        self._watch.join()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self._log.close()


class NetLab:
    """The client namespace, the server namespace and the veth pair between them."""

    def __init__(self, workdir: Path) -> None:
        tag = f"{os.getpid() % 100000}{secrets.token_hex(2)}"
        self.workdir = workdir
        self.client_ns = f"epf-{tag}-c"
        self.server_ns = f"epf-{tag}-s"
        # NOTE: interface names are at most 15 characters.
        self.client_if = f"epc{tag}"[:15]
        self.server_if = f"eps{tag}"[:15]
        self._relay: subprocess.Popen[str] | None = None
        self._servers: list[ServerInNamespace] = []

    def up(self) -> None:
        _run("ip", "netns", "add", self.client_ns)
        _run("ip", "netns", "add", self.server_ns)
        _run(
            "ip", "link", "add", self.client_if, "netns", self.client_ns,
            "type", "veth", "peer", "name", self.server_if, "netns", self.server_ns,
        )  # fmt: skip
        for ns, ifname, addr in (
            (self.client_ns, self.client_if, CLIENT_ADDR),
            (self.server_ns, self.server_if, SERVER_ADDR),
        ):
            _run("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", ifname)
            _run("ip", "-n", ns, "link", "set", ifname, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")

    def down(self) -> None:
        """Stop the servers, remove both namespaces (the veth pair goes with them); every step runs even if
        one fails."""
        for server in self._servers:
            with suppress(Exception):  # NOTE: a server that will not stop is killed with its namespace
                server.stop()
        if self._relay is not None:
            self._relay.kill()
            self._relay.wait(5)
            if self._relay.stdout is not None:
                self._relay.stdout.close()
        for ns in (self.client_ns, self.server_ns):
            self._kill_namespace_processes(ns)
            with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                _run("ip", "netns", "delete", ns)

    @staticmethod
    def _kill_namespace_processes(ns: str) -> None:
        # NOTE: only processes this lab started can be inside its uniquely named namespace.
        with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pids = subprocess.run(
                ["ip", "netns", "pids", ns], check=True, capture_output=True, text=True, timeout=10
            ).stdout.split()
            for pid in pids:
                with suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGCONT)
                    os.kill(int(pid), signal.SIGKILL)

    def start_server(self, model_repository: Path) -> ServerInNamespace:
        """A server in the server namespace, ready; the lab stops it on the way out."""
        server = ServerInNamespace(self.server_ns, model_repository, self.workdir / "server.log")
        self._servers.append(server)
        return server

    def start_relay(self, delay_ms: float = 0.0, jitter_ms: float = 0.0) -> str:
        """Start the delaying relay in the client namespace; returns the address the client dials."""
        self._relay = subprocess.Popen(
            [
                "ip", "netns", "exec", self.client_ns,
                sys.executable, "-m", "tests.faults.relay",
                "--upstream", f"{SERVER_ADDR}:{SERVER_PORT}",
                "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        assert self._relay.stdout is not None
        line = self._relay.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"relay did not start: {line!r}")
        return f"127.0.0.1:{int(line.split()[1])}"

    def set_loss(self, percent: int) -> None:
        """Drop `percent`% of packets at random in both directions on the server's end of the link."""
        ns = ("ip", "netns", "exec", self.server_ns, "nft")
        _run(*ns, "add", "table", "inet", "edgeperf_fault")
        for chain, hook, match in (("in", "input", "iifname"), ("out", "output", "oifname")):
            spec = f"{{ type filter hook {hook} priority 0; policy accept; }}"
            _run(*ns, "add", "chain", "inet", "edgeperf_fault", chain, spec)
            _run(*ns, "add", "rule", "inet", "edgeperf_fault", chain, match, self.server_if,
                 "numgen", "random", "mod", "100", "<", str(percent), "drop")  # fmt: skip

    def cut(self) -> None:
        _run("ip", "-n", self.server_ns, "link", "set", self.server_if, "down")

    def restore(self) -> None:
        _run("ip", "-n", self.server_ns, "link", "set", self.server_if, "up")

    def client_command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.client_ns, *argv]


@contextmanager
def netlab(workdir: Path) -> Iterator[NetLab]:
    """A lab that is removed on the way out, also when the test fails or is interrupted."""
    lab = NetLab(workdir)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
