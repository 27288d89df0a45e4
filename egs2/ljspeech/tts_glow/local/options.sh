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
