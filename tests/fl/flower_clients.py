"""Small Flower clients for the tests: real ``flwr.client.NumPyClient`` subclasses, built by factories the
node loads by ``module:factory`` like any user's client. ``Tiny`` trains nothing real (numpy only, fast)
but answers exactly what flwr expects; the others answer what a node must refuse."""
from __future__ import annotations

import numpy as np
from flwr.client import NumPyClient

from fedfabric.fl.flower import FlowerRecipe
from fedfabric_protocol import aggregate

SEEN: dict = {}   # the last context a factory got, for the tests to look at


def _arrays(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float64), np.array(5, np.int64)]


class Tiny(NumPyClient):
    """Parameters [W (3x2 float32), b (2, float64), count (int64 scalar)]; ``fit`` adds ``lr`` to every value."""

    def __init__(self, arrays: list[np.ndarray], examples: int = 7) -> None:
        self.arrays, self.examples = arrays, examples
        self.fits: list[dict] = []

    def get_parameters(self, config):
        """The parameters it was built with."""
        return [a.copy() for a in self.arrays]

    def fit(self, parameters, config):
        """Every float moves by ``config["lr"]``, every integer by 1; the config is kept for the test."""
        self.fits.append(dict(config))
        out = [(p + config["lr"]).astype(p.dtype) if p.dtype.kind == "f" else p + 1 for p in parameters]
        return out, self.examples, {"train_loss": 0.25, "iterations": 3}

    def evaluate(self, parameters, config):
        """Loss: the sum of |W|; accuracy falls as it grows."""
        w = parameters[0]
        loss = float(np.abs(w).sum())
        return loss, 4, {"accuracy": float(np.clip(1.0 - loss / 10, 0, 1))}


def tiny_fn(context):
    """Flower's client_fn(context) idiom; the same parameters in every partition."""
    SEEN["context"] = context
    SEEN["client"] = client = Tiny(_arrays())
    return client.to_client()


def tiny_numpy():
    """A factory without arguments that returns the NumPyClient itself (no to_client())."""
    return Tiny(_arrays())


class _WrongShapes(Tiny):
    def fit(self, parameters, config):
        return [np.zeros((2, 3), np.float32), parameters[1], parameters[2]], self.examples, {}


def wrong_shapes_fn(context):
    """A client whose fit returns its first array transposed."""
    return _WrongShapes(_arrays()).to_client()


def unseeded_fn(context):
    """Each partition starts from its own parameters: version 0 cannot be the same everywhere."""
    return Tiny(_arrays(seed=100 + int(context.node_config["partition-id"]))).to_client()


class _NoFit(NumPyClient):
    def get_parameters(self, config):
        return _arrays()


def no_fit_fn(context):
    """A NumPyClient without fit: flwr's wrapper answers FIT_NOT_IMPLEMENTED."""
    return _NoFit().to_client()


def not_a_client_fn(context):
    """Returns something that is no Flower client."""
    return {"parameters": _arrays()}


NOT_CALLABLE = 42


def short_fit_fn(context):
    """The example client, except that its fit returns one array too few."""
    import torch

    from fedfabric.examples.flower_client import DigitsClient, Net, load_partition

    class ShortFit(DigitsClient):
        def fit(self, parameters, config):
            arrays, n, metrics = super().fit(parameters, config)
            return arrays[:-1], n, metrics

    torch.manual_seed(int(context.run_config.get("seed", 0)))
    net = Net()
    train, val = load_partition(int(context.node_config["partition-id"]), int(context.node_config["num-partitions"]))
    return ShortFit(net, train, val).to_client()


def in_process(spec, ref: str) -> tuple[dict, list[np.ndarray]]:
    """The job's rounds with every participant's client ``ref`` builds, in this process: the nodes' recipe and
    the protocol's secure sum of the same fixed-point words (the masks, which cancel exactly, left out).
    Returns ({msp: recipe}, the model after each round)."""
    recs = {m: FlowerRecipe.from_ref(spec, m, ref) for m in spec.hyperparams.shards}
    vec, models = next(iter(recs.values())).initial, []
    for r in range(1, spec.rounds + 1):
        lus = {m: rec.train(vec, r) for m, rec in recs.items()}
        words = {m: recs[m].encode(lu, len(recs)) for m, lu in lus.items()}
        agg = aggregate.secure_aggregate(spec.aggregation, words, {m: recs[m].sample_count(lu) for m, lu in lus.items()},
                                         {}, [])
        vec = FlowerRecipe.candidate(vec, agg.words)
        models.append(vec)
    return recs, models
