# Sourced by tts.sh: the job commands of each kind of work, as in ESPnet's cmd.sh.
#   train_cmd   data preparation and statistics (CPU jobs)
#   cuda_cmd    training (given to espnet2.bin.launch as --cmd)
#   decode_cmd  decoding
# Each takes Kaldi's run.pl convention: CMD [--gpu N] [JOB=1:N] LOG COMMAND...
# Pick the backend with `export cmd_backend=slurm` (or edit the default below):
#   local  scripts/run.pl: everything on this machine (one node)
#   slurm  scripts/slurm.pl: sbatch --wait per job; site options (partition, account,
#          time) in SLURM_SBATCH_OPTS. Multi-node training (--num_nodes N) runs through
#          espnet2.bin.launch's srun path.
cmd_backend=${cmd_backend:-local}
case "${cmd_backend}" in
    local)
        train_cmd="scripts/run.pl"
        cuda_cmd="scripts/run.pl"
        decode_cmd="scripts/run.pl"
        ;;
    slurm)
        train_cmd="scripts/slurm.pl --mem 4G"
        cuda_cmd="scripts/slurm.pl --mem 16G"
        decode_cmd="scripts/slurm.pl --mem 4G"
        ;;
    *) echo "ERROR: cmd.sh: cmd_backend must be local or slurm, got '${cmd_backend}'" >&2; exit 2 ;;
esac
