#!/usr/bin/env bash
# The stages of ESPnet2's egs2/TEMPLATE/tts1/tts.sh (ESPnet 202611: same numbers, option
# names, defaults where they suit a CPU-first recipe, and directory names), for Glow-TTS
# or any ESPnet TTS model that trains without a teacher or with --teacher_dumpdir:
#
#   1 data preparation (local/data.sh)
#   2 format wav.scp into dump/raw; 2+: speaker ids (--use_sid), language ids (--use_lid),
#     x-vectors (--use_xvector)
#   3 remove long/short utterances (and those with fewer frames than the model's tokens)
#   4 token list: dump/token_list/<token_type>_<cleaner>_<g2p>/tokens.txt
#   5 collect feature statistics
#   6 train, through espnet2.bin.launch and the job commands of cmd.sh (resumes);
#     6d (ours, Glow-TTS only): refit the duration predictor of ${inference_model} to that
#     model's own alignments (--fit_durations; the unfitted model stays as *.unfitted.pth)
#   7 decode ${test_sets} into ${tts_exp}/<inference_tag>/<set>/{wav,norm,denorm,
#     durations,speech_shape}; 7+ (our addition, its own marker): score the decoded sets
#     (MCD, log-F0 RMSE, CER/WER through an offline ASR; per speaker when there are several)
#   8 pack the model (zip for ESPnet's model zoo), and check that it loads and speaks
#   9, 10 upload (Zenodo, Hugging Face): not supported here (needs the network)
#
# Every stage writes to temporary names and leaves a marker when it succeeds (1-4 in
# ${expdir}/stages, 5 in the statistics directory, 6 and 8 in the experiment, 7 in the
# decoding directory). A stage whose marker holds the same settings (its own and those of
# the stages it builds on) is skipped; otherwise it runs again.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (tts.sh) $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# General configuration
stage=1                  # first stage to run
stop_stage=10000         # last stage to run
skip_data_prep=false     # skip stages 1-4
skip_train=false         # skip stages 5-6
skip_eval=false          # skip stage 7
skip_upload=true         # stage 9 (Zenodo): only true is supported (no network)
skip_upload_hf=true      # stage 10 (Hugging Face): only true is supported
ngpu=0                   # GPUs for training (0: CPU)
num_nodes=1              # nodes for training (>1: cmd_backend=slurm in cmd.sh)
cpu_procs=1              # [ours] with --ngpu 0: train in N local processes (DDP, gloo)
nj=2                     # parallel jobs (statistics)
inference_nj=2           # parallel jobs (decoding)
gpu_inference=false      # decode on a GPU
dumpdir=dump
expdir=exp
python=python
# Data preparation
local_data_opts=""       # options for local/data.sh
# Feature extraction
feats_type=raw           # only raw (audio, features on the fly)
audio_format=wav         # only wav (stage 2 writes 16-bit PCM wav)
min_wav_duration=0.1     # seconds; stage 3 removes shorter utterances
max_wav_duration=20      # seconds; stage 3 removes longer utterances
use_sid=false            # speaker ids as input (needs utt2spk)
use_lid=false            # language ids as input (needs utt2lang)
feats_extract=fbank      # only fbank
feats_normalize=global_mvn
fs=22050
n_fft=1024
n_shift=256
win_length=null          # null: n_fft
fmin=80                  # as ESPnet's LJSpeech recipe and the public LJSpeech vocoders
fmax=7600
n_mels=80
f0min=80                 # pitch range (models with pitch, e.g. FastSpeech2)
f0max=400
# X-vectors
use_xvector=false        # external speaker embeddings as input (alias: --use_spk_embed)
xvector_tool=resemblyzer # resemblyzer | espnet | speechbrain | file (see xvector_opts)
xvector_model=""         # local model of the espnet/speechbrain tools (no download here)
xvector_opts=""          # [ours] more extract_xvector options; tool file: "--embeddings FILE"
# Vocabulary
oov="<unk>"
blank="<blank>"
sos_eos="<sos/eos>"
# Training
train_config=conf/train.yaml
train_args=""            # extra tts_train options (appended to the experiment name)
tag=""                   # experiment name suffix (default: from config, tokens, train_args)
tts_exp=""               # experiment directory (default: ${expdir}/tts_${tag})
tts_stats_dir=""         # default: ${expdir}/tts_stats_raw_<tokens>
pretrained_model=""      # [ours] initialise from this .pth (fine-tuning: a new experiment)
num_splits=1             # only 1
teacher_dumpdir=""       # decoding directory of a teacher (durations), e.g. for FastSpeech2
write_collected_feats=false
tts_task=tts             # only tts
# Decoding
inference_config=conf/decode.yaml
inference_args=""        # extra tts_inference options (appended to the decoding name)
inference_tag=""         # decoding directory name (default: from config, args, model)
inference_model=train.loss.ave.pth
fit_durations=true       # [ours] stage 6d: fit the duration predictor to the final alignments
fit_durations_args=""    # [ours] more espnet_glowtts.bin.fit_durations options (--steps ...)
vocoder_file=none        # a trained vocoder (.pkl/.pth, its config.yml beside it); none: Griffin-Lim
griffin_lim_config=conf/griffin_lim.yaml  # [ours] Griffin-Lim settings (vocoder_file=none)
download_model=""        # not supported (needs the network)
score_seeds=3            # [ours] decoding draws (seeds 1..N) that the scores average over
score_asr=auto           # [ours] auto: CER/WER when an offline ASR is installed; none: skip
# Sets and tokens
train_set=tr_no_dev
valid_set=dev
test_sets="dev eval1"
srctexts=""              # texts for the token list (default: the training set's)
nlsyms_txt=none
token_type=phn           # phn | char
cleaner=tacotron
g2p=espeak_ng_english_us_vits
lang=noinfo
text_fold_length=150
speech_fold_length=800
hf_repo=""               # not supported (needs the network)
packed_model=""          # default: ${tts_exp}/<exp name>_<model>.zip (as ESPnet)
export_onnx=false        # [ours] stage 8 also exports ONNX graphs + config to ${tts_exp}/onnx

