import numpy as np
import pytest
from viz_models import assert_png, bright_image, region_model

from cnnkit.layers import Conv2d, Sequential
from cnnkit.viz import activations


def small_net():
    rng = np.random.default_rng(0)
    return Sequential(Conv2d(1, 6, 5, rng=rng), Conv2d(6, 16, 4, stride=2, rng=rng),
                      Conv2d(16, 10, 11, rng=rng))


@pytest.mark.parametrize("name", ["0", "1", "2"])
def test_activation_has_the_layer_shape_and_values(name):
    net, x = small_net(), bright_image()
    out = activations(net, x, name)
    assert out.shape == net[: int(name) + 1].output_shape((1, 1, 28, 28))[1:]
    direct = net[: int(name) + 1].forward(x[None])[0]
    np.testing.assert_allclose(out, direct, rtol=1e-6)


def test_works_in_nested_containers_and_restores_the_mode():
    inner = region_model()
    net = Sequential(features=inner)
    net.train()
    out = activations(net, bright_image(), "features.0")
    assert out.shape == (1, 28, 28)
    assert all(layer.training for layer in net.layers())
    assert "forward" not in vars(inner[0])  # the capture hook is gone


def test_a_residual_blocks_activation_is_seen_although_inference_fuses_it_into_the_sum():
    """Under no_grad a Residual computes relu(body + shortcut) in one pass and skips its activation's
    forward; when that forward is being captured it must run (it did not: "did not run")."""
    from cnnkit.models import registry

    model = registry.get("resnet18", rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((3, 64, 64)).astype(np.float32)
    out = activations(model, x, "layer1.0.activation")
    model.eval()  # as activations() runs it; with gradients on, the block calls its activation itself
    expected = model.get("layer1.0").forward(model[:4].forward(x[None]))
    assert out.shape == (64, 16, 16) and out.min() == 0
    np.testing.assert_allclose(out, expected[0], rtol=1e-5, atol=1e-5)


def test_unknown_layer_name_suggests_close_ones():
    with pytest.raises(KeyError, match="has no layer named 'feature'.*features"):
        activations(Sequential(features=region_model()), bright_image(), "feature")


@pytest.mark.usefixtures("matplotlib")
def test_png_is_written(tmp_path):
    path = tmp_path / "act.png"
    activations(small_net(), bright_image(), "1", save=path, figsize=(8, 4), dpi=50)
    assert_png(path, (400, 200))
