"""Seeing inside a network: filters, activations, occlusion and saliency maps, shift consistency, training
curves, confusion matrices, and a self-contained HTML training report.

Every function returns the array it draws (so it can be tested and reused) and writes a PNG when given
``save=PATH``; in Jupyter that array, as a cell's last expression, shows as the same picture. Drawing
needs matplotlib, the ``[viz]`` extra (``pip install "cnnkit[viz]"``); it is imported only when a picture
is asked for, so the arrays work without it.
"""

from cnnkit.viz.activations import activations
from cnnkit.viz.conv_demo import conv_demo
from cnnkit.viz.filters import filters
from cnnkit.viz.occlusion import occlusion
from cnnkit.viz.plots import confusion_matrix, history
from cnnkit.viz.saliency import saliency
from cnnkit.viz.shift import consistency, shift_consistency, shift_image

__all__ = ["activations", "confusion_matrix", "consistency", "conv_demo", "filters", "history", "occlusion",
           "saliency", "shift_consistency", "shift_image"]
