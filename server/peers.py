"""ModelStatistics over every worker of `serve --workers N`: ask the peers on their private sockets, add.

Each worker listens on a private unix socket besides the shared port (server/workers.py). A worker asked
for statistics by a client asks every peer there, marking the call with `PEER_METADATA` so that the peer
answers with its own figures only, and returns the sum (`workers.merge_statistics`).
"""

from __future__ import annotations

import asyncio
from typing import Final

import grpc

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.errors import PeerUnavailable
from edgeperf.server.workers import merge_statistics

__all__ = ["PEER_METADATA", "PeerStatistics"]

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
