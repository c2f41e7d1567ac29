"""PyTorch twin of tempered's bench workload: the reference CNN, batch 128, random 28x28x1 data.

Prints one JSON object per line: {"engine": "pytorch", "threads", "advTrainExamplesPerSec", "pgd20EvalExamplesPerSec",
"advTrainExamplesPerCpuSec", "pgd20EvalExamplesPerCpuSec"} (the CPU-time rates count this process's CPU time only).
Usage: python3 bench/torch_bench.py --threads 1 --seconds 8 [--model reference|small-resnet]
Exits with code 3 and a message on stderr when torch cannot be imported.
"""

import argparse
import json
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as err:  # pragma: no cover - depends on the machine
    print(f"torch not importable from {sys.executable}: {err}", file=sys.stderr)
    sys.exit(3)


def reference_cnn(num_classes: int = 10) -> nn.Module:
    """conv 3x3x32 relu, maxpool 2, conv 3x3x64 relu, maxpool 2, flatten, dense 128 relu, dense logits."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


class SmallResNet(nn.Module):
    """tensor/models/small-resnet.ts: conv 3x3 stem, per stage a block (conv 3x3 relu, conv 3x3, + shortcut with
    a 1x1 stride-2 projection where the shape changes, relu), global average pooling, dense logits."""

    def __init__(self, widths=(16, 32, 64), num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1)
        blocks, channels = [], widths[0]
        for stage, filters in enumerate(widths):
            stride = 2 if stage > 0 else 1
            proj = nn.Conv2d(channels, filters, 1, stride=stride) if stride != 1 or channels != filters else None
            blocks.append(
                nn.ModuleDict(
                    {
                        "conv1": nn.Conv2d(channels, filters, 3, stride=stride, padding=1),
                        "conv2": nn.Conv2d(filters, filters, 3, padding=1),
                        **({"proj": proj} if proj is not None else {}),
                    }
                )
            )
            channels = filters
        self.blocks = nn.ModuleList(blocks)
        self.logits = nn.Linear(channels, num_classes)

    def forward(self, x):
        h = F.relu(self.stem(x))
        for b in self.blocks:
            y = b["conv2"](F.relu(b["conv1"](h)))
            h = F.relu(y + (b["proj"](h) if "proj" in b else h))
        return self.logits(h.mean(dim=(2, 3)))


def pgd_linf(model, x, y, eps, step, steps):
    """L-inf PGD with a random start; gradients w.r.t. the input only."""
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = adv + step * grad.sign()
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seconds", type=float, default=8.0, help="time budget per measurement")
    p.add_argument("--min-iters", type=int, default=2)
    p.add_argument("--eps", type=float, default=None, help="default 0.1 (reference), 8/255 (small-resnet)")
    p.add_argument("--model", choices=["reference", "small-resnet"], default="reference")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SmallResNet() if args.model == "small-resnet" else reference_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.01) if args.optimizer == "sgd" else torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(args.batch, 3, 32, 32) if args.model == "small-resnet" else torch.rand(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    eps = args.eps if args.eps is not None else (8 / 255 if args.model == "small-resnet" else 0.1)

    def adv_train_step():
        model.eval()
        adv = pgd_linf(model, x, y, eps, eps / 4, 7)
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(adv), y)
        loss.backward()
        opt.step()

    def eval_step():
        model.eval()
        adv = pgd_linf(model, x, y, eps, eps / 4, 20)
        with torch.no_grad():
            model(adv).argmax(1)

    def measure(step):
        step()  # warm-up
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while n < args.min_iters or time.perf_counter() - t0 < args.seconds:
            step()
            n += 1
        return n * args.batch / (time.perf_counter() - t0), n * args.batch / (time.process_time() - c0)

    train = measure(adv_train_step)
    ev = measure(eval_step)
    print(
        json.dumps(
            {
                "engine": "pytorch",
                "threads": torch.get_num_threads(),
                "advTrainExamplesPerSec": round(train[0], 2),
                "pgd20EvalExamplesPerSec": round(ev[0], 2),
                "advTrainExamplesPerCpuSec": round(train[1], 2),
                "pgd20EvalExamplesPerCpuSec": round(ev[1], 2),
                "version": torch.__version__,
                "model": args.model,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
