#!/usr/bin/env bash
# Stage 1: a corpus in LJSpeech's layout -> data/{tr_no_dev,dev,eval1}.
#
#   local/data.sh                                 # download LJSpeech-1.1 into downloads/
#   local/data.sh --ljspeech_root /data/LJSpeech-1.1
#   local/data.sh --corpus espeak [--text_list FILE] [--max_sentences N] [--nj 2]
#   local/data.sh --corpus espeak --num_speakers 4 [--num_languages 2 | --languages en-us,de]
#   local/data.sh ... --require_speakers true   # (--use_sid true) every line needs a speaker
#
# LJSpeech is fetched from its official home, its SHA-256 checked, and extracted
# atomically (bin/fetch_corpus). --corpus espeak synthesises a corpus with espeak-ng from
# the built-in sentence list (or --text_list: plain sentences or id|...|text lines),
# with --num_speakers espeak-ng voices of different pitch and timbre and --num_languages
# (or the --languages list of) espeak-ng languages; the speaker and language go into
# utt2spk and utt2lang. Several speakers: dev and eval1 are balanced over speakers.
# Split as upstream: the last num_dev + num_eval utterances make dev and eval1
# (LJSpeech: 250 + 250; espeak corpus: 10 + 20 by default), the rest tr_no_dev.
set -euo pipefail

corpus=ljspeech          # ljspeech | espeak
ljspeech_root=""         # an existing LJSpeech-1.1 directory (skips the download)
download_dir=downloads
ljspeech_url=https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2
ljspeech_sha256=be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5
text_list=""             # espeak: sentence list (default: the built-in one)
max_sentences=0          # espeak: use only the first N sentences (0: all)
corpus_dir=""            # espeak: where to build it (default: corpus/espeak_<list>)
num_dev=""
num_eval=""
num_speakers=1           # espeak: 1..8 voices (speaker = 4th field of metadata.csv)
num_languages=""         # espeak: the first N of en-us,de,fr-fr,es
languages=""             # espeak: comma-separated espeak-ng languages (or num_languages)
require_speakers=false   # true: a metadata.csv line without a speaker is an error
nj=2
fs=22050

. ./path.sh
. ./scripts/options.sh
parse_options "corpus ljspeech_root download_dir ljspeech_url ljspeech_sha256 text_list
    max_sentences corpus_dir num_dev num_eval num_speakers num_languages languages
    require_speakers nj fs" "$@"
if [ ${#REST[@]} -gt 0 ]; then
    echo "ERROR: local/data.sh: unknown option(s): ${REST[*]}" >&2; exit 2
fi

case "${corpus}" in
    ljspeech)
        if [ -z "${ljspeech_root}" ]; then
            ljspeech_root=$(python -m glowtts_recipe.fetch_corpus \
                --download_dir "${download_dir}" --url "${ljspeech_url}" \
                --sha256 "${ljspeech_sha256}")
        fi
        num_dev=${num_dev:-250}; num_eval=${num_eval:-250}
        ;;
    espeak)
        if [ -z "${corpus_dir}" ]; then
            name=builtin
            [ -n "${text_list}" ] && name=$(basename "${text_list}" | sed 's/\.[^.]*$//')
            [ "${max_sentences}" -gt 0 ] && name="${name}_${max_sentences}"
            [ "${num_speakers}" -gt 1 ] && name="${name}_spk${num_speakers}"
            [ -n "${num_languages}" ] && name="${name}_lang${num_languages}"
            [ -n "${languages}" ] && name="${name}_${languages//,/-}"
            corpus_dir="corpus/espeak_${name}"
        fi
        opts=(--num_speakers "${num_speakers}")
        [ -n "${text_list}" ] && opts+=(--text_list "${text_list}")
        [ -n "${num_languages}" ] && opts+=(--num_languages "${num_languages}")
        [ -n "${languages}" ] && opts+=(--languages "${languages}")
        python -m glowtts_recipe.espeak_corpus --out_dir "${corpus_dir}" --nj "${nj}" \
            --max_sentences "${max_sentences}" "${opts[@]}"
        ljspeech_root="${corpus_dir}"
        num_dev=${num_dev:-10}; num_eval=${num_eval:-20}
        ;;
    *) echo "ERROR: --corpus must be ljspeech or espeak, got '${corpus}'" >&2; exit 2 ;;
esac
prep_opts=()
[ "${require_speakers}" = true ] && prep_opts+=(--require_speakers)

python -m glowtts_recipe.prepare_data --corpus_dir "${ljspeech_root}" --out_dir data \
    --fs "${fs}" --num_dev "${num_dev}" --num_eval "${num_eval}" \
    --sets tr_no_dev dev eval1 "${prep_opts[@]+"${prep_opts[@]}"}"
