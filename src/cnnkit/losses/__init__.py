"""Loss functions, PyTorch's names and options, and the notes' names for them.

Every loss has ``forward(scores, targets)`` and ``backward()`` (the gradient with respect to the scores,
same shape and dtype as the scores), so a training step reads
``loss.forward(model.forward(x), y); model.backward(loss.backward())``. ``reduction="mean"`` (the
default) gives a float averaged over the batch, "sum" the sum, "none" the per-example losses (then
``backward(grad)`` takes their upstream gradient). ``backward(with_targets=True)`` also returns the
targets' gradient where PyTorch has one.

Normalisation, precisely (N examples, C classes, D outputs per example):
    CrossEntropyLoss     L = 1/N sum_i -log softmax(s_i)[y_i]         (weights: divided by sum_i w[y_i])
    SoftmaxCrossEntropy  the same (the notes' name)
    NLLLoss              L = 1/N sum_i -s_i[y_i]                       (s: log-probabilities)
    MultiMarginLoss      L = 1/N sum_i 1/C sum_{j != y_i} max(0, s_ij - s_iy_i + margin)^p
    MulticlassSVM        the same with p = 1; ``divide_by_classes=False``: the notes' L_i = sum_{j != y_i}
                         max(0, ...), i.e. C times larger
    MSELoss, MSE         L = 1/(N*D) sum_i ||s_i - t_i||^2 over all N*D entries (the notes' per-example L2
                         loss averaged over the batch is D times this)
    L1Loss               L = 1/(N*D) sum |s - t|
    SmoothL1Loss         L = 1/(N*D) sum (0.5 d^2/beta if |d| < beta else |d| - beta/2)
    BCEWithLogitsLoss    L = 1/(N*D) sum -(t log sigmoid(s) + (1 - t) log(1 - sigmoid(s)))
each exactly the torch.nn loss of the same name.
"""

from cnnkit.losses.base import Loss
from cnnkit.losses.classification import (
    CrossEntropyLoss,
    MulticlassSVM,
    MultiMarginLoss,
    NLLLoss,
    SoftmaxCrossEntropy,
)
from cnnkit.losses.elementwise import MSE, BCEWithLogitsLoss, L1Loss, MSELoss, SmoothL1Loss

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "Loss", "MSE", "MSELoss", "MultiMarginLoss",
           "MulticlassSVM", "NLLLoss", "SmoothL1Loss", "SoftmaxCrossEntropy"]
