"""The Python face of representations: codes, samples, interpolations and traversals, numpy in
and out (or torch in and out).

`model` is a fitted `aekit.Autoencoder` (its pixel units and layout apply), a run folder (read as
`aekit.load` reads it) or an aekit autoencoder network (`AutoencoderModule`, e.g. from
`aekit.core.load_model`: images uint8 0..255 or float 0..1).

Images follow `aekit.Autoencoder`'s conventions (numpy, torch or nested lists; (N, H, W),
(N, C, H, W), (N, H, W, C) or rows), and results follow the input: numpy in, numpy out; torch
in, torch out. `sample_images` and `traverse` without `base` have no image input: they return
numpy unless `like="torch"` (or `like=` a tensor). Images come back as floats with white =
`pixel_max_` (1.0 unless the Autoencoder was fitted on floats above 1), in the layout of the
input or, without one, of the model's training images.

This module (and classifier.py) builds on `aekit.Autoencoder`, so it sits with aekit/api.py at
the top layer; the algorithms it calls (embedding.py, generate.py) work on torch tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.data.units import as_images, like_input, read_array, to_layout, to_unit
from aekit.errors import (
    AekitTypeError,
    ConfigError,
    DataError,
    Param,
    check_params,
    seed_of,
)


def as_autoencoder(model: Any, name: str = "model"):
    """A fitted aekit.Autoencoder for `model` (see the module docstring)."""
    from aekit.api import Autoencoder, from_module, load

    if isinstance(model, str | Path):
        return load(model)
    if isinstance(model, torch.nn.Module):
        return from_module(model)
    if isinstance(model, Autoencoder):
        if not hasattr(model, "module_"):
            from aekit.errors import NotFittedError

            raise NotFittedError(f"{name}: this Autoencoder is not fitted yet; call fit(X) or "
                                 "aekit.load(dir)")
        return model
    raise AekitTypeError(f"{name}: expected a fitted aekit.Autoencoder, a run folder or an aekit "
                         f"autoencoder module, got {type(model).__name__}")


def images_in(X: Any, ae, name: str = "X") -> tuple[torch.Tensor, str]:
    """X validated against the model: ((N, C, H, W) uint8 or [0, 1] float, its layout)."""
    return as_images(X, name, ae.model_config_.shape, owner="the model",
                     int_white=ae._int_white(), float_white=ae.pixel_max_)


def images_out(t: torch.Tensor, ae, layout: str, reference: Any) -> Any:
    """[0, 1] images (N, C, H, W) -> white = pixel_max_, `layout`, the library of `reference`
    (None or "numpy": numpy float32; "torch": a tensor; an array or tensor: its library)."""
    if ae.pixel_max_ != 1.0:
        t = t * ae.pixel_max_
    t = to_layout(t, layout)
    if isinstance(reference, str) and reference == "torch":
        return t
    if reference is None or isinstance(reference, str):
        return t.numpy()
    return like_input(t, reference)


def _check_like(owner: str, like: Any) -> None:
    if isinstance(like, str) and like not in ("numpy", "torch"):
        raise ConfigError(f"{owner}: like={like!r} is not allowed; expected 'numpy', 'torch', "
                          "an array or a tensor")
    if not (like is None or isinstance(like, str | np.ndarray | torch.Tensor)):
        raise AekitTypeError(f"{owner}: like has type {type(like).__name__}; expected 'numpy', "
                             "'torch', an array or a tensor")


def _one_image(img: Any, name: str, ae) -> tuple[torch.Tensor, str]:
    """One image ((H, W), (C, H, W), (H, W, C), a row, or a batch of one) -> ((1, C, H, W)
    float in [0, 1], the layout of the batch of one it was read as)."""
    t = read_array(img, name)
    if t.ndim == 4 and len(t) != 1:
        raise DataError(f"{name}: expected one image, got a batch of {len(t)}")
    if t.ndim < 4:
        t = t.unsqueeze(0)
    x, layout = images_in(t, ae, name)
    return to_unit(x), layout


def _require_prior(module: torch.nn.Module, what: str) -> None:
    if not module.can_sample:
        raise ConfigError(f"model: a {module.cfg.name!r} model has no prior to {what} from; use "
                          "a variational one, e.g. aekit.Autoencoder(model='vae')")


# --- the tasks ------------------------------------------------------------------------------------


def embed(model: Any, X: Any, keep: int | None = None, batch_size: int = 500) -> Any:
    """Codes of images X, flattened to (N, D) float32 (float64 for float64 numpy input); a VAE
    gives its posterior mean. `keep` returns only the first `keep` units (nested models)."""
    from aekit.represent.embedding import embed as codes_of

    check_params("embed", {"keep": keep, "batch_size": batch_size},
                 {"keep": Param("int", 1, None, none=True), "batch_size": Param("int", 1, 1 << 20)})
    ae = as_autoencoder(model)
    x, _ = images_in(X, ae)
    z = torch.from_numpy(codes_of(ae.module_, x, batch_size))
    if keep is not None:
        if keep > z.shape[1]:
            raise ConfigError(f"embed: keep={keep} is out of range; the codes have "
                              f"{z.shape[1]} units")
        z = z[:, :keep]
    return like_input(z, X)


def sample_images(model: Any, n: int, random_state: Any = 0, temperature: float = 1.0,
                  like: Any = None) -> Any:
    """n images decoded from z ~ N(0, temperature^2 I) with a VAE, reproducible by
    `random_state`; numpy unless `like` says otherwise, in the training images' layout."""
    from aekit.represent import generate

    check_params("sample_images", {"n": n, "random_state": random_state,
                                   "temperature": temperature},
                 {"n": Param("int", 1, 10_000), "random_state": Param("seed", none=True),
                  "temperature": Param("float", 0.0, 10.0)})
    _check_like("sample_images", like)
    ae = as_autoencoder(model)
    _require_prior(ae.module_, "sample")
    with torch.inference_mode():
        images = generate.sample_images(ae.module_, n, seed_of(random_state), temperature)
    return images_out(images.cpu().float(), ae, ae.input_layout_, like)