OPTIONS="stage stop_stage skip_data_prep skip_train skip_eval skip_upload skip_upload_hf
    ngpu num_nodes cpu_procs nj inference_nj gpu_inference dumpdir expdir python
    local_data_opts feats_type audio_format min_wav_duration max_wav_duration use_sid
    use_lid feats_extract feats_normalize fs n_fft n_shift win_length fmin fmax n_mels
    f0min f0max use_xvector xvector_tool xvector_model xvector_opts oov blank sos_eos
    train_config train_args tag tts_exp tts_stats_dir pretrained_model num_splits
    teacher_dumpdir write_collected_feats tts_task inference_config inference_args
    inference_tag inference_model fit_durations fit_durations_args vocoder_file griffin_lim_config download_model
    score_seeds score_asr train_set valid_set test_sets srctexts nlsyms_txt token_type
    cleaner g2p lang text_fold_length speech_fold_length hf_repo packed_model export_onnx"

. ./scripts/options.sh
usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    echo "Options of tts.sh (default):"
    print_options "${OPTIONS}"
}
for a in "$@"; do case "${a}" in -h|--help) usage; exit 0 ;; esac; done

# ESPnet's --use_spk_embed is our --use_xvector.
args=()
for a in "$@"; do
    case "${a}" in --use_spk_embed|--use-spk-embed) args+=(--use_xvector) ;; --use_spk_embed=*) args+=("--use_xvector=${a#*=}") ;; *) args+=("${a}") ;; esac
done
parse_options "${OPTIONS}" "${args[@]+"${args[@]}"}"
[ ${#REST[@]} -eq 0 ] || die "unknown option ${REST[0]} (see ./tts.sh --help)"
log "$0 $*"

. ./path.sh
. ./cmd.sh

# ---- options ESPnet has and this recipe does not support ---------------------------------
unsupported() { die "--$1 $2 is not supported here: $3"; }
[ "${feats_type}" = raw ] || unsupported feats_type "${feats_type}" "only raw (features on the fly)"
[ "${audio_format}" = wav ] || unsupported audio_format "${audio_format}" "stage 2 writes 16-bit wav"
[ "${feats_extract}" = fbank ] || unsupported feats_extract "${feats_extract}" "only fbank"
[ "${num_splits}" = 1 ] || unsupported num_splits "${num_splits}" "only 1"
[ "${tts_task}" = tts ] || unsupported tts_task "${tts_task}" "only tts (no GAN-TTS)"
[ -z "${download_model}" ] || unsupported download_model "${download_model}" "no network; unzip a model and give --tts_exp and --inference_model"
[ "${skip_upload}" = true ] || unsupported skip_upload "${skip_upload}" "uploading needs the network (stage 9)"
[ "${skip_upload_hf}" = true ] || unsupported skip_upload_hf "${skip_upload_hf}" "uploading needs the network (stage 10)"
[ -z "${hf_repo}" ] || unsupported hf_repo "${hf_repo}" "uploading needs the network (stage 10)"
[ "${xvector_tool}" != kaldi ] || unsupported xvector_tool kaldi "needs Kaldi; use resemblyzer, espnet, speechbrain or file"
for b in skip_data_prep skip_train skip_eval use_sid use_lid use_xvector gpu_inference write_collected_feats; do
    case "${!b}" in true|false) ;; *) die "--${b} must be true or false, got '${!b}'" ;; esac
done
case "${token_type}" in phn|char) ;; *) die "--token_type must be phn or char, got '${token_type}'" ;; esac
[ "${token_type}" = char ] && g2p=none
if [ "${cpu_procs}" -gt 1 ] && [ "${ngpu}" -gt 0 ]; then die "--cpu_procs ${cpu_procs} is for CPU training (--ngpu 0)"; fi
if [ "${num_nodes}" -gt 1 ] && [ "${cmd_backend}" = local ]; then
    die "--num_nodes ${num_nodes} needs a cluster: export cmd_backend=slurm (cmd.sh)"
fi
[ "${win_length}" = null ] && win_length=${n_fft}
[ -f "${train_config}" ] || die "--train_config ${train_config} not found"
[ -f "${inference_config}" ] || die "--inference_config ${inference_config} not found"
if [ "${vocoder_file}" != none ]; then
    [ -f "${vocoder_file}" ] || die "--vocoder_file ${vocoder_file} not found"
fi
if [ -n "${pretrained_model}" ]; then
    [ -f "${pretrained_model}" ] || die "--pretrained_model ${pretrained_model} not found"
    train_args="--init_param ${pretrained_model} ${train_args}"
fi
teacher_forcing=false
if [[ " ${inference_args} " =~ --use_teacher_forcing[\ =](true|True) ]]; then teacher_forcing=true; fi

# ---- names, as ESPnet's tts.sh gives them ------------------------------------------------
data_feats="${dumpdir}/raw"
ttag=$(token_tag "${token_type}" "${cleaner}" "${g2p}")
token_list="${dumpdir}/token_list/${ttag}/tokens.txt"
[ -n "${tag}" ] || tag=$(tts_tag "${train_config}" "${feats_type}" "${ttag}" "${train_args}")
[ -n "${inference_tag}" ] || inference_tag=$(inference_tag "${inference_config}" "${inference_args}" "${inference_model}")
[ -n "${tts_stats_dir}" ] || tts_stats_dir="${expdir}/tts_stats_${feats_type}_${ttag}"
[ -n "${tts_exp}" ] || tts_exp="${expdir}/tts_${tag}"
[ -n "${packed_model}" ] || packed_model="${tts_exp}/${tts_exp##*/}_${inference_model%.*}.zip"
[ -n "${srctexts}" ] || srctexts="${data_feats}/${train_set}/text"
decode_dir="${tts_exp}/${inference_tag}"
decode_sets="${test_sets}"
if [ "${teacher_forcing}" = true ]; then
    # A teacher's durations are for training a student: decode its training data too.
    for s in "${valid_set}" "${train_set}"; do
        [[ " ${decode_sets} " == *" ${s} "* ]] || decode_sets="${s} ${decode_sets}"
    done
