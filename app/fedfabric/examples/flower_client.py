"""An ordinary Flower client: a small CNN on handwritten digits. Nothing in this file knows fedfabric.

The data is scikit-learn's bundled 8x8 digits (offline), split IID among the federation's partitions by
``partition-id`` and ``num-partitions`` from the node config, as Flower's simulation hands them to a
client; each partition keeps ``val-fraction`` of its samples for ``evaluate``. Every client seeds its
model with the run's ``seed`` so all of them start from the same parameters. ``fit`` trains
``local_epochs`` epochs with SGD at ``lr`` and reports its last epoch's mean loss, its iterations and
a fingerprint of its training data.

Run it as an org's trainer on the ledger::

    fedfabric node --org org1 --job digits-flower --flower-client fedfabric.examples.flower_client:client_fn

with a job such as ``app/fedfabric/node/jobs/digits_flower.yaml``; the same ``client_fn`` is what a
Flower ``ClientApp(client_fn=client_fn)`` is built from.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch
from flwr.app import Context
from flwr.client import Client, NumPyClient
from torch import nn


class Net(nn.Module):
    """Two 3x3 convolutions with max-pooling, then one linear layer: 8x8 image -> 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch of flattened 8x8 images."""
        x = x.view(-1, 1, 8, 8)
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc(x.flatten(1))


def load_partition(partition_id: int, num_partitions: int, seed: int = 0,
                   val_fraction: float = 0.2) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((X_train, y_train), (X_val, y_val)) of one IID partition of the digits, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = (X / 16.0).astype(np.float32), y.astype(np.int64)
    mine = np.random.default_rng(seed).permutation(len(y))[partition_id::num_partitions]
    n_val = max(1, int(round(len(mine) * val_fraction)))
    val, train = mine[:n_val], mine[n_val:]
    return (X[train], y[train]), (X[val], y[val])


def get_weights(net: nn.Module) -> list[np.ndarray]:
    """The model's state as a list of arrays (the Flower idiom)."""
    return [v.detach().cpu().numpy() for v in net.state_dict().values()]


def set_weights(net: nn.Module, arrays: list[np.ndarray]) -> None:
    """Load a list of arrays into the model's state, in order."""
    state = OrderedDict((k, torch.from_numpy(np.asarray(a))) for k, a in zip(net.state_dict().keys(), arrays))
    net.load_state_dict(state, strict=True)


class DigitsClient(NumPyClient):
    """Trains and evaluates :class:`Net` on one partition of the digits."""

    def __init__(self, net: nn.Module, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray]) -> None:
        self.net, self.train, self.val = net, train, val
        h = hashlib.sha256(np.ascontiguousarray(train[0]).tobytes())
        h.update(np.ascontiguousarray(train[1]).tobytes())
        self.fingerprint = h.hexdigest()

    def get_parameters(self, config: dict) -> list[np.ndarray]:
        """The current parameters."""
        return get_weights(self.net)

    def fit(self, parameters: list[np.ndarray], config: dict) -> tuple[list[np.ndarray], int, dict]:
        """``local_epochs`` epochs of SGD (momentum 0.9) from ``parameters``."""
        set_weights(self.net, parameters)
        epochs, lr = int(config.get("local_epochs", 1)), float(config.get("lr", 0.05))
        batch = int(config.get("batch_size", 32))
        gen = torch.Generator().manual_seed(int(config.get("seed", 0)))
        X, y = torch.from_numpy(self.train[0]), torch.from_numpy(self.train[1])
        opt = torch.optim.SGD(self.net.parameters(), lr=lr, momentum=0.9)
        self.net.train()
        iters, loss_sum = 0, 0.0
        for _ in range(epochs):
            loss_sum = 0.0
            perm = torch.randperm(len(y), generator=gen)
            for i in range(0, len(y), batch):
                b = perm[i:i + batch]
                opt.zero_grad()
                loss = nn.functional.cross_entropy(self.net(X[b]), y[b])
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach()) * len(b)
                iters += 1
        return get_weights(self.net), len(y), {"train_loss": loss_sum / len(y), "iterations": iters,
                                               "data_fingerprint": self.fingerprint}

    def evaluate(self, parameters: list[np.ndarray], config: dict) -> tuple[float, int, dict]:
        """Loss and accuracy of ``parameters`` on the partition's validation samples."""
        set_weights(self.net, parameters)
        self.net.eval()
        X, y = torch.from_numpy(self.val[0]), torch.from_numpy(self.val[1])
        with torch.no_grad():
            out = self.net(X)
            loss = float(nn.functional.cross_entropy(out, y))
            acc = float((out.argmax(1) == y).float().mean())
        return loss, len(y), {"accuracy": acc}


def client_fn(context: Context) -> Client:
    """The client of the partition ``context.node_config`` names."""
    pid, n = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    seed = int(context.run_config.get("seed", 0))
    torch.manual_seed(seed)   # the same initial parameters in every partition
    net = Net()
    train, val = load_partition(pid, n, seed, float(context.run_config.get("val-fraction", 0.2)))
    return DigitsClient(net, train, val).to_client()
