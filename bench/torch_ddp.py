#!/usr/bin/env python3
"""PyTorch DistributedDataParallel (gloo) on the peers' mlp and cnn workloads:
the comparison peer of bench/scaling.py.

  torchrun --nproc_per_node 2 bench/torch_ddp.py mlp|cnn [--seed N] [--threads T]

The model, optimizer, hyper-parameters, data and test metric are
shared/peers/bench_torch.py's. `batch` stays the global batch: every process
draws the same permutation and trains on its contiguous part of every batch
(nnrun's split); DDP averages the parts' gradients with gloo allreduces. A
comm hook (DDP's default allreduce-then-divide) times each bucket's
allreduce from launch to completion. Rank 0 prints one JSON line, with
shared/peers/common.result's keys plus processes, allreduces and
allreduce_ms.
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "peers"))
sys.path.insert(0, os.environ.get("PEERS_DIR", PEERS))
import common  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("workload", choices=("mlp", "cnn"))
ap.add_argument("--data-dir", default=common.DEFAULT_DATA)
ap.add_argument("--seed", type=int, default=common.SEED)
ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
a = ap.parse_args()
common.set_thread_env(a.threads)

import numpy as np  # noqa: E402

t0 = time.perf_counter()
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
import_seconds = time.perf_counter() - t0

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
gen = torch.Generator().manual_seed(a.seed)
wl, hp = a.workload, common.HP[a.workload]

xtr, ytr, xte, yte = common.load_mnist(a.data_dir)
if wl == "mlp":
    xtr, xte = xtr.reshape(-1, 784), xte.reshape(-1, 784)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))
else:
    xtr, xte = xtr[:, None], xte[:, None]
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 10))
ddp = nn.parallel.DistributedDataParallel(model)  # broadcasts rank 0's weights

times = []


def timed_allreduce(_state, bucket):
    started = time.perf_counter()
    fut = dist.all_reduce(bucket.buffer(), async_op=True).get_future()

    def done(f):
        times.append(time.perf_counter() - started)
        return f.value()[0].div_(world)
    return fut.then(done)


ddp.register_comm_hook(None, timed_allreduce)
loss_fn = nn.CrossEntropyLoss()
xtr_t, ytr_t = torch.from_numpy(np.ascontiguousarray(xtr)), torch.from_numpy(ytr)
xte_t = torch.from_numpy(np.ascontiguousarray(xte))
if hp["optimizer"] == "rmsprop":
    opt = torch.optim.RMSprop(ddp.parameters(), lr=hp["lr"], alpha=0.9, eps=1e-7)
else:
    opt = torch.optim.Adam(ddp.parameters(), lr=hp["lr"], eps=1e-7)

n, bs = len(xtr_t), hp["batch"]
epoch_seconds, last_loss = [], float("nan")
ddp.train()
dist.barrier()
c1, t1 = time.process_time(), time.perf_counter()
for _ in range(hp["epochs"]):
    te = time.perf_counter()
    perm = torch.randperm(n, generator=gen)
    run_loss, seen = 0.0, 0
    for i in range(0, n, bs):
        idx = perm[i:i + bs]
        # This process's contiguous part; sizes differ by at most one row.
        base, extra = divmod(len(idx), world)
        start = rank * base + min(rank, extra)
        part = idx[start:start + base + (rank < extra)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(ddp(xtr_t[part]), ytr_t[part])
        loss.backward()
        opt.step()
        run_loss += loss.item() * len(part)
        seen += len(part)
    last_loss = run_loss / seen
    epoch_seconds.append(time.perf_counter() - te)
train_seconds = time.perf_counter() - t1
train_cpu = time.process_time() - c1

if rank == 0:
    ddp.eval()
    with torch.no_grad():
        out = torch.cat([model(xte_t[i:i + 1024]) for i in range(0, len(xte_t), 1024)]).numpy()
    value = float((out.argmax(axis=1) == yte).mean())
    res = common.result("torch_ddp", wl, hp["epochs"], n, train_seconds, epoch_seconds, import_seconds,
                        "test_accuracy", value, train_cpu_seconds=train_cpu, seed=a.seed,
                        extra={"processes": world, "threads": a.threads, "allreduces": len(times),
                               "allreduce_ms": round(1e3 * sum(times) / max(len(times), 1), 4),
                               "final_train_loss_rank0": round(last_loss, 6), "torch": torch.__version__})
    print(json.dumps(res), flush=True)
dist.destroy_process_group()
