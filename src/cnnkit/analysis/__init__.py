"""ConvNet arithmetic without running data: output sizes, and (later) summary, receptive fields, checks."""

from cnnkit.analysis.shapes import output_size, window_geometry

__all__ = ["output_size", "window_geometry"]