fi
feats_opts=(--feats_extract "${feats_extract}" --feats_extract_conf "n_fft=${n_fft}"
    --feats_extract_conf "hop_length=${n_shift}" --feats_extract_conf "win_length=${win_length}"
    --feats_extract_conf "fs=${fs}" --feats_extract_conf "fmin=${fmin}"
    --feats_extract_conf "fmax=${fmax}" --feats_extract_conf "n_mels=${n_mels}")
# Passed always, as ESPnet does; used only by models with pitch/energy (FastSpeech2).
pitch_opts=(--pitch_extract_conf "fs=${fs}" --pitch_extract_conf "n_fft=${n_fft}"
    --pitch_extract_conf "hop_length=${n_shift}" --pitch_extract_conf "f0max=${f0max}"
    --pitch_extract_conf "f0min=${f0min}" --energy_extract_conf "fs=${fs}"
    --energy_extract_conf "n_fft=${n_fft}" --energy_extract_conf "hop_length=${n_shift}"
    --energy_extract_conf "win_length=${win_length}")
text_opts=(--token_type "${token_type}" --token_list "${token_list}"
    --non_linguistic_symbols "${nlsyms_txt}" --cleaner "${cleaner}" --g2p "${g2p}")
mkdir -p "${expdir}/stages"

# ---- stage bookkeeping -----------------------------------------------------------------
# A stage's marker holds its signature: its own settings plus the signature of the stage
# it builds on, so that changing an early setting reruns everything after it.
marker() {
    case "$1" in
        [1-4]) echo "${expdir}/stages/$1.done" ;;
        5) echo "${tts_stats_dir}/stages/5.done" ;;
        6|6d|8) echo "${tts_exp}/stages/$1.done" ;;
        7) echo "${decode_dir}/stages/7.done" ;;
        7s) echo "${decode_dir}/stages/7.score.done" ;;
        8x) echo "${tts_exp}/stages/8.export.done" ;;
    esac
}
signature_of() { [ -n "$1" ] && [ -f "$(marker "$1")" ] && cat "$(marker "$1")" || true; }
stage_sig=""
begin_stage() {  # begin_stage ID AFTER SKIP "title" "settings": true when the stage has to run
    local id=$1 after=$2 skip=$3 title=$4 settings=$5 n=${1%%[a-z]*}
    stage_sig="${settings} | $(signature_of "${after}" | md5sum | cut -c1-12)"
    if [ "${n}" -lt "${stage}" ] || [ "${n}" -gt "${stop_stage}" ] || [ "${skip}" = true ]; then return 1; fi
    if [ "$(signature_of "${id}")" = "${stage_sig}" ]; then
        log "stage ${id}: ${title}: already done (delete $(marker "${id}") to redo)"
        return 1
    fi
    log "stage ${id}: ${title}"
    stage_start=${SECONDS}
    rm -f "$(marker "${id}")"
    return 0
}
end_stage() {  # end_stage ID: record the signature after the stage succeeded
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
min() { local a=$1 b; for b in "$@"; do [ "${b}" -lt "${a}" ] && a=${b}; done; echo "${a}"; }
split_keys() {  # split_keys FILE N PREFIX: PREFIX.1.scp .. PREFIX.N.scp (N <= lines)
    rm -f "$3".*.scp
    awk -v n="$2" -v p="$3" '{ print > (p "." ((NR - 1) % n + 1) ".scp") }' "$1"
}
run_logged() {  # run_logged LOG CMD...: CMD's output to LOG; on failure show its tail
    local logf=$1
    shift
    if ! "$@" > "${logf}" 2>&1; then
        tail -n 30 "${logf}" >&2
        die "failed: $* (log: ${logf})"
    fi
}
jobs_failed() {  # jobs_failed LOG_GLOB...: show the failed job logs, then stop
    local f
    for f in $(grep -L "^# Ended (code 0)" "$@" 2>/dev/null); do tail -n 20 "${f}" >&2; done
    die "jobs failed (logs: $*)"
}
set_dir_of() {  # set_dir_of SET: dump/raw/SET, or dump/raw/org/SET before stage 3
    if [ "$1" = "${train_set}" ] || [ "$1" = "${valid_set}" ]; then echo "${data_feats}/org/$1"; else echo "${data_feats}/$1"; fi
}
# The inputs beside text and speech, as ESPnet passes them: speaker ids, language ids,
# x-vectors, teacher durations. `extra_inputs PREFIX DATA_DIR SET` for train_/valid_/"".
extra_inputs() {
    local p="--$1data_path_and_name_and_type"
    [ "${use_sid}" = true ] && echo "${p} $2/utt2sid,sids,text_int"
    [ "${use_lid}" = true ] && echo "${p} $2/utt2lid,lids,text_int"
    [ "${use_xvector}" = true ] && echo "${p} ${dumpdir}/xvector/$3/xvector.scp,spembs,kaldi_ark"
    [ -n "${teacher_dumpdir}" ] && echo "${p} ${teacher_dumpdir}/$3/durations,durations,text_int"
    true
}
# `--tts_conf spks=N` / `langs=N` / `spk_embed_dim=D` from the data, unless the config sets
# them, so that a multi-speaker run needs no config edit.
model_size_opts() {
    local d="${data_feats}/org/${train_set}"
    if [ "${use_sid}" = true ] && [ -z "$(yaml_get "${train_config}" tts_conf.spks)" ]; then
        echo "--tts_conf spks=$(nlines "${d}/spk2sid")"
    fi
    if [ "${use_lid}" = true ] && [ -z "$(yaml_get "${train_config}" tts_conf.langs)" ]; then
        echo "--tts_conf langs=$(nlines "${d}/lang2lid")"
    fi
    if [ "${use_xvector}" = true ] && [ -z "$(yaml_get "${train_config}" tts_conf.spk_embed_dim)" ]; then
        echo "--tts_conf spk_embed_dim=$(${python} -c "import kaldiio, sys
for _, v in kaldiio.load_scp_sequential(sys.argv[1]): print(v.shape[-1]); break" \
            "${dumpdir}/xvector/${train_set}/xvector.scp")"
    fi
    true
}
check_teacher() {  # the teacher dump must hold durations for exactly the utterances of SETS
    local s
    for s in "$@"; do
        ${python} -m glowtts_recipe.decode_dirs check_teacher \
            "${teacher_dumpdir}/${s}/durations" "${data_feats}/${s}/text" || exit 1
    done
}

# ---- stages ----------------------------------------------------------------------------
if begin_stage 1 "" "${skip_data_prep}" "data preparation (local/data.sh ${local_data_opts})" \
        "${local_data_opts} fs=${fs}"; then
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts} --fs "${fs}" --nj "${nj}" 2>&1 | noise_filter | tee "${expdir}/data_prep.log"
    end_stage 1
