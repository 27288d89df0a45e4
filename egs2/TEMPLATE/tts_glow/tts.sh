#!/usr/bin/env bash
# The stages of an ESPnet2 TTS recipe for Glow-TTS (the layout of egs2/TEMPLATE/tts1).
#
#   1 data prep (local/data.sh)      6 collect feature statistics
#   2 format wav into dump/raw       7 train (resumes after an interruption)
#   3 speaker ids / embeddings       8 decode: wavs, features, durations, plots, RTF
#   4 remove long/short utterances   9 score: MCD, log-F0 RMSE, CER/WER
#   5 token list                    10 pack the model (zip for ESPnet's model zoo)
#
# Every stage writes to temporary names and leaves a marker when it succeeds (stages 1-6 in
# exp/stages/, 7-10 in the experiment's stages/). A stage whose marker holds the same
# settings (its options and those of the stages before it) is skipped; otherwise it runs
# again. Logs go under exp/.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (tts.sh) $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# General
stage=1                  # first stage to run
stop_stage=10            # last stage to run
ngpu=0                   # GPUs for training and decoding (0: CPU)
nj=2                     # parallel jobs (data prep, statistics, decoding)
python=python
dumpdir=dump
expdir=exp
# Data
local_data_opts=""       # options for local/data.sh
fs=22050
n_fft=1024
n_shift=256
win_length=""            # default: n_fft
min_wav_duration=0.1     # seconds; stage 4 removes shorter utterances
max_wav_duration=20      # seconds; stage 4 removes longer utterances
# Tokens
token_type=phn           # phn | char
g2p=espeak_ng_english_us_vits
cleaner=tacotron
# Training
train_config=conf/train.yaml
tts_exp=""               # default: ${expdir}/tts_<config>_raw_<tokens>
tts_stats_dir=""         # default: ${expdir}/tts_stats_raw_<tokens>
train_args=""            # extra options for espnet2's tts_train, e.g. "--max_epoch 10"
resume=true
# Decoding
inference_config=conf/decode.yaml
inference_model=train.loss.ave.pth
inference_tag=""         # default: <inference config name>_<model name>
inference_args=""        # extra options for tts_inference
vocoder_file=""          # a trained vocoder (.pkl); default: Griffin-Lim
vocoder_config=""        # e.g. conf/griffin_lim.yaml (Griffin-Lim iterations)
# Scoring
score_asr=auto           # auto: CER/WER when an offline ASR is installed; none: skip
# Sets
train_set=tr_no_dev
valid_set=dev
test_sets="dev eval1"
# Packing
packed_model=""          # default: ${tts_exp}/model.zip

OPTIONS="stage stop_stage ngpu nj python dumpdir expdir local_data_opts fs n_fft n_shift
    win_length min_wav_duration max_wav_duration token_type g2p cleaner train_config tts_exp
    tts_stats_dir train_args resume inference_config inference_model inference_tag
    inference_args vocoder_file vocoder_config score_asr train_set valid_set test_sets
    packed_model"

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    echo "Options (default):"
    for o in ${OPTIONS}; do printf '  --%-20s %s\n' "${o}" "${!o}"; done
}
for a in "$@"; do case "${a}" in -h|--help) usage; exit 0 ;; esac; done

