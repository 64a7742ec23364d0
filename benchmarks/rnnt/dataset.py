"""LibriSpeech dev-clean for RNN-T: the published FLAC + transcript layout, the reference's manifest, synthetic speech.

The reference (mlcommons/inference v2.1 `speech_recognition/rnnt`) converts dev-clean to WAV and lists it
in `dev-clean-wav.json` (`utils/convert_librispeech.py`): entries with `files[0].fname`,
`original_duration` and `transcript`; `QSL.py` keeps utterances of at most 15.0 s in manifest order and
loads each as float32 samples (soundfile; integers scaled to [-1, 1]). Transcripts are normalised by
`parts/manifest.py` (english_cleaners: ASCII folding, lower case, punctuation other than the apostrophe
to spaces, '&' to ' and ', '+' to ' plus ', collapsed whitespace, characters outside the labels dropped).

`LibriSpeech` reads either that manifest (a `.json` path: exact reference order) or the published
layout (`<speaker>/<chapter>/<speaker>-<chapter>.trans.txt` beside `<utterance>.flac`; utterances in
sorted id order). Number and abbreviation expansion are not implemented (LibriSpeech transcripts hold
neither).
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks._common import DatasetError
from edgeperf.benchmarks.base import Sample, Size
from edgeperf.benchmarks.rnnt.spec import LABELS, MAX_DURATION_S, REFERENCE_WER, SAMPLE_RATE_HZ, SPEC

__all__ = [
    "LibriSpeech",
    "LibriSpeechError",
    "Utterance",
    "normalize_transcript",
    "synthetic_waveform",
    "tokens_to_text",
]

INPUT_NAME = SPEC.inputs[0].name
_SYNTHETIC_SEED = 2513

_PUNCTUATION = "".join(ch for ch in string.punctuation if ch not in "+&" and ch not in LABELS)
_TABLE = str.maketrans(_PUNCTUATION, " " * len(_PUNCTUATION))
_ALLOWED = frozenset(LABELS)


class LibriSpeechError(DatasetError):
    """The dataset is not in the published or the reference's layout; the message names the file."""


