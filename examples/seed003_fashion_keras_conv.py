"""Tutorial 003: the (4, 4, 4) Keras convolutional autoencoder on Fashion-MNIST, then two uses.

What the source text does
    It presents the autoencoder as non-linear dimension reduction (like PCA, but without PCA's
    ordered, truncatable components) trained with the squared reconstruction error, and lists
    uses: denoising, colorization, pretraining a classifier when labels are scarce, and anomaly
    detection by reconstruction error. Its code is a Keras model for Fashion-MNIST: Conv16 ->
    pool -> Conv8 -> pool -> Conv4 -> pool gives a (4, 4, 4) code of 64 numbers, and Conv8 ->
    up -> Conv8 -> up -> Conv16 ('valid', 16 -> 14) -> up -> Conv1 + sigmoid decodes it. It
    prints the model summary, trains 25 epochs with batch 128 (Adam, MSE) and plots the training
    history.

How this script does it with aekit
    1. ``aekit summary seed-keras-conv``: the Keras-style layer table (3,805 weights), also saved
       as ``seed003_summary.txt``.
    2. ``aekit train --model seed-keras-conv --dataset fashion-mnist``: the preset's defaults
       are the text's 25 epochs, batch 128, Adam lr 1e-3 and MSE. ``history.csv`` has the
       training and validation loss per epoch (the validation images are held out of the
       training split; the text validates on the test split).
    3. Anomaly detection, the text's recipe: ``aekit anomaly fit --normal-class 0 --model
       seed-keras-conv --restore none --score mse`` trains the same network on T-shirts/tops
       only and sets a threshold on held-out T-shirts (5% false alarms); ``aekit anomaly score
       RUN --dataset ... -o scores.csv`` scores every test image by its reconstruction MSE.
       (``aekit anomaly fit`` without ``--score``/``--restore`` uses a stronger default.)
    4. Pretraining for few labels: ``aekit finetune RUN --labels 100`` keeps the encoder, adds a
       linear classification layer and fine-tunes both on 10 labelled images per class. For
       comparison the same command runs on a copy of the network whose weights were reset to
       random (saved with ``aekit.load(RUN)`` + ``.save``), and ``--freeze-encoder`` trains the
       head alone on the pretrained features.

What to look at
    ``seed003_loss.png``: training and validation MSE per epoch, the text's history plot.
    ``seed003_reconstructions.png``: test clothes over their reconstructions from 64 numbers:
    shapes and brightness survive, prints and textures do not.
    ``seed003_anomaly.png``: the reconstruction error of every test image, one box per class;
    the dashed line is the threshold. T-shirts sit lowest, as they should; shoes and bags sit
    highest, but shirts and dresses, which look like T-shirts, overlap them heavily (the script
    prints the AUROC of T-shirts against each class). Reconstruction error measures "hard to
    draw for this network", not "a different kind of thing"; the AUROC in the title sums it up.
    ``seed003_fewlabels.png``: test accuracy from 100 labels (10 per class) with the pretrained
    encoder fine-tuned, with the head alone on the pretrained features, and with the same
    network started from random weights. One draw of labels; expect a point or two of spread.
    ``--budget tiny`` (600 images, one epoch) only checks that every step runs.

Run: ``python examples/seed003_fashion_keras_conv.py --budget medium``
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial_utils as tu  # noqa: E402

NAME = "seed003_fashion_keras_conv"
BUDGETS = {  # n_train / n_test None = the whole split; epochs None = the preset's own (25)
    "tiny": {"n_train": 600, "n_test": 200, "epochs": 1, "labels": 50, "steps": 30},
    "medium": {"n_train": 15000, "n_test": None, "epochs": None, "labels": 100, "steps": 300},
    "full": {"n_train": None, "n_test": None, "epochs": None, "labels": 100, "steps": 300},
}
NORMAL = 0  # T-shirt/top


def main(argv: list[str] | None = None) -> int:
    import torch

    import aekit

    args = tu.parse_args(NAME, __doc__, argv, {"medium": "(25 epochs on 15,000 images)"})
    b = BUDGETS[args.budget]
    data = tu.load_data("fashion", args.out, args.data == "digits", b["n_train"], b["n_test"])
    epochs = ["--epochs", b["epochs"]] if b["epochs"] else []
    threads = ["--threads", args.threads]

    # 1. the summary
    table = tu.aekit("summary", "seed-keras-conv", capture=True)
    (args.out / "seed003_summary.txt").write_text(table)

    # 2. train and plot the history
    run = args.runs / "seed-keras-conv"
    tu.aekit("train", "--model", "seed-keras-conv", "--dataset", data.name, *epochs, *threads,
             "--seed", 0, "--quiet", "--out", run)
    m = tu.metrics(run)
    print(f"\nseed-keras-conv: {m['epochs']} epochs, {m['train_seconds']:.0f} s; test MSE "
          f"{m['test']['mse']:.5f} = {m['test']['psnr']:.2f} dB, SSIM {m['test']['ssim']:.3f} "
          f"(PCA with 64 components: {m['baselines']['pca']['psnr']:.2f} dB)")
    h = tu.history(run)
    fig, ax = tu.plt.subplots(figsize=(6, 4))
    ax.plot(h["epoch"], h["train_loss"], "-o", ms=3, label="training")
    ax.plot(h["epoch"], h["val_loss"], "-o", ms=3, label="validation")
    ax.set(xlabel="epoch", ylabel="MSE per pixel", title=f"seed-keras-conv on {data.label}")
    ax.legend()
    figures = [tu.save(fig, args.out / "seed003_loss.png")]
    x = data.x_test[:10]
    recon = tu.unit(aekit.load(run).reconstruct(x))
    figures.append(tu.image_rows(
        [("test images", tu.unit(x)), ("from 64\nnumbers", recon)],
        args.out / "seed003_reconstructions.png", f"{data.label}: the (4, 4, 4) Keras autoencoder"))

    # 3. anomaly detection by reconstruction error
    det, scores_csv = args.runs / "anomaly", args.out / "anomaly_scores.csv"
    tu.aekit("anomaly", "fit", "--dataset", data.name, "--normal-class", NORMAL,
             "--model", "seed-keras-conv", "--latent-dim", 64, "--widths", "",
             "--restore", "none", "--score", "mse", "--epochs", b["epochs"] or 25, *threads,
             "--quiet", "--out", det)
    tu.aekit("anomaly", "score", det, "--dataset", data.name, "-o", scores_csv, *threads)
    a = tu.metrics(det)["anomaly"]
    with open(scores_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    score = np.array([float(r["score"]) for r in rows])
    label = np.array([int(r["label"]) for r in rows])
    print(f"anomaly detection, normal = {data.classes[NORMAL]}: test AUROC {a['test_auroc']:.4f}; "
          f"flagged {a['test_normal_flagged']:.1%} of normal and "
          f"{a['test_anomalies_flagged']:.1%} of anomalous test images")
    from sklearn.metrics import roc_auc_score

    for c in range(len(data.classes)):  # how well each class alone is told apart from normal
        pair = (label == NORMAL) | (label == c)
        if c != NORMAL and (label == c).any() and (label == NORMAL).any():
            print(f"  AUROC {data.classes[NORMAL]} vs {data.classes[c]}: "
                  f"{roc_auc_score(label[pair] == c, score[pair]):.3f}")
    fig, ax = tu.plt.subplots(figsize=(8, 4))
    groups = [score[label == c] for c in range(len(data.classes))]
    ax.boxplot(groups, showfliers=False)
    ax.set_xticks(range(1, len(data.classes) + 1), data.classes, rotation=30, ha="right")
    ax.axhline(a["threshold"], ls="--", color="tab:red", label="threshold (5% of normal flagged)")
    ax.set(ylabel="reconstruction MSE (anomaly score)", yscale="log",
           title=f"Trained on '{data.classes[NORMAL]}' only: test AUROC {a['test_auroc']:.3f}")
    ax.legend()
    figures.append(tu.save(fig, args.out / "seed003_anomaly.png"))

    # 4. pretraining for few labels
    scratch = args.runs / "random-init"
    net = aekit.load(run)
    torch.manual_seed(0)
    for layer in net.module_.modules():  # same architecture, fresh random weights
        if layer is not net.module_ and hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    net.save(scratch)
    acc = {}
    for key, source, flags in (("pretrained, fine-tuned", run, []),
                               ("pretrained, head only", run, ["--freeze-encoder"]),
                               ("random init, fine-tuned", scratch, [])):
        clf = args.runs / ("clf-" + key.replace(", ", "-").replace(" ", "-"))
        tu.aekit("finetune", source, "--dataset", data.name, "--labels", b["labels"],
                 "--steps", b["steps"], "--seed", 0, *flags, *threads, "--out", clf)
        acc[key] = tu.metrics(clf)["test_accuracy"]
    for key, value in acc.items():
        print(f"{b['labels']} labels, {key}: test accuracy {value:.2%}")
    fig, ax = tu.plt.subplots(figsize=(6, 3.5))
    bars = ax.bar(list(acc), [100 * v for v in acc.values()],
                  color=["tab:green", "tab:olive", "tab:grey"])
    ax.bar_label(bars, fmt="%.1f%%")
    ax.set(ylabel="test accuracy (%)", ylim=(0, 100),
           title=f"{data.label}: a classifier from {b['labels']} labels")
    figures.append(tu.save(fig, args.out / "seed003_fewlabels.png"))
    return tu.done(args, figures)


if __name__ == "__main__":
    sys.exit(main())