. ./path.sh
. ./scripts/options.sh
parse_options "${OPTIONS}" "$@"
[ ${#REST[@]} -eq 0 ] || die "unknown option(s): ${REST[*]} (see --help)"

derive_tts_names "${train_config}"
[ -f "${train_config}" ] || die "--train_config ${train_config} not found"
[ -f "${inference_config}" ] || die "--inference_config ${inference_config} not found"
[ -n "${inference_tag}" ] || inference_tag="$(basename "${inference_config}" .yaml)_${inference_model%.pth}"
[ -n "${packed_model}" ] || packed_model="${tts_exp}/model.zip"
token_list="${dumpdir}/token_list/${token_tag}/tokens.txt"
decode_dir="${tts_exp}/${inference_tag}"
feats_opts=(--feats_extract fbank --feats_extract_conf "fs=${fs}"
    --feats_extract_conf "n_fft=${n_fft}" --feats_extract_conf "hop_length=${n_shift}"
    --feats_extract_conf "win_length=${win_length:-${n_fft}}")
text_opts=(--token_type "${token_type}" --token_list "${token_list}"
    --non_linguistic_symbols none --cleaner "${cleaner}" --g2p "${g2p}")
mkdir -p "${expdir}/stages"

# ---- stage bookkeeping -----------------------------------------------------------------
# A stage's marker holds its signature: its own settings plus the signature recorded by the
# stage before it, so changing an early setting reruns everything after it. Markers of the
# data stages (1-6) are in ${expdir}/stages, those of 7-10 in the experiment's directory.
marker() {
    if [ "$1" -le 6 ]; then echo "${expdir}/stages/$1.done"; else echo "${tts_exp}/stages/$1.done"; fi
}
signature_of() { [ "$1" -ge 1 ] && [ -f "$(marker "$1")" ] && cat "$(marker "$1")" || true; }
stage_sig=""
begin_stage() {  # begin_stage N "title" "settings": true when the stage has to run
    local n=$1 title=$2 settings=$3
    stage_sig="${settings} | $(signature_of $((n - 1)) | md5sum | cut -c1-12)"
    if [ "${n}" -lt "${stage}" ] || [ "${n}" -gt "${stop_stage}" ]; then return 1; fi
    if [ "$(signature_of "${n}")" = "${stage_sig}" ]; then
        log "stage ${n}: ${title}: already done (delete $(marker "${n}") to redo)"
        return 1
    fi
    log "stage ${n}: ${title}"
    stage_start=${SECONDS}
    rm -f "$(marker "${n}")"
    return 0
}
end_stage() {  # end_stage N: record the signature after the stage succeeded
    local m
    m=$(marker "$1")
    mkdir -p "$(dirname "${m}")"
    printf '%s\n' "${stage_sig}" > "${m}.tmp"
    mv "${m}.tmp" "${m}"
    log "stage $1: done in $((SECONDS - stage_start)) s"
}
noise_filter() {  # drop import-time chatter of ESPnet's dependencies (offline nltk, ...)
    sed -u -E '/^\[nltk_data\]|^Failed to import Flash Attention|pkg_resources|^  import pkg_resources/d'
}
checksum() { cat "$@" 2>/dev/null | md5sum | cut -c1-12; }
nlines() { wc -l < "$1" | tr -d ' '; }
split_keys() {  # split_keys FILE N PREFIX: PREFIX.1.scp .. PREFIX.n.scp; echoes n
    local n=$2 total
    total=$(nlines "$1")
    [ "${n}" -le "${total}" ] || n=${total}
    [ "${n}" -ge 1 ] || n=1
    rm -f "$3".*.scp
    awk -v n="${n}" -v p="$3" '{ print > (p "." ((NR - 1) % n + 1) ".scp") }' "$1"
    echo "${n}"
}
run_jobs() {  # run_jobs N LOG_PREFIX CMD...: CMD with JOB replaced by 1..N, in parallel
    local n=$1 logp=$2 pids=() i failed=0
    shift 2
    for i in $(seq 1 "${n}"); do
        "${@//JOB/${i}}" > "${logp}.${i}.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || { failed=1; log "job $((i + 1)) failed: see ${logp}.$((i + 1)).log"; }
    done
    if [ "${failed}" -ne 0 ]; then tail -n 20 "${logp}".*.log >&2; die "jobs failed"; fi
}
run_logged() {  # run_logged LOG CMD...: CMD's output to LOG; on failure show its tail
    local logf=$1
    shift
    if ! "$@" > "${logf}" 2>&1; then
        tail -n 30 "${logf}" >&2
        die "failed: $* (log: ${logf})"
    fi
}

# ---- stages ----------------------------------------------------------------------------
if begin_stage 1 "data preparation (local/data.sh ${local_data_opts})" \
        "${local_data_opts} fs=${fs}"; then
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts} --fs "${fs}" --nj "${nj}" 2>&1 | noise_filter | tee "${expdir}/data_prep.log"
    end_stage 1
fi

if begin_stage 2 "format wav into ${dumpdir}/raw" \
        "fs=${fs} sets=${train_set},${valid_set},${test_sets} $(checksum data/*/wav.scp data/*/text)"; then
    pairs=()
    for dset in "${train_set}" "${valid_set}"; do pairs+=("data/${dset}" "${dumpdir}/raw/org/${dset}"); done
    for dset in ${test_sets}; do pairs+=("data/${dset}" "${dumpdir}/raw/${dset}"); done
    ${python} -m glowtts_recipe.format_data --fs "${fs}" "${pairs[@]}" 2>&1 | noise_filter \
        | tee "${expdir}/format_data.log"
    end_stage 2
fi

if begin_stage 3 "speaker ids / embeddings" "none"; then
    log "stage 3: LJSpeech has one speaker: no speaker ids or embeddings (skipped)"
    end_stage 3
fi

if begin_stage 4 "remove long/short utterances and those with fewer frames than tokens" \
        "${min_wav_duration} ${max_wav_duration} ${n_shift} ${token_tag} ${cleaner} $(checksum "${train_config}")"; then
    ${python} -m glowtts_recipe.filter_data --fs "${fs}" --n_shift "${n_shift}" \
        --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}" \
        --token_type "${token_type}" --g2p "${g2p}" --cleaner "${cleaner}" \
        --train_config "${train_config}" \
        "${dumpdir}/raw/org/${train_set}" "${dumpdir}/raw/${train_set}" \
        "${dumpdir}/raw/org/${valid_set}" "${dumpdir}/raw/${valid_set}" \
        2>&1 | noise_filter | tee "${expdir}/filter_data.log"
    end_stage 4
