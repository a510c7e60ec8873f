#!/bin/bash
# A sweep spread over a SLURM job array: each task runs the points whose index is
# TASK mod COUNT into one run directory on a shared file system; no coordinator.
#     sbatch examples/sweep_array.sh              (then: jaxescape report runs/barrier-temperature)
# PBS: use $PBS_ARRAY_INDEX and the array's size instead. A killed task resumes when resubmitted.
#SBATCH --job-name=jaxescape-sweep
#SBATCH --array=0-3
#SBATCH --time=01:00:00
set -euo pipefail
jaxescape sweep examples/sweep.toml --no-progress \
    --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}"
