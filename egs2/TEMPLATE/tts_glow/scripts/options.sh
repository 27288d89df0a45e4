# Sourced by the recipe scripts: option parsing and the names ESPnet's tts.sh gives to
# directories (one place, so that tts.sh and scripts/compare.sh find the same ones).

# `parse_options "name1 name2 ..." "$@"`: each `--name value` (or `--name=value`; dashes
# read as underscores) whose name is in the list sets the shell variable of that name;
# the other options are left in REST, in order.
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

# `print_options "name1 name2 ..."`: one line per option with its current value.
print_options() {
    local o
    for o in $(echo $1); do printf '  --%-22s %s\n' "${o}" "${!o}"; done
}

# `args_tag "--max_epoch 10"` -> "_max_epoch10": how ESPnet appends --train_args and
# --inference_args to a directory name ("/" also becomes "_", so that a path given as an
# argument, e.g. --init_param, does not make nested directories).
args_tag() {
    echo "$1" | sed -e "s/--/\_/g" -e "s/[ |=]//g" -e "s|/|_|g"
}

# `token_tag TOKEN_TYPE CLEANER G2P` -> phn_tacotron_<g2p>, as ESPnet names the token list
# directory (dump/token_list/<tag>) and the tail of the experiment and statistics names.
token_tag() {
    local t=$1
    [ "$2" != none ] && t+="_$2"
    [ "$1" = phn ] && t+="_$3"
    echo "${t}"
}

# `tts_tag TRAIN_CONFIG FEATS_TYPE TOKEN_TAG TRAIN_ARGS` -> <config>_raw_<tokens><args>:
# the experiment is ${expdir}/tts_<this> unless --tag or --tts_exp are given.
tts_tag() {
    local t=train
    [ -n "$1" ] && t=$(basename "$1" .yaml)
    echo "${t}_$2_$3$(args_tag "$4")"
}

# `inference_tag INFERENCE_CONFIG INFERENCE_ARGS INFERENCE_MODEL`
# -> decode<args>_train.loss.ave: the decoding directory is ${tts_exp}/<this>.
inference_tag() {
    local t=inference
    [ -n "$1" ] && t=$(basename "$1" .yaml)
    echo "${t}$(args_tag "$2")_$(echo "$3" | sed -e "s/\//_/g" -e "s/\.[^.]*$//g")"
}

# `yaml_get FILE KEY[.KEY...]`: a value of a YAML file ("" when absent).
yaml_get() {
    ${python:-python} - "$1" "$2" <<'PY'
import sys
import yaml
with open(sys.argv[1], encoding="utf-8") as f:
    node = yaml.safe_load(f) or {}
for key in sys.argv[2].split("."):
    node = node.get(key) if isinstance(node, dict) else None
print("" if node is None else node)
PY
}
