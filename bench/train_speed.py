"""Training speed: aekit's loop vs a plain tutorial PyTorch loop, same architecture, same run.

The tutorial loop is what the seeds write: float32 tensors in a TensorDataset, a DataLoader with
shuffle and batch 128, Adam, MSE. aekit's loop keeps uint8 data and batches by indexing. Epochs of
the two alternate (A B A B ...) so machine load affects both alike. Prints the img/s ratio.

    python bench/train_speed.py [--model seed-keras-conv] [--epochs 2] [--limit 20000]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from aekit.config import TrainConfig
from aekit.data import load_dataset
from aekit.device import setup_threads
from aekit.models import build_model, default_config
from aekit.train.loop import fit
from bench.common import print_table, write_result


def tutorial_epoch(model: nn.Module, x_float: torch.Tensor, batch_size: int, opt) -> float:
    """One epoch exactly as a tutorial writes it; returns seconds."""
    loader = DataLoader(TensorDataset(x_float, x_float), batch_size=batch_size, shuffle=True)
    loss_fn = nn.MSELoss()
    t0 = time.perf_counter()
    for xb, yb in loader:
        opt.zero_grad()
        loss = loss_fn(torch.sigmoid(model.decode(model.encode(xb))), yb)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="seed-keras-conv")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=20000, help="training images per epoch")
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    setup_threads()
    ds = load_dataset(args.dataset)
    x_u8 = ds.train_x[: args.limit]
    x_float = x_u8.float() / 255.0  # the tutorial's preprocessing: everything as float32 up front
    torch.manual_seed(0)
    ours, plain = build_model(default_config(args.model)), build_model(default_config(args.model))
    plain_opt = torch.optim.Adam(plain.parameters(), lr=1e-3)
    cfg = TrainConfig(dataset=args.dataset, epochs=1, batch_size=args.batch_size, lr=1e-3,
                      schedule="constant", val_fraction=0.0)
    aekit_s, plain_s = 0.0, 0.0
    for epoch in range(args.epochs):
        cfg_e = TrainConfig(**{**cfg.to_dict(), "seed": epoch, "image_size": None})
        aekit_s += fit(ours, x_u8, cfg_e, progress=False).train_seconds
        ours.train()
        plain_s += tutorial_epoch(plain, x_float, args.batch_size, plain_opt)
    n = args.epochs * len(x_u8)
    aekit_ips = args.epochs * (len(x_u8) // args.batch_size) * args.batch_size / aekit_s
    plain_ips = n / plain_s
    ratio = aekit_ips / plain_ips
    print_table(["loop", "img/s", "seconds"],
                [["aekit", round(aekit_ips), round(aekit_s, 1)],
                 ["tutorial DataLoader", round(plain_ips), round(plain_s, 1)]])
    print(f"speed-up: {ratio:.2f}x  (target >= 2x)")
    write_result("train_speed", {"model": args.model, "images_per_epoch": len(x_u8),
                                 "epochs": args.epochs, "batch_size": args.batch_size,
                                 "aekit_images_per_second": aekit_ips,
                                 "tutorial_images_per_second": plain_ips, "ratio": ratio})


if __name__ == "__main__":
    main()
