#!/usr/bin/env bash
# Issues 5 and 13: ESPnet's Tacotron2 and FastSpeech2, and Coqui TTS's GlowTTS, against our
# Glow-TTS, on the same wavs, sets, features and training wall-clock budget. FastSpeech2
# learns its durations from the trained Glow-TTS (teacher forcing: MAS on the real
# features), so Glow-TTS is ESPnet's duration teacher and no external aligner is used.
# Coqui's GlowTTS trains with its own trainer, in its own venv (--coqui_python), on the
# same wavs with its own espeak-ng phonemizer, and is decoded into log-mel features that
# go through the same vocoder and scoring as ours.
#
#   ./run.sh --corpus espeak --compare true         # after (or with) the Glow-TTS stages
#   scripts/compare.sh --glow_tts_config conf/tuning/train_glow_tts_mini.yaml \
#       [--budget_minutes auto|N] [--compare_stage 1 --compare_stop_stage 6]
#
# Stages:
#   1 teacher dump: tts.sh stage 7 with --inference_args "--use_teacher_forcing true" decodes
#     the training, validation and test sets with the trained Glow-TTS (MAS on the real
#     features): <tts_exp>/<inference_tag>/<set>/durations, ESPnet's teacher-dump layout
#   2 FastSpeech2 statistics: tts.sh stage 5 with --teacher_dumpdir (features, token-averaged
#     pitch and energy) into <compare_dir>/fs2_stats
#   3 train Tacotron2          } each for the Glow-TTS training time (--budget_minutes auto:
#   4 train FastSpeech2        } its reporter's train + valid time), stopped between epochs;
#                                FastSpeech2 reads the teacher dump as tts.sh stage 6 does
#   5 train Coqui's GlowTTS     } (--coqui auto: when --coqui_python exists), with the
#                                architecture and optimiser of the Glow-TTS config
#                                (glowtts_recipe.coqui_glowtts)
#   6 decode and score: Tacotron2 and FastSpeech2 with tts.sh stage 7; Coqui in its venv,
#     then our vocoder (glowtts_recipe.vocode) and scoring (glowtts_recipe.score): MCD,
#     log-F0 RMSE, CER, DNSMOS, RTF, over --score_seeds draws
#   7 one table (model, params, train steps in budget, RTF, MCD, log-F0 RMSE, CER, DNSMOS
#     OVRL, mean +- spread over draws) into <compare_dir>/results.md and the README.md
# Run.sh passes its corpus/token options and the tts.sh options it was given; tts.sh
# options that do not concern this script (--stage, --stop_stage, ...) are ignored.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (compare.sh) $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# From run.sh
fs=22050
n_fft=1024
n_shift=256
win_length=""
fmin=80
fmax=7600
n_mels=80
token_type=phn
g2p=espeak_ng_english_us_vits
cleaner=tacotron
train_set=tr_no_dev
valid_set=dev
test_sets="dev eval1"
glow_tts_config=conf/train.yaml
# tts.sh options that matter here
ngpu=0
nj=2
python=python
dumpdir=dump
expdir=exp
tts_exp=""                 # the Glow-TTS experiment (default: as tts.sh names it)
tag=""                     # tts.sh's --tag and --train_args of the Glow-TTS run (its name)
train_args=""
tts_stats_dir=""
inference_config=conf/decode.yaml
inference_model=train.loss.ave.pth
inference_tag=""
griffin_lim_config=conf/griffin_lim.yaml
vocoder_file=none
score_seeds=3
score_asr=auto
# This script
compare_stage=1
compare_stop_stage=7
compare_dir=""             # default: ${expdir}/compare
budget_minutes=auto        # auto: the Glow-TTS training time (its reporter's); or minutes
tacotron2_config=conf/tuning/train_tacotron2.yaml
fastspeech2_config=conf/tuning/train_fastspeech2.yaml
coqui=auto                 # Coqui's GlowTTS: auto (when its venv exists) | true | false
coqui_python=""            # its venv's python (default: bench/results/peers/coqui-tts-venv)
compare_set=""             # test set of the table (default: the last of test_sets)
reproduce="./run.sh --compare true"   # the command the table says reproduces it
readme=README.md

