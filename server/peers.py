"""ModelStatistics over every worker of `serve --workers N`: ask the peers on their private sockets, add.

Each worker listens on a private unix socket besides the shared port (server/workers.py). A worker asked
for statistics by a client asks every peer there, marking the call with `PEER_METADATA` so that the peer
answers with its own figures only, and returns the sum (`merge_statistics`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Final

import grpc

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.errors import PeerUnavailable

__all__ = ["PEER_METADATA", "PeerStatistics", "WorkerRole", "merge_statistics"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRole:
    """What makes one server process a worker of N."""

    index: int
    count: int
    peer_addresses: tuple[str, ...]
    """`unix:` addresses of every worker's private socket, this one's included (at `index`)."""

    @property
    def own_address(self) -> str:
        return self.peer_addresses[self.index]

    @property
    def others(self) -> tuple[str, ...]:
        return tuple(a for i, a in enumerate(self.peer_addresses) if i != self.index)


PEER_METADATA: Final = ("edgeperf-worker-statistics", "own")
"""Metadata of a worker's call to a peer: answer with this worker's statistics only, do not ask further."""

_PEER_TIMEOUT_S: Final = 10.0

_PATH: Final = "/inference.GRPCInferenceService/ModelStatistics"


class PeerStatistics:
    """Channels to the other workers (opened on first use, on the event loop that serves)."""

    def __init__(self, addresses: tuple[str, ...], auth_token: str | None) -> None:
        self._addresses = addresses
        self._metadata = (PEER_METADATA,) + (
            (("authorization", f"Bearer {auth_token}"),) if auth_token else ()
        )
        self._channels: list[grpc.aio.Channel] = []
        self._calls: list[grpc.aio.UnaryUnaryMultiCallable] | None = None

    async def close(self) -> None:
        """Close the channels to the peers; idempotent."""
        channels, self._channels, self._calls = self._channels, [], None
        for channel in channels:
            await channel.close()

    @staticmethod
    def asked_by_peer(context: grpc.aio.ServicerContext) -> bool:
        """Whether this call comes from another worker (which wants this worker's own figures)."""
        return PEER_METADATA in tuple(context.invocation_metadata() or ())

    async def summed(
        self, request: pb.ModelStatisticsRequest, own: pb.ModelStatisticsResponse
    ) -> pb.ModelStatisticsResponse:
        """`own` plus every peer's answer to `request`.

        Raises:
            PeerUnavailable: a peer did not answer within 10 s or answered with an error.
        """
        if self._calls is None:
            self._channels = [grpc.aio.insecure_channel(address) for address in self._addresses]
            self._calls = [
                channel.unary_unary(
                    _PATH,
                    request_serializer=pb.ModelStatisticsRequest.SerializeToString,
                    response_deserializer=pb.ModelStatisticsResponse.FromString,
                )
                for channel in self._channels
            ]
        replies = await asyncio.gather(
            *(call(request, metadata=self._metadata, timeout=_PEER_TIMEOUT_S) for call in self._calls),
            return_exceptions=True,
        )
        answers = [own]
        for address, reply in zip(self._addresses, replies, strict=True):
            if isinstance(reply, grpc.aio.AioRpcError):
                raise PeerUnavailable(
                    f"worker at {address} did not answer ModelStatistics: {reply.code().name}: {reply.details()}"
                )
            if isinstance(reply, BaseException):
                raise reply
            answers.append(reply)
        return merge_statistics(answers)


def merge_statistics(responses: Iterable[pb.ModelStatisticsResponse]) -> pb.ModelStatisticsResponse:
    """The sum of several workers' ModelStatistics answers, model by model (Triton's semantics kept:
    counts and durations add, batch statistics add per batch size, last_inference is the latest)."""
    merged = pb.ModelStatisticsResponse()
    index: dict[tuple[str, str], pb.ModelStatistics] = {}
    for response in responses:
        for stats in response.model_stats:
            target = index.get((stats.name, stats.version))
            if target is None:
                target = merged.model_stats.add()
                target.CopyFrom(stats)
                index[(stats.name, stats.version)] = target
                continue
            target.last_inference = max(target.last_inference, stats.last_inference)
            target.inference_count += stats.inference_count
            target.execution_count += stats.execution_count
            for field in pb.InferStatistics.DESCRIPTOR.fields:
                _add(getattr(target.inference_stats, field.name), getattr(stats.inference_stats, field.name))
            by_size = {b.batch_size: b for b in target.batch_stats}
            for batch in stats.batch_stats:
                mine = by_size.get(batch.batch_size)
                if mine is None:
                    by_size[batch.batch_size] = mine = target.batch_stats.add()
                    mine.CopyFrom(batch)
                    continue
                for name in ("compute_input", "compute_infer", "compute_output"):
                    _add(getattr(mine, name), getattr(batch, name))
            ordered = sorted(target.batch_stats, key=lambda b: b.batch_size)
            copies = [pb.InferBatchStatistics.FromString(b.SerializeToString()) for b in ordered]
            del target.batch_stats[:]
            target.batch_stats.extend(copies)
    return merged


def _add(target: pb.StatisticDuration, other: pb.StatisticDuration) -> None:
    target.count += other.count
    target.ns += other.ns
