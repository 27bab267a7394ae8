"""The model zoo: the architectures of the notes, random-initialized, by name.

>>> from cnnkit import models
>>> "resnet50" in models.names()
True
>>> models.get("resnet18", num_classes=10).output_shape((1, 3, 64, 64))
(1, 10)
"""

from cnnkit.models import alexnet as _alexnet
from cnnkit.models import cifar as _cifar
from cnnkit.models import googlenet as _googlenet
from cnnkit.models import lenet as _lenet
from cnnkit.models import mobilenet as _mobilenet
from cnnkit.models import preact_resnet as _preact_resnet
from cnnkit.models import resnet as _resnet
from cnnkit.models import vgg as _vgg
from cnnkit.models.registry import default_input_shape, get, names, register

alexnet, alexnet_v1, zfnet = _alexnet.alexnet, _alexnet.alexnet_v1, _alexnet.zfnet
cifar_net = _cifar.cifar_net
googlenet = _googlenet.googlenet
lenet5 = _lenet.lenet5
mobilenet_v1, mobilenet_v2 = _mobilenet.mobilenet_v1, _mobilenet.mobilenet_v2
resnet18, resnet34, resnet50 = _resnet.resnet18, _resnet.resnet34, _resnet.resnet50
resnet101, resnet152 = _resnet.resnet101, _resnet.resnet152
preact_resnet18, preact_resnet34 = _preact_resnet.preact_resnet18, _preact_resnet.preact_resnet34
preact_resnet50 = _preact_resnet.preact_resnet50
vgg11, vgg13, vgg16, vgg19 = _vgg.vgg11, _vgg.vgg13, _vgg.vgg16, _vgg.vgg19
vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn = _vgg.vgg11_bn, _vgg.vgg13_bn, _vgg.vgg16_bn, _vgg.vgg19_bn

__all__ = ["alexnet", "alexnet_v1", "cifar_net", "default_input_shape", "get", "googlenet", "lenet5",
           "mobilenet_v1", "mobilenet_v2", "names", "preact_resnet18", "preact_resnet34", "preact_resnet50",
           "register", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "zfnet"]
