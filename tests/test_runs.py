"""Run folders and model files: tampering is detected, nothing is unpickled."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from aekit.config import ModelConfig, TrainConfig
from aekit.core.io import load_model, save_weights, write_config
from aekit.errors import RunError
from aekit.models import build_model, resolve_options

# Spelled out as a run folder stores it (every option of the model, defaults included).
CFG = resolve_options(ModelConfig(name="dense", height=12, width=12, latent_dim=4))


@pytest.fixture
def run(tmp_path):
    torch.manual_seed(0)
    write_config(tmp_path, CFG, TrainConfig(dataset="digits"))
    save_weights(tmp_path, build_model(CFG))
    return tmp_path


def test_round_trip(run):
    model, info = load_model(run)
    assert info.model_cfg == CFG
    assert not model.training


def test_pickle_renamed_to_safetensors_is_rejected_unexecuted(run, tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (run / "model.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(RunError, match="safetensors"):
        load_model(run)
    assert not marker.exists()


def test_truncated_weights(run):
    raw = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RunError):
        load_model(run)


def test_wrong_shapes_missing_and_extra_tensors(run):
    good = build_model(CFG).state_dict()
    meta = {"format": "aekit-model/1", "config": json.dumps(CFG.to_dict(), sort_keys=True)}
    name = next(iter(good))
    for tensors, needle in (
        ({**good, name: torch.zeros(3)}, "wrong shape"),
        ({k: v for k, v in good.items() if k != name}, "missing"),
        ({**good, "extra.weight": torch.zeros(1)}, "unexpected"),
    ):
        save_file({k: v.contiguous() for k, v in tensors.items()}, run / "model.safetensors", meta)
        with pytest.raises(RunError, match=needle):
            load_model(run)


def test_weights_from_another_config(run):
    other = ModelConfig(name="dense", height=12, width=12, latent_dim=5)
    model = build_model(other)
    model.cfg = other
    save_weights(run, model)
    with pytest.raises(RunError, match="different model config"):
        load_model(run)


def test_corrupt_config(run):
    (run / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="not valid JSON"):
        load_model(run)
    (run / "config.json").write_text(json.dumps({"model": {"name": "dense", "bogus": 1},
                                                 "train": {}}))
    with pytest.raises(RunError, match="unknown keys"):
        load_model(run)


def test_new_runs_store_every_option_so_old_runs_survive_default_changes(tmp_path):

    given = ModelConfig("conv", height=12, width=12, latent_dim=4, options={"hidden": 16})
    resolved = resolve_options(given)
    assert resolved.options["hidden"] == 16  # the user's value wins
    assert resolved.options["activation"] == "relu" and "depth" in resolved.options
    assert resolve_options(resolved) == resolved  # idempotent
    # A run written with the resolved config rebuilds the same model and loads.
    model = build_model(resolved)
    write_config(tmp_path, resolved, TrainConfig())
    save_weights(tmp_path, model)
    loaded, run = load_model(tmp_path)
    assert run.model_cfg.options == resolved.options
    # Saving spells the options out even when the config given does not.
    bare = ModelConfig("conv", height=12, width=12, latent_dim=4)
    write_config(tmp_path / "bare", bare, TrainConfig())
    save_weights(tmp_path / "bare", build_model(bare))
    assert load_model(tmp_path / "bare")[1].model_cfg.options == resolve_options(bare).options


def test_runs_saved_before_an_option_existed_rebuild_the_model_they_were(tmp_path):
    """A conv run saved before the `linear` option (config options {}, no linear-path tensors,
    as older versions wrote them) loads as the plain conv it was."""

    from aekit.core.io import FORMAT_TAG
    from aekit.io import write_safetensors

    old = ModelConfig("conv", height=12, width=12, latent_dim=4, options={"linear": False})
    model = build_model(old)
    (tmp_path / "old").mkdir()
    doc = {"aekit": "0.1.0", "model": {**old.to_dict(), "options": {}},
           "train": TrainConfig().to_dict()}
    (tmp_path / "old" / "config.json").write_text(json.dumps(doc))
    meta = {"format": FORMAT_TAG, "config": json.dumps(doc["model"], sort_keys=True)}
    write_safetensors(tmp_path / "old" / "model.safetensors", model.state_dict(), meta)
    loaded, run = load_model(tmp_path / "old")
    assert run.model_cfg.options == {"linear": False, "linear_space": "logit"}
    assert loaded.lin_enc is None
    x = torch.rand(2, 1, 12, 12)
    with torch.inference_mode():
        assert torch.equal(loaded(x)["x_hat"], model.eval()(x)["x_hat"])


def test_train_cli_writes_resolved_options(tmp_path):
    import numpy as np

    from aekit import cli

    x = (torch.rand(40, 8, 8) * 255).to(torch.uint8).numpy()
    np.savez(tmp_path / "d.npz", x_train=x, x_test=x[:10])
    rc = cli.main(["train", "--dataset", f"npz:{tmp_path / 'd.npz'}", "--model", "conv",
                   "--latent-dim", "3", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert rc == 0
    doc = json.loads((tmp_path / "run" / "config.json").read_text())
    assert doc["model"]["options"]["activation"] == "relu"


@pytest.mark.parametrize("name, option, value", [("codec", "lambda", 0.002),
                                                 ("unet", "norm", True),
                                                 ("vae", "beta", 1.0)])
def test_codec_unet_and_vae_runs_store_their_defaults(name, option, value):
    """A codec trained without --option lambda used to train its rate term at the loss's own
    default (0.01) while the model was built for its default (0.002); resolved options agree."""
    import aekit.codec.model  # noqa: F401  (registers "codec")
    from aekit.train.losses import build_loss

    resolved = resolve_options(ModelConfig(name, height=12, width=12, latent_dim=4))
    assert resolved.options[option] == value
    model = build_model(resolved)
    if name == "codec":
        assert build_loss("", model).lmbda == model.lmbda == 0.002


def test_dense_vae_accepts_its_resolved_defaults_but_not_conv_options():
    from aekit.errors import ConfigError

    dense = resolve_options(ModelConfig("vae", height=12, width=12, latent_dim=4,
                                        options={"backbone": "dense"}))
    assert dense.options["activation"] == "gelu"  # the stored default does not trip the check
    build_model(dense)
    with pytest.raises(ConfigError, match="apply to backbone=conv only"):
        build_model(ModelConfig("vae", height=12, width=12, latent_dim=4,
                                options={"backbone": "dense", "depth": 2}))
