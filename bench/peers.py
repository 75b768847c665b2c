"""aekit side by side with the learned libraries a user would pick instead.

Each peer is installed from PyPI (`pip install -e .[peers]`, best in its own virtual environment,
see docs/BENCHMARKS.md) and driven through its own public API and training code, with its
documented defaults where it has them; aekit's side uses aekit's public API with its defaults.
Both sides get the same train/test split, the same training budget (wall-clock seconds, per
trained model) and the same metric code (`aekit.eval.metrics`) on their outputs.

Rows (`--row`):
  compression  CompressAI bmshj2018-factorized and -hyperprior (their architectures, trained from
               scratch with CompressAI's RateDistortionLoss and its aux-loss recipe; real
               bitstreams from compress/decompress) vs `Autoencoder(model="codec")`; Fashion-MNIST
               and 32x32 photo patches; BD-rate of aekit vs each.
  vae          pythae VAE and IWAE (its trainer, its losses) with the very same encoder/decoder
               networks as aekit's default `vae` (equal parameter count) vs
               `Autoencoder(model="vae")`; test NLL from one importance-sampling estimator
               (aekit.models.variational.log_likelihood_bounds, k = --k) for all three, on
               statically binarized Fashion-MNIST and MNIST.
  anomaly      PyOD AutoEncoder, DeepSVDD, KNN, IForest (pixels) vs `aekit.anomaly.Detector()`;
               one-class protocol, every class of Fashion-MNIST and MNIST; mean AUROC, seconds.
  denoise      deepinv DnCNN (its default depth-20, 64-channel network, trained by deepinv's
               Trainer) vs `Autoencoder(model="unet", corrupt="gaussian:S")`; Fashion-MNIST at
               sigma 0.5 and photo patches at sigma 25/255, both clipped to [0, 1]; PSNR, SSIM.

The budget. Trainers that stop on a clock do so (CompressAI's loop is this script's, following
CompressAI's example: it stops at the first step past the budget). Trainers that take an epoch
count (aekit, pythae, deepinv) get the epochs that fit: after an untimed warm-up fit on 64 images,
a probe fits 1 epoch on up to PROBE_IMAGES images; seconds per image x training images = one
epoch, epochs = floor(budget / one epoch) (at least 1; when one epoch alone is over the budget,
1 epoch on the first images that fit). The probe is not counted; every side's real training
seconds are recorded. PyOD detectors and aekit's Detector run at their defaults: the anomaly row
compares AUROC and seconds.

    python -m bench.peers --row anomaly --threads 2            # also: compression, vae, denoise
    python -m bench.peers --row denoise --budget 300 --threads 2
    python -m bench.peers --row compression --smoke            # tiny: the harness still runs

Writes bench/results/peers_<row>.json (or --name) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, environment, print_table  # noqa: E402

ROWS = ("compression", "vae", "anomaly", "denoise")
PEERS = {"compression": "compressai", "vae": "pythae", "anomaly": "pyod", "denoise": "deepinv"}
PROBE_IMAGES = 512
TEST_NOISE_SEED = 2024  # the fixed noisy test images (as bench/denoise.py)
PHOTO_PATCH = 32
# CompressAI's lambda for each zoo quality (its model zoo's training table); the loss is
# lambda * 255^2 * MSE + bpp, i.e. MSE + bpp / (lambda * 255^2): aekit's codec takes that rate
# weight, so both sides are trained for the same rate-distortion trade-off at each point.
COMPRESSAI_LAMBDA = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483}
VAE_K = 100
MNIST = "idx:../shared/data/mnist"


# ---- peers, threads, budgets --------------------------------------------------------------------

def peer_missing(row: str) -> str:
    """Why the row's peer cannot be imported here ('' when it can)."""
    try:
        import_peer(row)
    except Exception as e:  # noqa: BLE001 - any import failure is the reason
        return f"{PEERS[row]} is not importable: {type(e).__name__}: {e}"
    return ""


def _torchvision_shim() -> bool:
    """compressai and deepinv import torchvision. PyPI's torchvision wheels are CUDA builds whose
    `_C` extension needs libtorch_cuda.so, which a CPU build of torch lacks; torchvision then
    fails at import (`operator torchvision::nms does not exist`, from two fake-kernel
    registrations that are not guarded by its own `_has_ops()`). The CPU torchvision wheel is
    only on PyTorch's own index. When `_C` cannot load, define the schemas of those two ops (no
    peer here calls nms) so that the rest of torchvision imports; returns True when it did."""
    import importlib.util

    spec = importlib.util.find_spec("torchvision")
    if spec is None or "torchvision" in sys.modules:
        return False
    so = list(Path(spec.origin).parent.glob("_C*.so"))
    try:
        if so:
            torch.ops.load_library(str(so[0]))
            return False
    except (OSError, RuntimeError):
        pass
    global _SHIM_LIB
    _SHIM_LIB = torch.library.Library("torchvision", "DEF")  # kept alive: the ops live with it
    _SHIM_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _SHIM_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return True


