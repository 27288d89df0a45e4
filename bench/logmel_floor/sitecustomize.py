"""Issue 14 experiment: floor ESPnet's log10 mel features, as Coqui's AudioProcessor does.

Coqui's GlowTTS defaults clip its normalised dB mel at -4, which is a log10 amplitude of
-4 (20 log10 - ref 20 dB >= min_level_db -100). ESPnet's fbank floors the STFT amplitude at
1e-5, which puts espeak-ng's digital silence at a log10 mel of -6.33, 3.4 units below the
quietest speech. Put this folder first on PYTHONPATH and every feature computation of the
recipe (statistics, training, decoding, the scoring's vocoder ceiling) is floored:

    cd egs2/ljspeech/tts_glow
    PYTHONPATH=../../../bench/logmel_floor LOGMEL_FLOOR=-4 ./run.sh --corpus espeak \
        --stage 5 --stop_stage 7 --tts_stats_dir exp/stats_floor4 --tts_exp exp/e_floor4 \
        --test_sets dev

Not part of the package: it patches espnet2.layers.log_mel.LogMel.forward in-process.
"""

import os

import espnet2.layers.log_mel as log_mel

LOGMEL_FLOOR = float(os.environ.get("LOGMEL_FLOOR", "-4"))
_unfloored_forward = log_mel.LogMel.forward


def _floored_forward(self, feat, ilens=None):
    logmel, lengths = _unfloored_forward(self, feat, ilens)
    return logmel.clamp(min=LOGMEL_FLOOR), lengths


log_mel.LogMel.forward = _floored_forward
