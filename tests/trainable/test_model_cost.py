"""The trainable reports what trade-offs need: n_params, model_size_mb, inference_ms."""

from __future__ import annotations

import torch
from torch import nn

from hpo.trainable import model_cost
from hpo.trainable.loop import fit


def test_n_params_counts_trainable_parameters_only():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    assert model_cost.n_params(model) == 4 * 3 + 3 + 3 * 2 + 2
    model[0].weight.requires_grad_(False)
    assert model_cost.n_params(model) == 3 + 3 * 2 + 2
    # float32: 4 bytes each, frozen or not
    assert model_cost.model_size_mb(model) == (4 * 3 + 3 + 3 * 2 + 2) * 4 / 2**20


def test_inference_is_timed_in_eval_mode_without_grad_and_the_mode_restored():
    seen = []
    model = nn.Dropout(0.5)

    def forward():
        seen.append((model.training, torch.is_grad_enabled()))
        return model(torch.ones(3))

    model.train()
    ms = model_cost.inference_ms(model, forward, torch.device("cpu"))
    assert ms >= 0 and model.training
    assert seen == [(False, False)] * (model_cost.TIMED_PASSES + 1)


def test_every_epoch_reports_the_model_cost(digits):
    config = {"training": {"epochs": 2}, "model": {"hidden_size": 16, "num_layers": 1}}
    first, second = list(fit(config, digits))
    assert first["n_params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert first["model_size_mb"] == first["n_params"] * 4 / 2**20
    assert 0 < first["inference_ms"] < 1000
    # measured once: the same in every epoch
    assert second["inference_ms"] == first["inference_ms"]
