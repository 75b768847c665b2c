"""Putting a two-domain (`swap`) run to work: draw images of one domain in the other's look.

The run's shared encoder codes each image and the decoder of the target domain (`to`) draws it.
Images of another size than the model's are resized to it and the output back to the input's
size, so every output PNG has its input's size.

The images' own domain (`source`, `--from`) defaults to the one that is not the target: the
encoder's per-domain input maps (`domain_norm`) need it. Translating to the images' own domain
reconstructs them.

`Translator.translate` takes numpy or torch, uint8 0..255 or float 0..1, shaped (N, H, W),
(N, C, H, W) or (N, H, W, C), and returns floats in [0, 1] in the input's library and layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from aekit.data.files import ModelInputs, output_path
from aekit.data.images import save_png
from aekit.data.units import as_images, like_input, to_layout, to_unit
from aekit.errors import ConfigError, DataError, RunError

_TRAIN_HINT = "aekit train --model swap --dataset A --dataset-b B --out RUN"


@dataclass(repr=False)
class Translator:
    """A loaded two-domain model."""

    model: torch.nn.Module
    run_dir: str
    batch_size: int = 256

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "cpu", batch_size: int = 256) -> Translator:
        """A RunError when `run_dir` is not a finished two-domain run."""
        from aekit.core.io import load_model, read_config
        from aekit.device import resolve_device

        if batch_size < 1:
            raise ConfigError(f"--batch-size {batch_size}: must be at least 1")
        run = read_config(run_dir)
        from aekit.registry import get_model_class

        if not get_model_class(run.model_cfg.name).domains:
            raise RunError(f"{run_dir} is not a domain-translation model (model "
                           f"{run.model_cfg.name!r}); train one with `{_TRAIN_HINT}`")
        model, _ = load_model(run_dir, resolve_device(device))
        return cls(model, str(run_dir), batch_size)

    def __repr__(self) -> str:
        return (f"Translator(run_dir={self.run_dir!r}, domains={self.domains}, "
                f"channels={self.channels}, size={self.size}, batch_size={self.batch_size})")

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.model.domains)

    @property
    def channels(self) -> int:
        return int(self.model.channels)

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.model.cfg.height), int(self.model.cfg.width))

    def check_domain(self, to: str, name: str = "--to") -> None:
        """ConfigError unless `to` is one of the domains; `name` is the argument as the caller
        knows it (the flag, or `to` in Python)."""
        if not isinstance(to, str) or to not in self.domains:
            what = f"{name} {to!r}" if name.startswith("-") else f"{name}={to!r}"
            raise ConfigError(f"{what}: {self.run_dir} translates between domains "
                              f"{' and '.join(self.domains)}; use one of them")

    def source_of(self, to: str, source: str | None, name: str = "source") -> str:
        """The domain the images come from: `source`, checked, or the domain that is not `to`."""
        if source is None:
            return next(d for d in self.domains if d != to)
        self.check_domain(source, name)
        return source

    @torch.inference_mode()
    def translate(self, x: Any, to: str, source: str | None = None) -> Any:
        """Images of any size (see the module docstring) of domain `source` (default: the one
        that is not `to`) -> the same images drawn by domain `to`'s decoder: floats in [0, 1],
        in x's library and layout. source == to reconstructs them."""
        self.check_domain(to, "to")
        source = self.source_of(to, source)
        t, layout = as_images(x, "x", owner="this translator")
        if t.shape[1] != self.channels:
            raise DataError(f"x: images have {t.shape[1]} channel(s) but the model in "
                            f"{self.run_dir} takes {self.channels} (N, {self.channels}, H, W)")
        device = next(self.model.parameters()).device
        hw = tuple(t.shape[2:])
        outs = []
        for chunk in t.split(self.batch_size):
            chunk = _resize(to_unit(chunk, device), self.size)
            outs.append(_resize(self.model.swap(chunk, to, source), hw).clamp(0, 1).cpu())
        return like_input(to_layout(torch.cat(outs), layout), x)


def _resize(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False,
                         antialias=True)


def translate_files(translator: Translator, inputs: ModelInputs, to: str,
                    out_dir: str | Path, source: str | None = None) -> tuple[int, int]:
    """Translate the usable files of `inputs` (data.files.ModelInputs: unreadable and
    mismatched files are already listed in `inputs.bad`), images of domain `source` (default:
    the one that is not `to`), into PNGs in `out_dir`, one per input, named after it, of its
    size. Returns (written, how many were not the model's size)."""
    translator.check_domain(to)
    source = translator.source_of(to, source, "--from")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    done = other_size = 0
    for start in range(0, len(inputs.files), translator.batch_size):
        loaded = {}
        for p in inputs.files[start : start + translator.batch_size]:
            img = inputs.load_own_size(p)
            if img is not None:
                loaded[p] = img
        by_size: dict[tuple[int, int], list[Path]] = {}  # one size goes through together
        for p, img in loaded.items():
            by_size.setdefault(tuple(img.shape[1:]), []).append(p)
        for hw, group in by_size.items():
            y = translator.translate(torch.stack([loaded[p] for p in group]), to, source)
            for p, img in zip(group, y, strict=True):
                save_png(output_path(out_dir, p, used), img, inputs.take_alpha(p))
            done += len(group)
            other_size += len(group) if hw != translator.size else 0
    return done, other_size
