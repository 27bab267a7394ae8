"""``python -m cnnkit``: run the command line (``cnnkit --help``) if it is installed, else a short demo."""

import numpy as np

import cnnkit as ck


def demo():
    """Forward and backward through a convolution, checked against numeric gradients."""
    layer = ck.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, fit="crop", rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 9)).astype(np.float32)
    y = layer(x)
    dx = layer.backward(np.ones_like(y))
    print(f"{layer}: x {x.shape} -> y {y.shape}; dx {dx.shape}, dweight {layer.weight.grad.shape}")
    errors = ck.gradcheck(layer, x)
    print("numeric gradient check (max relative error):", {k: f"{v:.1e}" for k, v in errors.items()})


if __name__ == "__main__":
    try:
        from cnnkit.cli import main
    except ImportError:
        demo()
    else:
        main()
