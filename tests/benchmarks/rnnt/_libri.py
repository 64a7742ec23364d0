"""The tiny LibriSpeech dev-clean folder the RNN-T tests write: two utterances and one too long."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

TRANSCRIPTS = {
    "84-121123-0000": "GO DO YOU HEAR",
    "84-121123-0001": "BUT IN LESS THAN FIVE MINUTES THE STAIRCASE GROANED",
    "84-121123-0002": "THIS ONE IS LONGER THAN FIFTEEN SECONDS",
}
SAMPLES = {"84-121123-0000": 8000, "84-121123-0001": 12000, "84-121123-0002": 16000 * 15 + 160}


def pcm(utterance: str) -> np.ndarray:
    """The int16 samples written for `utterance`: a 440 Hz tone with a ramp so values are distinct."""
    n = SAMPLES[utterance]
    t = np.arange(n)
    return (8000 * np.sin(2 * np.pi * 440 * t / 16000) + (t % 100)).astype(np.int16)


def write_dev_clean(root: Path) -> Path:
    chapter = root / "LibriSpeech" / "dev-clean" / "84" / "121123"
    chapter.mkdir(parents=True)
    lines = []
    for utterance, text in TRANSCRIPTS.items():
        sf.write(str(chapter / f"{utterance}.flac"), pcm(utterance), 16000, subtype="PCM_16")
        lines.append(f"{utterance} {text}")
    (chapter / "84-121123.trans.txt").write_text("\n".join(lines) + "\n")
    return root / "LibriSpeech" / "dev-clean"