def normalize_transcript(text: str) -> str:
    """The reference's transcript normalisation (see the module docstring)."""
    # unidecode for accented Latin letters: decompose and drop the combining marks
    ascii_text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    cleaned = ascii_text.lower().translate(_TABLE)
    cleaned = cleaned.replace("&", " and ").replace("+", " plus ")
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    return "".join(ch for ch in cleaned if ch in _ALLOWED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Utterance:
    id: str
    audio_path: Path
    transcript: str
    """Normalised."""
    duration_s: float


def _read_audio(path: Path) -> npt.NDArray[np.float32]:
    import soundfile as sf

    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise LibriSpeechError(f"{path}: cannot read audio ({exc})") from None
    if rate != SAMPLE_RATE_HZ:
        raise LibriSpeechError(f"{path}: {rate} Hz, RNN-T needs {SAMPLE_RATE_HZ} Hz (resample first)")
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim == 2:  # the reference averages channels
        audio = audio.mean(axis=1, dtype=np.float32)
    return audio


def _from_manifest(path: Path) -> list[Utterance]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for entry in entries:
            fname = Path(entry["files"][0]["fname"])
            out.append(
                Utterance(
                    id=fname.stem,
                    audio_path=path.parent / fname,
                    transcript=normalize_transcript(str(entry["transcript"])),
                    duration_s=float(entry["original_duration"]),
                )
            )
        return out
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise LibriSpeechError(f"{path}: not a reference manifest ({exc})") from None


def _from_layout(root: Path) -> list[Utterance]:
    import soundfile as sf

    out = []
    for trans in sorted(root.rglob("*.trans.txt")):
        for line_no, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            utt_id, _, text = line.partition(" ")
            audio = trans.parent / f"{utt_id}.flac"
            if not audio.is_file():
                raise LibriSpeechError(f"{trans}:{line_no}: {audio.name} is missing")
            info = sf.info(str(audio))
            out.append(
                Utterance(
                    id=utt_id,
                    audio_path=audio,
                    transcript=normalize_transcript(text),
                    duration_s=info.frames / info.samplerate,
                )
            )
    if not out:
        raise LibriSpeechError(f"{root}: no *.trans.txt files")
    return sorted(out, key=lambda u: u.id)


class LibriSpeech:
    """dev-clean utterances of at most 15 s; ground truth is the normalised transcript."""

    reference_value = REFERENCE_WER
    """The gate's FP32 reference: the official model's WER on these utterances."""

    def __init__(self, source: Path) -> None:
        everything = _from_manifest(source) if source.suffix == ".json" else _from_layout(source)
        self.utterances: tuple[Utterance, ...] = tuple(
            u for u in everything if u.duration_s <= MAX_DURATION_S
        )
        if not self.utterances:
            raise LibriSpeechError(f"{source}: no utterance of at most {MAX_DURATION_S} s")

    def __len__(self) -> int:
        return len(self.utterances)

    def sample(self, index: int) -> Sample:
        return {INPUT_NAME: _read_audio(self.utterances[index].audio_path)}

    def transcript(self, index: int) -> str:
        return self.utterances[index].transcript


def synthetic_waveform(index: int, size: Size) -> npt.NDArray[np.float32]:
    """A speech-like 16 kHz utterance: voiced syllables of varying pitch and timbre, pauses, a noise floor.

    Full: 1 to 15 s (as dev-clean's range); small: 0.5 to 2 s.
    """
    rng = np.random.default_rng([_SYNTHETIC_SEED, index, 0 if size == "full" else 1])
    low_s, high_s = (1.0, MAX_DURATION_S) if size == "full" else (0.5, 2.0)
    n = int(rng.uniform(low_s, high_s) * SAMPLE_RATE_HZ)
    out = 0.003 * rng.standard_normal(n)
    pos = int(rng.integers(0, SAMPLE_RATE_HZ // 10))
    while pos < n:
        length = int(rng.uniform(0.06, 0.3) * SAMPLE_RATE_HZ)
        t = np.arange(min(length, n - pos)) / SAMPLE_RATE_HZ
        if rng.random() < 0.75:  # voiced: harmonics of a gliding pitch, shaped by two random "formants"
            pitch = rng.uniform(90.0, 250.0) * (1.0 + rng.uniform(-0.2, 0.2) * t / max(t[-1], 1e-3))
            phase = 2.0 * np.pi * np.cumsum(pitch) / SAMPLE_RATE_HZ
            formants = rng.uniform(300.0, 3000.0, size=2)
            seg = np.zeros_like(t)
            for h in range(1, 25):
                freq = h * pitch.mean()
                gain = float(np.exp(-(((freq - formants) / 250.0) ** 2)).sum()) + 0.05
                seg += gain / h * np.sin(h * phase)
        else:  # unvoiced: band of noise
            seg = rng.standard_normal(size=(t.shape[0],)) * 0.5
        envelope = np.sin(np.pi * np.arange(t.shape[0]) / max(t.shape[0], 1)) ** 2
        out[pos : pos + t.shape[0]] += rng.uniform(0.05, 0.3) * seg * envelope
        pos += t.shape[0] + int(rng.uniform(0.0, 0.2) * SAMPLE_RATE_HZ)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def tokens_to_text(tokens: np.ndarray[Any, Any] | list[int]) -> str:
    """Label ids -> characters, as the reference's __gather_predictions does.

    Raises:
        ValueError: an id outside the 28 labels (blank is never emitted).
    """
    ids = [int(t) for t in tokens]
    bad = [t for t in ids if not 0 <= t < len(LABELS)]
    if bad:
        raise ValueError(f"label ids {bad[:5]} are outside 0..{len(LABELS) - 1}")
    return "".join(LABELS[t] for t in ids)
