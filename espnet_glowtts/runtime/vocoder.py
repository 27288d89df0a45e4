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


# Spectra are frame-major (frames, bins), as the FFTs return them: no transposed
# (strided) arrays between Griffin-Lim's steps.
def stft(y: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """Centred STFT with zero padding (frames, n_fft // 2 + 1)."""
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, n_fft // 2), n_fft)
    return np.fft.rfft(frames[::hop] * window, axis=1)


def istft(
    spec: np.ndarray, n_fft: int, hop: int, window: np.ndarray, inv_norm: np.ndarray
) -> np.ndarray:
    """Inverse of :func:`stft`: overlap-add, times ``inv_norm`` (:func:`inverse_norm`)."""
    y = _overlap_add(np.fft.irfft(spec, n=n_fft, axis=1) * window, hop) * inv_norm
    return y[n_fft // 2 : len(y) - n_fft // 2]


def inverse_norm(frames: int, hop: int, window: np.ndarray) -> np.ndarray:
    """1 / the overlap-added squared window of ``frames`` frames (0 where it is 0): the
    same for every :func:`istft` of that many frames, so Griffin-Lim computes it once.
    """
    norm = _overlap_add(np.broadcast_to(window**2, (frames, len(window))), hop)
    inv = np.zeros_like(norm)
    nonzero = norm > np.finfo(norm.dtype).tiny
    inv[nonzero] = 1.0 / norm[nonzero]
    return inv


def _overlap_add(chunks: np.ndarray, hop: int) -> np.ndarray:
    """Sum of the rows of ``chunks`` (frames, n_fft), row i shifted by i * hop."""
    frames, n_fft = chunks.shape
    # rows cut into hop-sized blocks (zero-padded to whole blocks): one array add per
    # block column, instead of one Python step per frame
    overlap = -(-n_fft // hop)
    blocks = np.pad(chunks, ((0, 0), (0, overlap * hop - n_fft)))
    blocks = blocks.reshape(frames, overlap, hop)
    y = np.zeros((frames + overlap - 1, hop), chunks.dtype)
    for k in range(overlap):
        y[k : k + frames] += blocks[:, k]
    return y.reshape(-1)[: n_fft + hop * (frames - 1)]


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
        # float32 features run in float32 (and complex64): half the FFT work of float64
        mag = np.ascontiguousarray(self.linear(logmel).T)  # (frames, bins)
        window = self.window.astype(mag.dtype)
        tiny = np.finfo(mag.dtype).tiny
        if init_phase == "random":
            angles = np.exp(2j * np.pi * self.rng.random(mag.shape, dtype=mag.dtype))
        else:
            angles = np.ones_like(mag, dtype=np.result_type(mag, np.complex64))
        angles = angles * mag
        inv_norm = inverse_norm(len(mag), self.hop, window)
        previous = None
        for _ in range(self.n_iter):
            wav = istft(angles, self.n_fft, self.hop, window, inv_norm)
            rebuilt = stft(wav, self.n_fft, self.hop, window)
            angles = (
                rebuilt.copy()
                if previous is None
                else rebuilt - (MOMENTUM / (1 + MOMENTUM)) * previous
            )
            # the phase of angles at the target magnitude, in place (no complex temporaries)
            scale = np.abs(angles)
            scale += tiny
            np.divide(mag, scale, out=scale)
            angles *= scale
            previous = rebuilt
        return istft(angles, self.n_fft, self.hop, window, inv_norm).astype(np.float32)
