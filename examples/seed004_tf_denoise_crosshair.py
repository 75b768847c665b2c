"""Tutorial 004: the TensorFlow denoising autoencoder (resize-convolution decoder) and crosshair
removal.

What the source text does
    It explains convolutional autoencoders (wide-and-thin images squeezed to narrow-and-thick
    feature maps) and uses them for restoration: train on a corrupted input with the clean image
    as the target, so the network learns to undo the corruption, e.g. to remove a crosshair
    drawn over a picture. Its TensorFlow model for MNIST: three 3x3 convolutions (32, 32, 16
    filters) each followed by 2x2 max-pooling (28 -> 14 -> 7 -> 4); a decoder that avoids the
    checkerboard artefacts of transposed convolutions by nearest-neighbour resizing (to 7, 14,
    28) followed by a convolution; a final convolution to one logit map, trained with sigmoid
    cross-entropy, Adam lr 0.001, 100 epochs, batch 200, the inputs noised with
    ``clip(x + 0.5 * N(0, 1), 0, 1)``.

How this script does it with aekit
    1. ``aekit summary seed-tf-conv``: the text's network layer by layer (30,689 weights).
    2. ``aekit train --model seed-tf-conv --corrupt gaussian:0.5``: the preset's defaults are
       the text's loss (``bce`` = sigmoid cross-entropy on the logits), Adam lr 1e-3, batch 200
       and 100 epochs; ``--corrupt`` draws the text's noise afresh for every batch.
       ``metrics.json`` reports the test PSNR of the output and of the noisy input.
    3. ``aekit denoise RUN noisy/ -o denoised/``: the denoiser applied to PNG files.
    4. ``aekit train --model seed-tf-conv --corrupt mask:crosshair``: the same network trained
       to fill in a 2-pixel horizontal + vertical bar placed at random in the image's middle half
       (the removed pixels are set to 0); ``aekit inpaint RUN clean/ --mask-spec mask:crosshair
       -o filled/`` draws such a crosshair on each image (saving the masks in ``filled/masks/``),
       runs the model and keeps every pixel outside the crosshair exactly.

What to look at
    ``seed004_denoising.png``: noisy test digits, the network's output and the clean originals,
    with the PSNR of each row. The noise is gone and the digits are recognisable, but soft:
    everything passes through a 4x4x16 bottleneck, so thin strokes are smoothed.
    ``seed004_crosshair.png``: the digits with the crosshair in red (the pixels the model has to
    invent), the filled-in result and the originals; strokes cut by the bars are continued
    across them. The title compares the PSNR over the crosshair pixels with leaving them black.
    ``seed004_loss.png``: training and validation cross-entropy of both models.
    ``--budget tiny`` (300 images, one epoch) only checks that every step runs.

Run: ``python examples/seed004_tf_denoise_crosshair.py --budget medium``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial_utils as tu  # noqa: E402

NAME = "seed004_tf_denoise_crosshair"
BUDGETS = {  # n_train / n_test None = the whole split; epochs None = the preset's own (100)
    "tiny": {"n_train": 300, "n_test": 100, "epochs": 1},
    "medium": {"n_train": None, "n_test": None, "epochs": 30},
    "full": {"n_train": None, "n_test": None, "epochs": None},
}
NOISE = 0.5


def main(argv: list[str] | None = None) -> int:
    args = tu.parse_args(NAME, __doc__, argv, {"medium": "(30 epochs instead of 100)"})
    b = BUDGETS[args.budget]
    data = tu.load_data("mnist", args.out, args.data == "digits", b["n_train"], b["n_test"])
    epochs = ["--epochs", b["epochs"]] if b["epochs"] else []
    threads = ["--threads", args.threads]

    tu.aekit("summary", "seed-tf-conv")
    runs = {"denoise": args.runs / "denoise", "crosshair": args.runs / "crosshair"}
    for task, spec in (("denoise", f"gaussian:{NOISE}"), ("crosshair", "mask:crosshair")):
        tu.aekit("train", "--model", "seed-tf-conv", "--corrupt", spec, "--dataset", data.name,
                 *epochs, *threads, "--seed", 0, "--quiet", "--out", runs[task])
    m = {task: tu.metrics(run) for task, run in runs.items()}
    for task, r in m.items():
        before, after = r["corrupted_input"], r["test"]
        print(f"{task}: {r['epochs']} epochs ({r['train_seconds']:.0f} s), test "
              f"{before['psnr']:.2f} dB corrupted input -> {after['psnr']:.2f} dB output "
              f"(SSIM {before['ssim']:.3f} -> {after['ssim']:.3f})")

    x = data.x_test[:10]
    clean = tu.unit(x)
    clean_paths = tu.write_pngs(x, args.images / "clean")

    # denoising through the command line
    rng = np.random.default_rng(0)
    noisy = np.rint(np.clip(clean + NOISE * rng.standard_normal(clean.shape), 0, 1) * 255)
    tu.write_pngs(noisy.astype(np.uint8), args.images / "noisy")
    tu.aekit("denoise", runs["denoise"], args.images / "noisy", "-o", args.images / "denoised",
             *threads)
    denoised = tu.read_pngs([args.images / "denoised" / p.name for p in clean_paths])
    before, after = tu.psnr(noisy / 255, clean), tu.psnr(denoised, clean)
    print(f"aekit denoise on {len(x)} PNGs: {before:.2f} dB -> {after:.2f} dB")
    figures = [tu.image_rows(
        [(f"noisy\n{before:.1f} dB", noisy / 255), (f"denoised\n{after:.1f} dB", denoised),
         ("clean", clean)],
        args.out / "seed004_denoising.png",
        f"{data.label}: seed-tf-conv denoiser, Gaussian noise sigma {NOISE}")]

    # crosshair removal through the command line
    filled_dir = args.images / "filled"
    tu.aekit("inpaint", runs["crosshair"], args.images / "clean", "--mask-spec", "mask:crosshair",
             "--seed", 0, "-o", filled_dir, *threads)
    filled = tu.read_pngs([filled_dir / p.name for p in clean_paths])
    hole = tu.read_pngs([filled_dir / "masks" / p.name for p in clean_paths]) > 0.5  # white=fill
    model_db = tu.psnr(filled[hole], clean[hole])
    black_db = tu.psnr(np.zeros(int(hole.sum())), clean[hole])
    print(f"aekit inpaint, crosshair pixels only ({int(hole.sum())} px): {model_db:.2f} dB "
          f"(left black: {black_db:.2f} dB)")
    shown = np.repeat(clean[..., None], 3, axis=-1)  # (N, H, W, 3) grey -> RGB
    shown[hole] = (0.9, 0.1, 0.1)  # the crosshair in red
    figures.append(tu.image_rows(
        [("crosshair", shown), ("filled in", filled), ("original", clean)],
        args.out / "seed004_crosshair.png",
        f"Crosshair removal: {model_db:.1f} dB on the crosshair pixels "
        f"(left black: {black_db:.1f} dB)"))

    fig, ax = tu.plt.subplots(figsize=(6, 4))
    for (task, run), colour in zip(runs.items(), ("tab:blue", "tab:orange"), strict=True):
        h = tu.history(run)
        ax.plot(h["epoch"], h["train_loss"], "--", color=colour, label=f"{task} training")
        ax.plot(h["epoch"], h["val_loss"], "-o", ms=3, color=colour, label=f"{task} validation")
    ax.set(xlabel="epoch", ylabel="sigmoid cross-entropy per pixel",
           title="seed-tf-conv: loss per epoch")
    ax.legend()
    figures.append(tu.save(fig, args.out / "seed004_loss.png"))
    return tu.done(args, figures)


if __name__ == "__main__":
    sys.exit(main())