fi

if begin_stage 5 "token list ${token_list}" "${token_tag} ${cleaner}"; then
    mkdir -p "$(dirname "${token_list}")"
    run_logged "${expdir}/token_list.log" ${python} -m espnet2.bin.tokenize_text \
        --token_type "${token_type}" --input "${dumpdir}/raw/${train_set}/text" \
        --output "${token_list}.tmp" --field 2- --cleaner "${cleaner}" --g2p "${g2p}" \
        --write_vocabulary true --add_symbol "<blank>:0" --add_symbol "<unk>:1" \
        --add_symbol "<sos/eos>:-1"
    mv "${token_list}.tmp" "${token_list}"
    log "stage 5: $(nlines "${token_list}") tokens"
    end_stage 5
fi

data_opts() {  # data_opts train|valid SET
    echo "--$1_data_path_and_name_and_type ${dumpdir}/raw/$2/text,text,text" \
         "--$1_data_path_and_name_and_type ${dumpdir}/raw/$2/wav.scp,speech,sound"
}

if begin_stage 6 "collect feature statistics in ${tts_stats_dir}" \
        "$(checksum "${train_config}") ${n_fft} ${win_length}"; then
    logdir="${tts_stats_dir}/logdir"
    rm -rf "${logdir}" "${tts_stats_dir}/train" "${tts_stats_dir}/valid"
    mkdir -p "${logdir}"
    _nj=$(split_keys "${dumpdir}/raw/${train_set}/wav.scp" "${nj}" "${logdir}/train")
    _nv=$(split_keys "${dumpdir}/raw/${valid_set}/wav.scp" "${_nj}" "${logdir}/valid")
    [ "${_nv}" -eq "${_nj}" ] || die "the valid set has fewer utterances than jobs (${_nv} < ${_nj}): lower --nj"
    # shellcheck disable=SC2046
    run_jobs "${_nj}" "${logdir}/stats" ${python} -m espnet_glowtts.bin.tts_train \
        --collect_stats true --write_collected_feats false --use_preprocessor true \
        "${text_opts[@]}" --normalize none --config "${train_config}" "${feats_opts[@]}" \
        $(data_opts train "${train_set}") $(data_opts valid "${valid_set}") \
        --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/valid.JOB.scp" \
        --output_dir "${logdir}/stats.JOB"
    inputs=()
    for i in $(seq 1 "${_nj}"); do inputs+=(--input_dir "${logdir}/stats.${i}"); done
    run_logged "${logdir}/aggregate.log" ${python} -m espnet2.bin.aggregate_stats_dirs \
        "${inputs[@]}" --output_dir "${tts_stats_dir}"
    for part in train valid; do
        awk -v N="$(nlines "${token_list}")" '{ print $0 "," N }' \
            "${tts_stats_dir}/${part}/text_shape" > "${tts_stats_dir}/${part}/text_shape.${token_type}"
    done
    end_stage 6
fi

