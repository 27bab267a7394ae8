"""ONNX files written by torch.onnx.export from plain torch.nn re-creations of DenseNet (dense blocks),
SqueezeNet (fire modules), ShuffleNet-V2 (chunk + channel shuffle), MobileNet-V3 (hard-swish,
squeeze-and-excitation) and a small U-Net (upsampling, a transposed convolution, long concatenated skips):
imported by cnnkit, they give torch's outputs and torch's gradients for the input and every parameter."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

from cnnkit import summary
from conftest import assert_parity

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
nn, F = torch.nn, torch.nn.functional

from cnnkit.interop.onnx import export, load, run  # noqa: E402
from cnnkit.interop.onnx_import import clean_name  # noqa: E402
from cnnkit.interop.torch import to_torch  # noqa: E402


def conv_bn(c_in, c_out, k=3, stride=1, groups=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), act())


# -- DenseNet: every layer reads the concatenation of all earlier feature maps ---------------------------

class DenseLayer(nn.Module):
    def __init__(self, c_in, growth):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.norm2, self.conv2 = nn.BatchNorm2d(4 * growth), nn.Conv2d(4 * growth, growth, 3, padding=1,
                                                                         bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        return torch.cat([x, self.conv2(F.relu(self.norm2(out)))], 1)


class DenseNet(nn.Module):
    def __init__(self, growth=4, layers=3, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.block = nn.Sequential(*[DenseLayer(8 + i * growth, growth) for i in range(layers)])
        c = 8 + layers * growth
        self.transition = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False),
                                        nn.AvgPool2d(2))
        self.norm, self.fc = nn.BatchNorm2d(c // 2), nn.Linear(c // 2, classes)

    def forward(self, x):
        x = self.transition(self.block(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.norm(x)), 1), 1))


# -- SqueezeNet: fire modules (squeeze 1x1, expand 1x1 and 3x3, concatenated) -----------------------------

class Fire(nn.Module):
    def __init__(self, c_in, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


def squeezenet(classes=5):
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                         Fire(16, 4, 8), Fire(16, 4, 8), nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 8, 12),
                         nn.Dropout(0.5), nn.Conv2d(24, classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())


# -- ShuffleNet-V2: split the channels, transform one half, concatenate, shuffle ------------------------

def channel_shuffle(x, groups):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, -1, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.stride, half = stride, c_out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
                                         nn.BatchNorm2d(c_in), conv_bn(c_in, half, 1))
        c = c_in if stride > 1 else half
        self.branch2 = nn.Sequential(conv_bn(c, half, 1),
                                     nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False),
                                     nn.BatchNorm2d(half), conv_bn(half, half, 1))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


def shufflenet_v2(classes=5):
    return nn.Sequential(conv_bn(3, 8, 3, 2), ShuffleUnit(8, 16, 2), ShuffleUnit(16, 16, 1),
                         ShuffleUnit(16, 16, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, classes))


# -- MobileNet-V3: inverted residuals with hard-swish and squeeze-and-excitation --------------------------

class SqueezeExcitation(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)

    def forward(self, x):
        scale = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(scale))))


class InvertedResidual(nn.Module):
    def __init__(self, c_in, expanded, c_out, stride, act):
        super().__init__()
        self.use_residual = stride == 1 and c_in == c_out
        self.block = nn.Sequential(conv_bn(c_in, expanded, 1, act=act),
                                   conv_bn(expanded, expanded, 3, stride, groups=expanded, act=act),
                                   SqueezeExcitation(expanded, 8), nn.Conv2d(expanded, c_out, 1, bias=False),
                                   nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y


def mobilenet_v3(classes=5):
    return nn.Sequential(conv_bn(3, 8, 3, 2, act=nn.Hardswish), InvertedResidual(8, 16, 8, 1, nn.ReLU),
                         InvertedResidual(8, 24, 12, 2, nn.Hardswish),
                         InvertedResidual(12, 24, 12, 1, nn.Hardswish), conv_bn(12, 32, 1, act=nn.Hardswish),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 24), nn.Hardswish(),
                         nn.Dropout(0.2), nn.Linear(24, classes))


# -- U-Net: an encoder, a decoder, and long skips concatenated across ---------------------------------------

class UNet(nn.Module):
    def __init__(self, c=4, classes=3):
        super().__init__()
        self.enc1 = nn.Sequential(conv_bn(3, c), conv_bn(c, c))
        self.enc2 = nn.Sequential(conv_bn(c, 2 * c), conv_bn(2 * c, 2 * c))
        self.bottom = conv_bn(2 * c, 4 * c, act=lambda: nn.PReLU(4 * c))  # a slope per channel
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = conv_bn(4 * c, 2 * c)
        self.dec1 = conv_bn(5 * c, c)
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        up1 = F.interpolate(d2, scale_factor=2, mode="bilinear", align_corners=False)
        skip = F.interpolate(e2, scale_factor=2, mode="nearest")  # a second long skip, from one level down
        return F.log_softmax(self.head(self.dec1(torch.cat([up1, e1, skip], 1))), 1)


ARCHITECTURES = {"densenet": (DenseNet, (3, 16, 16)), "squeezenet": (squeezenet, (3, 33, 33)),
                 "shufflenet_v2": (shufflenet_v2, (3, 16, 16)), "mobilenet_v3": (mobilenet_v3, (3, 16, 16)),
                 "unet": (UNet, (3, 16, 16))}


def randomized(net, seed=0):
    """Random weights and batch-norm statistics (fresh ones are 1s and 0s, which torch's exporter would
    deduplicate into one initializer, and which would hide a mistake in how they are carried over)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator)
                tensor.copy_(0.5 + values if "running_var" in name or name.endswith("norm.weight") else
                             (values - 0.5) * (2.0 if "bias" in name or "running_mean" in name else 1.0))
    return net.eval()


