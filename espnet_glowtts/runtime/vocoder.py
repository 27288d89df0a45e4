"""Griffin-Lim in numpy: ESPnet's default vocoder without librosa.

It computes what ``espnet2.utils.griffin_lim.Spectrogram2Waveform`` computes with librosa:
log10-mel -> linear magnitude through the pseudo-inverse of the Slaney mel basis, then fast
Griffin-Lim (momentum 0.99, random initial phase) with centred, zero-padded STFTs.
"""

from typing import Optional

import numpy as np

EPS = 1e-10  # floor of the linear magnitude, as in ESPnet's logmel2linear
MOMENTUM = 0.99  # librosa.griffinlim's default


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    mels = f / f_sp
    log_region = f >= min_log_hz
    mels = np.where(
        log_region,
        min_log_hz / f_sp + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep,
        mels,
    )
    return mels


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(
        m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m
    )


def mel_basis(fs: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-style mel filterbank (n_mels, n_fft // 2 + 1), as librosa.filters.mel."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / fs)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights.astype(np.float32)


def _window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window, zero-padded to n_fft in the centre."""
    n = np.arange(win_length)
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    return np.pad(win, (left, n_fft - win_length - left))


def stft(y: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """Centred STFT with zero padding (n_fft // 2 + 1, frames)."""
    y = np.pad(y, n_fft // 2)
    frames = 1 + (len(y) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    return np.fft.rfft(y[index] * window, axis=1).T


def istft(spec: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """Inverse of :func:`stft` (overlap-add with squared-window normalisation)."""
    frames = spec.shape[1]
    chunks = np.fft.irfft(spec.T, n=n_fft, axis=1) * window
    length = n_fft + hop * (frames - 1)
    y = np.zeros(length)
    norm = np.zeros(length)
    for i in range(frames):  # n_fft / hop overlapping adds per sample: linear in frames
        y[i * hop : i * hop + n_fft] += chunks[i]
        norm[i * hop : i * hop + n_fft] += window**2
    nonzero = norm > np.finfo(np.float64).tiny
    y[nonzero] /= norm[nonzero]
    return y[n_fft // 2 : length - n_fft // 2]


class GriffinLim:
    """Log10-mel features (T_feats, n_mels) -> waveform (T_wav,).

    Args:
        fs, n_fft, n_shift, win_length, n_mels, fmin, fmax: The feature extractor's settings.
        n_iter (int): Griffin-Lim iterations.
        seed (Optional[int]): Seed of the random initial phase.

    """

    def __init__(
        self,
        fs: int,
        n_fft: int,
        n_shift: int,
        win_length: Optional[int],
        n_mels: int,
        fmin: Optional[float],
        fmax: Optional[float],
        n_iter: int = 32,
        seed: Optional[int] = None,
    ):
        self.n_fft, self.hop, self.n_iter = n_fft, n_shift, n_iter
        self.window = _window(win_length or n_fft, n_fft)
        basis = mel_basis(
            fs,
            n_fft,
            n_mels,
            0.0 if fmin is None else fmin,
            fs / 2.0 if fmax is None else fmax,
        )
        self.inv_basis = np.linalg.pinv(basis)
        self.rng = np.random.default_rng(seed)

    def linear(self, logmel: np.ndarray) -> np.ndarray:
        """Linear magnitude (n_fft // 2 + 1, T_feats) from log10-mel (T_feats, n_mels)."""
        return np.maximum(EPS, self.inv_basis @ np.power(10.0, logmel).T)

    def __call__(
        self, logmel: np.ndarray, init_phase: Optional[str] = "random"
    ) -> np.ndarray:
        mag = self.linear(logmel)
        if init_phase == "random":
            angles = np.exp(2j * np.pi * self.rng.random(mag.shape))
        else:
            angles = np.ones(mag.shape, dtype=np.complex128)
        angles = angles * mag
        previous = None
        for _ in range(self.n_iter):
            rebuilt = stft(
                istft(angles, self.n_fft, self.hop, self.window),
                self.n_fft,
                self.hop,
                self.window,
            )
            angles = (
                rebuilt
                if previous is None
                else rebuilt - (MOMENTUM / (1 + MOMENTUM)) * previous
            )
            angles = angles / (np.abs(angles) + np.finfo(np.float64).tiny) * mag
            previous = rebuilt
        return istft(angles, self.n_fft, self.hop, self.window).astype(np.float32)
