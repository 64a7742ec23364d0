"""The model repository in Triton's layout: `<repo>/<model>/config.(pbtxt|yaml)` and `<repo>/<model>/<n>/`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeperf.server.errors import RepositoryError
from edgeperf.server.model_config import ModelConfig, VersionPolicy, load_model_config

__all__ = ["ModelSource", "scan_repository", "select_versions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSource:
    """A model found in the repository: its config and the version folders its policy serves."""

    name: str
    path: Path
    config: ModelConfig
    versions: tuple[int, ...]
    """Served versions, ascending."""

    def version_dir(self, version: int) -> Path:
        return self.path / str(version)


def select_versions(available: list[int], policy: VersionPolicy) -> tuple[int, ...]:
    """The versions `policy` serves out of `available`, ascending (missing specific ones are not returned)."""
    ordered = sorted(available)
    if policy.kind == "all":
        return tuple(ordered)
    if policy.kind == "specific":
        return tuple(v for v in ordered if v in policy.versions)
    return tuple(ordered[-policy.num_versions :])


def scan_repository(repository: Path) -> list[ModelSource]:
    """Every model of the repository, sorted by name, with configs parsed and versions chosen.

    Folders whose names start with "." or "_" are skipped.

    Raises:
        RepositoryError: the repository is missing, or a model has no servable version or model file.
        ModelConfigError: a config is invalid.
    """
    if not repository.is_dir():
        raise RepositoryError(repository, "<repository>", "model repository folder does not exist", model="-")
    sources = []
    for model_dir in sorted(p for p in repository.iterdir() if p.is_dir() and p.name[0] not in "._"):
        sources.append(_load_source(model_dir))
    return sources


def _load_source(model_dir: Path) -> ModelSource:
    config = load_model_config(model_dir)
    available = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    if not available:
        raise RepositoryError(config.source, "<versions>", f"no numeric version folder in {model_dir}")
    policy = config.version_policy
    versions = select_versions(available, policy)
    missing = sorted(set(policy.versions) - set(available)) if policy.kind == "specific" else []
    if missing:
        raise RepositoryError(
            config.source, "version_policy.specific.versions", f"version folders {missing} do not exist"
        )
    if config.platform == "onnxruntime_onnx":
        for version in versions:
            model_file = model_dir / str(version) / config.default_model_filename
            if not model_file.is_file():
                raise RepositoryError(config.source, "default_model_filename", f"{model_file} does not exist")
    return ModelSource(name=model_dir.name, path=model_dir, config=config, versions=versions)
