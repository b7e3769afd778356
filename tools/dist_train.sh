#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG NPROC [train.py options]
# Launches NPROC processes with torchrun (one per GPU); mmengine wraps the
# model in DistributedDataParallel. Without CUDA the processes talk over
# gloo instead of nccl. PYTHON picks the interpreter (default: python).
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