fi

all_sets=$(echo "${train_set} ${valid_set} ${test_sets}" | tr ' ' '\n' | awk 'NF && !seen[$1]++' | tr '\n' ' ')
if begin_stage 2 1 "${skip_data_prep}" "format wav.scp: data/ -> ${data_feats}" \
        "fs=${fs} sets=${all_sets} sid=${use_sid} lid=${use_lid} xvector=${use_xvector}:${xvector_tool}:${xvector_model}:${xvector_opts} $(checksum data/*/wav.scp data/*/text data/*/utt2spk data/*/utt2lang)"; then
    pairs=()
    for dset in ${all_sets}; do pairs+=("data/${dset}" "$(set_dir_of "${dset}")"); done
    ${python} -m glowtts_recipe.format_data --fs "${fs}" "${pairs[@]}" 2>&1 | noise_filter \
        | tee "${expdir}/format_data.log"
    for dset in ${all_sets}; do  # as Kaldi's copy_data_dir.sh: utt2lang goes along
        if [ -f "data/${dset}/utt2lang" ]; then cp "data/${dset}/utt2lang" "$(set_dir_of "${dset}")/utt2lang"; fi
    done
    # Ids as ESPnet numbers them: 0 is <unk>, then the training set's speakers (languages)
    # in sorted order from 1. An utterance of another set whose speaker (language) the
    # training set lacks is an error: the model has no embedding for it.
    make_ids() {  # make_ids UTT2X X2ID UTT2ID WHAT OPTION: X2ID of the training set, UTT2ID per set
        local dset d train_d
        train_d="$(set_dir_of "${train_set}")"
        [ -f "${train_d}/$1" ] || die "$5 true needs data/${train_set}/$1"
        { echo "<unk> 0"; cut -d ' ' -f 2 "${train_d}/$1" | sort -u | awk '{ print $1 " " NR }'; } \
            > "${train_d}/$2"
        for dset in ${all_sets}; do
            d="$(set_dir_of "${dset}")"
            [ -f "${d}/$1" ] || die "$5 true needs data/${dset}/$1"
            awk -v map="${train_d}/$2" -v f="${d}/$1" -v what="$4" '
                NR == FNR { id[$1] = $2; next }
                !($2 in id) { printf "ERROR: %s: %s %s of utterance %s is not in the training set (%s)\n",
                              f, what, $2, $1, map > "/dev/stderr"; exit 3 }
                { print $1 " " id[$2] }' "${train_d}/$2" "${d}/$1" > "${d}/$3.tmp" || exit 1
            mv "${d}/$3.tmp" "${d}/$3"
        done
        log "stage 2+: $4 ids: $(($(nlines "${train_d}/$2") - 1)) in ${train_d}/$2, $3 per set"
    }
    if [ "${use_sid}" = true ]; then make_ids utt2spk spk2sid utt2sid speaker --use_sid; fi
    if [ "${use_lid}" = true ]; then make_ids utt2lang lang2lid utt2lid language --use_lid; fi
    if [ "${use_xvector}" = true ]; then
        ${python} -c "import glowtts_recipe.extract_xvector" 2>/dev/null \
            || die "--use_xvector true needs glowtts_recipe.extract_xvector (not installed)"
        for dset in ${all_sets}; do
            log "stage 2+: x-vectors (${xvector_tool}): ${dset} -> ${dumpdir}/xvector/${dset}"
            _opts=()
            [ -n "${xvector_model}" ] && _opts+=(--model "${xvector_model}")
            # shellcheck disable=SC2086
            run_logged "${expdir}/xvector.${dset}.log" ${python} -m glowtts_recipe.extract_xvector \
                --tool "${xvector_tool}" "${_opts[@]+"${_opts[@]}"}" ${xvector_opts} \
                "$(set_dir_of "${dset}")" "${dumpdir}/xvector/${dset}"
        done
    fi
    end_stage 2
fi

if begin_stage 3 2 "${skip_data_prep}" "remove long/short utterances: ${data_feats}/org -> ${data_feats}" \
        "${min_wav_duration} ${max_wav_duration} ${n_shift} ${ttag} $(checksum "${train_config}")"; then
    ${python} -m glowtts_recipe.filter_data --fs "${fs}" --n_shift "${n_shift}" \
        --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}" \
        --token_type "${token_type}" --g2p "${g2p}" --cleaner "${cleaner}" \
        --train_config "${train_config}" \
        "${data_feats}/org/${train_set}" "${data_feats}/${train_set}" \
        "${data_feats}/org/${valid_set}" "${data_feats}/${valid_set}" \
        2>&1 | noise_filter | tee "${expdir}/filter_data.log"
    # What ESPnet's stage 3 keeps beside the audio: ids and x-vectors of the kept utterances.
    for dset in "${train_set}" "${valid_set}"; do
        for f in utt2sid utt2lid utt2lang; do
            [ -f "${data_feats}/org/${dset}/${f}" ] || continue
            awk 'NR == FNR { keep[$1] = 1; next } $1 in keep' "${data_feats}/${dset}/wav.scp" \
                "${data_feats}/org/${dset}/${f}" > "${data_feats}/${dset}/${f}"
        done
        if [ "${use_xvector}" = true ]; then
            x="${dumpdir}/xvector/${dset}"
            [ -f "${x}/xvector.scp.bak" ] || cp "${x}/xvector.scp" "${x}/xvector.scp.bak"
            awk 'NR == FNR { keep[$1] = 1; next } $1 in keep' "${data_feats}/${dset}/wav.scp" \
                "${x}/xvector.scp.bak" > "${x}/xvector.scp.tmp"
            mv "${x}/xvector.scp.tmp" "${x}/xvector.scp"
        fi
    done
    end_stage 3
