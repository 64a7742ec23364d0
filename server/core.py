"""The transport-free inference core: the loaded model repository and the `infer` entry point."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from edgeperf.server.config import ModelConfig
from edgeperf.server.stats import ModelStatistics, StatsObserver
from edgeperf.server.types import InferRequest, InferResponse

__all__ = ["CoreState", "InferenceCore", "LoadedModel", "ModelInfo"]


class CoreState(enum.Enum):
    UNOPENED = "UNOPENED"
    OPENED = "OPENED"
    DRAINING = "DRAINING"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """One model of the repository, for RepositoryIndex."""

    name: str
    versions: tuple[str, ...]
    """Served versions, ascending numerically."""
    state: str
    """"READY" or "UNAVAILABLE"."""
    reason: str = ""


class LoadedModel:
    """One served version of a model."""

    name: str
    version: str
    versions: tuple[str, ...]
    """Every served version of this model, ascending."""
    config: ModelConfig


class InferenceCore:
    """Loads a model repository and serves inferences through per-model dynamic batchers.

    An async context manager: entering loads every model (sessions built in threads), warms each up and
    starts the batchers; leaving drains and closes. `infer` is the only hot path.
    """

    def __init__(
        self,
        model_repository: Path,
        *,
        warmup: bool = True,
        observer: StatsObserver | None = None,
    ) -> None:
        raise NotImplementedError

    @property
    def state(self) -> CoreState:
        raise NotImplementedError

    @property
    def live(self) -> bool:
        """True from enter until close."""
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        """True while opened, every model loaded and not draining."""
        raise NotImplementedError

    async def __aenter__(self) -> InferenceCore:
        raise NotImplementedError

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        raise NotImplementedError

    def models(self) -> list[ModelInfo]:
        """Every model in the repository, sorted by name."""
        raise NotImplementedError

    def model(self, name: str, version: str = "") -> LoadedModel:
        """A served model version; "" is the highest served version.

        Raises:
            ModelNotFound: unknown model or version.
        """
        raise NotImplementedError

    async def infer(self, request: InferRequest) -> InferResponse:
        """Validate, queue, batch, run and answer one request.

        Raises:
            ModelNotFound, InvalidInput, Overloaded, QueueTimeout, ShuttingDown, RuntimeFailed.
        """
        raise NotImplementedError

    def statistics(self, name: str = "", version: str = "") -> list[ModelStatistics]:
        """Statistics of one model version, all versions of a model ("" version) or every model ("" name).

        Raises:
            ModelNotFound: unknown model or version.
        """
        raise NotImplementedError

    def queue_depth(self, name: str, version: str = "") -> int:
        """Requests waiting in the model's queue (not yet executing)."""
        raise NotImplementedError

    def stop_accepting(self) -> None:
        """From now on `infer` raises ShuttingDown and `ready` is False."""
        raise NotImplementedError

    async def drain(self, grace_s: float) -> None:
        """Wait up to `grace_s` for requests already accepted to finish."""
        raise NotImplementedError

    async def close(self, grace_s: float = 30.0) -> None:
        """stop_accepting, drain, then stop batchers and release sessions. Idempotent."""
        raise NotImplementedError
