"""Models from configs: a name's class from the registry, its natural config, its options
spelled out, and the checks every model's fixed shape or code size imposes."""

from __future__ import annotations

import dataclasses

from aekit.config import ModelConfig
from aekit.errors import ConfigError
from aekit.models.base import AutoencoderModule
from aekit.registry import get_model_class


def default_config(name: str) -> ModelConfig:
    """A model's natural config: a seed preset's fixed shape and latent size, else the defaults.

    Callers override what the user gave: `dataclasses.replace(default_config(n), latent_dim=16)`.
    """
    cls = get_model_class(name)
    cfg = ModelConfig(name=name)
    if cls.fixed_shape is not None:
        c, h, w = cls.fixed_shape
        cfg = dataclasses.replace(cfg, in_channels=c, height=h, width=w)
    fixed_latent = cls.fixed_latent_dim
    if fixed_latent is not None:
        cfg = dataclasses.replace(cfg, latent_dim=fixed_latent)
    return cfg


def resolve_options(cfg: ModelConfig, train_x=None) -> ModelConfig:
    """`cfg` with every option the model defines spelled out (given values win over defaults),
    and, given the training images, the data-dependent ones decided (`options_from_data`).

    New runs store this form in config.json, so changing a default later (e.g. an activation)
    cannot silently change how an existing run folder rebuilds its model.
    """
    cls = get_model_class(cfg.name)
    options = {**cls.options_type.defaults(), **cfg.options}
    if train_x is not None:
        options = cls.options_from_data(dataclasses.replace(cfg, options=options), train_x)
    return dataclasses.replace(cfg, options=options)


def saved_options(cfg: ModelConfig) -> ModelConfig:
    """A config read from a saved run, with each option added since it was saved set to the
    value that means the model the run was (`option(absent=...)`), so old runs rebuild exactly.
    """
    absent = get_model_class(cfg.name).options_type.absent_values()
    missing = {k: v for k, v in absent.items() if k not in cfg.options}
    return dataclasses.replace(cfg, options={**cfg.options, **missing}) if missing else cfg


def build_model(cfg: ModelConfig) -> AutoencoderModule:
    """Validate `cfg` against the model's constraints and build the (untrained) model."""
    cls = get_model_class(cfg.name)
    if cls.fixed_shape is not None and tuple(cfg.shape) != tuple(cls.fixed_shape):
        raise ConfigError(
            f"model {cfg.name!r} has a fixed input shape (C, H, W) = {tuple(cls.fixed_shape)} "
            f"(the seed's exact architecture); got {tuple(cfg.shape)}. Resize the data "
            f"(e.g. --image-size) or use 'conv', which takes any shape"
        )
    fixed_latent = cls.fixed_latent_dim
    if fixed_latent is not None and cfg.latent_dim != fixed_latent:
        raise ConfigError(
            f"model {cfg.name!r} has a fixed latent size {fixed_latent} (the seed's exact "
            f"architecture); got latent_dim={cfg.latent_dim}. Use {fixed_latent} or leave it unset"
        )
    own = {k: v for k, v in cfg.options.items() if k not in cls.common_options}
    if fixed_latent is not None and (cfg.widths or own):
        raise ConfigError(
            f"model {cfg.name!r} is a fixed seed architecture; it takes no widths or options "
            f"(got widths={list(cfg.widths)}, options={own})"
        )
    return cls(cfg)
