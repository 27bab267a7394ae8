"""cnnkit.transfer: cutting networks, CNN codes, linear classifiers on codes, freezing, new heads, per-layer
learning rates, convolutionalizing FC layers, and the MNIST transfer experiment's claim."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from cnnkit import layers as L
from cnnkit import models
from cnnkit.optim import SGD
from cnnkit.transfer import (
    LinearClassifier,
    convolutionalize,
    extract_features,
    feature_extractor,
    freeze,
    head_name,
    param_groups,
    replace_head,
    unfreeze,
)
from conftest import ROOT, assert_parity


@pytest.fixture
def lenet(rng):
    return models.get("lenet5", rng=rng).eval()


def _images(rng, n=4, shape=(1, 28, 28)):
    return rng.standard_normal((n, *shape)).astype(np.float32)


# -- feature_extractor / extract_features ----------------------------------------------------------------

def test_feature_extractor_cuts_after_the_named_layer_and_shares_weights(lenet, rng):
    cut = feature_extractor(lenet, "pool2")
    assert [n for n, _ in cut.named_children()] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]
    assert cut["conv1"] is lenet["conv1"]  # shared, not copied
    assert list(cut.state_dict()) == list(lenet.state_dict())[:4]
    x = _images(rng)
    np.testing.assert_array_equal(cut.forward(x), lenet[:6].forward(x))
    assert cut.output_shape((4, 1, 28, 28)) == (4, 16, 5, 5)


def test_feature_extractor_cuts_inside_nested_sequentials(rng):
    vgg = models.get("vgg11", num_classes=10, input_shape=(3, 32, 32), avgpool_size=None, rng=rng)
    cut = feature_extractor(vgg, "features.5")
    assert [n for n, _ in cut.named_children()] == ["features"]
    assert len(cut["features"]) == 6 and cut.output_shape((1, 3, 32, 32)) == (1, 128, 8, 8)
    penultimate = feature_extractor(vgg, "classifier.4")  # the ReLU after the 2nd FC: the notes' 4096-d codes
    assert penultimate.output_shape((2, 3, 32, 32)) == (2, 4096)


def test_feature_extractor_refuses_cuts_inside_branches_and_unknown_names(rng):
    resnet = models.get("resnet18", num_classes=10, input_shape=(3, 32, 32), rng=rng)
    assert feature_extractor(resnet, "layer1.0").output_shape((1, 3, 32, 32)) == (1, 64, 8, 8)
    with pytest.raises(ValueError, match="layer1.0 is a Residual.*Cut at 'layer1.0'"):
        feature_extractor(resnet, "layer1.0.conv1")
    with pytest.raises(KeyError, match="no layer named 'layer9'"):
        feature_extractor(resnet, "layer9")


def test_extract_features_from_arrays_and_loaders(lenet, rng):
    cut = feature_extractor(lenet, "relu4")
    x = _images(rng, 10)
    codes = extract_features(cut, x, batch_size=3, progress=False)
    assert codes.shape == (10, 84) and codes.dtype == np.float32
    np.testing.assert_allclose(codes, cut.forward(x), rtol=1e-5, atol=1e-6)
    labels = np.arange(10) % 3
    batches = [(x[:4], labels[:4]), (x[4:], labels[4:])]
    codes2, labels2 = extract_features(cut, batches, progress=False)
    np.testing.assert_allclose(codes2, codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels2, labels)
    bare = extract_features(cut, [x[:5], x[5:]], progress=False)  # batches without labels
    np.testing.assert_allclose(bare, codes, rtol=1e-5, atol=1e-6)
    volume = extract_features(feature_extractor(lenet, "pool2"), x, flatten=False, progress=False)
    assert volume.shape == (10, 16, 5, 5)


def test_extract_features_runs_in_eval_mode_and_restores_the_mode(rng):
    net = L.Sequential(L.Dropout(0.5, rng=rng), L.Flatten()).train()
    x = np.ones((4, 1, 2, 2), np.float32)
    np.testing.assert_array_equal(extract_features(net, x, progress=False), 1.0)  # no dropout
    assert all(layer.training for layer in net.layers())


def test_extract_features_refuses_integer_images(lenet):
    with pytest.raises(TypeError, match="received uint8 images.*DataLoader"):
        extract_features(lenet, np.zeros((2, 1, 28, 28), np.uint8), progress=False)


# -- LinearClassifier ------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["softmax", "svm"])
def test_linear_classifier_on_separable_codes(loss, rng):
    centres = rng.normal(0, 5, size=(4, 20))
    labels = np.repeat(np.arange(4), 25)
    codes = (centres[labels] + rng.normal(size=(100, 20))).astype(np.float32) * 100 + 50  # any scale
    clf = LinearClassifier(20, 4, loss, rng=rng).fit(codes, labels, epochs=100)
    assert clf.accuracy(codes, labels) == 1.0
    assert clf.history[-1] < clf.history[0]
    assert clf.scores(codes[:3]).shape == (3, 4) and clf.linear.weight.shape == (4, 20)


def test_linear_classifier_errors(rng):
    with pytest.raises(ValueError, match="Received loss='hinge'"):
        LinearClassifier(3, 2, "hinge")
    clf = LinearClassifier(3, 2, rng=rng).fit(rng.normal(size=(6, 3)), np.array([0, 1] * 3), epochs=2)
    with pytest.raises(ValueError, match=r"expected codes \(N, 3\), received shape \(2, 4\)"):
        clf.predict(np.zeros((2, 4)))


# -- freeze / unfreeze / heads / learning rates ----------------------------------------------------------

def test_freeze_until_a_layer_and_the_optimizer_skips_frozen_parameters(lenet, rng):
    frozen = freeze(lenet, until="conv2")
    assert frozen == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    before = {k: p.data.copy() for k, p in lenet.named_parameters()}
    optimizer = SGD(lenet, lr=0.1, momentum=0.9)
    lenet.train()
    y = lenet.forward(_images(rng))
    lenet.backward(np.ones_like(y))
    assert np.abs(lenet["conv1"].weight.grad).sum() > 0  # gradients still flow through frozen layers
    optimizer.step()
    for name, p in lenet.named_parameters():
        changed = not np.array_equal(p.data, before[name])
        assert changed == (name not in frozen), name


def test_freeze_everything_unfreeze_and_layers_without_parameters(lenet):
    assert len(freeze(lenet)) == 10 and lenet.num_parameters(trainable_only=True) == 0
    assert unfreeze(lenet, "fc3") == ["fc3.weight", "fc3.bias"]
    assert lenet.num_parameters(trainable_only=True) == 84 * 10 + 10
    unfreeze(lenet)
    assert freeze(lenet, until="pool1") == ["conv1.weight", "conv1.bias"]  # a layer without parameters
    with pytest.raises(KeyError, match="no layer named 'conv9'"):
        freeze(lenet, until="conv9")


def test_replace_head_gives_a_new_trainable_layer(rng):
    resnet = models.get("resnet18", num_classes=1000, input_shape=(3, 32, 32), rng=rng)
    freeze(resnet)
    old = resnet.get("fc")
    assert head_name(resnet) == "fc"
    replace_head(resnet, 7, rng=rng)
    assert resnet.get("fc") is not old and resnet.output_shape((2, 3, 32, 32)) == (2, 7)
    assert [n for n, p in resnet.named_parameters() if p.trainable] == ["fc.weight", "fc.bias"]
    assert list(resnet.state_dict())[-2:] == ["fc.weight", "fc.bias"]  # same place, same keys


def test_replace_head_in_nested_and_convolutional_heads(rng):
    vgg = models.get("vgg11", num_classes=10, input_shape=(3, 32, 32), avgpool_size=None, rng=rng)
    assert head_name(vgg) == "classifier.6"
    assert replace_head(vgg, 3).output_shape((1, 3, 32, 32)) == (1, 3)
    conv = convolutionalize(models.get("lenet5", rng=rng), (1, 28, 28))
    assert head_name(conv) == "fc3" and isinstance(conv.get("fc3"), L.Conv2d)
    assert replace_head(conv, 4, rng=rng).output_shape((1, 1, 36, 36)) == (1, 4, 3, 3)
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        head_name(L.Sequential(L.ReLU()))


def test_param_groups_scale_each_layers_learning_rate(lenet, rng):
    groups = param_groups(lenet, {"fc3": 1.0, "fc2": 0.5}, default=0.1)
    assert [g["lr_mult"] for g in groups] == [0.1, 0.5, 1.0]
    assert [len(g["params"]) for g in groups] == [6, 2, 2]
    optimizer = SGD(groups, lr=0.2)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.02, 0.1, 0.2])
    before = {k: p.data.copy() for k, p in lenet.named_parameters()}
    lenet.train()
    y = lenet.forward(_images(rng))
    lenet.backward(np.ones_like(y))
    optimizer.step()
    for name, p in lenet.named_parameters():  # plain SGD: the step is exactly -lr * mult * grad
        mult = 1.0 if name.startswith("fc3") else 0.5 if name.startswith("fc2") else 0.1
        np.testing.assert_allclose(before[name] - p.data, 0.2 * mult * p.grad, rtol=1e-4, atol=1e-7)
    with pytest.raises(KeyError, match="no layer named 'head'"):
        param_groups(lenet, {"head": 1.0})


# -- convolutionalize ------------------------------------------------------------------------------------

def _unpadded_net(rng):
    """No padding anywhere, so every score-map position is exactly the network on one crop."""
    return L.Sequential(conv1=L.Conv2d(1, 4, 5, rng=rng), relu1=L.ReLU(), pool1=L.MaxPool2d(2),
                        conv2=L.Conv2d(4, 8, 3, rng=rng), relu2=L.ReLU(), pool2=L.MaxPool2d(2),
                        flatten=L.Flatten(), fc1=L.Linear(8 * 2 * 2, 16, rng=rng), bn=L.BatchNorm1d(16),
                        relu3=L.ReLU(), drop=L.Dropout(0.5, rng=rng), fc2=L.Linear(16, 3, rng=rng)).eval()


def test_convolutionalize_gives_the_same_scores_at_the_training_size(rng):
    net = _unpadded_net(rng)
    net["bn"].running_mean[...] = rng.normal(size=16)
    x = _images(rng, 3, (1, 16, 16))
    conv = convolutionalize(net, (1, 16, 16)).eval()
    assert isinstance(conv["fc1"], L.Conv2d) and conv["fc1"].kernel_size == (2, 2)
    assert isinstance(conv["fc2"], L.Conv2d) and conv["fc2"].kernel_size == (1, 1)
    assert isinstance(conv["bn"], L.BatchNorm2d) and isinstance(conv["flatten"], L.Identity)
    assert list(conv.state_dict()) == list(net.state_dict())
    out = conv.forward(x)
    assert out.shape == (3, 3, 1, 1)
    assert_parity(out[:, :, 0, 0], net.forward(x), tol=1e-6)
    assert isinstance(net["fc1"], L.Linear)  # the original is unchanged


def test_convolutionalize_slides_over_a_larger_image(rng):
    net = _unpadded_net(rng)
    conv = convolutionalize(net, (1, 16, 16)).eval()
    big = _images(rng, 2, (1, 24, 28))
    scores = conv.forward(big)
    assert scores.shape == (2, 3, 3, 4)  # the network's total stride is 4: (24 - 16)/4 + 1, (28 - 16)/4 + 1
    for i in range(3):
        for j in range(4):
            crop = big[:, :, 4 * i:4 * i + 16, 4 * j:4 * j + 16]
            assert_parity(scores[:, :, i, j], net.forward(crop), tol=1e-5, what=f"position ({i}, {j})")


@pytest.mark.parametrize("name, size, big, score_map", [
    ("lenet5", 28, 36, (3, 3)), ("alexnet", 63, 95, (2, 2)), ("resnet18", 32, 64, (2, 2)),
])
def test_convolutionalize_zoo_models(name, size, big, score_map, rng):
    C = models.default_input_shape(name)[0]
    # AlexNet without its adaptive head: a pool to a fixed 6 x 6 would stop the score map from growing
    head = {"avgpool_size": None} if name == "alexnet" else {}
    net = models.get(name, num_classes=5, input_shape=(C, size, size), rng=rng, **head).eval()
    conv = convolutionalize(net, (C, size, size)).eval()
    x = _images(rng, 2, (C, size, size))
    assert_parity(conv.forward(x)[:, :, 0, 0], net.forward(x), tol=1e-5)
    assert conv.output_shape((2, C, big, big)) == (2, 5, *score_map)


def test_convolutionalize_errors(rng):
    with pytest.raises(ValueError, match="no Flatten followed by Linear"):
        convolutionalize(L.Sequential(L.Conv2d(1, 2, 3, rng=rng)), (1, 5, 5))
    class Shuffle(L.Layer):  # mixes features across positions: no convolution does that
        def output_shape(self, shape):
            return shape

    with pytest.raises(ValueError, match=r"1 \(Shuffle\(\)\) follows the Flatten but has no convolutional"):
        convolutionalize(L.Sequential(L.Flatten(), Shuffle(), L.Linear(4, 2)), (1, 2, 2))
    with pytest.raises(ValueError, match="must flatten an"):
        convolutionalize(L.Sequential(L.Flatten(start_dim=2), L.Linear(2, 2)), (1, 2, 2))


# -- the experiment's claim ------------------------------------------------------------------------------

def _experiment():
    spec = importlib.util.spec_from_file_location("transfer_mnist", ROOT / "examples" / "transfer_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_codes_beat_training_from_scratch_with_ten_labels_per_class(mnist_dir):
    """docs/transfer.md's claim, small: pretrain on 4,000 images of 0-4 (two epochs), learn 5-9 from 10 images
    of each digit (three draws), score on 2,000 test images of 5-9. Same code and recipe as the experiment."""
    from cnnkit.data import load

    T = _experiment()
    train, test = load("mnist", "train", root=mnist_dir), load("mnist", "test", root=mnist_dir)
    pretrained = T.pretrain(T.digits(train, T.SOURCE_DIGITS, limit=4000), epochs=2)
    target, target_test = T.digits(train, T.TARGET_DIGITS), T.digits(test, T.TARGET_DIGITS, limit=2000)
    test_codes = {"pool2": T.codes_of(pretrained, "pool2", target_test)}  # the same for every draw
    runs = [T.run_methods(pretrained, T.per_class(target, 10, seed=seed), target_test, seed=seed,
                          methods=("scratch", "codes:pool2"), test_codes=test_codes) for seed in (0, 1, 2)]
    scratch, codes = (np.mean([r[m] for r in runs]) for m in ("scratch", "codes:pool2"))
    assert codes > scratch, f"codes {codes:.3f} vs scratch {scratch:.3f}"
    assert codes > 0.8