def interpolate(model: Any, a: Any, b: Any, steps: int = 10) -> Any:
    """`steps` frames decoded from evenly spaced points between the codes of images a and b
    (the first and last are their reconstructions): (steps, ...) in a's layout and library."""
    from aekit.represent import generate

    check_params("interpolate", {"steps": steps}, {"steps": Param("int", 2, 1000)})
    ae = as_autoencoder(model)
    xa, layout = _one_image(a, "a", ae)
    xb, _ = _one_image(b, "b", ae)
    frames = generate.interpolate(ae.module_, xa[0], xb[0], steps)
    return images_out(frames.float(), ae, layout, a)


def traverse(model: Any, dims: Any, steps: int = 9, span: float = 3.0, base: Any = None,
             like: Any = None) -> Any:
    """One row per latent unit in `dims`, swept over [-span, span] prior standard deviations
    with the other units at `base`'s code (or 0): (len(dims), steps, ...) images, in base's
    layout and library (without base: the training layout, numpy unless `like`)."""
    from aekit.represent import generate

    check_params("traverse", {"steps": steps, "span": span},
                 {"steps": Param("int", 2, 100), "span": Param("float", 0.0, 100.0)})
    _check_like("traverse", like)
    ae = as_autoencoder(model)
    _require_prior(ae.module_, "traverse")
    latent = int(ae.module_.cfg.latent_dim)
    if isinstance(dims, int | np.integer) and not isinstance(dims, bool):
        dims = [dims]
    if not isinstance(dims, list | tuple | np.ndarray) or not all(
            isinstance(d, int | np.integer) and not isinstance(d, bool) for d in dims):
        raise AekitTypeError(f"traverse: dims={dims!r} has the wrong type; expected a list of "
                             f"latent unit indices in [0, {latent - 1}]")
    if not len(dims) or not all(0 <= d < latent for d in dims):
        raise ConfigError(f"traverse: dims={list(dims)!r} is out of range; expected latent unit "
                          f"indices in [0, {latent - 1}]")
    layout, reference, start = ae.input_layout_, like, None
    if base is not None:
        start, layout = _one_image(base, "base", ae)
        start, reference = start[0], base
    rows = generate.traverse(ae.module_, [int(d) for d in dims], steps, span, start)
    out = [images_out(r.float(), ae, layout, reference) for r in rows]
    return torch.stack(out) if isinstance(out[0], torch.Tensor) else np.stack(out)
