import math

import numpy as np
import pytest
import torch

from molssl.audio.mel import LogMelSpectrogram, hz_to_mel, mel_filterbank, mel_to_hz

# librosa 0.11.0: librosa.filters.mel(sr=8000, n_fft=32, n_mels=4, htk=..., norm="slaney"), nonzero columns 1..15
LIBROSA_SLANEY = np.array([
    [1.1372918e-03, 1.9911719e-03, 8.5387990e-04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 1.2631023e-04, 1.1400405e-03, 1.6980426e-03, 8.8300009e-04, 6.7957510e-05, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 1.3976659e-04, 7.0063019e-04, 1.2614938e-03, 9.9121884e-04, 6.4534059e-04, 2.9946235e-04, 0, 0, 0, 0,
     0, 0],
    [0, 0, 0, 0, 0, 0, 1.9549958e-04, 4.0878254e-04, 6.2206545e-04, 7.8907778e-04, 6.5756479e-04, 5.2605185e-04,
     3.9453889e-04, 2.6302593e-04, 1.3151296e-04],
])
LIBROSA_HTK = np.array([
    [1.9278440e-03, 1.5771966e-03, 2.5993539e-04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 6.3196139e-04, 1.5320225e-03, 1.2159932e-03, 6.0099765e-04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 3.3729427e-04, 7.5750973e-04, 1.1616254e-03, 8.7449967e-04, 5.8737397e-04, 3.0024827e-04,
     1.3122582e-05, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 4.4654398e-06, 2.0065330e-04, 3.9684115e-04, 5.9302896e-04, 7.8921678e-04, 6.7025819e-04,
     5.3620659e-04, 4.0215492e-04, 2.6810329e-04, 1.3405165e-04],
])


def test_mel_scales_hit_their_defining_points():
    assert float(hz_to_mel(700.0, "htk")) == pytest.approx(2595 * math.log10(2))
    assert float(hz_to_mel(1000.0, "slaney")) == pytest.approx(15.0)
    assert float(hz_to_mel(6400.0, "slaney")) == pytest.approx(42.0)  # 15 + 27 ln(6.4) / ln(6.4)
    assert float(hz_to_mel(600.0, "slaney")) == pytest.approx(9.0)  # linear part: 3 f / 200
    f = torch.tensor([0.0, 120.0, 999.0, 1000.0, 1001.0, 7600.0])
    for scale in ("htk", "slaney"):
        assert torch.allclose(mel_to_hz(hz_to_mel(f, scale), scale), f.double(), atol=1e-9)
        assert torch.all(torch.diff(hz_to_mel(f, scale)) > 0)


@pytest.mark.parametrize("scale,golden", [("slaney", LIBROSA_SLANEY), ("htk", LIBROSA_HTK)])
def test_filterbank_matches_librosa_reference_values(scale, golden):
    fb = mel_filterbank(32, 8000, 4, scale=scale, norm="slaney").numpy()
    assert fb.shape == (4, 17)
    assert np.allclose(fb[:, 1:16], golden, rtol=1e-5, atol=1e-10)
    assert np.all(fb[:, [0, 16]] == 0)


def naive_filterbank(n_fft, rate, n_mels, f_min, f_max, scale, norm):
    """Direct loop over filters and bins (float64)."""
    mels = np.linspace(float(hz_to_mel(f_min, scale)), float(hz_to_mel(f_max, scale)), n_mels + 2)
    edges = mel_to_hz(torch.tensor(mels), scale).numpy()
    out = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * rate / n_fft
            if lo < f <= c:
                out[m, k] = (f - lo) / (c - lo)
            elif c < f < hi:
                out[m, k] = (hi - f) / (hi - c)
        if norm == "slaney":
            out[m] *= 2.0 / (hi - lo)
    return out


@pytest.mark.parametrize("args", [(400, 16000, 40, 0.0, None, "htk", None),
                                  (256, 8000, 20, 60.0, 3800.0, "slaney", "slaney"),
                                  (512, 22050, 64, 20.0, 8000.0, "htk", "slaney")])
