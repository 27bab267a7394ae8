"""DataLoader: every sample once per epoch, seeded orders (reproducible, new each epoch, resumable),
drop_last, normalization values, augmentation on the fly, and prefetching that changes nothing."""

import threading

import numpy as np
import pytest

from cnnkit.data import ArrayDataset, DataLoader, channel_stats, load


def _dataset(n=103, channels=3, size=8, seed=0):
    """Images whose label is their own index, so a batch says exactly which samples it holds."""
    images = np.random.default_rng(seed).integers(0, 256, (n, channels, size, size), dtype=np.uint8)
    return ArrayDataset(images, np.arange(n), [str(i) for i in range(n)], name="indexed")


def _epoch(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


def test_every_sample_once_per_epoch():
    ds = _dataset()
    loader = DataLoader(ds, batch_size=10, shuffle=True, seed=3)
    for _ in range(3):
        batches = _epoch(loader)
        assert [len(y) for _, y in batches] == [10] * 10 + [3] and len(loader) == 11
        seen = np.concatenate([y for _, y in batches])
        assert sorted(seen.tolist()) == list(range(103))
        for x, y in batches:  # each x row is the image of its label, scaled to [0, 1]
            np.testing.assert_array_equal(x, ds.images[y].astype(np.float32) / np.float32(255))
            assert x.dtype == np.float32 and y.dtype == np.int64 and x.flags.c_contiguous


def test_drop_last():
    loader = DataLoader(_dataset(), batch_size=10, shuffle=True, drop_last=True)
    batches = _epoch(loader)
    assert len(loader) == 10 and [len(y) for _, y in batches] == [10] * 10
    assert len(set(np.concatenate([y for _, y in batches]).tolist())) == 100
    assert len(DataLoader(_dataset(n=5), batch_size=10, drop_last=True)) == 0


def test_no_shuffle_keeps_the_stored_order():
    seen = np.concatenate([y for _, y in DataLoader(_dataset(), batch_size=16)])
    assert seen.tolist() == list(range(103))


def test_seeded_order_is_reproducible_and_new_each_epoch():
    def orders(seed, epochs=3):
        loader = DataLoader(_dataset(), batch_size=16, shuffle=True, seed=seed)
        return [np.concatenate([y for _, y in loader]).tolist() for _ in range(epochs)]

    first, again, other = orders(7), orders(7), orders(8)
    assert first == again
    assert first[0] != first[1] != first[2] and first[0] != first[2]
    assert first[0] != other[0]
    # resuming at epoch 2 (what fit(resume=...) does) replays exactly the third epoch
    resumed = DataLoader(_dataset(), batch_size=16, shuffle=True, seed=7)
    resumed.set_epoch(2)
    assert np.concatenate([y for _, y in resumed]).tolist() == first[2]
    assert resumed.epoch == 3


def test_order_matches_its_definition():
    # order(e) = default_rng(SeedSequence(seed, spawn_key=(e, 0, 0))).permutation(N), as the module says
    loader = DataLoader(_dataset(), batch_size=103, shuffle=True, seed=5)
    expected = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(0, 0, 0))).permutation(103)
    assert next(iter(loader))[1].tolist() == expected.tolist()


def test_given_normalization_values():
    ds = _dataset(n=20)
    mean, std = (0.5, 0.25, 0.125), (0.2, 0.3, 0.4)
    x, y = next(iter(DataLoader(ds, batch_size=20, normalize=(mean, std))))
    expected = (ds.images[y] / 255.0 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-6)
    x1, _ = next(iter(DataLoader(ds, batch_size=20, normalize=(0.5, 0.2))))  # one value for every channel
    np.testing.assert_allclose(x1, (ds.images / 255.0 - 0.5) / 0.2, rtol=1e-6, atol=1e-6)


