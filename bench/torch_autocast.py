#!/usr/bin/env python3
"""The PyTorch peer under bf16 autocast: runs ../shared/peers/bench_torch.py
unchanged, inside one `torch.autocast("cpu", dtype=torch.bfloat16)` context
(matmuls and convolutions in bf16 through oneDNN, weights and optimizer in
f32), the comparison for nnrun's `training.mixed_precision: mixed_bfloat16`.

  PY bench/torch_autocast.py WORKLOAD [--seed N]   (PY: the peers' venv)

Prints bench_torch.py's JSON line, with "autocast": "bfloat16" added.
The weight-cast cache is off: it lives until the context exits, so with
one context around the whole run every step would reuse the first step's
bf16 weights (the model does not learn).
"""
import contextlib
import io
import json
import os
import runpy
import sys

import torch

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peers", "bench_torch.py")

# The test outputs come back in bf16 under autocast; numpy has no bf16.
_numpy = torch.Tensor.numpy
torch.Tensor.numpy = lambda self, *a, **k: _numpy(self.float() if self.dtype == torch.bfloat16 else self, *a, **k)


def main() -> int:
    sys.argv = [SCRIPT] + sys.argv[1:]
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
        try:
            runpy.run_path(SCRIPT, run_name="__main__")
        except SystemExit as e:
            code = e.code or 0
    for line in out.getvalue().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            print(line)
            continue
        d["autocast"] = "bfloat16"
        print(json.dumps(d))
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
