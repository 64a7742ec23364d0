"""Triton's repository layout and version policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.server.errors import ModelConfigError, RepositoryError
from edgeperf.server.model_config import VersionPolicy
from edgeperf.server.repository import scan_repository, select_versions
from tests.server.core_support import write_tiny


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (VersionPolicy(), (7,)),
        (VersionPolicy(kind="latest", num_versions=2), (3, 7)),
        (VersionPolicy(kind="latest", num_versions=9), (1, 3, 7)),
        (VersionPolicy(kind="all"), (1, 3, 7)),
        (VersionPolicy(kind="specific", versions=(1, 7)), (1, 7)),
    ],
)
def test_version_policies(policy: VersionPolicy, expected: tuple[int, ...]) -> None:
    assert select_versions([7, 1, 3], policy) == expected


def test_scan_finds_models_sorted_with_served_versions(tmp_path: Path) -> None:
    write_tiny(tmp_path, "b", versions=(1, 2, 10))
    write_tiny(tmp_path, "a")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "README.txt").write_text("not a model")
    (tmp_path / "b" / "notes").mkdir()
    sources = scan_repository(tmp_path)
    assert [s.name for s in sources] == ["a", "b"]
    assert sources[1].versions == (10,)
    assert sources[1].version_dir(10) == tmp_path / "b" / "10"


def test_version_policy_in_config_is_applied(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path, "m", versions=(1, 2, 3))
    config = model_dir / "config.pbtxt"
    config.write_text(config.read_text() + "version_policy: { all { } }\n")
    assert scan_repository(tmp_path)[0].versions == (1, 2, 3)
    config.write_text(config.read_text().replace("all { }", "specific { versions: [ 2, 4 ] }"))
    with pytest.raises(RepositoryError, match=r"version folders \[4\] do not exist"):
        scan_repository(tmp_path)


def test_missing_repository(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="does not exist"):
        scan_repository(tmp_path / "nowhere")


def test_model_without_versions(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path, "m")
    (model_dir / "1" / "model.onnx").unlink()
    (model_dir / "1").rmdir()
    with pytest.raises(RepositoryError, match="no numeric version folder"):
        scan_repository(tmp_path)


def test_version_without_model_file(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path, "m", versions=(1, 2))
    (model_dir / "2" / "model.onnx").unlink()
    with pytest.raises(RepositoryError) as info:
        scan_repository(tmp_path)
    assert info.value.field == "default_model_filename"
    assert "2/model.onnx does not exist" in str(info.value)


def test_bad_config_stops_the_scan(tmp_path: Path) -> None:
    write_tiny(tmp_path, "good")
    bad = write_tiny(tmp_path, "bad")
    (bad / "config.pbtxt").write_text("max_batch_size: -3")
    with pytest.raises(ModelConfigError, match="model 'bad'"):
        scan_repository(tmp_path)
