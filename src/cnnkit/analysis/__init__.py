"""ConvNet arithmetic without running data: output sizes, summary, receptive fields, checks."""

from cnnkit.analysis.arithmetic import Field, macs, params_without_sharing
from cnnkit.analysis.check import CheckReport, check
from cnnkit.analysis.receptive_field import receptive_field
from cnnkit.analysis.summary import Summary, summary
from cnnkit.geometry import output_size, window_geometry

__all__ = ["CheckReport", "Field", "Summary", "check", "macs", "output_size", "params_without_sharing",
           "receptive_field", "summary", "window_geometry"]