def test_auto_normalization_is_exact():
    ds = _dataset(n=50, size=6)
    loader = DataLoader(ds, batch_size=7, normalize="auto")
    reference = ds.images.astype(np.float64) / 255
    np.testing.assert_allclose(loader.mean, reference.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(loader.std, reference.std(axis=(0, 2, 3)), rtol=1e-6)
    x = np.concatenate([x for x, _ in loader]).astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-5)
    floats = ArrayDataset(reference.astype(np.float32), ds.labels, ds.classes)  # float images: not rescaled
    np.testing.assert_allclose(channel_stats(floats.images)[0], loader.mean, rtol=1e-6)


def test_auto_normalization_of_real_mnist(mnist_dir):
    loader = DataLoader(load("mnist", "train", root=mnist_dir), normalize="auto")
    # the two numbers every MNIST tutorial uses
    assert (round(float(loader.mean[0]), 4), round(float(loader.std[0]), 4)) == (0.1307, 0.3081)


def test_augmentation_keeps_shapes_and_is_seeded():
    ds = _dataset(n=40, size=32)
    a = _epoch(DataLoader(ds, batch_size=16, shuffle=True, seed=1, augment="crop+flip"))
    b = _epoch(DataLoader(ds, batch_size=16, shuffle=True, seed=1, augment="crop+flip"))
    plain = _epoch(DataLoader(ds, batch_size=16, shuffle=True, seed=1))
    assert [x.shape for x, _ in a] == [(16, 3, 32, 32), (16, 3, 32, 32), (8, 3, 32, 32)]
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert not all(np.array_equal(xa, xp) for (xa, _), (xp, _) in zip(a, plain, strict=True))
    assert [y.tolist() for _, y in a] == [y.tolist() for _, y in plain]  # augmenting keeps the order


def test_flip_through_the_loader_is_exact():
    ds = _dataset(n=30)
    loader = DataLoader(ds, batch_size=30, augment="flip", normalize=(0.5, 0.25))
    x, y = next(iter(loader))
    plain = (ds.images[y] / np.float32(255) - np.float32(0.5)) / np.float32(0.25)
    flipped = [np.array_equal(x[i], plain[i, :, :, ::-1]) for i in range(30)]
    same = [np.array_equal(x[i], plain[i]) for i in range(30)]
    assert all(f or s for f, s in zip(flipped, same, strict=True)) and 0 < sum(flipped) < 30


def test_prefetch_gives_identical_batches():
    ds = _dataset(n=57, size=16)
    options = dict(batch_size=8, shuffle=True, seed=11, augment="crop+flip", normalize="auto")
    plain, ahead = DataLoader(ds, **options), DataLoader(ds, prefetch=True, **options)
    for _ in range(2):
        for (xa, ya), (xb, yb) in zip(_epoch(plain), _epoch(ahead), strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_prefetch_reraises_errors_and_stops_early():
    def broken(x, rng):
        raise RuntimeError("augmentation failed")

    with pytest.raises(RuntimeError, match="augmentation failed"):
        list(DataLoader(_dataset(), batch_size=8, augment=[broken], prefetch=3))
    loader = DataLoader(_dataset(), batch_size=2, prefetch=2)
    for _ in loader:
        break  # leaving early closes the generator, which stops and joins the thread
    assert not [t for t in threading.enumerate() if t.name == "cnnkit-prefetch"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), r"DataLoader: received batch_size=0; expected an integer >= 1"),
    (dict(normalize="z-score"), r"received normalize='z-score'; expected None, 'auto' or \(mean, std\)"),
    (dict(normalize=((0.1, 0.2), (0.3, 0.4))), r"expected \(mean, std\) with one value or 3 values"),
    (dict(normalize=(0.1,)), r"expected \(mean, std\) with one value or 3 values"),
    (dict(normalize=(0.5, 0.0)), r"std \[0.0, 0.0, 0.0\] has a value <= 0"),
    (dict(augment="rotate"), r"augment: received 'rotate'; expected one of \['crop', 'flip'\]"),
])
def test_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(_dataset(), **kwargs)


def test_constant_channel_cannot_be_auto_normalized():
    ds = ArrayDataset(np.full((4, 1, 2, 2), 7, np.uint8), [0, 1, 0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="a constant channel"):
        DataLoader(ds, normalize="auto")