fi

if begin_stage 4 3 "${skip_data_prep}" "token list ${token_list} from ${srctexts}" \
        "${ttag} ${oov} ${blank} ${sos_eos} ${nlsyms_txt} ${srctexts}"; then
    mkdir -p "$(dirname "${token_list}")"
    # shellcheck disable=SC2086
    cat ${srctexts} | awk '{ if (NF != 1) print $0 }' > "${data_feats}/srctexts"
    run_logged "${expdir}/token_list.log" ${python} -m espnet2.bin.tokenize_text \
        --token_type "${token_type}" --input "${data_feats}/srctexts" \
        --output "${token_list}.tmp" --field 2- --cleaner "${cleaner}" --g2p "${g2p}" \
        --non_linguistic_symbols "${nlsyms_txt}" --write_vocabulary true \
        --add_symbol "${blank}:0" --add_symbol "${oov}:1" --add_symbol "${sos_eos}:-1"
    mv "${token_list}.tmp" "${token_list}"
    log "stage 4: $(nlines "${token_list}") tokens"
    end_stage 4
fi

data_opts() {  # data_opts train|valid SET: text and speech
    echo "--$1_data_path_and_name_and_type ${data_feats}/$2/text,text,text" \
         "--$1_data_path_and_name_and_type ${data_feats}/$2/wav.scp,speech,sound"
}

if begin_stage 5 4 "${skip_train}" "collect statistics in ${tts_stats_dir}" \
        "$(checksum "${train_config}") ${feats_opts[*]} ${pitch_opts[*]} ${teacher_dumpdir} ${write_collected_feats} ${train_args}"; then
    [ -z "${teacher_dumpdir}" ] || check_teacher "${train_set}" "${valid_set}"
    logdir="${tts_stats_dir}/logdir"
    rm -rf "${logdir}" "${tts_stats_dir}/train" "${tts_stats_dir}/valid"
    mkdir -p "${logdir}"
    _nj=$(min "${nj}" "$(nlines "${data_feats}/${train_set}/wav.scp")" "$(nlines "${data_feats}/${valid_set}/wav.scp")")
    split_keys "${data_feats}/${train_set}/wav.scp" "${_nj}" "${logdir}/train"
    split_keys "${data_feats}/${valid_set}/wav.scp" "${_nj}" "${logdir}/valid"
    log "stage 5: ${_nj} job(s), logs ${logdir}/stats.*.log"
    # shellcheck disable=SC2046,SC2086
    ${train_cmd} JOB=1:"${_nj}" "${logdir}/stats.JOB.log" ${python} -m espnet_glowtts.bin.tts_train \
        --collect_stats true --write_collected_feats "${write_collected_feats}" \
        --use_preprocessor true "${text_opts[@]}" --normalize none --pitch_normalize none \
        --energy_normalize none --config "${train_config}" "${feats_opts[@]}" "${pitch_opts[@]}" \
        $(data_opts train "${train_set}") $(data_opts valid "${valid_set}") \
        $(extra_inputs train_ "${data_feats}/${train_set}" "${train_set}") \
        $(extra_inputs valid_ "${data_feats}/${valid_set}" "${valid_set}") \
        $(model_size_opts) \
        --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/valid.JOB.scp" \
        --output_dir "${logdir}/stats.JOB" ${train_args} || jobs_failed "${logdir}"/stats.*.log
    inputs=()
    for i in $(seq 1 "${_nj}"); do inputs+=(--input_dir "${logdir}/stats.${i}"); done
    run_logged "${logdir}/aggregate.log" ${python} -m espnet2.bin.aggregate_stats_dirs \
        "${inputs[@]}" --output_dir "${tts_stats_dir}"
    for part in train valid; do
        awk -v N="$(nlines "${token_list}")" '{ print $0 "," N }' \
            "${tts_stats_dir}/${part}/text_shape" > "${tts_stats_dir}/${part}/text_shape.${token_type}"
    done
    end_stage 5
fi

