#!/usr/bin/env bash
# Glow-TTS on LJSpeech (or any corpus in its layout), ESPnet2 style:
#
#   ./run.sh                                   # download LJSpeech, stages 1-10
#   ./run.sh --ljspeech_root /data/LJSpeech-1.1 --ngpu 1
#   ./run.sh --corpus espeak                   # the built-in espeak-ng corpus (make demo)
#   ./run.sh --stage 8 --stop_stage 9          # any range of stages; see ./tts.sh --help
#
# Corpus options (for local/data.sh): --corpus ljspeech|espeak, --ljspeech_root DIR,
# --text_list FILE, --max_sentences N, --num_dev N, --num_eval N.
# With --corpus espeak the default training config is the small one for CPUs.
# Every other option goes to tts.sh (--stage, --stop_stage, --ngpu, --nj, --train_config,
# --inference_config, --inference_model, --tts_exp, --token_type, --g2p, --cleaner, ...).
set -euo pipefail
recipe_dir="$(cd "$(dirname "$0")" && pwd)"

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
inference_config=conf/decode.yaml
vocoder_config=conf/griffin_lim.yaml

corpus=ljspeech
ljspeech_root=""
text_list=""
max_sentences=0
num_dev=""
num_eval=""
compare=false                   # also train ESPnet's Tacotron2/FastSpeech2 and compare (below)

. "${recipe_dir}/scripts/options.sh"
parse_options "fs n_fft n_shift train_set valid_set test_sets token_type g2p cleaner
    train_config inference_config vocoder_config corpus ljspeech_root text_list
    max_sentences num_dev num_eval compare" "$@"
# Corpus paths are taken relative to where run.sh was called from; the rest (conf/...)
# relative to the recipe directory, as in ESPnet.
[ -n "${text_list}" ] && text_list="$(realpath -m "${text_list}")"
[ -n "${ljspeech_root}" ] && ljspeech_root="$(realpath -m "${ljspeech_root}")"
cd "${recipe_dir}"

if [ -z "${train_config}" ]; then
    if [ "${corpus}" = espeak ]; then
        train_config=conf/tuning/train_glow_tts_mini.yaml
    else
        train_config=conf/train.yaml
    fi
fi
data_opts="--corpus ${corpus}"
[ -n "${ljspeech_root}" ] && data_opts+=" --ljspeech_root ${ljspeech_root}"
[ -n "${text_list}" ] && data_opts+=" --text_list ${text_list}"
[ "${max_sentences}" != 0 ] && data_opts+=" --max_sentences ${max_sentences}"
[ -n "${num_dev}" ] && data_opts+=" --num_dev ${num_dev}"
[ -n "${num_eval}" ] && data_opts+=" --num_eval ${num_eval}"

./tts.sh \
    --fs "${fs}" --n_fft "${n_fft}" --n_shift "${n_shift}" \
    --token_type "${token_type}" --g2p "${g2p}" --cleaner "${cleaner}" \
    --train_config "${train_config}" --inference_config "${inference_config}" \
    --vocoder_config "${vocoder_config}" \
    --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" \
    --local_data_opts "${data_opts}" \
    "${REST[@]+"${REST[@]}"}"

# With --compare true, scripts/compare.sh trains ESPnet's Tacotron2 / FastSpeech2 on the same
# dump/raw, FastSpeech2 with the durations that the trained Glow-TTS gives by teacher
# forcing. It gets the options used above.
if [ "${compare}" = true ]; then
    scripts/compare.sh --fs "${fs}" --n_fft "${n_fft}" --n_shift "${n_shift}" \
        --token_type "${token_type}" --g2p "${g2p}" --cleaner "${cleaner}" \
        --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}" \
        --glow_tts_config "${train_config}" --inference_config "${inference_config}" \
        --vocoder_config "${vocoder_config}" "${REST[@]+"${REST[@]}"}"
fi
