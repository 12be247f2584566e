"""Surrogate-gradient BPTT training of a spiking network on float weights: the digital baseline.

Loss: cross-entropy of the network's class scores (output spike counts, or the time-averaged
output membrane) against the labels; gradients flow through the LIF neurons' surrogate
derivatives across all time steps. Adam or SGD; mini-batches in a seeded order; the encoder draws
its spikes from a seeded generator, so a run is reproducible.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..crossbar.network import SpikingNetwork

__all__ = ["train_bptt", "evaluate", "TrainingDiverged", "OPTIMIZERS"]

OPTIMIZERS = ("adam", "sgd")


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN or infinite."""


def batched_accuracy(predict: Callable, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256,
                     seed: int = 0) -> float:
    """Fraction of ``x`` ``[N, F]`` that ``predict(x_batch, generator)`` labels as ``y`` ``[N]``,
    in batches, without gradients, with one generator seeded by ``seed``."""
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    gen = torch.Generator().manual_seed(seed)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += int((predict(x[i:i + batch_size], gen).cpu() == y[i:i + batch_size].cpu()).sum())
    return correct / max(len(x), 1)


def evaluate(net: SpikingNetwork, x: torch.Tensor, y: torch.Tensor, encoder: Callable, *, batch_size: int = 256,
             seed: int = 0) -> float:
    """Accuracy of ``net`` on samples ``x`` ``[N, F]`` with labels ``y`` ``[N]`` (no gradients)."""
    return batched_accuracy(lambda xb, gen: net(encoder(xb, gen)).predictions(), x, y, batch_size=batch_size,
                            seed=seed)


def train_bptt(
    net: SpikingNetwork,
    data,
    encoder: Callable,
    *,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 2e-3,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    eval_every: int = 1,
) -> pd.DataFrame:
    """Train ``net``'s float weights by BPTT on ``data`` (a :class:`~memsnn.experiments.datasets.Dataset`).

    Returns the history, one row per epoch: ``epoch, loss, train_acc, test_acc, seconds``
    (``train_acc`` is the running accuracy of the training batches). Raises
    :class:`TrainingDiverged` at the first NaN or infinite loss or gradient.
    """
    for name, v, ok in (("epochs", epochs, isinstance(epochs, int) and epochs >= 1),
                        ("batch_size", batch_size, isinstance(batch_size, int) and batch_size >= 1),
                        ("lr", lr, isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0),
                        ("eval_every", eval_every, isinstance(eval_every, int) and eval_every >= 1)):
        if not ok:
            raise ValueError(f"{name}={v!r} is not allowed: must be a positive {'integer' if name != 'lr' else 'number'}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is not allowed: use one of {', '.join(map(repr, OPTIMIZERS))}")
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the network has no trainable float weights (crossbar layers train in-situ, with pulses)")
    opt = (torch.optim.Adam(params, lr=lr, weight_decay=weight_decay) if optimizer == "adam"
           else torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay))
    loss_fn = nn.CrossEntropyLoss()
    order_gen = torch.Generator().manual_seed(seed)
    spike_gen = torch.Generator().manual_seed(seed + 1)
    x, y = data.x_train, data.y_train
    rows = []
    bar = tqdm(range(1, epochs + 1), desc="BPTT", disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        net.train()
        perm = torch.randperm(len(x), generator=order_gen)
        total_loss, correct, seen = 0.0, 0, 0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            out = net(encoder(x[idx], spike_gen))
            loss = loss_fn(out.logits, y[idx])
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {float(loss)} at epoch {epoch}, batch {i // batch_size}; lower lr={lr}")
            opt.zero_grad()
            loss.backward()
            # a NaN weight can hide behind silent spikes (the counts stay finite): check the gradient
            grad_norm = torch.nn.utils.clip_grad_norm_(params, float("inf"))
            if not torch.isfinite(grad_norm):
                raise TrainingDiverged(f"gradient became {float(grad_norm)} at epoch {epoch}, batch {i // batch_size}; "
                                       f"check the weights for NaN or lower lr={lr}")
            opt.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((out.predictions() == y[idx]).sum())
            seen += len(idx)
        net.eval()
        row = {"epoch": epoch, "loss": total_loss / seen, "train_acc": correct / seen, "seconds": time.perf_counter() - t0}
        if epoch % eval_every == 0 or epoch == epochs:
            row["test_acc"] = evaluate(net, data.x_test, data.y_test, encoder, seed=seed + 2)
        rows.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", test=f"{row.get('test_acc', float('nan')):.3f}")
    return pd.DataFrame(rows)
