"""A short real run: LeNet-5 on the embedded MNIST subset learns to >= 90% test accuracy in one epoch."""

import numpy as np

import cnnkit as ck
from cnnkit.data import DataLoader, load
from cnnkit.losses import SoftmaxCrossEntropy
from cnnkit.train import evaluate, fit


def test_lenet5_learns_embedded_mnist():
    train, test = load("embedded", "train"), load("embedded", "test")
    norm = ((0.1307,), (0.3081,))
    net = ck.models.get("lenet5", rng=np.random.default_rng(0))
    opt = ck.optim.Adam(net, lr=2e-3)
    history = fit(net, SoftmaxCrossEntropy(), opt, DataLoader(train, 32, shuffle=True, normalize=norm),
                  epochs=1, quiet=True)
    result = evaluate(net, DataLoader(test, 500, normalize=norm), SoftmaxCrossEntropy())
    assert history["train_loss"][0] < 0.6
    assert result["accuracy"] >= 0.90, result["accuracy"]
    confusion = result["confusion"]
    assert confusion.sum() == 2000 and np.trace(confusion) == round(result["accuracy"] * 2000)
