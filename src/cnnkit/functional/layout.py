"""Channels-last memory behind the NCHW shape: :mod:`cnnkit.layout`, re-exported as its public face."""

from cnnkit.layout import channels_last, is_channels_last

__all__ = ["channels_last", "is_channels_last"]