def test_filterbank_matches_a_naive_loop(args):
    n_fft, rate, n_mels, f_min, f_max, scale, norm = args
    expected = naive_filterbank(n_fft, rate, n_mels, f_min, f_max or rate / 2, scale, norm)
    assert np.allclose(mel_filterbank(*args).numpy(), expected, atol=1e-7)


def test_unnormalised_triangles_sum_to_one_between_first_and_last_centre():
    fb = mel_filterbank(1024, 16000, 32, scale="htk")
    centres = mel_to_hz(torch.linspace(0.0, float(hz_to_mel(8000.0)), 34), "htk")[1:-1]
    bins = torch.linspace(0, 8000, 513, dtype=torch.float64)
    inside = (bins >= centres[0]) & (bins <= centres[-1])
    assert torch.allclose(fb.sum(0)[inside].double(), torch.ones(int(inside.sum()), dtype=torch.float64), atol=1e-5)
    assert torch.all(fb.argmax(dim=1) == (centres / (8000 / 512)).round().long())  # peaks sit at the centres


def test_slaney_norm_gives_unit_area_triangles():
    fb = mel_filterbank(8192, 16000, 16, f_min=100.0, scale="slaney", norm="slaney").double()
    areas = torch.trapezoid(fb, dx=16000 / 8192, dim=1)
    assert torch.allclose(areas, torch.ones(16, dtype=torch.float64), rtol=0.01)


def test_filterbank_rejects_bad_arguments():
    with pytest.raises(ValueError, match="f_min < f_max"):
        mel_filterbank(400, 16000, 40, f_min=5000.0, f_max=4000.0)
    with pytest.raises(ValueError, match="mel scale"):
        mel_filterbank(400, 16000, 40, scale="bark")
    with pytest.raises(ValueError, match="norm"):
        mel_filterbank(400, 16000, 40, norm="area")


def naive_log_mel(x, n_fft, hop, fb, offset):
    """Reflect-pad, periodic Hann window, rfft power, mel, log - frame by frame in NumPy."""
    padded = np.pad(x, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = [padded[i:i + n_fft] * window for i in range(0, len(padded) - n_fft + 1, hop)]
    power = np.abs(np.fft.rfft(np.stack(frames), axis=1)) ** 2
    return np.log(power @ fb.T + offset).T


def test_log_mel_matches_a_naive_numpy_stft():
    x = np.random.default_rng(0).standard_normal((2, 1000))
    module = LogMelSpectrogram(8000, n_fft=200, hop_length=80, n_mels=24, standardize=False)
    out = module(torch.tensor(x, dtype=torch.float32))
    assert out.shape == (2, 24, module.num_frames(1000))
    fb = module.filterbank.double().numpy()
    for i in range(2):
        assert np.allclose(out[i].numpy(), naive_log_mel(x[i], 200, 80, fb, 1e-6), atol=1e-4)


def test_a_tone_lights_the_filter_centred_on_its_pitch():
    rate, pitch = 16000, 1000.0
    t = torch.arange(8000) / rate
    module = LogMelSpectrogram(rate, 400, 160, 40, standardize=True)
    spec = module(torch.sin(2 * torch.pi * pitch * t)[None])
    centres = mel_to_hz(torch.linspace(0.0, float(hz_to_mel(8000.0)), 42), "htk")[1:-1]
    assert int(spec[0].mean(dim=1).argmax()) == int((centres - pitch).abs().argmin())
    assert spec.mean().abs() < 1e-4 and (spec.std() - 1).abs() < 1e-3


def test_log_mel_rejects_wrong_shapes():
    module = LogMelSpectrogram(8000, 200, 80, 16)
    with pytest.raises(ValueError, match="batch, samples"):
        module(torch.zeros(100))
    with pytest.raises(ValueError, match="too short"):
        module(torch.zeros(1, 50))