_SHIM_LIB = None
SHIMMED = {"torchvision": False}


def import_peer(row: str):
    if row in ("compression", "denoise") and not SHIMMED["torchvision"]:
        SHIMMED["torchvision"] = _torchvision_shim()
    import importlib

    return importlib.import_module(PEERS[row])


def versions(row: str) -> dict:
    out = {}
    for name in ("aekit", "torch", PEERS[row], "torchvision", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["torchvision_op_shim"] = SHIMMED["torchvision"]
    return out


def plan_epochs(budget: float, n: int, probe) -> dict:
    """Epochs (and training images) that fit `budget` seconds; probe(m) fits 1 epoch on the first
    m images and returns its seconds."""
    m = min(n, PROBE_IMAGES)
    probe(min(m, 64))  # warm-up: first-call costs (imports, allocations) are not per image
    t = probe(m)
    per_image = t / m
    epoch = per_image * n
    if epoch <= budget:
        epochs, used = max(1, int(budget // epoch)), n
    else:
        epochs, used = 1, max(min(n, 64), int(budget / per_image))
    return {"epochs": epochs, "train_images": used, "probe_images": m, "probe_seconds": t,
            "estimated_epoch_seconds": epoch}


class Clock:
    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.cpu_seconds = time.process_time() - self.c0


def params_of(module: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


# ---- data ---------------------------------------------------------------------------------------

def dataset(name: str):
    from aekit.data import load_dataset

    return load_dataset(MNIST if name == "mnist" else name)


def photo_patches(size: int = PHOTO_PATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 3, size, size) train and test patches of scikit-learn's two sample photos, split
    by columns as bench/colorize.py splits them (train left of the boundary, stride 8; test
    right of it, non-overlapping)."""
    from bench.colorize import cut, sample_photos, split_boxes

    train, test = [], []
    for img in sample_photos().values():
        h, w = img.shape[:2]
        tr, te, _ = split_boxes(h, w, size, 8)
        train.append(cut(img, tr, size))
        test.append(cut(img, te, size))
    return (torch.from_numpy(np.concatenate(train)).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(np.concatenate(test)).permute(0, 3, 1, 2).contiguous())


def quality(out: torch.Tensor, clean: torch.Tensor) -> dict:
    from aekit.eval.metrics import quality as q

    m = q(out.float(), clean.float())
    return {"psnr": round(m["psnr"], 3), "ssim": round(m["ssim"], 4)}


def noisy_copy(clean: torch.Tensor, sigma: float, seed: int = TEST_NOISE_SEED) -> torch.Tensor:
    """clip(x + sigma N(0, 1), 0, 1) with a fixed seed: the one noisy test set of both sides."""
    gen = torch.Generator().manual_seed(seed)
    return (clean + sigma * torch.randn(clean.shape, generator=gen)).clamp(0, 1)


# ---- anomaly: PyOD ------------------------------------------------------------------------------

def pyod_detectors(smoke: bool) -> dict:
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.deep_svdd import DeepSVDD
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN

    # Defaults, except verbose (progress printing) and a fixed seed where the default is None.
    small = {"epoch_num": 1} if smoke else {}
    return {
        "PyOD AutoEncoder": lambda d: AutoEncoder(verbose=0, **small),
        "PyOD DeepSVDD": lambda d: DeepSVDD(n_features=d, verbose=0, random_state=0,
                                            **({"epochs": 1} if smoke else {})),
        "PyOD KNN": lambda d: KNN(),
        "PyOD IForest": lambda d: IForest(random_state=0),
    }


def row_anomaly(args) -> dict:
    from aekit.anomaly import Detector
    from aekit.eval.metrics import auroc

    results = {}
    for name in args.datasets or ["fashion-mnist", "mnist"]:
        try:
            ds = dataset(name)
        except Exception as e:  # noqa: BLE001
            results[name] = {"skipped": f"{type(e).__name__}: {e}"}
            continue
        classes = args.classes if args.classes is not None else list(range(len(ds.classes)))
        test_x = ds.test_x[: args.test] if args.test else ds.test_x
        test_y = ds.test_y[: len(test_x)]
        flat_test = test_x.reshape(len(test_x), -1).numpy().astype(np.float32) / 255
        per = {}
        for k in classes:
            normal = ds.train_x[ds.train_y == k][: args.limit or None]
            is_anom = (test_y != k).numpy()
            flat = normal.reshape(len(normal), -1).numpy().astype(np.float32) / 255
            row = {}
            with Clock() as c:
                det = (Detector(epochs=1, latent_epochs=1) if args.smoke else Detector())
                score = det.fit(normal).decision_function(test_x)
            row["aekit Detector"] = {"auroc": 100 * auroc(score, is_anom),
                                     "seconds": round(c.seconds, 2)}
            for label, make in pyod_detectors(args.smoke).items():
                if args.peers and label not in args.peers:
                    continue
                with Clock() as c:
                    d = make(flat.shape[1]).fit(flat)
                    s = d.decision_function(flat_test)
                row[label] = {"auroc": 100 * auroc(s, is_anom), "seconds": round(c.seconds, 2)}
            per[k] = row
            print(f"  {name} class {k}: " + ", ".join(f"{m} {v['auroc']:.1f} ({v['seconds']:.0f}s)"
                                                      for m, v in row.items()), flush=True)
        methods = list(next(iter(per.values())))
        mean = {m: {"auroc": float(np.mean([per[k][m]["auroc"] for k in per])),
                    "seconds": float(np.sum([per[k][m]["seconds"] for k in per]))}
                for m in methods}
        results[name] = {"classes": classes, "test_images": len(test_x), "per_class": per,
                         "mean": mean}
    return {"datasets": results,
            "protocol": "one-class: fit on the training images of class K, score the test split, "
                        "AUROC (%) with the other classes as anomalies; mean over classes; "
                        "seconds = fit + scoring, summed over classes. PyOD on flattened pixels "
                        "in [0, 1]; every detector at its defaults."}


def table_anomaly(res: dict) -> None:
    for name, r in res["datasets"].items():
        if "skipped" in r:
            print(f"{name}: skipped: {r['skipped']}")
            continue
        print(f"\n{name}: mean one-class AUROC (%) over classes {r['classes']}")
        print_table(["detector", "mean AUROC", "seconds (all classes)"],
                    [[m, v["auroc"], v["seconds"]] for m, v in r["mean"].items()])


# ---- denoise: deepinv ---------------------------------------------------------------------------

class _Clean(torch.utils.data.Dataset):
    """Clean images in deepinv's dataset format ({"x": image}; measurements made online)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i]}


def train_deepinv(clean: torch.Tensor, sigma: float, budget: float, args) -> tuple:
    import deepinv as dinv

    torch.manual_seed(0)
    c = clean.shape[1]
    physics = dinv.physics.Denoising(dinv.physics.GaussianNoise(sigma=sigma),
                                     sensor_model=lambda y: y.clamp(0, 1))

    def fit(x: torch.Tensor, epochs: int):
        # deepinv's default DnCNN (depth 20, 64 channels), random init (no download).
        net = dinv.models.DnCNN(in_channels=c, out_channels=c, pretrained=None, device="cpu")
        model = dinv.models.ArtifactRemoval(net)
        loader = torch.utils.data.DataLoader(_Clean(x), batch_size=args.deepinv_batch,
                                             shuffle=True)
        trainer = dinv.Trainer(model, physics=physics, train_dataloader=loader, epochs=epochs,
                               optimizer=torch.optim.Adam(model.parameters(), lr=args.deepinv_lr),
                               losses=dinv.loss.SupLoss(), online_measurements=True,
                               device="cpu", save_path=None, verbose=False,
                               show_progress_bar=False, compute_train_metrics=False)
        trainer.train()
        return model

    x = clean.float() / 255
    plan = plan_epochs(budget, len(x), lambda m: _timed(lambda: fit(x[:m], 1)))
    with Clock() as t:
        model = fit(x[: plan["train_images"]], plan["epochs"])
    model.eval()

    def apply(noisy: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([model(b, physics).clamp(0, 1) for b in noisy.split(256)])

    return apply, {**plan, "train_seconds": t.seconds, "parameters": params_of(model),
                   "network": "deepinv.models.DnCNN (depth 20, nf 64) in ArtifactRemoval",
                   "optimizer": f"Adam lr {args.deepinv_lr:g}",
                   "batch_size": args.deepinv_batch}


def train_aekit_denoiser(clean: torch.Tensor, sigma: float, budget: float) -> tuple:
    import aekit
    from aekit.restore import Restorer

    def fit(x, epochs):
        return aekit.Autoencoder(model="unet", corrupt=f"gaussian:{sigma:g}",
                                 epochs=epochs).fit(x)

    plan = plan_epochs(budget, len(clean), lambda m: _timed(lambda: fit(clean[:m], 1)))
    with Clock() as t:
        ae = fit(clean[: plan["train_images"]], plan["epochs"])
    with tempfile.TemporaryDirectory(prefix="peers-denoise-") as tmp:
        ae.save(tmp)
        restorer = Restorer.load(tmp, "denoise")
    return (lambda noisy: restorer.denoise(noisy)), {
        **plan, "train_seconds": t.seconds, "parameters": params_of(ae.module_),
        "network": "aekit unet (defaults)"}


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def row_denoise(args) -> dict:
    sets = {}
    for name in args.datasets or ["fashion-mnist", "photos"]:
        if name == "photos":
            train, test = photo_patches()
            sigma = 25 / 255
        else:
            ds = dataset(name)
            train, test = ds.train_x, ds.test_x
            sigma = 0.5
        train = train[: args.limit] if args.limit else train
        test = test[: args.test] if args.test else test
        clean = test.float() / 255
        noisy = noisy_copy(clean, sigma)
        sides = {"noisy input": {"quality": quality(noisy, clean)}}
        for label in ("aekit unet", "deepinv DnCNN"):
            apply, info = (train_aekit_denoiser(train, sigma, args.budget) if label == "aekit unet"
                           else train_deepinv(train, sigma, args.budget, args))
            with Clock() as c:
                out = apply(noisy)
            sides[label] = {**info, "quality": quality(out, clean),
                            "test_images_per_second": round(len(noisy) / c.seconds, 1)}
            print(f"  {name} {label}: {sides[label]['quality']} after "
                  f"{info['epochs']} epoch(s), {info['train_seconds']:.0f}s", flush=True)
        sets[name] = {"sigma": sigma, "train_images": len(train), "test_images": len(test),
                      "image_shape": list(test.shape[1:]), "sides": sides}
    return {"sets": sets, "protocol": "noisy = clip(x + sigma N(0,1), 0, 1); the same clean "
            "training images for both sides, noise drawn afresh each batch by each library "
            "(aekit: corrupt=gaussian:sigma; deepinv: online measurements from "
            "physics.Denoising(GaussianNoise(sigma)) with a [0, 1] sensor clip); one fixed noisy "
            f"test set (seed {TEST_NOISE_SEED}); PSNR over the whole set, SSIM as skimage."}


def table_denoise(res: dict) -> None:
    for name, r in res["sets"].items():
        print(f"\n{name}, sigma {r['sigma']:.4g}: {r['train_images']} train / "
              f"{r['test_images']} test images")
        rows = []
        for m, v in r["sides"].items():
            rows.append([m, v["quality"]["psnr"], v["quality"]["ssim"], v.get("parameters", ""),
                         v.get("epochs", ""), v.get("train_seconds", ""),
                         v.get("test_images_per_second", "")])
        print_table(["method", "PSNR", "SSIM", "params", "epochs", "train s", "test img/s"], rows)


# ---- compression: CompressAI --------------------------------------------------------------------

def _pad(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple]:
    """Zero padding to a multiple of `multiple`, centred, as CompressAI's own evaluation pads."""
    h, w = x.shape[-2:]
    hp, wp = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    left, top = (wp - w) // 2, (hp - h) // 2
    pad = (left, wp - w - left, top, hp - h - top)
    return torch.nn.functional.pad(x, pad, mode="constant", value=0), pad


def _crop(x: torch.Tensor, pad: tuple) -> torch.Tensor:
    left, right, top, bottom = pad
    return x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]


def compressai_point(arch: str, quality_level: int, train: torch.Tensor, test: torch.Tensor,
                     budget: float, args) -> dict:
    """Train one CompressAI model from scratch for `budget` seconds (CompressAI's example recipe:
    Adam 1e-4 on the network, Adam 1e-3 on the entropy bottleneck's quantiles through aux_loss,
    gradient clipping at 1.0, batch 16, RateDistortionLoss(lambda)), then compress/decompress."""
    from compressai.losses import RateDistortionLoss
    from compressai.zoo import bmshj2018_factorized, bmshj2018_hyperprior

    ctor = {"bmshj2018-factorized": bmshj2018_factorized,
            "bmshj2018-hyperprior": bmshj2018_hyperprior}[arch]
    multiple = 16 if arch == "bmshj2018-factorized" else 64
    lmbda = COMPRESSAI_LAMBDA[quality_level]
    torch.manual_seed(0)
    net = ctor(quality=quality_level, pretrained=False)
    grey = train.shape[1] == 1

    def prep(x_uint8: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        x = x_uint8.float() / 255
        if grey:  # the architectures take RGB: the grey image on all three channels
            x = x.repeat(1, 3, 1, 1)
        return _pad(x, multiple)

    params = [p for n, p in net.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in net.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(params, lr=1e-4)
    aux_opt = torch.optim.Adam(aux, lr=1e-3)
    criterion = RateDistortionLoss(lmbda=lmbda)
    gen = torch.Generator().manual_seed(0)
    steps, seen, t0 = 0, 0, time.perf_counter()
    net.train()
    done = False
    while not done:
        for idx in torch.randperm(len(train), generator=gen).split(args.compressai_batch):
            x, _ = prep(train[idx])
            opt.zero_grad()
            aux_opt.zero_grad()
            out = net(x)
            loss = criterion(out, x)["loss"]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            aux_loss = net.aux_loss()
            aux_loss.backward()
            aux_opt.step()
            steps += 1
            seen += len(idx)
            if time.perf_counter() - t0 >= budget:
                done = True
                break
    train_s = time.perf_counter() - t0
    net.update(force=True)
    net.eval()
    n_bytes, recs = 0, []
    with torch.no_grad():
        with Clock() as enc:
            coded = [(net.compress(prep(b)[0]), b) for b in test.split(200)]
        with Clock() as dec:
            for c, b in coded:
                strings, shape = c["strings"], c["shape"]
                # per image: its strings, a 4-byte length for each string but the last (to split
                # them), and the latent shape (two uint16)
                n_bytes += sum(len(s[i]) for s in strings for i in range(len(b)))
                n_bytes += len(b) * (4 * (len(strings) - 1) + 4)
                x_hat = net.decompress(strings, shape)["x_hat"]
                x_hat = _crop(x_hat, prep(b)[1])
                if grey:
                    x_hat = x_hat.mean(1, keepdim=True)
                recs.append((x_hat.clamp(0, 1) * 255).round() / 255)
    rec = torch.cat(recs)
    pixels = len(test) * test.shape[-1] * test.shape[-2]
    return {"codec": f"CompressAI {arch}", "quality": quality_level, "lambda": lmbda,
            "bpp": n_bytes * 8 / pixels, **quality(rec, test.float() / 255),
            "train_seconds": train_s, "steps": steps, "train_images_seen": seen,
            "epochs_equiv": seen / len(train), "parameters": params_of(net),
            "encode_img_s": len(test) / enc.seconds, "decode_img_s": len(test) / dec.seconds}


def to_tiles(x: torch.Tensor, t: int) -> torch.Tensor:
    """(N, C, H, W) -> (N * H/t * W/t, C, t, t), each image's tiles in row-major order."""
    n, c, h, w = x.shape
    return (x.reshape(n, c, h // t, t, w // t, t).permute(0, 2, 4, 1, 3, 5)
            .reshape(-1, c, t, t))


def from_tiles(tiles: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    c, t = tiles.shape[1], tiles.shape[-1]
    return (tiles.reshape(n, h // t, w // t, c, t, t).permute(0, 3, 1, 4, 2, 5)
            .reshape(n, c, h, w))


def aekit_codec_point(quality_level: int, train: torch.Tensor, test: torch.Tensor,
                      budget: float, tile: int = 0) -> dict:
    """One aekit codec rate point. With `tile`, the model works on tile x tile images: it trains
    on `train` (already tiles) and codes each test image as one .aez container of its tiles."""
    import aekit
    from aekit.codec import compress, compress_each, decompress

    lam = 1.0 / (COMPRESSAI_LAMBDA[quality_level] * 255**2)
    latent = math.prod(train.shape[1:])  # C*H*W: every dimension kept (docs/CODEC.md)

    def fit(x, epochs):
        return aekit.Autoencoder(model="codec", latent_dim=latent, epochs=epochs,
                                 options={"lambda": lam}).fit(x)

    plan = plan_epochs(budget, len(train), lambda m: _timed(lambda: fit(train[:m], 1)))
    with Clock() as t:
        ae = fit(train[: plan["train_images"]], plan["epochs"])
    coded = to_tiles(test, tile) if tile else test
    with Clock() as enc:
        if tile:  # one file per test image: a container of its tiles
            per = len(coded) // len(test)
            files = [compress(ae, coded[i : i + per]) for i in range(0, len(coded), per)]
        else:
            files = compress_each(ae, coded)
    data = compress(ae, coded)
    with Clock() as dec:
        rec = decompress(data, ae, like="torch")
    if tile:
        rec = from_tiles(rec, len(test), *test.shape[-2:])
    rec = (rec * 255).round() / 255
    pixels = len(test) * test.shape[-1] * test.shape[-2]
    return {"codec": "aekit codec", "quality": quality_level, "lambda": lam,
            "bpp": sum(len(f) for f in files) * 8 / pixels,
            "container_bpp": len(data) * 8 / pixels, **quality(rec, test.float() / 255),
            "train_seconds": t.seconds, **plan, "parameters": params_of(ae.module_),
            "model_image_shape": list(train.shape[1:]),
            "encode_img_s": len(test) / enc.seconds, "decode_img_s": len(test) / dec.seconds}


def row_compression(args) -> dict:
    from aekit.codec.baselines import bd_rate

    sets = {}
    archs = [a for a in ("bmshj2018-factorized", "bmshj2018-hyperprior")
             if not args.peers or a in args.peers]
    for name in args.datasets or ["fashion-mnist", "photos"]:
        tile, ae_train = 0, None
        if name == "photos":
            train, test = photo_patches()
            # aekit's codec keeps every dimension (latent_dim = C*H*W): a 32x32 RGB model would
            # hold 16 clusters x 2 x 3072^2 weights (302 M parameters, 9 GB while training), so
            # it codes each 32x32 patch as its four 16x16 tiles, trained on 16x16 patches cut
            # from the same training region (stride 8).
            tile, ae_train = PHOTO_PATCH // 2, photo_patches(PHOTO_PATCH // 2)[0]
        else:
            ds = dataset(name)
            train, test = ds.train_x, ds.test_x
        train = train[: args.limit] if args.limit else train
        ae_train = train if ae_train is None else ae_train[: args.limit or None]
        test = test[: args.test] if args.test else test
        curves: dict[str, list] = {"aekit codec": []}
        for q in args.qualities:
            p = aekit_codec_point(q, ae_train, test, args.budget, tile)
            curves["aekit codec"].append(p)
            print(f"  {name} aekit q{q}: {p['bpp']:.3f} bpp {p['psnr']:.2f} dB "
                  f"({p['train_seconds']:.0f}s)", flush=True)
            for arch in archs:
                p = compressai_point(arch, q, train, test, args.budget, args)
                curves.setdefault(p["codec"], []).append(p)
                print(f"  {name} {arch} q{q}: {p['bpp']:.3f} bpp {p['psnr']:.2f} dB "
                      f"({p['steps']} steps)", flush=True)
        bd = {}
        ours = [(p["bpp"], p["psnr"]) for p in curves["aekit codec"]]
        for peer, pts in curves.items():
            if peer == "aekit codec":
                continue
            try:
                pct, used = bd_rate([(p["bpp"], p["psnr"]) for p in pts], ours)
                bd[peer] = {"aekit_bd_rate_pct": pct, "psnr_range_db": used}
            except ValueError as e:
                bd[peer] = {"aekit_bd_rate_pct": None, "why": str(e)}
        sets[name] = {"train_images": len(train), "test_images": len(test),
                      "image_shape": list(test.shape[1:]), "curves": curves, "bd_rate": bd}
    return {"sets": sets, "protocol": "bits per pixel from real bytes (aekit: one complete .aez "
            "file per image, header and CRC included; CompressAI: its compress() strings per "
            "image + a 4-byte length per extra string + a 4-byte latent shape); PSNR over the "
            "set on 8-bit-rounded decoded images; BD-rate of aekit vs each peer over the PSNR "
            "range both curves cover (negative = aekit needs fewer bits). Grey images go to "
            "CompressAI on three equal channels, zero-padded to its multiple (16 factorized, "
            "64 hyperprior) as its evaluation does; the output's channel mean is scored."}


def table_compression(res: dict) -> None:
    for name, r in res["sets"].items():
        print(f"\n{name}: {r['train_images']} train / {r['test_images']} test images")
        rows = [[p["codec"], p["quality"], p["bpp"], p["psnr"], p["ssim"], p["train_seconds"],
                 p["parameters"]] for pts in r["curves"].values() for p in pts]
        print_table(["codec", "q", "bpp", "PSNR", "SSIM", "train s", "params"], rows)
        for peer, b in r["bd_rate"].items():
            val = b["aekit_bd_rate_pct"]
            print(f"BD-rate of aekit vs {peer}: "
                  + (f"{val:+.1f}% over {b['psnr_range_db'][0]:.2f}-{b['psnr_range_db'][1]:.2f}"
                     " dB" if val is not None else f"n/a ({b['why']})"))


# ---- vae: pythae --------------------------------------------------------------------------------

def _aekit_vae_config(shape, latent: int):
    from aekit.config import ModelConfig
    from aekit.models import resolve_options

    c, h, w = shape
    return resolve_options(ModelConfig(name="vae", in_channels=c, height=h, width=w,
                                       latent_dim=latent))


class NLLAdapter(torch.nn.Module):
    """A pythae model seen through the two methods aekit's IWAE estimator calls:
    posterior(x) -> (mu, logvar) and decode(z) -> Bernoulli logits."""

    likelihood = "bernoulli"  # pythae's reconstruction_loss="bce"

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def posterior(self, x):
        out = self.model.encoder(x)
        return out.embedding, out.log_covariance

    def decode(self, z):
        return self.model.decoder.logits(z)


def pythae_model(kind: str, shape, latent: int):
    from pythae.models import IWAE, VAE, IWAEConfig, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    from aekit.models import build_model

    torch.manual_seed(0)
    net = build_model(_aekit_vae_config(shape, latent))  # the same layers as aekit's default

    # aekit's layers, its linear paths included (at their random start: the PCA start is
    # aekit's training recipe, not part of the network).
    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net, self.lin = net.encoder, net.lin_enc

        def forward(self, x):
            mu, logvar = self.net(x).chunk(2, dim=1)
            if self.lin is not None:
                mu = mu + self.lin(x.flatten(1))  # (B, C*H*W) -> (B, latent)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net, self.lin = net.decoder, net.lin_dec

        def logits(self, z):
            out = self.net(z)
            return out if self.lin is None else out + self.lin(z).view(-1, *shape)  # (B, C, H, W)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    common = {"input_dim": tuple(shape), "latent_dim": latent, "reconstruction_loss": "bce"}
    cfg = IWAEConfig(**common) if kind == "IWAE" else VAEConfig(**common)
    cls = IWAE if kind == "IWAE" else VAE
    return cls(model_config=cfg, encoder=Encoder(), decoder=Decoder())


def train_pythae(kind: str, train: torch.Tensor, latent: int, budget: float) -> tuple:
    import contextlib
    import logging

    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    data = train.numpy().astype(np.float32)
    for name in list(logging.root.manager.loggerDict):  # its per-epoch log lines
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)

    def fit(x, epochs):
        model = pythae_model(kind, train.shape[1:], latent)
        with tempfile.TemporaryDirectory(prefix="peers-pythae-") as tmp, \
                open(os.devnull, "w") as null, contextlib.redirect_stderr(null):  # tqdm bars
            cfg = BaseTrainerConfig(output_dir=tmp, num_epochs=epochs)  # its defaults otherwise
            TrainingPipeline(model=model, training_config=cfg)(train_data=x)
        return model

    plan = plan_epochs(budget, len(data), lambda m: _timed(lambda: fit(data[:m], 1)))
    with Clock() as t:
        model = fit(data[: plan["train_images"]], plan["epochs"])
    model.eval()
    return NLLAdapter(model), {**plan, "train_seconds": t.seconds, "parameters": params_of(model),
                               "trainer": "pythae BaseTrainerConfig defaults (Adam 1e-4, batch "
                                          "64), num_epochs from the budget"}


def train_aekit_vae(train: torch.Tensor, budget: float) -> tuple:
    import aekit

    def fit(x, epochs):
        return aekit.Autoencoder(model="vae", epochs=epochs).fit(x)

    plan = plan_epochs(budget, len(train), lambda m: _timed(lambda: fit(train[:m], 1)))
    with Clock() as t:
        ae = fit(train[: plan["train_images"]], plan["epochs"])
    return ae.module_.eval(), {**plan, "train_seconds": t.seconds,
                               "parameters": params_of(ae.module_),
                               "latent_dim": ae.latent_dim}


def row_vae(args) -> dict:
    from aekit.models.variational import binarize, log_likelihood_bounds

    sets = {}
    for name in args.datasets or ["fashion-mnist", "mnist"]:
        try:
            ds = dataset(name)
        except Exception as e:  # noqa: BLE001
            sets[name] = {"skipped": f"{type(e).__name__}: {e}"}
            continue
        train = binarize(ds.train_x, seed=1)  # float 0/1, static (as bench/latents.py)
        train = train[: args.limit] if args.limit else train
        test = ds.test_x[: args.test] if args.test else ds.test_x  # binarized by the estimator
        sides = {}
        aekit_model, info = train_aekit_vae(train, args.budget)
        latent = info["latent_dim"]
        models = [("aekit vae", aekit_model, info)]
        for kind in ("VAE", "IWAE"):
            if args.peers and f"pythae {kind}" not in args.peers:
                continue
            m, i = train_pythae(kind, train, latent, args.budget)
            models.append((f"pythae {kind}", m, i))
        for label, model, info in models:
            with Clock() as c:
                b = log_likelihood_bounds(model, test, k=args.k)
            sides[label] = {**info, **b, "nll_seconds": round(c.seconds, 1)}
            print(f"  {name} {label}: NLL {b['test_nll_iwae_nats']:.2f} after "
                  f"{info['epochs']} epoch(s), {info['train_seconds']:.0f}s", flush=True)
        sets[name] = {"train_images": len(train), "test_images": len(test), "k": args.k,
                      "sides": sides}
    return {"sets": sets, "protocol": "statically binarized images (train: seed 1, test: seed 0, "
            "aekit.models.variational.binarize); every model scored by "
            "aekit.models.variational.log_likelihood_bounds (Bernoulli decoder, IWAE bound with "
            "k importance samples, the same k samples giving the ELBO), nats per image; pythae's "
            "encoder/decoder are fresh copies of aekit's default vae networks."}


def table_vae(res: dict) -> None:
    for name, r in res["sets"].items():
        if "skipped" in r:
            print(f"{name}: skipped: {r['skipped']}")
            continue
        print(f"\n{name}: {r['train_images']} train / {r['test_images']} test, k = {r['k']}")
        rows = [[m, v["test_nll_iwae_nats"], -v["test_elbo_nats"], v["parameters"], v["epochs"],
                 v["train_seconds"]] for m, v in r["sides"].items()]
        print_table(["model", "NLL (IWAE)", "-ELBO", "params", "epochs", "train s"], rows)


# ---- main ---------------------------------------------------------------------------------------

RUNNERS = {"anomaly": (row_anomaly, table_anomaly), "denoise": (row_denoise, table_denoise),
           "compression": (row_compression, table_compression), "vae": (row_vae, table_vae)}
SMOKE = {"budget": 3.0, "limit": 256, "test": 64, "qualities": [3], "k": 4, "classes": [0],
         "datasets": {"anomaly": ["fashion-mnist"], "denoise": ["fashion-mnist"],
                      "compression": ["fashion-mnist"], "vae": ["fashion-mnist"]},
         "peers": {"anomaly": ["PyOD KNN"], "compression": ["bmshj2018-factorized"],
                   "vae": ["pythae VAE"], "denoise": None}}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--row", choices=ROWS, required=True)
    p.add_argument("--budget", type=float, default=120.0,
                   help="training seconds per trained model, each side (default 120)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--smoke", action="store_true",
                   help="tiny data and budget, one peer: checks that the harness runs")
    p.add_argument("--datasets", nargs="*", default=None,
                   help="fashion-mnist, mnist, photos (row defaults: see the docstring)")
    p.add_argument("--classes", type=int, nargs="*", default=None, help="anomaly: classes")
    p.add_argument("--peers", nargs="*", default=None, help="only these peers (labels)")
    p.add_argument("--limit", type=int, default=0, help="training images (0 = all)")
    p.add_argument("--test", type=int, default=None,
                   help="test images (default: 1,000; anomaly: all)")
    p.add_argument("--qualities", type=int, nargs="*", default=[1, 3, 5],
                   help="compression: CompressAI zoo qualities = rate points (lambda table)")
    p.add_argument("--k", type=int, default=VAE_K, help="vae: importance samples")
    p.add_argument("--compressai-batch", type=int, default=16)
    p.add_argument("--deepinv-batch", type=int, default=32)
    p.add_argument("--deepinv-lr", type=float, default=1e-3)
    p.add_argument("--name", default=None, help="result name (default peers_<row>)")
    p.add_argument("--out", default=None, help="result path (overrides --name)")
    args = p.parse_args(argv)
    if args.test is None:
        args.test = 0 if args.row == "anomaly" else 1000
    if args.smoke:
        args.budget = min(args.budget, SMOKE["budget"])
        args.limit = args.limit or SMOKE["limit"]
        args.test = SMOKE["test"]
        args.qualities = SMOKE["qualities"]
        args.k = SMOKE["k"]
        args.classes = args.classes if args.classes is not None else SMOKE["classes"]
        args.datasets = args.datasets or SMOKE["datasets"][args.row]
        args.peers = args.peers or SMOKE["peers"][args.row]
    return args


def main(argv=None) -> int:
    args = parse(argv)
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    why = peer_missing(args.row)
    if why:
        print(f"{args.row}: {why}", file=sys.stderr)
        return 3
    run, table = RUNNERS[args.row]
    load_before = os.getloadavg()
    with threadpool_limits(args.threads), Clock() as c:
        res = run(args)
    out = Path(args.out) if args.out else RESULTS / f"{args.name or 'peers_' + args.row}.json"
    res = {"environment": environment(), "row": args.row, "budget_seconds": args.budget,
           "threads": args.threads, "smoke": args.smoke, "versions": versions(args.row),
           "wall_seconds": round(c.seconds, 1), "load_average_before": load_before,
           "load_average_after": os.getloadavg(), **res}
    out.parent.mkdir(parents=True, exist_ok=True)
    from aekit.io import atomic_write_text

    atomic_write_text(out, json.dumps(res, indent=2, default=float) + "\n")
    table(res)
    print(f"\nbudget {args.budget:g} s per trained model and side, {args.threads} thread(s), "
          f"wall {c.seconds:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
