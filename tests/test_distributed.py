"""Scale-out: archdsl emits plain PyTorch, so DistributedDataParallel trains it as any module.
Two processes (gloo on CPU) train a small resnet18 for a few steps on different data; the
gradients are all-reduced, so both ranks end with the same parameters."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import torch

from conftest import ROOT

WORKER = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist
    import archdsl
    from torch.nn.parallel import DistributedDataParallel as DDP

    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)  # the same initial weights on both ranks (DDP also broadcasts rank 0's)
    model = archdsl.build(sys.argv[1], resolution=32, widths=[8, 16, 16, 16], stem_width=8, classes=10)
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    data = torch.Generator().manual_seed(100 + rank)  # each rank its own batches
    for step in range(3):
        x = torch.randn(4, 3, 32, 32, generator=data)
        y = torch.randint(0, 10, (4,), generator=data)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()
    # parameters: batch-norm running statistics are each rank's own (SyncBatchNorm shares them)
    torch.save(dict(model.named_parameters()), sys.argv[2] + f".rank{rank}")
    dist.destroy_process_group()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_end_with_identical_weights(tmp_path):
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    out = str(tmp_path / "weights")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(ROOT / "specs" / "resnet18.arch"), out],
                              env={**os.environ, **env, "RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    a, b = (torch.load(f"{out}.rank{r}", weights_only=True) for r in range(2))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the weights moved: training happened (the stem conv of a fresh build differs)
    torch.manual_seed(0)
    import archdsl

    fresh = archdsl.build(ROOT / "specs" / "resnet18.arch", resolution=32, widths=[8, 16, 16, 16], stem_width=8,
                          classes=10).state_dict()
    assert a.keys() == {k for k, v in fresh.items() if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))}
    assert not torch.equal(fresh["stem.conv1.weight"], a["stem.conv1.weight"])
