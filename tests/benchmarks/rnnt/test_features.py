"""Log-mel features as the reference computes them: filterbank, frame counts, splicing, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from edgeperf.benchmarks.rnnt.features import FEATURES, log_mel_features, mel_filterbank, num_frames


def test_config_is_the_reference_input_eval() -> None:
    assert (FEATURES.win_length, FEATURES.hop_length, FEATURES.n_fft) == (320, 160, 512)
    assert (FEATURES.n_mels, FEATURES.frame_splicing, FEATURES.feature_size) == (80, 3, 240)


def test_mel_filterbank_is_librosa_slaney() -> None:
    fb = mel_filterbank(16000, 512, 80)
    assert fb.shape == (80, 257) and fb.dtype == np.float32 and (fb >= 0).all()
    # Slaney scale: 3 mels per 200 Hz below 1 kHz, 27 mels per factor 6.4 above; 82 points up to 8 kHz.
    top = 15.0 + np.log(8.0) / (np.log(6.4) / 27.0)
    first_centre_hz = top / 81 * 200.0 / 3.0
    # filter 0 rises from 0 Hz to its centre; bin 1 is 31.25 Hz; Slaney norm is 2 / (right - left)
    expected = (31.25 / first_centre_hz) * 2.0 / (2 * first_centre_hz)
    assert fb[0, 1] == pytest.approx(expected, rel=1e-4)
    assert fb[0, 0] == 0.0
    peaks = fb.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > 240


@pytest.mark.parametrize(("samples", "frames"), [(16000, 34), (8000, 17), (8001, 17), (160 * 301, 101)])
def test_frame_count_is_ceil_of_hops_over_splicing(samples: int, frames: int) -> None:
    assert num_frames(samples) == frames
    rng = np.random.default_rng(0)
    features = log_mel_features(rng.standard_normal(samples).astype(np.float32) * 0.1)
    assert features.shape == (frames, 240) and features.dtype == np.float32


def test_features_are_normalised_per_feature() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(24000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 300 * t) * (t > 0.7) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )
    features = log_mel_features(audio)
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(features.std(axis=0, ddof=1), 1.0, atol=1e-3)
    # frame splicing: column blocks hold frames 3t, 3t+1, 3t+2. The tone starts at 0.7 s, the centre of
    # STFT frame 70 (centred frames, 10 ms hop), so in step 23 (frames 69, 70, 71) block 0 is still quiet
    # while blocks 1 and 2 already hold the tone; step 22 (frames 66-68) is quiet and step 24 loud.
    band = fb_argmax_for(300.0)
    assert features[22, [band, 80 + band, 160 + band]].max() < -0.9
    assert features[23, band] < -0.5 and features[23, 80 + band] > 0.5 and features[23, 160 + band] > 0.5
    assert features[24, [band, 80 + band, 160 + band]].min() > 0.5


def fb_argmax_for(hz: float) -> int:
    return int(mel_filterbank(16000, 512, 80)[:, round(hz / 31.25)].argmax())


def test_bad_waveforms_are_refused() -> None:
    with pytest.raises(ValueError, match="1-D"):
        log_mel_features(np.zeros((2, 1000), np.float32))
    with pytest.raises(ValueError, match="more than 256"):
        log_mel_features(np.zeros(100, np.float32))
