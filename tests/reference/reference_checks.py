"""Shared checks for the reference kernels: numeric gradients of a pure (forward, backward) pair, and
comparisons with another kernel (cnnkit.functional) or with PyTorch."""

import numpy as np

from cnnkit.gradcheck import relative_error

# Two float64 kernels that add the same numbers in another order agree to ~1e-15 of their scale; 1e-10
# leaves room for long sums (a 3-D window of 27 taps times channels) and still catches any wrong term.
SAME = 1e-10


def gradient_errors(forward, backward, arrays, *, seed=20240, eps=1e-6):
    """Relative errors of ``backward``'s gradients against central differences, one per input array.

    The scalar differentiated is ``sum(forward(**arrays)[0] * r)`` for a fixed random r, so every output
    and every path is exercised (r's seed differs from the tests' input seeds: an r equal to the
    normalised input would make batch norm's true gradient 0). ``backward(r, cache)`` returns one gradient
    or a tuple of them in the order of ``arrays`` (a None entry is skipped). The arrays are converted to
    float64 and perturbed in place, one entry at a time.
    """
    arrays = {name: np.array(a, dtype=np.float64) for name, a in arrays.items()}
    y, cache = forward(**arrays)
    r = np.random.default_rng(seed).standard_normal(np.shape(y))
    grads = backward(r.copy(), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    errors = {}
    for (name, a), analytic in zip(arrays.items(), grads, strict=False):
        if analytic is None:
            continue
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            original = a[i]
            a[i] = original + eps
            plus = float(np.sum(forward(**arrays)[0] * r))
            a[i] = original - eps
            minus = float(np.sum(forward(**arrays)[0] * r))
            a[i] = original
            numeric[i] = (plus - minus) / (2 * eps)
        errors[name] = relative_error(analytic, numeric)
    return errors


def assert_gradients(forward, backward, arrays, tol=1e-7, **kwargs):
    errors = gradient_errors(forward, backward, arrays, **kwargs)
    assert errors, "no gradient was checked"
    assert max(errors.values()) < tol, errors


def assert_same(ours, theirs, what="output", tol=SAME):
    """Same shape and dtype, and values within ``tol`` of theirs (relative to their largest magnitude)."""
    if theirs is None or ours is None:
        assert ours is None and theirs is None, f"{what}: {ours!r} vs {theirs!r}"
        return
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != {theirs.dtype}"
    finite = np.isfinite(theirs)  # inf and NaN (a window of padding only, a NaN input) must match exactly
    assert np.array_equal(ours[~finite], theirs[~finite], equal_nan=True), f"{what}: inf/NaN differ"
    err = relative_error(ours[finite].astype(np.float64), theirs[finite].astype(np.float64))
    assert err <= tol, f"{what}: relative difference {err:.2e} > {tol:.0e}"


def assert_all_same(ours, theirs, names, tol=SAME):
    """assert_same over tuples of results (gradients), naming each."""
    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    assert len(ours) == len(theirs), f"{len(ours)} results vs {len(theirs)}"
    for a, b, name in zip(ours, theirs, names, strict=True):
        assert_same(a, b, name, tol)


def same_error(call_ours, call_theirs):
    """Both calls raise the same exception type with the same message; returns that message."""
    errors = []
    for call in (call_ours, call_theirs):
        try:
            call()
        except Exception as e:  # noqa: BLE001 -- comparing whatever each raises
            errors.append(e)
        else:
            errors.append(None)
    ours, theirs = errors
    assert theirs is not None, "the functional kernel raised nothing"
    assert ours is not None, f"the reference raised nothing; functional raised {theirs!r}"
    assert type(ours) is type(theirs) and str(ours) == str(theirs), f"{ours!r} != {theirs!r}"
    return str(ours)


def torch_grads(fn, arrays, dy):
    """Run the torch function ``fn(*tensors)`` in float64 and backpropagate dy: (y, grads) as NumPy."""
    import torch

    tensors = [None if a is None else torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)
               for a in arrays]
    y = fn(*tensors)
    y.backward(torch.tensor(np.asarray(dy, dtype=np.float64)))
    grads = tuple(None if t is None else t.grad.numpy() for t in tensors)
    return y.detach().numpy(), grads
