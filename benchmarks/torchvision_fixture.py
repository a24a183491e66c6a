"""Write a torchvision MobileNetV3 weights file and torchvision's own output on a fixed input, so a test
can prove that ``nas arch import-weights`` reproduces torchvision without torchvision installed.

Runs ONLY in a throwaway side environment that has torchvision (never a project dependency: it pulls a
CUDA torch), for example::

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch torchvision
    /tmp/tv/bin/python benchmarks/torchvision_fixture.py --model small --out tests/fixtures/torchvision

It writes two files:

- ``mobilenet_v3_<model>_c<classes>.pth``: exactly ``model.state_dict()`` (what a user feeds to
  ``nas arch import-weights``), with floating-point tensors stored as fp16 to keep the file small;
- ``mobilenet_v3_<model>_c<classes>.io.pt``: the input (fp16, read back as fp32), torchvision's eval-mode
  logits computed *from the fp16 weights read back as fp32* (so both sides run the same numbers), and
  the versions that produced them.

The network is seeded and randomly initialised, and its BatchNorm layers get random affine parameters
and running statistics (a fresh network's are 1/0/0/1 and would hide a wrong BN mapping or eps).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torchvision
from torchvision.models import mobilenet_v3_large, mobilenet_v3_small


def build(model: str, classes: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = (mobilenet_v3_small if model == "small" else mobilenet_v3_large)(num_classes=classes)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            elif isinstance(m, torch.nn.Linear):
                torch.nn.init.normal_(m.weight, 0, 0.05, generator=g)  # torchvision's 0.01 gives tiny logits
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["small", "large"], default="small")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/torchvision"))
    args = parser.parse_args()

    net = build(args.model, args.classes, args.seed)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    x = torch.randn(args.batch, 3, args.resolution, args.resolution,
                    generator=torch.Generator().manual_seed(args.seed + 2)).half()
    with torch.no_grad():
        logits = net(x.float())
    stem = f"mobilenet_v3_{args.model}_c{args.classes}"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(half, args.out / f"{stem}.pth")
    torch.save({"input": x, "logits": logits, "model": f"mobilenet_v3_{args.model}", "num_classes": args.classes,
                "seed": args.seed, "torch": str(torch.__version__), "torchvision": str(torchvision.__version__)},
               args.out / f"{stem}.io.pt")
    size = sum((args.out / f).stat().st_size for f in (f"{stem}.pth", f"{stem}.io.pt"))
    print(f"wrote {args.out}/{stem}.pth and .io.pt ({size / 1e6:.2f} MB); logits std {float(logits.std()):.3f}")


if __name__ == "__main__":
    main()
