#!/usr/bin/env bash
# Local job runner with the calling convention of Kaldi's run.pl, which ESPnet's recipes
# and espnet2.bin.launch use (the name is what espnet2.bin.launch recognises; this is bash):
#
#   scripts/run.pl [--gpu N] [--mem M] [--num_threads N] [--max_jobs_run N] \
#       [JOB=1:N] LOG CMD ARG...
#
# Runs CMD on this machine, its output into LOG. With JOB=A:B it runs one job per value,
# at most --max_jobs_run at a time (default: all), replacing the word JOB in LOG and in
# every argument by the value. Exits 1 when a job fails, naming the failed logs. --gpu,
# --mem and --num_threads are accepted for queue compatibility; --num_nodes > 1 is refused
# (one machine).
set -uo pipefail
max_jobs=0
while [ $# -gt 0 ]; do
    case "$1" in
        --gpu|--mem|--num_threads|--time|--config) shift 2 ;;
        --max_jobs_run) max_jobs=$2; shift 2 ;;
        --num_nodes)
            if [ "$2" -gt 1 ]; then
                echo "run.pl: --num_nodes $2: the local runner has one node (use cmd_backend=slurm)" >&2
                exit 1
            fi
            shift 2 ;;
        --*) echo "run.pl: unknown option $1" >&2; exit 1 ;;
        *) break ;;
    esac
done
first=""; last=""
if [[ "${1:-}" =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
    first=${BASH_REMATCH[1]}; last=${BASH_REMATCH[2]}; shift
fi
[ $# -ge 2 ] || { echo "usage: run.pl [options] [JOB=1:N] LOG CMD ..." >&2; exit 1; }
log=$1; shift

run_one() {  # run_one LOG CMD...: CMD with a Kaldi-style header and footer in LOG
    local logf=$1 rc start
    shift
    mkdir -p "$(dirname "${logf}")"
    start=$(date +%s)
    {
        echo "# $*"
        echo "# Started at $(date)"
    } > "${logf}"
    "$@" >> "${logf}" 2>&1
    rc=$?
    echo "# Accounting: time=$(( $(date +%s) - start )) threads=1" >> "${logf}"
    echo "# Ended (code ${rc}) at $(date)" >> "${logf}"
    return "${rc}"
}

if [ -z "${first}" ]; then
    run_one "${log}" "$@" || { echo "run.pl: job failed, log is in ${log}" >&2; exit 1; }
    exit 0
fi
pids=(); logs=(); failed=()
for i in $(seq "${first}" "${last}"); do
    if [ "${max_jobs}" -gt 0 ] && [ "${#pids[@]}" -ge "${max_jobs}" ]; then
        wait "${pids[0]}" || failed+=("${logs[0]}")
        pids=("${pids[@]:1}"); logs=("${logs[@]:1}")
    fi
    run_one "${log//JOB/${i}}" "${@//JOB/${i}}" &
    pids+=($!); logs+=("${log//JOB/${i}}")
done
for k in "${!pids[@]}"; do wait "${pids[$k]}" || failed+=("${logs[$k]}"); done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "run.pl: ${#failed[@]} / $(( last - first + 1 )) failed, log is in ${failed[*]}" >&2
    exit 1
fi
