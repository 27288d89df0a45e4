#!/usr/bin/env bash
# Glow-TTS on LJSpeech (or any corpus in its layout), ESPnet2 style:
#
#   ./run.sh                                   # download LJSpeech, stages 1-8
#   ./run.sh --ljspeech_root /data/LJSpeech-1.1 --ngpu 1
#   ./run.sh --corpus espeak                   # the built-in espeak-ng corpus (make demo)
#   ./run.sh --stage 7 --stop_stage 7          # any range of ESPnet's stages (./tts.sh --help)
#   ./run.sh --stage 7 --vocoder_file /path/to/checkpoint-2500000steps.pkl
#
# The corpus options below go to local/data.sh; every other option goes to tts.sh.
# With --corpus espeak the default training config is the small one for CPUs.
set -euo pipefail
recipe_dir="$(cd "$(dirname "$0")" && pwd)"

# tts.sh options that this corpus sets
fs=22050
n_fft=1024
n_shift=256
train_set=tr_no_dev
valid_set=dev
test_sets="dev eval1"
token_type=phn
g2p=espeak_ng_english_us_vits   # phonemes through espeak-ng (phonemizer); or --token_type char
cleaner=tacotron
train_config=""                 # default: conf/train.yaml, or the mini config for espeak
inference_config=""             # default: conf/decode.yaml, or the mini one for espeak
# Corpus options (local/data.sh)
corpus=ljspeech                 # ljspeech | espeak
ljspeech_root=""                # an existing LJSpeech-1.1 directory (skips the download)
text_list=""                    # espeak: sentence list (default: the built-in one)
max_sentences=0                 # espeak: only the first N sentences (0: all)
num_dev=""                      # utterances in dev (default: 250 LJSpeech, 10 espeak)
num_eval=""                     # utterances in eval1 (default: 250 LJSpeech, 20 espeak)
num_speakers=""                 # espeak: voices (default: 1)
num_languages=""                # espeak: languages (default: 1)
use_sid=false                   # tts.sh's --use_sid; true also makes every corpus line name its speaker
# After tts.sh
compare=false                   # also train ESPnet's Tacotron2/FastSpeech2 and Coqui's GlowTTS, and compare
tacotron2_config=""             # --compare: default conf/tuning/train_tacotron2.yaml (espeak: _mini)
fastspeech2_config=""           # --compare: default conf/tuning/train_fastspeech2.yaml (espeak: _mini)
coqui=auto                      # --compare: Coqui's GlowTTS too (auto: when its venv exists)
coqui_python=""                 # --compare: its venv's python (default: bench/train_step.py's)

OPTIONS="fs n_fft n_shift train_set valid_set test_sets token_type g2p cleaner train_config
    inference_config corpus ljspeech_root text_list max_sentences num_dev num_eval
    num_speakers num_languages use_sid compare tacotron2_config fastspeech2_config coqui
    coqui_python"
. "${recipe_dir}/scripts/options.sh"
for a in "$@"; do
    case "${a}" in
        -h|--help)
            sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
            echo "Options of run.sh (default):"
            print_options "${OPTIONS}"
            echo
            cd "${recipe_dir}" && ./tts.sh --help | sed -n '/^Options of tts.sh/,$p'
            exit 0 ;;
    esac
done
parse_options "${OPTIONS}" "$@"
# Corpus paths are taken relative to where run.sh was called from; the rest (conf/...)
# relative to the recipe directory, as in ESPnet.
[ -n "${text_list}" ] && text_list="$(realpath -m "${text_list}")"
[ -n "${ljspeech_root}" ] && ljspeech_root="$(realpath -m "${ljspeech_root}")"
[ -n "${coqui_python}" ] && coqui_python="$(realpath -ms "${coqui_python}")"  # a venv's link
cd "${recipe_dir}"

# The CPU-sized configs go with the small espeak corpus, the full ones with LJSpeech.
size=""
[ "${corpus}" = espeak ] && size=_mini
if [ -z "${train_config}" ]; then
    train_config=conf/train.yaml   # -> tuning/train_glow_tts.yaml
    [ "${corpus}" = espeak ] && train_config=conf/tuning/train_glow_tts_mini.yaml
fi
if [ -z "${inference_config}" ]; then
    inference_config=conf/decode.yaml
    [ "${corpus}" = espeak ] && inference_config=conf/tuning/decode_glow_tts_mini.yaml
fi
[ -n "${tacotron2_config}" ] || tacotron2_config=conf/tuning/train_tacotron2${size}.yaml
[ -n "${fastspeech2_config}" ] || fastspeech2_config=conf/tuning/train_fastspeech2${size}.yaml
data_opts="--corpus ${corpus}"
[ -n "${ljspeech_root}" ] && data_opts+=" --ljspeech_root ${ljspeech_root}"
[ -n "${text_list}" ] && data_opts+=" --text_list ${text_list}"
[ "${max_sentences}" != 0 ] && data_opts+=" --max_sentences ${max_sentences}"
[ -n "${num_dev}" ] && data_opts+=" --num_dev ${num_dev}"
[ -n "${num_eval}" ] && data_opts+=" --num_eval ${num_eval}"
[ -n "${num_speakers}" ] && data_opts+=" --num_speakers ${num_speakers}"
[ -n "${num_languages}" ] && data_opts+=" --num_languages ${num_languages}"
[ "${use_sid}" = true ] && data_opts+=" --require_speakers true"

./tts.sh \
    --fs "${fs}" --n_fft "${n_fft}" --n_shift "${n_shift}" \
    --token_type "${token_type}" --g2p "${g2p}" --cleaner "${cleaner}" \
    --train_config "${train_config}" --inference_config "${inference_config}" \
    --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" \
    --local_data_opts "${data_opts}" --use_sid "${use_sid}" \
    "${REST[@]+"${REST[@]}"}"

# With --compare true, scripts/compare.sh trains ESPnet's Tacotron2 / FastSpeech2 on the same
# dump/raw, FastSpeech2 with the durations of the trained Glow-TTS (teacher forcing through
# tts.sh, then --teacher_dumpdir), and Coqui's GlowTTS with its own trainer when its venv
# exists (--coqui, --coqui_python). It gets the options used above.
if [ "${compare}" = true ]; then
    scripts/compare.sh --fs "${fs}" --n_fft "${n_fft}" --n_shift "${n_shift}" \
        --token_type "${token_type}" --g2p "${g2p}" --cleaner "${cleaner}" \
        --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" \
        --glow_tts_config "${train_config}" --inference_config "${inference_config}" \
        --tacotron2_config "${tacotron2_config}" --fastspeech2_config "${fastspeech2_config}" \
        --coqui "${coqui}" ${coqui_python:+--coqui_python "${coqui_python}"} \
        --reproduce "./run.sh --corpus ${corpus} --compare true" --use_sid "${use_sid}" \
        "${REST[@]+"${REST[@]}"}"
fi
