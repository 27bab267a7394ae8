"""Ops that move values without computing, the public face of one kernel each
(:mod:`cnnkit.reference.rearrange`): pixel_shuffle, pixel_unshuffle, channel_shuffle, unflatten."""

from cnnkit.reference.rearrange import (
    channel_shuffle,
    channel_shuffle_backward,
    pixel_shuffle,
    pixel_shuffle_backward,
    pixel_unshuffle,
    pixel_unshuffle_backward,
    unflatten,
    unflatten_backward,
)

__all__ = ["channel_shuffle", "channel_shuffle_backward", "pixel_shuffle", "pixel_shuffle_backward",
           "pixel_unshuffle", "pixel_unshuffle_backward", "unflatten", "unflatten_backward"]
