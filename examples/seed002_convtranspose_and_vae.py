"""Tutorial 002: a 10-number convolutional autoencoder, then why sampling needs a VAE.

What the source text does
    It builds a PyTorch autoencoder from two ``nn.Sequential`` blocks: an encoder of four 3x3
    convolutions (16, 32, 64, 64 channels, the last two with stride 2) and a linear layer down to
    a 10-number code, and a decoder that mirrors it with a linear layer and four transposed
    convolutions, ending in a sigmoid. Trained for 20 epochs with mean squared error on MNIST,
    it reconstructs validation digits from only 10 numbers: blurry but clearly recognisable. It
    then points out that the decoder alone cannot generate new digits, because nothing says which
    codes are valid, and that a variational autoencoder (VAE) is built for exactly that.

How this script does it with aekit
    1. ``aekit summary seed-torch-conv``: the layer table of the text's exact network (a preset
       whose defaults are its 20 epochs, Adam and MSE).
    2. ``aekit train --model seed-torch-conv``: trains it; ``metrics.json`` holds the test
       MSE / PSNR next to PCA with the same 10 numbers per image.
    3. ``aekit.load(RUN)``: the scikit-learn-style facade. ``reconstruct`` draws the
       reconstructions, ``transform`` encodes images to their 10 numbers and
       ``inverse_transform`` decodes any 10 numbers we choose.
    4. The sampling experiment: random codes z ~ N(0, I) go through the plain decoder, and so do
       codes from a Gaussian fitted to the codes of real training digits (the best cheap guess).
    5. ``aekit train --model vae --latent-dim 10``: a VAE with the same code size. Its encoder
       outputs a mean and a variance, its loss adds a KL term that pulls the codes towards
       N(0, I), so afterwards every draw from N(0, I) is a valid code.
       ``aekit sample VAE -n 32 -o grid.png`` decodes such draws; the same random z go through
       the plain decoder for the side-by-side figure.

What to look at
    ``seed002_reconstructions.png``: ten test digits over their reconstructions from 10 numbers,
    labelled with the test PSNR (PCA with 10 components is printed for comparison).
    ``seed002_sampling.png``: the same random codes through three decoders. Top row, the plain
    autoencoder fed z ~ N(0, I): almost black, because its codes live far from the origin (the
    script prints their per-unit means and spreads; nothing in its training asked for N(0, I)).
    Middle row, the plain autoencoder fed codes from a per-unit Gaussian fitted to real codes:
    some digits, some blobs, because the fit ignores how the units vary together and where the
    gaps between the digits' clusters lie. Bottom row, the VAE fed z ~ N(0, I): every draw
    decodes to pen-stroke shapes, most of them recognisable digits; short training leaves them
    blurry. ``seed002_vae_samples.png`` is the grid written by ``aekit sample``.
    ``--budget tiny`` (one pass over 300 images) only checks that every step runs; its images
    are noise.

Run: ``python examples/seed002_convtranspose_and_vae.py --budget medium``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial_utils as tu  # noqa: E402

NAME = "seed002_convtranspose_and_vae"
BUDGETS = {  # n_train / n_test None = the whole split; ae_epochs None = the preset's own (20)
    "tiny": {"n_train": 300, "n_test": 100, "ae_epochs": 1, "vae_epochs": 1},
    "medium": {"n_train": None, "n_test": None, "ae_epochs": 8, "vae_epochs": 8},
    "full": {"n_train": None, "n_test": None, "ae_epochs": None, "vae_epochs": 20},
}
LATENT = 10
N_SAMPLES = 10


def main(argv: list[str] | None = None) -> int:
    import aekit

    args = tu.parse_args(NAME, __doc__, argv, {"medium": "(8 epochs each)"})
    b = BUDGETS[args.budget]
    data = tu.load_data("mnist", args.out, args.data == "digits", b["n_train"], b["n_test"])

    tu.aekit("summary", "seed-torch-conv")
    ae_run, vae_run = args.runs / "seed-torch-conv", args.runs / "vae"
    epochs = ["--epochs", b["ae_epochs"]] if b["ae_epochs"] else []
    tu.aekit("train", "--model", "seed-torch-conv", "--dataset", data.name, *epochs,
             "--threads", args.threads, "--seed", 0, "--quiet", "--out", ae_run)
    tu.aekit("train", "--model", "vae", "--latent-dim", LATENT, "--dataset", data.name,
             "--epochs", b["vae_epochs"], "--threads", args.threads, "--seed", 0, "--quiet",
             "--out", vae_run)
    m_ae, m_vae = tu.metrics(ae_run), tu.metrics(vae_run)
    print(f"\nseed-torch-conv: {m_ae['epochs']} epochs, {m_ae['parameters']:,} weights, test MSE "
          f"{m_ae['test']['mse']:.5f} = {m_ae['test']['psnr']:.2f} dB "
          f"(PCA with {LATENT} components: {m_ae['baselines']['pca']['psnr']:.2f} dB)")
    print(f"vae (reconstruction from the posterior mean): {m_vae['epochs']} epochs, test "
          f"{m_vae['test']['psnr']:.2f} dB")

    ae, vae = aekit.load(ae_run), aekit.load(vae_run)
    x = data.x_test[:10]
    figures = [tu.image_rows(
        [("test digits", tu.unit(x)),
         (f"from 10 numbers\n{m_ae['test']['psnr']:.1f} dB", tu.unit(ae.reconstruct(x)))],
        args.out / "seed002_reconstructions.png",
        f"{data.label}: the 10-number ConvTranspose autoencoder")]

    codes = ae.transform(data.x_train[:2000])  # (N, 10) codes of real training digits
    mean, std = codes.mean(0), codes.std(0)
    print("plain autoencoder codes: per-unit mean " + np.array2string(mean, precision=1)
          + ", std " + np.array2string(std, precision=1))
    rng = np.random.default_rng(0)
    z = rng.standard_normal((N_SAMPLES, LATENT)).astype(np.float32)
    rows = [("plain AE\nz ~ N(0, I)", tu.unit(ae.inverse_transform(z))),
            ("plain AE\nz ~ fitted\nGaussian", tu.unit(ae.inverse_transform(mean + std * z))),
            ("VAE\nz ~ N(0, I)", tu.unit(vae.inverse_transform(z)))]
    figures.append(tu.image_rows(rows, args.out / "seed002_sampling.png",
                                 "Decoding random codes: a plain autoencoder vs a VAE"))

    grid = args.out / "seed002_vae_samples.png"
    tu.aekit("sample", vae_run, "-n", 32, "--cols", 8, "--seed", 0, "-o", grid)
    figures.append(grid)
    return tu.done(args, figures)


if __name__ == "__main__":
    sys.exit(main())
