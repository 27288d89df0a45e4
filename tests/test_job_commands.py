"""The recipe's job-command layer (egs2/TEMPLATE/tts_glow/cmd.sh): scripts/run.pl runs jobs
locally with Kaldi's `JOB=1:N LOG CMD` convention; scripts/slurm.pl turns the same call
into `sbatch --wait` (checked here against a stand-in sbatch that runs the job script as
Slurm would: one array task per JOB value). Seconds."""

import os
import subprocess
from pathlib import Path

SCRIPTS = (
    Path(__file__).resolve().parents[1] / "egs2" / "TEMPLATE" / "tts_glow" / "scripts"
)

# A stand-in for sbatch: records its arguments, then runs --wrap once per array task with
# SLURM_ARRAY_TASK_ID set, its output into --output (%a -> the task id), and exits with the
# first failing status (as `sbatch --wait` does).
FAKE_SBATCH = r"""#!/usr/bin/env bash
echo "$@" >> "$(dirname "$0")/sbatch.args"
array=""; out=""; wrap=""
while [ $# -gt 0 ]; do
    case "$1" in
        --array=*) array=${1#--array=} ;;
        --output) out=$2; shift ;;
        --wrap) wrap=$2; shift ;;
    esac
    shift
done
rc=0
ids=1
if [ -n "${array}" ]; then r=${array%%%*}; ids=$(seq "${r%-*}" "${r#*-}"); fi
for i in ${ids}; do
    SLURM_ARRAY_TASK_ID=$i bash -c "${wrap}" > "${out//%a/$i}" 2>&1 || rc=1
done
exit $rc
"""


def sh(*args, env=None, cwd=None):
    return subprocess.run(
        [str(a) for a in args], text=True, capture_output=True, env=env, cwd=cwd
    )


def test_run_pl_runs_each_job_into_its_log(tmp_path):
    proc = sh(
        SCRIPTS / "run.pl",
        "--gpu",
        "0",
        "JOB=1:3",
        tmp_path / "log.JOB.log",
        "bash",
        "-c",
        "echo job JOB of 3",
    )
    assert proc.returncode == 0, proc.stderr
    for i in (1, 2, 3):
        log = (tmp_path / f"log.{i}.log").read_text()
        assert f"job {i} of 3" in log and "# Ended (code 0)" in log

    proc = sh(
        SCRIPTS / "run.pl",
        "JOB=1:2",
        tmp_path / "f.JOB.log",
        "bash",
        "-c",
        "exit $((JOB - 1))",
    )
    assert proc.returncode == 1
    assert "1 / 2 failed" in proc.stderr and "f.2.log" in proc.stderr
    assert "# Ended (code 1)" in (tmp_path / "f.2.log").read_text()

    proc = sh(SCRIPTS / "run.pl", "--num_nodes", "2", tmp_path / "x.log", "true")
    assert proc.returncode == 1 and "one node" in proc.stderr


def test_slurm_pl_submits_an_array_job_with_the_resources(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        SLURM_SBATCH_OPTS="--partition=gpu",
    )
    proc = sh(
        SCRIPTS / "slurm.pl",
        "--gpu",
        "2",
        "--num_threads",
        "4",
        "--mem",
        "8G",
        "--max_jobs_run",
        "2",
        "JOB=1:3",
        "logs/out.JOB.log",
        "echo",
        "task JOB",
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    for i in (1, 2, 3):
        assert (tmp_path / f"logs/out.{i}.log").read_text().strip() == f"task {i}"
    args = (bin_dir / "sbatch.args").read_text()
    for want in (
        "--wait",
        "--partition=gpu",
        "--gres=gpu:2",
        "--cpus-per-task=4",
        "--mem=8G",
        "--array=1-3%2",
        "--output logs/out.%a.log",
    ):
        assert want in args

    (bin_dir / "sbatch.args").unlink()
    proc = sh(
        SCRIPTS / "slurm.pl",
        "--num_nodes",
        "2",
        "one.log",
        "false",
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1 and "one.log" in proc.stderr
    assert "--nodes=2 --ntasks-per-node=1" in (bin_dir / "sbatch.args").read_text()