OPTIONS="fs n_fft n_shift win_length fmin fmax n_mels token_type g2p cleaner train_set valid_set test_sets
    glow_tts_config ngpu nj python dumpdir expdir tts_exp tag train_args tts_stats_dir inference_config
    inference_model inference_tag griffin_lim_config vocoder_file score_seeds score_asr
    compare_stage compare_stop_stage compare_dir budget_minutes tacotron2_config
    fastspeech2_config coqui coqui_python compare_set reproduce readme"
for a in "$@"; do case "${a}" in -h|--help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac; done

cd "$(dirname "$0")/.."
. ./path.sh
. ./scripts/options.sh
parse_options "${OPTIONS}" "$@"
[ ${#REST[@]} -eq 0 ] || log "ignoring options for tts.sh: ${REST[*]}"

[ "${token_type}" = char ] && g2p=none
ttag=$(token_tag "${token_type}" "${cleaner}" "${g2p}")
[ -n "${tag}" ] || tag=$(tts_tag "${glow_tts_config}" raw "${ttag}" "${train_args}")
[ -n "${tts_exp}" ] || tts_exp="${expdir}/tts_${tag}"
[ -n "${tts_stats_dir}" ] || tts_stats_dir="${expdir}/tts_stats_raw_${ttag}"
[ -n "${compare_dir}" ] || compare_dir="${expdir}/compare"
[ -n "${compare_set}" ] || compare_set="${test_sets##* }"
for f in "${tacotron2_config}" "${fastspeech2_config}" "${inference_config}"; do
    [ -f "${f}" ] || die "${f} not found"
done
[ -n "${inference_tag}" ] || inference_tag=$(inference_tag "${inference_config}" "" "${inference_model}")
glow_decode="${tts_exp}/${inference_tag}"
teacher_args="--use_teacher_forcing true"
teacher_dir="${tts_exp}/$(inference_tag "${inference_config}" "${teacher_args}" "${inference_model}")"
token_list="${dumpdir}/token_list/${ttag}/tokens.txt"
taco_exp="${compare_dir}/tts_$(basename "${tacotron2_config}" .yaml)"
fs2_exp="${compare_dir}/tts_$(basename "${fastspeech2_config}" .yaml)"
fs2_stats="${compare_dir}/fs2_stats"
coqui_exp="${compare_dir}/coqui_glow_tts"
coqui_decode="${coqui_exp}/$(basename "${inference_config}" .yaml)"  # as ESPnet names decodings
[ -n "${coqui_python}" ] || coqui_python="${MAIN_ROOT}/bench/results/peers/coqui-tts-venv/bin/python"
use_coqui=false
case "${coqui}" in
    true) [ -x "${coqui_python}" ] || die "--coqui true: ${coqui_python} not found (python bench/train_step.py --install-peers creates Coqui's venv)"
          use_coqui=true ;;
    auto) if [ -x "${coqui_python}" ]; then use_coqui=true
          else log "Coqui's GlowTTS: skipped, no ${coqui_python} (python bench/train_step.py --install-peers creates it)"; fi ;;
    false) ;;
    *) die "--coqui ${coqui}: expected auto, true or false" ;;
esac
coqui_recipe() {  # Coqui's venv with only this recipe's package on top (no espnet there)
    PYTHONPATH="${MAIN_ROOT}/egs2/TEMPLATE/tts_glow" "${coqui_python}" -m glowtts_recipe.coqui_glowtts "$@"
}
mkdir -p "${compare_dir}"
# The tts.sh options of this comparison (features, tokens, sets, decoding).
tts_opts=(--ngpu "${ngpu}" --nj "${nj}" --inference_nj "${nj}" --python "${python}"
    --dumpdir "${dumpdir}" --expdir "${expdir}" --fs "${fs}" --n_fft "${n_fft}"
    --n_shift "${n_shift}" --fmin "${fmin}" --fmax "${fmax}" --n_mels "${n_mels}" --token_type "${token_type}" --g2p "${g2p}" --cleaner "${cleaner}"
    --train_set "${train_set}" --valid_set "${valid_set}" --test_sets "${test_sets}"
    --inference_config "${inference_config}" --inference_model "${inference_model}"
    --griffin_lim_config "${griffin_lim_config}" --vocoder_file "${vocoder_file}"
    --score_seeds "${score_seeds}" --score_asr "${score_asr}")
