"""Ops that move values without computing, the public face of one kernel each
(:mod:`cnnkit.reference.rearrange`): pixel_shuffle, pixel_unshuffle, channel_shuffle, unflatten."""

from cnnkit.fast.dispatch import without_cache
from cnnkit.reference import rearrange as R
from cnnkit.reference.rearrange import (
    channel_shuffle_backward,
    pixel_shuffle_backward,
    pixel_unshuffle_backward,
    unflatten_backward,
)

# Under no_grad each face returns (y, None): no backward follows, so nothing is kept for one.
channel_shuffle = without_cache(R.channel_shuffle)
pixel_shuffle = without_cache(R.pixel_shuffle)
pixel_unshuffle = without_cache(R.pixel_unshuffle)
unflatten = without_cache(R.unflatten)

__all__ = ["channel_shuffle", "channel_shuffle_backward", "pixel_shuffle", "pixel_shuffle_backward",
           "pixel_unshuffle", "pixel_unshuffle_backward", "unflatten", "unflatten_backward"]
