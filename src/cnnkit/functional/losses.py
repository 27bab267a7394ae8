"""Losses, the public face of one kernel each (PyTorch's names): cross_entropy, nll_loss,
multi_margin_loss (:mod:`cnnkit.reference.losses`), mse_loss, l1_loss, smooth_l1_loss,
binary_cross_entropy_with_logits (:mod:`cnnkit.reference.elementwise_losses`).

``y, cache = f(input, target, ..., reduction="mean")``; ``f_backward(dy, cache)`` gives the input's
gradient, or ``(dinput, dtarget)`` where the target has one. The loss classes of :mod:`cnnkit.losses`
check the arguments; these functions assume them valid.
"""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference import elementwise_losses as E
from cnnkit.reference import losses as R
from cnnkit.reference.elementwise_losses import (
    binary_cross_entropy_with_logits_backward,
    l1_loss_backward,
    mse_loss_backward,
    smooth_l1_loss_backward,
)
from cnnkit.reference.losses import (
    cross_entropy_backward,
    multi_margin_loss_backward,
    nll_loss_backward,
)

# Under no_grad each face returns (y, None): no backward follows, so nothing is kept for one.
binary_cross_entropy_with_logits = without_cache(E.binary_cross_entropy_with_logits)
cross_entropy = without_cache(R.cross_entropy)
l1_loss = without_cache(E.l1_loss)
mse_loss = without_cache(E.mse_loss)
multi_margin_loss = without_cache(R.multi_margin_loss)
nll_loss = without_cache(R.nll_loss)
smooth_l1_loss = without_cache(E.smooth_l1_loss)

__all__ = ["binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_backward", "cross_entropy",
           "cross_entropy_backward", "l1_loss", "l1_loss_backward", "mse_loss", "mse_loss_backward",
           "multi_margin_loss", "multi_margin_loss_backward", "nll_loss", "nll_loss_backward",
           "smooth_l1_loss", "smooth_l1_loss_backward"]