if begin_stage 6 5 "${skip_train}" "training ${tts_exp}" "$(checksum "${train_config}") ${train_args} ${feats_normalize}"; then
    mkdir -p "${tts_exp}"
    # Fine-tuning starts a new experiment (--init_param is in its name); an experiment
    # directory that already holds a checkpoint from other initial weights is not resumed.
    init_param=$(echo " ${train_args} " | sed -n -E 's/.* --init_param[ =]([^ ]+) .*/\1/p')
    if [ -f "${tts_exp}/checkpoint.pth" ] && [ "$(cat "${tts_exp}/init_param" 2>/dev/null || true)" != "${init_param}" ]; then
        die "${tts_exp} holds a checkpoint that was not initialised from '${init_param:-random}': give another --tag or --tts_exp"
    fi
    echo "${init_param}" > "${tts_exp}/init_param"
    [ -z "${init_param}" ] || log "stage 6: initial weights from ${init_param} (fine-tuning)"
    [ -f "${tts_exp}/checkpoint.pth" ] && log "stage 6: resuming from ${tts_exp}/checkpoint.pth"
    [ -f "${tts_exp}/train.log" ] && mv "${tts_exp}/train.log" "${tts_exp}/train.$(date +%s).log"
    [ -z "${teacher_dumpdir}" ] || check_teacher "${train_set}" "${valid_set}"
    _opts=()
    for part in train valid; do
        _set=${train_set}; [ "${part}" = valid ] && _set=${valid_set}
        _opts+=(--${part}_shape_file "${tts_stats_dir}/${part}/text_shape.${token_type}"
                --${part}_shape_file "${tts_stats_dir}/${part}/speech_shape")
        for f in pitch energy; do
            if [ -e "${tts_stats_dir}/${part}/collect_feats/${f}.scp" ]; then
                _opts+=(--${part}_data_path_and_name_and_type "${tts_stats_dir}/${part}/collect_feats/${f}.scp,${f},npy")
            fi
        done
    done
    for f in pitch energy; do
        if [ -e "${tts_stats_dir}/train/${f}_stats.npz" ]; then
            _opts+=(--${f}_normalize_conf "stats_file=${tts_stats_dir}/train/${f}_stats.npz")
        fi
    done
    [ "${feats_normalize}" = global_mvn ] && _opts+=(--normalize_conf "stats_file=${tts_stats_dir}/train/feats_stats.npz")
    # shellcheck disable=SC2046
    train_cmd_args=(${python} -m espnet_glowtts.bin.tts_train --use_preprocessor true
        "${text_opts[@]}" --normalize "${feats_normalize}" --resume true
        --fold_length "${text_fold_length}" --fold_length $((speech_fold_length * n_shift))
        --output_dir "${tts_exp}" --config "${train_config}" "${feats_opts[@]}" "${pitch_opts[@]}"
        $(data_opts train "${train_set}") $(data_opts valid "${valid_set}")
        $(extra_inputs train_ "${data_feats}/${train_set}" "${train_set}")
        $(extra_inputs valid_ "${data_feats}/${valid_set}" "${valid_set}")
        $(model_size_opts) "${_opts[@]}")
    # shellcheck disable=SC2206
    train_cmd_args+=(${train_args})
    log "stage 6: log: ${tts_exp}/train.log (epoch summaries follow)"
    if [ "${cpu_procs}" -gt 1 ]; then
        # espnet2.bin.launch starts one process per GPU; on CPUs torchrun starts the
        # ranks and ESPnet joins them over gloo (--multiprocessing_distributed false).
        log "stage 6: ${cpu_procs} CPU processes (torchrun, DDP over gloo)"
        ${cuda_cmd} --gpu 0 --num_threads "${cpu_procs}" "${tts_exp}/train.log" \
            ${python} -m torch.distributed.run --standalone --nproc_per_node "${cpu_procs}" \
            "${train_cmd_args[@]:1}" --ngpu 0 --multiprocessing_distributed false \
            --dist_backend gloo > /dev/null 2>&1 &
    else
        ${python} -m espnet2.bin.launch --cmd "${cuda_cmd}" --log "${tts_exp}/train.log" \
            --ngpu "${ngpu}" --num_nodes "${num_nodes}" \
            --init_file_prefix "${tts_exp}/.dist_init_" --multiprocessing_distributed true \
            -- "${train_cmd_args[@]}" > "${tts_exp}/launch.log" 2>&1 &
    fi
    train_pid=$!
    until [ -f "${tts_exp}/train.log" ] || ! kill -0 "${train_pid}" 2>/dev/null; do sleep 0.2; done
    tail --pid="${train_pid}" -n +1 -F "${tts_exp}/train.log" 2>/dev/null \
        | grep --line-buffered -E "epoch results:|Traceback|^[A-Za-z.]*Error" \
        | sed -u -E 's/^.*INFO: //; s/(epoch results:.{0,200}).*/\1 .../' >&2 &
    if wait "${train_pid}"; then rc=0; else rc=$?; fi
    wait || true
    if [ "${rc}" -ne 0 ]; then
        tail -n 30 "${tts_exp}/train.log" >&2
        [ -f "${tts_exp}/launch.log" ] && grep -E "Error" "${tts_exp}/launch.log" | tail -n 3 >&2
        die "training failed (log: ${tts_exp}/train.log)"
    fi
    [ -e "${tts_exp}/${inference_model}" ] || die "training ended without ${tts_exp}/${inference_model}"
    if grep -q -E "^use_matplotlib: false$" "${tts_exp}/config.yaml"; then
        # The config skipped ESPnet's per-epoch plots: draw the curves once, from the
        # reporter state in checkpoint.pth.
        ${python} -m glowtts_recipe.plot_training --exp_dir "${tts_exp}" \
            || die "could not draw ${tts_exp}/images from ${tts_exp}/checkpoint.pth"
    fi
    end_stage 6
fi

# The predictor followed moving alignments during training (MAS hands a pause to one of
# several silent-looking tokens, a different one from epoch to epoch) and the checkpoint
# average mixes predictors that followed different ones; refit it to the final model's.
model_path="${tts_exp}/${inference_model}"
unfitted="${model_path%.pth}.unfitted.pth"
if begin_stage 6d 6 "${skip_train}" "duration predictor of ${model_path}" \
        "${inference_model} ${fit_durations} ${fit_durations_args}"; then
    [ -e "${model_path}" ] || die "${model_path} not found: train first (stage 6)"
    if ! grep -q -E "^tts: glow_tts$" "${tts_exp}/config.yaml"; then
        log "stage 6d: not a glow_tts model: nothing to fit"
    else
        # ESPnet's averaged and best models are symlinks that training (re)creates: a
        # symlink here is a model that has not been fitted yet.
        if [ -L "${model_path}" ] || [ ! -e "${unfitted}" ]; then
            mv -f "${model_path}" "${unfitted}"
            cp -P "${unfitted}" "${model_path}"
        fi
        if [ "${fit_durations}" != true ]; then
            cp -P "${unfitted}" "${model_path}.tmp" && mv -f "${model_path}.tmp" "${model_path}"
            log "stage 6d: not fitted (--fit_durations ${fit_durations}): ${model_path} is the trained model"
        else
            device=cpu; [ "${ngpu}" -gt 0 ] && device=cuda
            # shellcheck disable=SC2086
            run_logged "${tts_exp}/fit_durations.log" ${python} -m espnet_glowtts.bin.fit_durations \
                --train_config "${tts_exp}/config.yaml" --model_file "${unfitted}" \
                --out "${model_path}" --device "${device}" ${fit_durations_args}
            log "stage 6d: $(grep -o 'duration loss on .*' "${tts_exp}/fit_durations.log")"
        fi
    fi
    end_stage 6d
fi

if [ "${vocoder_file}" = none ]; then
    voc_opts=(--vocoder_config "${griffin_lim_config}")
    vocoder_sig=$(checksum "${griffin_lim_config}")
else
    # ESPnet reads the vocoder's own config from beside the checkpoint (config.yml).
    voc_opts=(--vocoder_file "${vocoder_file}")
    vocoder_sig="${vocoder_file} $(stat -c %Y "${vocoder_file}")"
