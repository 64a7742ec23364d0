"""A TCP relay that delays each direction by a set time plus jitter: latency where the kernel has no netem.

Run inside the client's network namespace: `python -m tests.faults.relay --upstream HOST:PORT --delay-ms 10`.
It prints `listening PORT` once bound, then relays until killed. Bytes keep their order: a chunk is never
delivered before the one read ahead of it, so jitter stretches the stream but cannot reorder it (as on TCP).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from contextlib import suppress

CHUNK_BYTES = 1 << 16


class Delay:
    """One direction's delay: `delay_s` plus uniform jitter in [-jitter_s, +jitter_s], never below zero."""

    def __init__(self, delay_s: float, jitter_s: float, rng: random.Random) -> None:
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.rng = rng

    def sample_s(self) -> float:
        jitter = self.rng.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s > 0 else 0.0
        return max(0.0, self.delay_s + jitter)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: Delay) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due_s, data = await queue.get()
            wait_s = due_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    last_due_s = 0.0
    try:
        while True:
            data = await reader.read(CHUNK_BYTES)
            # NOTE: order is kept by never scheduling a chunk before the previous one.
            last_due_s = max(last_due_s, time.monotonic() + delay.sample_s())
            queue.put_nowait((last_due_s, data))
            if not data:
                break
        await sender
    finally:
        sender.cancel()
        with suppress(asyncio.CancelledError, ConnectionError, OSError):
            await sender


async def _serve(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    delay = Delay(args.delay_ms / 1000, args.jitter_ms / 1000, rng)
    up_host, _, up_port = args.upstream.rpartition(":")

    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(up_host, int(up_port))
        except OSError:
            # NOTE: an unreachable or dead server closes the client's connection, as a refused connect would.
            c_writer.close()
            return
        pumps = [
            asyncio.create_task(_pump(c_reader, s_writer, delay)),
            asyncio.create_task(_pump(s_reader, c_writer, delay)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in pumps:
                task.cancel()
            for task in pumps:
                with suppress(asyncio.CancelledError, ConnectionError, OSError):
                    await task
            for w in (c_writer, s_writer):
                w.close()

    host, _, port = args.listen.rpartition(":")
    server = await asyncio.start_server(handle, host, int(port))
    bound = server.sockets[0].getsockname()[1]
    print(f"listening {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    parser.add_argument("--upstream", required=True, metavar="HOST:PORT")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay, each direction")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform jitter around the delay")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
