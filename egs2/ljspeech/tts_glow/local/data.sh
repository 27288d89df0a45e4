#!/usr/bin/env bash
# Stage 1: a corpus in LJSpeech's layout -> data/{tr_no_dev,dev,eval1}.
#
#   local/data.sh                                 # download LJSpeech-1.1 into downloads/
#   local/data.sh --ljspeech_root /data/LJSpeech-1.1
#   local/data.sh --corpus espeak [--text_list FILE] [--max_sentences N] [--nj 2]
#
# LJSpeech is fetched from its official home, its SHA-256 checked, and extracted
# atomically (bin/fetch_corpus). --corpus espeak synthesises a corpus with espeak-ng from
# the built-in sentence list (or --text_list: plain sentences or id|...|text lines).
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
nj=2
fs=22050

. ./path.sh
. ./scripts/options.sh
parse_options "corpus ljspeech_root download_dir ljspeech_url ljspeech_sha256 text_list
    max_sentences corpus_dir num_dev num_eval nj fs" "$@"
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
            corpus_dir="corpus/espeak_${name}"
        fi
        opts=()
        [ -n "${text_list}" ] && opts+=(--text_list "${text_list}")
        python -m glowtts_recipe.espeak_corpus --out_dir "${corpus_dir}" --nj "${nj}" \
            --max_sentences "${max_sentences}" "${opts[@]+"${opts[@]}"}"
        ljspeech_root="${corpus_dir}"
        num_dev=${num_dev:-10}; num_eval=${num_eval:-20}
        ;;
    *) echo "ERROR: --corpus must be ljspeech or espeak, got '${corpus}'" >&2; exit 2 ;;
esac

python -m glowtts_recipe.prepare_data --corpus_dir "${ljspeech_root}" --out_dir data \
    --fs "${fs}" --num_dev "${num_dev}" --num_eval "${num_eval}" \
    --sets tr_no_dev dev eval1
