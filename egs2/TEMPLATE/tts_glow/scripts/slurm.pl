#!/usr/bin/env bash
# Slurm job runner with the calling convention of Kaldi's slurm.pl (the name is what
# espnet2.bin.launch recognises for its srun multi-node path; this is bash):
#
#   scripts/slurm.pl [--gpu N] [--mem M] [--num_threads N] [--num_nodes N] [--time T] \
#       [JOB=1:N] LOG CMD ARG...
#
# Submits CMD with `sbatch --wait` (one array task per JOB value, JOB replaced by the task
# id) and returns when it has finished, with its exit status; the output goes to LOG.
# --gpu N -> --gres=gpu:N, --num_threads -> --cpus-per-task, --num_nodes N -> --nodes N
# with one task per node (what espnet2.bin.launch's srun path expects). Site options
# (partition, account, ...) come from the environment variable SLURM_SBATCH_OPTS, e.g.
# export SLURM_SBATCH_OPTS="--partition=gpu --account=myproj" (see cmd.sh).
set -euo pipefail
opts=()
max_jobs=0
while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) [ "$2" -gt 0 ] && opts+=("--gres=gpu:$2"); shift 2 ;;
        --mem) opts+=("--mem=$2"); shift 2 ;;
        --num_threads) opts+=("--cpus-per-task=$2"); shift 2 ;;
        --num_nodes) opts+=("--nodes=$2" "--ntasks-per-node=1"); shift 2 ;;
        --time) opts+=("--time=$2"); shift 2 ;;
        --max_jobs_run) max_jobs=$2; shift 2 ;;
        --config) shift 2 ;;
        --*) echo "slurm.pl: unknown option $1" >&2; exit 1 ;;
        *) break ;;
    esac
done
array=""
if [[ "${1:-}" =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
    array="${BASH_REMATCH[1]}-${BASH_REMATCH[2]}"; shift
fi
[ $# -ge 2 ] || { echo "usage: slurm.pl [options] [JOB=1:N] LOG CMD ..." >&2; exit 1; }
log=$1; shift
command -v sbatch >/dev/null || { echo "slurm.pl: sbatch not found (is this a Slurm host?)" >&2; exit 1; }
mkdir -p "$(dirname "${log}")"
quoted=$(printf '%q ' "$@")
out=${log}
if [ -n "${array}" ]; then
    # JOB -> the array task id, in the log name (%a) and in the command
    [ "${max_jobs}" -gt 0 ] && array+="%${max_jobs}"
    opts+=("--array=${array}")
    out=${log//JOB/%a}
    quoted=${quoted//JOB/\$\{SLURM_ARRAY_TASK_ID\}}
fi
# shellcheck disable=SC2086
sbatch --wait --parsable --export=ALL --chdir "$(pwd)" --output "${out}" \
    ${SLURM_SBATCH_OPTS:-} "${opts[@]}" --wrap "cd $(printf '%q' "$(pwd)") && ${quoted}" \
    > /dev/null || { echo "slurm.pl: job failed, log is in ${out}" >&2; exit 1; }