if begin_stage 7 "training ${tts_exp}" "$(checksum "${train_config}") ${train_args}"; then
    mkdir -p "${tts_exp}"
    [ -f "${tts_exp}/train.log" ] && mv "${tts_exp}/train.log" "${tts_exp}/train.$(date +%s).log"
    [ -f "${tts_exp}/checkpoint.pth" ] && [ "${resume}" = true ] && \
        log "stage 7: resuming from ${tts_exp}/checkpoint.pth"
    dist_opts=()
    if [ "${ngpu}" -gt 1 ]; then dist_opts=(--multiprocessing_distributed true); fi
    log "stage 7: log: ${tts_exp}/train.log (epoch summaries follow)"
    # shellcheck disable=SC2046,SC2086
    ${python} -m espnet_glowtts.bin.tts_train --use_preprocessor true "${text_opts[@]}" \
        --normalize global_mvn --normalize_conf "stats_file=${tts_stats_dir}/train/feats_stats.npz" \
        --resume "${resume}" --fold_length 150 --fold_length $((800 * n_shift)) \
        --output_dir "${tts_exp}" --config "${train_config}" "${feats_opts[@]}" \
        $(data_opts train "${train_set}") $(data_opts valid "${valid_set}") \
        --train_shape_file "${tts_stats_dir}/train/text_shape.${token_type}" \
        --train_shape_file "${tts_stats_dir}/train/speech_shape" \
        --valid_shape_file "${tts_stats_dir}/valid/text_shape.${token_type}" \
        --valid_shape_file "${tts_stats_dir}/valid/speech_shape" \
        --ngpu "${ngpu}" "${dist_opts[@]+"${dist_opts[@]}"}" ${train_args} \
        > "${tts_exp}/train.log" 2>&1 &
    train_pid=$!
    tail --pid="${train_pid}" -n +1 -F "${tts_exp}/train.log" 2>/dev/null \
        | grep --line-buffered -E "epoch results:|Traceback|^[A-Za-z.]*Error" \
        | sed -u -E 's/^.*INFO: //; s/(epoch results:.{0,200}).*/\1 .../' >&2 &
    if wait "${train_pid}"; then rc=0; else rc=$?; fi
    wait || true
    [ "${rc}" -eq 0 ] || { tail -n 30 "${tts_exp}/train.log" >&2; die "training failed (log: ${tts_exp}/train.log)"; }
    [ -e "${tts_exp}/${inference_model}" ] || die "training ended without ${tts_exp}/${inference_model}"
    end_stage 7
fi

if begin_stage 8 "decoding ${test_sets} into ${decode_dir}" \
        "${inference_model} $(checksum "${inference_config}" ${vocoder_config} ${vocoder_file}) ${inference_args} ${test_sets}"; then
    [ -f "${tts_exp}/config.yaml" ] || die "${tts_exp}/config.yaml not found: train first (stage 7)"
    _ngpu=$(( ngpu > 0 ? 1 : 0 ))
    voc_opts=()
    [ -n "${vocoder_file}" ] && voc_opts+=(--vocoder_file "${vocoder_file}")
    [ -n "${vocoder_config}" ] && voc_opts+=(--vocoder_config "${vocoder_config}")
    # All test sets are decoded in one pass (ESPnet's start-up is slow), then split per set.
    logdir="${decode_dir}/log"
    rm -rf "${decode_dir}"
    mkdir -p "${logdir}"
    for dset in ${test_sets}; do cat "${dumpdir}/raw/${dset}/text"; done | sort -u -k1,1 > "${logdir}/text"
    _nj=$(split_keys "${logdir}/text" "${nj}" "${logdir}/keys")
    log "stage 8: $(nlines "${logdir}/text") utterances, ${_nj} job(s), logs ${logdir}/tts_inference.*.log"
    # shellcheck disable=SC2086
    run_jobs "${_nj}" "${logdir}/tts_inference" ${python} -m espnet_glowtts.bin.tts_inference \
        --ngpu "${_ngpu}" --data_path_and_name_and_type "${logdir}/text,text,text" \
        --key_file "${logdir}/keys.JOB.scp" --model_file "${tts_exp}/${inference_model}" \
        --train_config "${tts_exp}/config.yaml" --output_dir "${logdir}/output.JOB" \
        --config "${inference_config}" "${voc_opts[@]+"${voc_opts[@]}"}" ${inference_args}
    set_dirs=()
    data_dirs=()
    for dset in ${test_sets}; do
        dir="${decode_dir}/${dset}"
        mkdir -p "${dir}"/{norm,denorm,wav,durations,speech_shape}
        keys="${dumpdir}/raw/${dset}/text"
        pick() { awk 'NR == FNR { keep[$1] = 1; next } $1 in keep' "${keys}" - | sort; }
        for part in norm denorm; do
            cat "${logdir}"/output.*/"${part}"/feats.scp | pick > "${dir}/${part}/feats.scp"
        done
        cat "${logdir}"/output.*/durations/durations | pick > "${dir}/durations/durations"
        cat "${logdir}"/output.*/speech_shape/speech_shape | pick > "${dir}/speech_shape/speech_shape"
        while read -r utt _; do
            cp "$(ls "${logdir}"/output.*/wav/"${utt}".wav)" "${dir}/wav/${utt}.wav"
            echo "${utt} ${dir}/wav/${utt}.wav"
        done < "${keys}" > "${dir}/wav/wav.scp"
        set_dirs+=("${dir}")
        data_dirs+=("${dumpdir}/raw/${dset}")
    done
    ${python} -m glowtts_recipe.decode_report --train_config "${tts_exp}/config.yaml" \
        --log_dir "${logdir}" --data_dirs "${data_dirs[@]}" -- "${set_dirs[@]}" 2>&1 \
        | noise_filter | tee "${decode_dir}/report.log" >&2
    find "${logdir}" -path '*/output.*/wav/*.wav' -delete
    end_stage 8
