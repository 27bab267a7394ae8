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


def test_unknown_layer_name_suggests_close_ones():
    with pytest.raises(KeyError, match="has no layer named 'feature'.*features"):
        activations(Sequential(features=region_model()), bright_image(), "feature")


@pytest.mark.usefixtures("matplotlib")
def test_png_is_written(tmp_path):
    path = tmp_path / "act.png"
    activations(small_net(), bright_image(), "1", save=path, figsize=(8, 4), dpi=50)
    assert_png(path, (400, 200))