fi
seeds=${score_seeds}
[ "${teacher_forcing}" = true ] && seeds=1
if begin_stage 7 6d "${skip_eval}" "decoding ${decode_sets} into ${decode_dir}" \
        "${inference_model} $(checksum "${inference_config}") ${vocoder_sig} ${inference_args} ${decode_sets} ${seeds} ${teacher_dumpdir}"; then
    [ -f "${tts_exp}/config.yaml" ] || die "${tts_exp}/config.yaml not found: train first (stage 6)"
    [ -z "${teacher_dumpdir}" ] || check_teacher ${decode_sets}
    _ngpu=0; _cmd=${decode_cmd}
    if [ "${gpu_inference}" = true ]; then _ngpu=1; _cmd=${cuda_cmd}; fi
    # All sets are decoded in one pass (ESPnet's start-up is slow) in a work directory;
    # then each set's outputs replace the old ones (nothing else in ${decode_dir} goes).
    work="${decode_dir}/log.tmp"
    rm -rf "${work}"
    mkdir -p "${work}"
    for f in text wav.scp utt2sid utt2lid; do
        for dset in ${decode_sets}; do
            if [ -f "${data_feats}/${dset}/${f}" ]; then cat "${data_feats}/${dset}/${f}"; fi
        done | sort -u -k1,1 > "${work}/${f}"
    done
    # ESPnet reads every input in the order of the text's keys: sort them all alike.
    [ "${use_xvector}" = true ] && for dset in ${decode_sets}; do cat "${dumpdir}/xvector/${dset}/xvector.scp"; done | sort -u -k1,1 > "${work}/xvector.scp"
    [ -n "${teacher_dumpdir}" ] && for dset in ${decode_sets}; do cat "${teacher_dumpdir}/${dset}/durations"; done | sort -u -k1,1 > "${work}/durations"
    ex_opts=()
    [ "${use_sid}" = true ] && ex_opts+=(--data_path_and_name_and_type "${work}/utt2sid,sids,text_int")
    [ "${use_lid}" = true ] && ex_opts+=(--data_path_and_name_and_type "${work}/utt2lid,lids,text_int")
    [ "${use_xvector}" = true ] && ex_opts+=(--data_path_and_name_and_type "${work}/xvector.scp,spembs,kaldi_ark")
    [ -n "${teacher_dumpdir}" ] && ex_opts+=(--data_path_and_name_and_type "${work}/durations,durations,text_int")
    # Teacher forcing aligns the real speech: ESPnet needs it as an input.
    [ "${teacher_forcing}" = true ] && ex_opts+=(--data_path_and_name_and_type "${work}/wav.scp,speech,sound")
    _nj=$(min "${inference_nj}" "$(nlines "${work}/text")")
    split_keys "${work}/text" "${_nj}" "${work}/keys"
    for k in $(seq 1 "${seeds}"); do
        log "stage 7: draw ${k}/${seeds} (--seed ${k}): $(nlines "${work}/text") utterances, ${_nj} job(s), logs ${work}/seed${k}/tts_inference.*.log"
        # shellcheck disable=SC2086
        ${_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${work}/seed${k}/tts_inference.JOB.log" \
            ${python} -m espnet_glowtts.bin.tts_inference --ngpu "${_ngpu}" --seed "${k}" \
            --data_path_and_name_and_type "${work}/text,text,text" \
            --key_file "${work}/keys.JOB.scp" --model_file "${tts_exp}/${inference_model}" \
            --train_config "${tts_exp}/config.yaml" --output_dir "${work}/seed${k}/output.JOB" \
            --config "${inference_config}" "${voc_opts[@]}" "${ex_opts[@]+"${ex_opts[@]}"}" \
            ${inference_args} || jobs_failed "${work}/seed${k}"/tts_inference.*.log
    done
    set_args=()
    for dset in ${decode_sets}; do set_args+=("${dset}=${data_feats}/${dset}"); done
    tf_opts=()
    [ "${teacher_forcing}" = true ] && tf_opts+=(--teacher_forcing --n_shift "${n_shift}")
    ${python} -m glowtts_recipe.decode_dirs collect --work_dir "${work}" \
        --decode_dir "${decode_dir}" "${tf_opts[@]+"${tf_opts[@]}"}" "${set_args[@]}" 2>&1 | noise_filter >&2
    set_dirs=(); data_dirs=()
    for dset in ${test_sets}; do set_dirs+=("${decode_dir}/${dset}"); data_dirs+=("${data_feats}/${dset}"); done
    ${python} -m glowtts_recipe.decode_report --train_config "${tts_exp}/config.yaml" \
        --log_dir "${decode_dir}/log/seed1" --data_dirs "${data_dirs[@]}" -- "${set_dirs[@]}" 2>&1 \
        | noise_filter | tee "${decode_dir}/report.log" >&2
    end_stage 7
fi

if [ "${teacher_forcing}" = true ]; then
    [ "${stop_stage}" -lt 7 ] || [ "${stage}" -gt 7 ] || \
        log "stage 7+: teacher forcing: not scored; ${decode_dir} is a teacher dump: give --teacher_dumpdir ${decode_dir}"
elif begin_stage 7s 7 "${skip_eval}" "scoring ${decode_dir}" "${score_asr} ${vocoder_file}"; then
    score_opts=()
    if [ "${vocoder_file}" = none ]; then
        gl_iters=$(yaml_get "${griffin_lim_config}" griffin_lim_iters)
        score_opts+=(--griffin_lim_iters "${gl_iters:-8}")
    else
        score_opts+=(--vocoder_file "${vocoder_file}")
    fi
    # shellcheck disable=SC2086
    ${python} -m glowtts_recipe.score --train_config "${tts_exp}/config.yaml" \
        --decode_dir "${decode_dir}" --data_root "${data_feats}" --asr "${score_asr}" \
        "${score_opts[@]}" ${test_sets} 2>&1 | noise_filter | tee "${decode_dir}/score.log" >&2
    cat "${decode_dir}/scores.md"
    if [ "$(cut -d ' ' -f 2 "${data_feats}/${train_set}/utt2spk" | sort -u | wc -l)" -gt 1 ]; then
        # Per-speaker F0, MCD, nearest speaker and SECS; a conditioned model also speaks the
        # same sentences with every speaker (all_speakers/).
        spk_opts=()
        if [ "${use_sid}" = true ] || [ "${use_xvector}" = true ]; then
            spk_opts+=(--model_file "${tts_exp}/${inference_model}" --train_config "${tts_exp}/config.yaml")
            [ "${vocoder_file}" = none ] && spk_opts+=(--vocoder_config "${griffin_lim_config}")
            [ "${use_sid}" = true ] && spk_opts+=(--spk2sid "${data_feats}/org/${train_set}/spk2sid")
            [ "${use_xvector}" = true ] && spk_opts+=(--spk_xvector "${dumpdir}/xvector/${train_set}/spk_xvector.scp")
        fi
        # shellcheck disable=SC2086
        ${python} -m glowtts_recipe.speaker_scores --decode_dir "${decode_dir}" \
            --data_root "${data_feats}" --fs "${fs}" --n_fft "${n_fft}" --n_shift "${n_shift}" \
            "${spk_opts[@]+"${spk_opts[@]}"}" ${test_sets} 2>&1 | noise_filter \
            | tee "${decode_dir}/speaker_scores.log" >&2
        for dset in ${test_sets}; do
            [ -f "${decode_dir}/${dset}/speaker_scores.md" ] && cat "${decode_dir}/${dset}/speaker_scores.md"
        done
    fi
    end_stage 7s
fi

if begin_stage 8 6d false "packing ${packed_model}" "${inference_model} ${use_sid} ${use_lid} ${use_xvector}"; then
    pack_opts=()
    for f in feats pitch energy; do
        [ -e "${tts_stats_dir}/train/${f}_stats.npz" ] && pack_opts+=(--option "${tts_stats_dir}/train/${f}_stats.npz")
    done
    if [ "${use_xvector}" = true ]; then
        for dset in "${train_set}" ${test_sets}; do
            for f in spk_xvector.scp spk_xvector.ark; do
                [ -e "${dumpdir}/xvector/${dset}/${f}" ] && pack_opts+=(--option "${dumpdir}/xvector/${dset}/${f}")
            done
        done
    fi
    [ "${use_sid}" = true ] && pack_opts+=(--option "${data_feats}/org/${train_set}/spk2sid")
    [ "${use_lid}" = true ] && pack_opts+=(--option "${data_feats}/org/${train_set}/lang2lid")
    [ -d "${tts_exp}/images" ] && pack_opts+=(--option "${tts_exp}/images")
    tmp_zip="$(dirname "${packed_model}")/.tmp.$(basename "${packed_model}")"
    rm -f "${tmp_zip}"
    run_logged "${tts_exp}/pack.log" ${python} -m espnet2.bin.pack tts \
        --train_config "${tts_exp}/config.yaml" --model_file "${tts_exp}/${inference_model}" \
        "${pack_opts[@]+"${pack_opts[@]}"}" --outpath "${tmp_zip}"
    mv "${tmp_zip}" "${packed_model}"
    # The zip must load as model-zoo users load it and speak (with the first speaker,
    # language and x-vector when the model takes them).
    log "stage 8: checking that the zip loads through espnet_model_zoo and speaks"
    check_opts=()
    [ "${use_xvector}" = true ] && check_opts+=(--spk_xvector "${dumpdir}/xvector/${train_set}/spk_xvector.scp")
    run_logged "${tts_exp}/packed_check.log" ${python} -m glowtts_recipe.synthesize \
        --model "${packed_model}" --out "${tts_exp}/packed_check.wav" \
        --text "This voice was packed into a model zip and unpacked again." \
        "${check_opts[@]+"${check_opts[@]}"}"
    log "stage 8: it said: ${tts_exp}/packed_check.wav"
    log "stage 8: ${packed_model} ($(du -h "${packed_model}" | cut -f1))"
    end_stage 8
fi

# Stage 8x (ours, --export_onnx true): the packed model as ONNX graphs for the torch-free
# runtime. export_onnx replaces ${tts_exp}/onnx only after the exported model has spoken a
# check sentence and matched torch; then the runtime itself speaks one more.
if begin_stage 8x 8 "$([ "${export_onnx}" = true ] && echo false || echo true)" \
        "ONNX export to ${tts_exp}/onnx" "${vocoder_file} $(checksum "${griffin_lim_config}") $(checksum "${inference_config}")"; then
    [ -f "${packed_model}" ] || die "--export_onnx needs the packed model ${packed_model}: run stage 8"
    onnx_opts=()
    # The runtime's defaults are the recipe's decoding settings, as stage 7 used them.
    for opt in noise_scale length_scale; do
        value=$(yaml_get "${inference_config}" "${opt}")
        if [ -n "${value}" ]; then onnx_opts+=("--${opt}" "${value}"); fi
    done
    [ "${vocoder_file}" = none ] && onnx_opts+=(--vocoder_config "${griffin_lim_config}")
    run_logged "${tts_exp}/export_onnx.log" ${python} -m espnet_glowtts.bin.export_onnx \
        --model_tag "${packed_model}" --out_dir "${tts_exp}/onnx" \
        --check_text "This voice was exported to ONNX." "${onnx_opts[@]+"${onnx_opts[@]}"}"
    run_logged "${tts_exp}/onnx_check.log" ${python} -m espnet_glowtts.runtime \
        --model_dir "${tts_exp}/onnx" --text "This voice runs without torch." \
        --out "${tts_exp}/onnx_check.wav"
    log "stage 8x: ${tts_exp}/onnx; it said: ${tts_exp}/onnx_check.wav"
    end_stage 8x
fi

# ---- where things are ------------------------------------------------------------------
if [ "${stop_stage}" -ge 7 ] && [ "${teacher_forcing}" = false ]; then
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
    if [ -f "$(marker 8x)" ]; then echo "  ONNX export: ${tts_exp}/onnx (python -m espnet_glowtts.runtime)"; fi
fi