fi

if begin_stage 9 "scoring ${decode_dir}" "${score_asr}"; then
    gl_iters=8
    if [ -z "${vocoder_file}" ] && [ -n "${vocoder_config}" ]; then
        gl_iters=$(awk '/^griffin_lim_iters:/ { print $2 }' "${vocoder_config}")
        gl_iters=${gl_iters:-8}
    fi
    # shellcheck disable=SC2086
    ${python} -m glowtts_recipe.score --train_config "${tts_exp}/config.yaml" \
        --decode_dir "${decode_dir}" --data_root "${dumpdir}/raw" --asr "${score_asr}" \
        --griffin_lim_iters "${gl_iters}" ${test_sets} 2>&1 \
        | noise_filter | tee "${decode_dir}/score.log" >&2
    cat "${decode_dir}/scores.md"
    end_stage 9
fi

if begin_stage 10 "packing ${packed_model}" "${inference_model}"; then
    pack_opts=(--option "${tts_stats_dir}/train/feats_stats.npz")
    [ -d "${tts_exp}/images" ] && pack_opts+=(--option "${tts_exp}/images")
    tmp_zip="$(dirname "${packed_model}")/.tmp.$(basename "${packed_model}")"
    rm -f "${tmp_zip}"
    run_logged "${tts_exp}/pack.log" ${python} -m espnet2.bin.pack tts \
        --train_config "${tts_exp}/config.yaml" --model_file "${tts_exp}/${inference_model}" \
        "${pack_opts[@]}" --outpath "${tmp_zip}"
    mv "${tmp_zip}" "${packed_model}"
    log "stage 10: checking that the zip loads through espnet_model_zoo and speaks"
    run_logged "${tts_exp}/packed_check.log" ${python} -m glowtts_recipe.synthesize \
        --model "${packed_model}" --out "${tts_exp}/packed_check.wav" \
        --text "This voice was packed into a model zip and unpacked again."
    log "stage 10: ${packed_model} ($(du -h "${packed_model}" | cut -f1)); it said: ${tts_exp}/packed_check.wav"
    end_stage 10
fi

# ---- where things are ------------------------------------------------------------------
if [ "${stop_stage}" -ge 8 ]; then
    echo
    echo "Results of ${tts_exp}:"
    for dset in ${test_sets}; do
        [ -d "${decode_dir}/${dset}/wav" ] || continue
        echo "  ${dset}: wavs   ${decode_dir}/${dset}/wav/"
        echo "  ${dset}: plots  ${decode_dir}/${dset}/images/"
        if [ -f "${decode_dir}/${dset}/scores.md" ]; then
            echo "  ${dset}: scores ${decode_dir}/${dset}/scores.json, scores.md"
        fi
    done
    if [ -f "${packed_model}" ]; then echo "  packed model: ${packed_model}"; fi
fi
