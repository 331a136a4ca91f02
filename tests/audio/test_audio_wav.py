import numpy as np
import pytest
from scipy.io import wavfile

from molssl.audio.wav import fit_length, load_wav_folder, read_wav, write_wav


def test_write_read_round_trip_within_16_bit_quantisation(tmp_path):
    x = np.random.default_rng(0).uniform(-0.9, 0.9, 1000).astype(np.float32)
    write_wav(tmp_path / "a.wav", x, 8000)
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and y.dtype == np.float32
    assert np.abs(y - x).max() <= 0.5 / 32768 + 1e-9


def test_read_resamples_and_keeps_the_pitch(tmp_path):
    t = np.arange(16000) / 16000
    write_wav(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 16000)
    y, rate = read_wav(tmp_path / "tone.wav", sample_rate=8000)
    assert rate == 8000 and y.shape == (8000,)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * 8000 / len(y) == pytest.approx(440, abs=2)


def test_stereo_is_averaged_to_mono(tmp_path):
    left = np.full(100, 16384, np.int16)
    right = np.zeros(100, np.int16)
    wavfile.write(tmp_path / "s.wav", 8000, np.stack([left, right], axis=1))
    y, _ = read_wav(tmp_path / "s.wav")
    assert y.shape == (100,) and np.allclose(y, 0.25)


def test_fit_length_centre_crops_and_pads():
    x = np.arange(10, dtype=np.float32)
    assert fit_length(x, 4).tolist() == [3, 4, 5, 6]
    padded = fit_length(x, 14)
    assert padded.shape == (14,) and padded[:2].tolist() == [0, 0] and padded[2:12].tolist() == x.tolist()


def test_load_folder_labels_come_from_sorted_subfolders(tone_folders):
    data = load_wav_folder(tone_folders[0], sample_rate=8000, clip_samples=2000)
    assert data.classes == ["chirp", "high", "low"]
    assert data.clips.shape == (18, 2000) and data.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert all(p.parent.name == data.classes[int(label)] for p, label in zip(data.paths, data.labels))


def test_load_folder_errors_are_specific(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_wav_folder(tmp_path / "missing", 8000, 100)
    (tmp_path / "empty_label").mkdir()
    with pytest.raises(ValueError, match="no subfolder with .wav"):
        load_wav_folder(tmp_path, 8000, 100)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"not a wav")
    with pytest.raises(ValueError, match="not a readable"):
        load_wav_folder(tmp_path, 8000, 100)
