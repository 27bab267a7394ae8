"""End to end: a tiny ConvNet learns a synthetic task with plain SGD written out here, in a few seconds.

The task: 8x8 images holding one vertical step edge at a random column and height range, plus noise.
Class 0 is bright on the left of the edge ("left edge"), class 1 bright on the right. The network has to
find the edge's polarity wherever it is, which is what a convolution filter like (-1, +1) does.
"""

import numpy as np
import pytest

import cnnkit as ck
from cnnkit.losses import MulticlassSVM, SoftmaxCrossEntropy


def edge_images(n, rng, size=8):
    """n images (n, 1, size, size) float32 and labels (n,) int64, the two classes alternating."""
    labels = np.arange(n) % 2
    images = np.zeros((n, 1, size, size), np.float32)
    for i, label in enumerate(labels):
        column = rng.integers(2, size - 1)
        top = rng.integers(0, 3)
        bottom = rng.integers(size - 2, size + 1)
        bright = slice(0, column) if label == 0 else slice(column, size)
        images[i, 0, top:bottom, bright] = 1.0
    images += 0.1 * rng.standard_normal(images.shape).astype(np.float32)
    return images, labels.astype(np.int64)


def tiny_convnet(rng):
    return ck.Sequential(ck.Conv2d(1, 4, 3, padding=1, rng=rng), ck.ReLU(), ck.MaxPool2d(2), ck.Flatten(),
                         ck.Linear(4 * 4 * 4, 2, rng=rng))


def sgd_train(model, loss, x, y, steps, learning_rate, rng, batch_size=16):
    """Minibatch SGD, written out: forward, loss, backward, p -= lr * grad."""
    history = []
    for _ in range(steps):
        batch = rng.choice(len(x), batch_size, replace=False)
        model.zero_grad()
        history.append(loss.forward(model.forward(x[batch]), y[batch]))
        model.backward(loss.backward())
        for p in model.parameters():
            p.data -= learning_rate * p.grad
    return history


@pytest.mark.parametrize("loss, learning_rate", [(SoftmaxCrossEntropy(), 0.2), (MulticlassSVM(), 0.5)],
                         ids=["softmax", "svm"])
def test_tiny_convnet_reaches_full_training_accuracy(loss, learning_rate):
    rng = np.random.default_rng(0)
    x, y = edge_images(64, rng)
    model = tiny_convnet(rng)
    initial = loss.forward(model.forward(x), y)
    if isinstance(loss, SoftmaxCrossEntropy):
        assert abs(initial - np.log(2)) < 0.2  # an untrained classifier starts near log(C), as the notes say
    history = sgd_train(model, loss, x, y, steps=300, learning_rate=learning_rate, rng=rng)
    scores = model.forward(x)
    assert scores.dtype == np.float32 and all(p.data.dtype == np.float32 for p in model.parameters())
    accuracy = float((scores.argmax(axis=1) == y).mean())
    assert accuracy == 1.0, f"training accuracy {accuracy:.3f}; losses {history[::50]}"
    assert np.mean(history[-20:]) < 0.25 * initial
    # and it generalises to fresh images of the same task
    x_new, y_new = edge_images(64, np.random.default_rng(1))
    assert (model.forward(x_new).argmax(axis=1) == y_new).mean() >= 0.95


def test_training_is_reproducible_with_a_seed():
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(5)
        x, y = edge_images(32, rng)
        model = tiny_convnet(rng)
        runs.append(sgd_train(model, SoftmaxCrossEntropy(), x, y, steps=10, learning_rate=0.2, rng=rng))
    assert runs[0] == runs[1]
