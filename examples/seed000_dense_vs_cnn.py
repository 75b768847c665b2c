"""Tutorial 000: a dense autoencoder against a convolutional one on MNIST.

What the source text does
    It introduces the autoencoder as a network whose target is its own input, squeezed through a
    small hidden layer (like describing a face to a friend in a handful of words). A first model
    flattens each 28x28 digit, maps it to a few hidden units and back to 784 pixels, trained with
    mean squared error; a second model does the same job with convolutions, pooling and
    upsampling. It then compares the input digits with their reconstructions.

How this script does it with aekit
    1. ``aekit train --model dense --latent-dim 32``: flatten -> Linear(784, 32) + ReLU ->
       Linear(32, 784) -> sigmoid, MSE loss, Adam. The text gives no sizes; 32 hidden units and
       10 epochs are our choice.
    2. ``aekit train --model conv --latent-dim 32 --widths 8,16``: two stride-2 3x3 convolutions
       (28 -> 14 -> 7), a dense 32-number code, and a decoder of nearest-neighbour upsampling +
       3x3 convolution (the text's "upsampling layer that repeats rows and columns"). The widths
       are chosen so both models have the same code size and about the same number of weights,
       which makes the comparison fair: only the architecture differs.
    3. ``aekit summary RUN`` prints each model's layer table; ``metrics.json`` holds the test
       MSE/PSNR/SSIM and ``history.csv`` the loss per epoch.
    4. ``aekit.load(RUN).reconstruct(images)`` encodes and decodes ten test digits for the figure.

What to look at
    ``seed000_reconstructions.png``: the top row is ten test digits, then the dense and the
    convolutional reconstruction of each. The convolutional decoder draws smoother, better
    connected strokes. ``seed000_loss.png``: training (dashed) and validation (solid) MSE per
    epoch for both models, on a log scale; the lower curve is the better compressor at the same
    code size. With ``--budget tiny`` both models have seen a few hundred images once, so the
    reconstructions are still grey blurs: that budget only checks that everything runs.

Run: ``python examples/seed000_dense_vs_cnn.py --budget full``
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial_utils as tu  # noqa: E402

NAME = "seed000_dense_vs_cnn"
BUDGETS = {  # n_train / n_test None = the whole split
    "tiny": {"n_train": 300, "n_test": 100, "epochs": 1},
    "medium": {"n_train": 3000, "n_test": None, "epochs": 5},
    "full": {"n_train": None, "n_test": None, "epochs": 10},
}
MODELS = {  # label -> aekit train flags
    "dense": ["--model", "dense", "--latent-dim", "32"],
    "conv": ["--model", "conv", "--latent-dim", "32", "--widths", "8,16"],
}


def main(argv: list[str] | None = None) -> int:
    import aekit

    args = tu.parse_args(NAME, __doc__, argv)
    b = BUDGETS[args.budget]
    data = tu.load_data("mnist", args.out, args.data == "digits", b["n_train"], b["n_test"])

    results = {}
    for label, flags in MODELS.items():
        run = args.runs / label
        tu.aekit("train", *flags, "--dataset", data.name, "--epochs", b["epochs"],
                 "--threads", args.threads, "--seed", 0, "--quiet", "--out", run)
        table = tu.aekit("summary", run, capture=True)
        params = next(int(line.split(":")[1].replace(",", "")) for line in table.splitlines()
                      if line.startswith("Total params"))
        results[label] = {"run": run, "params": params, **tu.metrics(run)["test"]}

    print(f"\n{'model':8s} {'params':>8s} {'test MSE':>9s} {'PSNR dB':>8s} {'SSIM':>6s}")
    for label, r in results.items():
        print(f"{label:8s} {r['params']:8,d} {r['mse']:9.5f} {r['psnr']:8.2f} {r['ssim']:6.3f}")

    x = data.x_test[:10]
    rows = [("test digits", tu.unit(x))]
    for label, r in results.items():
        recon = tu.unit(aekit.load(r["run"]).reconstruct(x))
        rows.append((f"{label}\n{r['psnr']:.1f} dB", recon))
    title = f"{data.label}: dense vs convolutional autoencoder, same 32-number code"
    figures = [tu.image_rows(rows, args.out / "seed000_reconstructions.png", title)]

    fig, ax = tu.plt.subplots(figsize=(6, 4))
    for (label, r), colour in zip(results.items(), ("tab:blue", "tab:orange"), strict=True):
        h = tu.history(r["run"])
        ax.plot(h["epoch"], h["train_loss"], "--", color=colour, label=f"{label} train")
        ax.plot(h["epoch"], h["val_loss"], "-o", color=colour, label=f"{label} validation")
    ax.set(xlabel="epoch", ylabel="MSE per pixel", yscale="log",
           title="Reconstruction loss per epoch")
    ax.legend()
    figures.append(tu.save(fig, args.out / "seed000_loss.png"))
    return tu.done(args, figures)


if __name__ == "__main__":
    sys.exit(main())