[ -n "${win_length}" ] && tts_opts+=(--win_length "${win_length}")

# Training options as tts.sh stage 6 gives them (the budget loop below runs tts_train itself).
feats_opts=(--feats_extract fbank --feats_extract_conf "fs=${fs}"
    --feats_extract_conf "n_fft=${n_fft}" --feats_extract_conf "hop_length=${n_shift}"
    --feats_extract_conf "win_length=${win_length:-${n_fft}}" --feats_extract_conf "fmin=${fmin}"
    --feats_extract_conf "fmax=${fmax}" --feats_extract_conf "n_mels=${n_mels}")
text_opts=(--token_type "${token_type}" --token_list "${token_list}"
    --non_linguistic_symbols none --cleaner "${cleaner}" --g2p "${g2p}")
pitch_opts=(--pitch_extract_conf "fs=${fs}" --pitch_extract_conf "n_fft=${n_fft}"
    --pitch_extract_conf "hop_length=${n_shift}" --energy_extract_conf "fs=${fs}"
    --energy_extract_conf "n_fft=${n_fft}" --energy_extract_conf "hop_length=${n_shift}"
    --energy_extract_conf "win_length=${win_length:-${n_fft}}")
data_opts() {  # data_opts train|valid SET [durations]
    echo "--$1_data_path_and_name_and_type ${dumpdir}/raw/$2/text,text,text" \
         "--$1_data_path_and_name_and_type ${dumpdir}/raw/$2/wav.scp,speech,sound"
    if [ $# -gt 2 ]; then
        echo "--$1_data_path_and_name_and_type ${teacher_dir}/$2/durations,durations,text_int"
    fi
}
in_stages() { [ "$1" -ge "${compare_stage}" ] && [ "$1" -le "${compare_stop_stage}" ]; }

[ -f "${token_list}" ] || die "${token_list} not found: run the Glow-TTS stages (run.sh) first"
[ -f "${tts_exp}/${inference_model}" ] || \
    die "${tts_exp}/${inference_model} not found: train Glow-TTS first (run.sh stage 6)"

# ---- 1. the Glow-TTS teacher dump (tts.sh stage 7, teacher forcing) -------------------
if in_stages 1; then
    log "stage 1: teacher forcing with ${tts_exp} -> ${teacher_dir} (tts.sh stage 7)"
    ./tts.sh "${tts_opts[@]}" --stage 7 --stop_stage 7 --tts_exp "${tts_exp}" \
        --train_config "${glow_tts_config}" --inference_args "${teacher_args}"
fi

# ---- 2. FastSpeech2 statistics (tts.sh stage 5 with the teacher dump) -------------------
if in_stages 2; then
    log "stage 2: FastSpeech2 statistics (features, pitch, energy) in ${fs2_stats} (tts.sh stage 5)"
    ./tts.sh "${tts_opts[@]}" --stage 5 --stop_stage 5 --train_config "${fastspeech2_config}" \
        --teacher_dumpdir "${teacher_dir}" --tts_stats_dir "${fs2_stats}"
fi

# ---- 3-4. training within the Glow-TTS budget ----------------------------------------------
summary() {  # summary EXP epochs|steps|train_seconds (ESPnet's reporter, in checkpoint.pth)
    ${python} -m glowtts_recipe.compare_report summary "$1" --field "$2" 2>/dev/null
}
budget_seconds() {
    if [ "${budget_minutes}" = auto ]; then
        summary "${tts_exp}" train_seconds
    else
        ${python} -c "print(int(float('${budget_minutes}') * 60))"
    fi
}

# The budget counts what ESPnet's reporter counts for the Glow-TTS run (train + valid time
# of the finished epochs, start-up excluded). Training is stopped after the first epoch
# whose total reaches the budget (so it may overrun by less than one short epoch; the
# table shows each model's actual time), then closed at that epoch with --max_epoch so
# that ESPnet averages and links the models as after a complete run.
train_in_budget() {  # NAME EXP CONFIG STATS_DIR [extra tts_train options...]
    local name=$1 exp=$2 config=$3 stats=$4 budget pid rc=0 epochs secs seen="" stopped=0
    shift 4
    if [ -e "${exp}/${inference_model}" ] && [ -f "${exp}/.budget" ]; then
        log "${name}: already trained ($(cat "${exp}/.budget")); delete ${exp} to redo"
        return 0
    fi
    budget=$(budget_seconds)
    [ -n "${budget}" ] && [ "${budget}" -gt 0 ] || die "no training budget (Glow-TTS: ${tts_exp})"
    mkdir -p "${exp}"
    # shellcheck disable=SC2046
    local cmd=(${python} -m espnet_glowtts.bin.tts_train --use_preprocessor true "${text_opts[@]}"
        --normalize global_mvn --normalize_conf "stats_file=${stats}/train/feats_stats.npz"
        --resume true --fold_length 150 --fold_length $((800 * n_shift))
        --output_dir "${exp}" --config "${config}" "${feats_opts[@]}"
        --train_shape_file "${stats}/train/text_shape.${token_type}"
        --train_shape_file "${stats}/train/speech_shape"
        --valid_shape_file "${stats}/valid/text_shape.${token_type}"
        --valid_shape_file "${stats}/valid/speech_shape" --ngpu "${ngpu}" "$@")
    log "${name}: training ${exp} for a budget of ${budget} s of training time (log: ${exp}/train.log)"
    "${cmd[@]}" > "${exp}/train.log" 2>&1 &
    pid=$!
    while kill -0 "${pid}" 2>/dev/null; do
        sleep 5
        local mtime
        mtime=$(stat -c %Y "${exp}/checkpoint.pth" 2>/dev/null || true)
        if [ -n "${mtime}" ] && [ "${mtime}" != "${seen}" ]; then
            sleep 2  # let the save finish
            seen=${mtime}
            secs=$(summary "${exp}" train_seconds || true)
            if [ -n "${secs}" ] && [ "${secs}" -ge "${budget}" ]; then
                stopped=1
                kill -TERM "${pid}" 2>/dev/null || true
            fi
        fi
    done
    wait "${pid}" || rc=$?
    if [ "${stopped}" -eq 0 ] && [ "${rc}" -ne 0 ]; then
        tail -n 30 "${exp}/train.log" >&2; die "${name}: training failed (${exp}/train.log)"
    fi
    epochs=$(summary "${exp}" epochs || true)
    [ -n "${epochs}" ] && [ "${epochs}" -gt 0 ] || die "${name}: no epoch finished"
    if [ "${stopped}" -eq 1 ]; then
        log "${name}: budget reached at epoch ${epochs}; closing the run there"
        "${cmd[@]}" --max_epoch "${epochs}" > "${exp}/train.close.log" 2>&1 \
            || { tail -n 30 "${exp}/train.close.log" >&2; die "${name}: could not close the run"; }
    fi
    [ -e "${exp}/${inference_model}" ] || die "${name}: no ${exp}/${inference_model}"
    echo "budget ${budget} s of training time, stopped after epoch ${epochs}" > "${exp}/.budget"
}

if in_stages 3; then
    log "stage 3: Tacotron2 (${tacotron2_config})"
    # shellcheck disable=SC2046
    train_in_budget Tacotron2 "${taco_exp}" "${tacotron2_config}" "${tts_stats_dir}" \
        $(data_opts train "${train_set}") $(data_opts valid "${valid_set}")
fi
if in_stages 4; then
    log "stage 4: FastSpeech2 (${fastspeech2_config}) with Glow-TTS durations"
    # shellcheck disable=SC2046
    train_in_budget FastSpeech2 "${fs2_exp}" "${fastspeech2_config}" "${fs2_stats}" \
        $(data_opts train "${train_set}" d) $(data_opts valid "${valid_set}" d) "${pitch_opts[@]}" \
        --pitch_normalize_conf "stats_file=${fs2_stats}/train/pitch_stats.npz" \
        --energy_normalize_conf "stats_file=${fs2_stats}/train/energy_stats.npz"
fi

if in_stages 5 && [ "${use_coqui}" = true ]; then
    if [ -f "${coqui_exp}/coqui_run.json" ]; then
        log "Coqui's GlowTTS: already trained (${coqui_exp}/coqui_run.json); delete it to redo"
    else
        budget=$(budget_seconds)
        [ -n "${budget}" ] && [ "${budget}" -gt 0 ] || die "no training budget (Glow-TTS: ${tts_exp})"
        log "stage 5: Coqui's GlowTTS with its own trainer (${coqui_python}) for ${budget} s -> ${coqui_exp} (log: ${coqui_exp}/train.log)"
        rm -rf "${coqui_exp}"/coqui_glow_tts-*  # an interrupted run starts again
        mkdir -p "${coqui_exp}"
        coqui_recipe train --train_dir "${dumpdir}/raw/${train_set}" \
            --valid_dir "${dumpdir}/raw/${valid_set}" --glow_tts_config "${tts_exp}/config.yaml" \
            --budget_seconds "${budget}" --out_dir "${coqui_exp}" > "${coqui_exp}/train.log" 2>&1 \
            || { tail -n 30 "${coqui_exp}/train.log" >&2; die "Coqui's GlowTTS: training failed (${coqui_exp}/train.log)"; }
    fi
fi

# ---- 6. decoding and scoring ------------------------------------------------------------------
if in_stages 6; then
    for pair in "tacotron2:${taco_exp}:${tacotron2_config}" "fastspeech2:${fs2_exp}:${fastspeech2_config}"; do
        IFS=: read -r name exp config <<< "${pair}"
        log "stage 6: decoding and scoring ${name} (tts.sh stage 7, markers in its decoding directory)"
        ./tts.sh "${tts_opts[@]}" --stage 7 --stop_stage 7 --tts_exp "${exp}" \
            --train_config "${config}" --inference_tag "${inference_tag}"
    done
fi
if in_stages 6 && [ "${use_coqui}" = true ]; then
    # Coqui decodes at our decoding config's temperature and speed, in its venv; its
    # features then go through our vocoder and scoring. Each set is redone as a whole.
    noise=$(yaml_get "${inference_config}" noise_scale)
    length=$(yaml_get "${inference_config}" length_scale)
    voc_opts=(--vocoder_file "${vocoder_file}")
    if [ "${vocoder_file}" = none ]; then
        gl_iters=$(yaml_get "${griffin_lim_config}" griffin_lim_iters)
        voc_opts=(--griffin_lim_iters "${gl_iters:-8}")
    fi
    set_dirs=()
    scored=true
    for dset in ${test_sets}; do
        [ "${coqui_decode}/${dset}/scores.json" -nt "${coqui_exp}/coqui_run.json" ] || scored=false
    done
    [ "${scored}" = false ] || log "stage 6: Coqui's GlowTTS: already decoded and scored (${coqui_decode}); delete it to redo"
fi
if in_stages 6 && [ "${use_coqui}" = true ] && [ "${scored}" = false ]; then
    for dset in ${test_sets}; do
        log "stage 6: decoding ${dset} with Coqui's GlowTTS (${score_seeds} draws, noise_scale ${noise:-0.333}) -> ${coqui_decode}/${dset}"
        rm -rf "${coqui_decode:?}/${dset}"
        coqui_recipe synthesize --exp_dir "${coqui_exp}" --data_dir "${dumpdir}/raw/${dset}" \
            --out_dir "${coqui_decode}/${dset}" --seeds "${score_seeds}" \
            --noise_scale "${noise:-0.333}" --length_scale "${length:-1.0}" \
            > "${coqui_exp}/decode.${dset}.log" 2>&1 \
            || { tail -n 30 "${coqui_exp}/decode.${dset}.log" >&2; die "Coqui's GlowTTS: decoding ${dset} failed"; }
        set_dirs+=("${coqui_decode}/${dset}")
    done
    log "stage 6: Coqui's features through $([ "${vocoder_file}" = none ] && echo Griffin-Lim || echo "${vocoder_file}"), then scoring"
    ${python} -m glowtts_recipe.vocode --train_config "${tts_exp}/config.yaml" "${voc_opts[@]}" \
        "${set_dirs[@]}" 2>&1 | sed '/^\[nltk_data\]/d' >&2
    # shellcheck disable=SC2086
    ${python} -m glowtts_recipe.score --train_config "${tts_exp}/config.yaml" \
        --decode_dir "${coqui_decode}" --data_root "${dumpdir}/raw" --asr "${score_asr}" \
        --system_name "Coqui GlowTTS" "${voc_opts[@]}" ${test_sets} 2>&1 | sed '/^\[nltk_data\]/d' | tee "${coqui_decode}/score.log" >&2
fi

# ---- 7. the table ------------------------------------------------------------------------------
if in_stages 7; then
    [ -f "${glow_decode}/${compare_set}/scores.json" ] || \
        die "${glow_decode}/${compare_set}/scores.json not found: run run.sh stage 7 for Glow-TTS"
    hw="$(nproc) CPU core(s)"
    [ "${ngpu}" -gt 0 ] && hw+=" and ${ngpu} GPU(s)"
    budget_text="the Glow-TTS training time"
    [ "${budget_minutes}" = auto ] || budget_text="a fixed budget (--budget_minutes ${budget_minutes})"
    coqui_system=()
    coqui_text=""
    peers="ESPnet's Tacotron2 and FastSpeech2"
    if [ "${use_coqui}" = true ] && [ -f "${coqui_exp}/coqui_run.json" ]; then
        coqui_system=(--system "Coqui GlowTTS, its trainer=${coqui_exp}:${coqui_decode}")
        peers+=" and Coqui's GlowTTS"
        coqui_text=" Coqui TTS's GlowTTS (${coqui_python}) was trained by its own trainer
for the same budget, with our config's architecture and optimiser, Coqui's espeak-ng
phonemizer and mel normalisation on the same mel settings, and decoded through the same
vocoder and scoring."
    fi
    title="### Glow-TTS vs ${peers} (${compare_set}, $(date '+%Y-%m-%d'))

Same dump, token list (${ttag}), features and test set. Tacotron2 and FastSpeech2 were
trained for ${budget_text} ($(awk -v s="$(budget_seconds)" 'BEGIN { printf "%.1f", s / 60 }') min of ESPnet-reported
train + valid time; each stopped at the first epoch that reached it) on ${hw};
FastSpeech2 learnt its durations from Glow-TTS (teacher forcing, MAS, through
\`--teacher_dumpdir\`). Vocoder: ${vocoder_file/none/Griffin-Lim}; scores from stage 7;
RTF as decoded.${coqui_text} Mean +- spread over ${score_seeds} decoding draws. Reproduce:
\`${reproduce}\`."
    ${python} -m glowtts_recipe.compare_report table --set "${compare_set}" \
        --model_file "${inference_model}" --title "${title}" \
        --system "Glow-TTS=${tts_exp}:${glow_decode}" \
        --system "Tacotron2=${taco_exp}:${taco_exp}/${inference_tag}" \
        --system "FastSpeech2 (Glow-TTS durations)=${fs2_exp}:${fs2_exp}/${inference_tag}" \
        "${coqui_system[@]+"${coqui_system[@]}"}" \
        --out "${compare_dir}/results.md" --readme "${readme}" 2>&1 | sed '/^\[nltk_data\]/d'
fi