def exported(net, shape):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (torch.zeros(2, *shape),), buffer, dynamo=False, opset_version=17,
                          training=torch.onnx.TrainingMode.PRESERVE, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return buffer.getvalue()


def ours(torch_name):
    """The name cnnkit gives a torch parameter: the importer names a layer after its weight's prefix."""
    prefix, _, leaf = torch_name.rpartition(".")
    return f"{clean_name(prefix)}.{leaf}"


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_torch_exported_architecture_matches_outputs_and_every_gradient(name, tmp_path):
    make, shape = ARCHITECTURES[name]
    net = randomized(make())
    model = load(exported(net, shape))
    assert all(p.data.flags.writeable for p in model.parameters())  # optimizers update them in place
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_()
    yt = net(xt)
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.from_numpy(dy))

    y = model.forward(x)
    assert_parity(y, yt, what=f"{name} output")
    assert_parity(model.backward(dy), xt.grad, what=f"{name} input gradient")
    grads = {n: p.grad for n, p in model.named_parameters()}
    theirs = dict(net.named_parameters())
    assert sorted(grads) == sorted(ours(n) for n in theirs)  # every torch parameter is one of ours
    for torch_name, p in theirs.items():
        # (the PRelu slope is cnnkit's PReLU weight, (C,), whichever shape the file broadcasts it in)
        assert_parity(grads[ours(torch_name)].reshape(p.shape), p.grad,
                      what=f"{name} gradient of {torch_name}")

    # the imported network is a cnnkit model like any: summary, export back to ONNX, and to torch again
    assert summary(model, shape).total_params == sum(p.numel() for p in net.parameters())
    export(model, tmp_path / "again.onnx", shape)
    assert_parity(run(tmp_path / "again.onnx", x), y, tol=1e-5, what=f"{name} re-exported")
    with torch.no_grad():
        assert_parity(to_torch(model)(torch.from_numpy(x)), yt, what=f"{name} to_torch")
