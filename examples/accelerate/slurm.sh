#!/usr/bin/env bash
# Several machines under Slurm: one `accelerate launch` per node, each starting one process per
# GPU; node 0 is the rendezvous. Submit with `sbatch examples/accelerate/slurm.sh run.toml runs/x`.
#SBATCH --job-name=astra
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --exclusive
set -euo pipefail
CONFIG="${1:?usage: sbatch slurm.sh RUN.toml OUT_DIR [ACCELERATE_CONFIG]}"
OUT="${2:?usage: sbatch slurm.sh RUN.toml OUT_DIR [ACCELERATE_CONFIG]}"
ACCEL="${3:-examples/accelerate/fsdp2.yaml}"
GPUS_PER_NODE="${SLURM_GPUS_ON_NODE:-8}"
MAIN_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
srun bash -c "accelerate launch --config_file '$ACCEL' \
    --num_machines $SLURM_NNODES --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) \
    --machine_rank \$SLURM_NODEID --main_process_ip $MAIN_ADDR --main_process_port 29500 \
    -m astra_core.cli run '$CONFIG' --out '$OUT'"
