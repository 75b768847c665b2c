"""Tutorial 001: vanilla, deep, convolutional and denoising autoencoders on MNIST.

What the source text does
    It frames autoencoders as learned lossy compression (like JPEG, but learned from the data)
    and builds four of them on MNIST, all trained with Adam on the squared reconstruction error:
    a vanilla autoencoder (784 -> 32 -> 784, ReLU code, 50 epochs), a deep one
    (784-512-256-128-64 and back), a convolutional one (convolution + max-pooling down,
    convolution + upsampling back up) and finally the same convolutional network trained as a
    denoiser: Gaussian noise is added to the inputs (clipped to [0, 1]) while the targets stay
    clean. It shows inputs over reconstructions for each, and noisy digits next to cleaned ones.

How this script does it with aekit
    1. ``aekit train --model seed-dense``: the vanilla network exactly as the text builds it
       (a preset; its defaults are the text's 50 epochs, Adam, lr 1e-3, MSE). The text gives no
       batch size, so every model here uses ``--batch-size 32``, Keras's default.
    2. ``aekit train --model seed-deep``: the 784-512-256-128-64 stack and its mirror.
    3. ``aekit train --model seed-keras-conv --epochs 50``: the text describes but does not list
       its convolutional layers; this preset is the same Keras pattern (Conv16-pool-Conv8-pool-
       Conv4-pool down to a 4x4x4 code, Conv + UpSampling back).
    4. ``aekit train --model seed-keras-conv --corrupt gaussian:0.5``: the denoiser. aekit draws
       fresh noise ``clip(x + 0.5 * N(0, 1), 0, 1)`` for every batch and keeps the clean image as
       the target. The text does not state its noise level; 0.5 is the usual choice.
    5. ``aekit denoise RUN noisy/ -o denoised/``: the trained denoiser applied to PNG files of
       noisy test digits, as you would use it on your own images.
    ``metrics.json`` of each run gives the test MSE / PSNR (the denoiser's run also the PSNR of
    the noisy input); ``aekit.load(RUN).reconstruct(images)`` gives the reconstructions drawn.

What to look at
    ``seed001_reconstructions.png``: ten test digits over the vanilla, deep and convolutional
    reconstructions, each row labelled with its test PSNR (higher is better). Check the text's
    claims against the numbers: on the 8,000 training digits used here the deep model's digits
    look cleaner, but its error is not lower than the vanilla one's. Part of the reason is
    printed in the table: the text puts a ReLU on
    the 64-number code, and code units that are zero for every image ("dead") carry nothing.
    The tiny convolutional preset (3,805 weights, a 64-number code) is smooth but loses thin
    strokes; its strength is its size, not its score.
    ``seed001_loss.png``: validation MSE per epoch of the three. ``seed001_denoising.png``:
    noisy inputs, the denoiser's output and the clean originals.
    ``--budget tiny`` (one pass over 300 images) only checks that every step runs.

Run: ``python examples/seed001_four_autoencoders.py --budget full``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial_utils as tu  # noqa: E402

NAME = "seed001_four_autoencoders"
BUDGETS = {  # n_train / n_test None = the whole split
    "tiny": {"n_train": 300, "n_test": 100, "epochs": 1},
    "medium": {"n_train": None, "n_test": None, "epochs": 20},
    "full": {"n_train": None, "n_test": None, "epochs": 50},
}
BATCH = 32  # the text gives no batch size; 32 is what Keras's fit() uses then
MODELS = {  # label -> aekit train flags
    "vanilla": ["--model", "seed-dense"],
    "deep": ["--model", "seed-deep"],
    "conv": ["--model", "seed-keras-conv"],
    "denoising": ["--model", "seed-keras-conv", "--corrupt", "gaussian:0.5"],
}
NOISE = 0.5


def main(argv: list[str] | None = None) -> int:
    import aekit

    args = tu.parse_args(NAME, __doc__, argv, {"medium": "(20 epochs instead of 50)"})
    b = BUDGETS[args.budget]
    data = tu.load_data("mnist", args.out, args.data == "digits", b["n_train"], b["n_test"])

    runs, m = {}, {}
    for label, flags in MODELS.items():
        runs[label] = args.runs / label
        tu.aekit("train", *flags, "--dataset", data.name, "--epochs", b["epochs"],
                 "--batch-size", BATCH, "--threads", args.threads, "--seed", 0, "--quiet",
                 "--out", runs[label])
        m[label] = tu.metrics(runs[label])

    # A ReLU code unit that is 0 for every image carries nothing: count them on test images.
    dead = {}
    for label, run in runs.items():
        z = aekit.load(run).transform(data.x_test[:1000])
        z = z.reshape(len(z), -1)  # (N, code size), also for the (4, 4, 4) conv code
        dead[label] = f"{int((z.max(0) <= 0).sum())}/{z.shape[1]}"
    print(f"\n{'model':10s} {'epochs':>6s} {'params':>9s} {'test MSE':>9s} {'PSNR dB':>8s} "
          f"{'dead code units':>16s}")
    for label, r in m.items():
        print(f"{label:10s} {r['epochs']:6d} {r['parameters']:9,d} {r['test']['mse']:9.5f} "
              f"{r['test']['psnr']:8.2f} {dead[label]:>16s}")
    noisy_db = m["denoising"]["corrupted_input"]["psnr"]
    print(f"denoising: noisy test input {noisy_db:.2f} dB -> denoised "
          f"{m['denoising']['test']['psnr']:.2f} dB (whole test split, noise {NOISE})")

    x = data.x_test[:10]
    rows = [("test digits", tu.unit(x))]
    for label in ("vanilla", "deep", "conv"):
        recon = tu.unit(aekit.load(runs[label]).reconstruct(x))
        rows.append((f"{label}\n{m[label]['test']['psnr']:.1f} dB", recon))
    figures = [tu.image_rows(rows, args.out / "seed001_reconstructions.png",
                             f"{data.label}: inputs and three autoencoders' reconstructions")]

    fig, ax = tu.plt.subplots(figsize=(6, 4))
    for label in ("vanilla", "deep", "conv"):
        h = tu.history(runs[label])
        ax.plot(h["epoch"], h["val_loss"], "-o", ms=3, label=label)
    ax.set(xlabel="epoch", ylabel="validation MSE per pixel", yscale="log",
           title="Validation loss per epoch")
    ax.legend()
    figures.append(tu.save(fig, args.out / "seed001_loss.png"))

    # Denoising through the command line, on PNG files, the way it is used on new images.
    rng = np.random.default_rng(0)
    clean = tu.unit(x)
    noisy = np.clip(clean + NOISE * rng.standard_normal(clean.shape), 0, 1)
    noisy_u8 = np.rint(noisy * 255).astype(np.uint8)
    paths = tu.write_pngs(noisy_u8, args.images / "noisy")
    tu.aekit("denoise", runs["denoising"], args.images / "noisy", "-o", args.images / "denoised",
             "--threads", args.threads)
    denoised = tu.read_pngs([args.images / "denoised" / p.name for p in paths])
    before, after = tu.psnr(noisy_u8 / 255.0, clean), tu.psnr(denoised, clean)
    print(f"aekit denoise on these {len(x)} PNGs: {before:.2f} dB -> {after:.2f} dB")
    rows = [(f"noisy\n{before:.1f} dB", noisy_u8 / 255.0), (f"denoised\n{after:.1f} dB", denoised),
            ("clean", clean)]
    figures.append(tu.image_rows(rows, args.out / "seed001_denoising.png",
                                 f"{data.label}: denoising autoencoder, Gaussian noise "
                                 f"sigma {NOISE}"))
    return tu.done(args, figures)


if __name__ == "__main__":
    sys.exit(main())
