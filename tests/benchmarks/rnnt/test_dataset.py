"""LibriSpeech dev-clean: FLAC + transcripts, the reference's manifest, normalisation, synthetic speech."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks.rnnt import BENCHMARK
from edgeperf.benchmarks.rnnt.dataset import LibriSpeech, LibriSpeechError, normalize_transcript
from edgeperf.benchmarks.rnnt.standin import SyntheticSpeech
from tests.benchmarks._checks import synthetic_three
from tests.benchmarks.rnnt._libri import pcm


def test_transcripts_are_normalised_like_the_reference() -> None:
    assert normalize_transcript("GO, DO YOU HEAR?") == "go do you hear"
    assert normalize_transcript("  It's  Smith's; (ok)  ") == "it's smith's ok"
    assert normalize_transcript("Tom & Jerry+Spike") == "tom and jerry plus spike"
    assert normalize_transcript("naïve café") == "naive cafe"


def test_published_layout_loads_flac_and_drops_long_utterances(dev_clean: Path) -> None:
    dataset = LibriSpeech(dev_clean)
    assert len(dataset) == 2  # the 15.01 s utterance is left out (reference: max_duration=15.0)
    assert [u.id for u in dataset.utterances] == ["84-121123-0000", "84-121123-0001"]
    assert dataset.transcript(1) == "but in less than five minutes the staircase groaned"
    audio = dataset.sample(0)["audio"]
    assert audio.dtype == np.float32 and audio.shape == (8000,)
    # FLAC is lossless: the samples are the written int16 values scaled by 1 / 32768
    np.testing.assert_array_equal(audio, pcm("84-121123-0000").astype(np.float32) / 32768.0)
    assert isinstance(BENCHMARK.open_dataset(str(dev_clean)), LibriSpeech)


def test_reference_manifest_keeps_its_order(dev_clean: Path) -> None:
    chapter = "84/121123"
    entries = [
        {
            "files": [{"fname": f"{chapter}/{utt}.flac", "speed": 1}],
            "original_duration": duration,
            "transcript": text,
        }
        for utt, duration, text in (
            ("84-121123-0001", 0.75, "but in less"),
            ("84-121123-0002", 15.01, "too long"),
            ("84-121123-0000", 0.5, "go do you hear"),
        )
    ]
    manifest = dev_clean / "dev-clean-wav.json"
    manifest.write_text(json.dumps(entries))
    dataset = LibriSpeech(manifest)
    assert [u.id for u in dataset.utterances] == ["84-121123-0001", "84-121123-0000"]
    assert dataset.sample(1)["audio"].shape == (8000,)


def test_broken_folders_are_refused(tmp_path: Path, dev_clean: Path) -> None:
    with pytest.raises(LibriSpeechError, match=r"trans\.txt"):
        LibriSpeech(tmp_path / "empty")
    next(dev_clean.rglob("84-121123-0001.flac")).unlink()
    with pytest.raises(LibriSpeechError, match="missing"):
        LibriSpeech(dev_clean)


def test_synthetic_speech_is_deterministic(cache_dir: Path) -> None:
    dataset, audios = synthetic_three(BENCHMARK, SyntheticSpeech, "audio")
    for audio in audios:
        assert audio.dtype == np.float32 and audio.ndim == 1 and 8000 <= audio.size <= 32000
        assert np.abs(audio).max() <= 1.0
    assert len(BENCHMARK.open_dataset("synthetic", size="small")) == 8
    with pytest.raises(IndexError):
        dataset.sample(3)
