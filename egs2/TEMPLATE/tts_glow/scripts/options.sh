# Sourced by the recipe scripts: `parse_options "name1 name2 ..." "$@"`.
# Each `--name value` (or `--name=value`; dashes read as underscores) whose name is in the
# list sets the shell variable of that name; the other options are left in REST, in order.
parse_options() {
    local names key value
    names=" $(echo $1) "  # the list may span lines
    shift
    REST=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --*=*) key="${1%%=*}"; value="${1#*=}"; shift ;;
            --*)
                if [ $# -lt 2 ]; then echo "ERROR: option $1 needs a value" >&2; exit 2; fi
                key="$1"; value="$2"; shift 2 ;;
            *) echo "ERROR: unexpected argument '$1' (options are --name value)" >&2; exit 2 ;;
        esac
        key="${key#--}"; key="${key//-/_}"
        if [[ "${names}" == *" ${key} "* ]]; then
            printf -v "${key}" '%s' "${value}"
        else
            REST+=("--${key}" "${value}")
        fi
    done
}

# Sourced names shared by tts.sh and scripts/compare.sh, so that both find the same directories:
# `derive_tts_names CONFIG` sets token_tag (and g2p=none for characters), then tts_exp and
# tts_stats_dir where they are still empty.
derive_tts_names() {
    case "${token_type}" in
        phn) token_tag="phn_${g2p}" ;;
        char) token_tag=char; g2p=none ;;
        *) echo "ERROR: --token_type must be phn or char, got '${token_type}'" >&2; exit 2 ;;
    esac
    [ -n "${tts_exp}" ] || tts_exp="${expdir}/tts_$(basename "$1" .yaml)_raw_${token_tag}"
    [ -n "${tts_stats_dir}" ] || tts_stats_dir="${expdir}/tts_stats_raw_${token_tag}"
}
