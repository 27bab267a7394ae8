"""cnnkit.viz.conv_demo: its numbers against cnnkit.functional, its errors, and the page in a real browser.

The browser test loads the page in headless Chromium (Debian's ``chromium`` package, driven by Playwright's
Python package with ``executable_path``; no browser download), steps the animation with its buttons and
keys, reads the numbers from the DOM and checks them against cnnkit.functional computed here. It skips,
saying why, where chromium or playwright is missing (``.ci/run`` installs chromium as root).
``CNNKIT_UPDATE_SCREENSHOTS=1`` also writes docs/conv-demo.png from it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from cnnkit import functional as F
from cnnkit.errors import ShapeError
from cnnkit.viz import conv_demo

DOCS = Path(__file__).resolve().parents[2] / "docs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def expected(demo):
    """The notes' pipeline computed here from the demo's inputs: conv -> max pool -> backward (float64)."""
    x = demo.x[None]
    y, cache = F.conv2d(x, demo.weight, demo.bias, stride=demo.stride, padding=demo.padding)
    p, pool_cache = F.max_pool2d(y, demo.pool_size, demo.pool_stride)
    dy = F.max_pool2d_backward(demo.grad[None], pool_cache)
    dx, dw, db = F.conv2d_backward(dy, cache)
    return dict(y=y[0], pooled=p[0], dy=dy[0], dx=dx[0], dweight=dw, dbias=db)


def test_the_notes_demo_numbers_are_cnnkits():
    demo = conv_demo()
    assert demo.x.shape == (3, 5, 5) and demo.weight.shape == (2, 3, 3, 3) and demo.y.shape == (2, 3, 3)
    for name, value in expected(demo).items():
        np.testing.assert_array_equal(getattr(demo, name), value, err_msg=name)
    # im2col's column l is window l of the padded input, channel-major: the dot product's left factor
    xp = np.pad(demo.x, ((0, 0), (1, 1), (1, 1)))
    for column, (i, j) in enumerate(np.ndindex(3, 3)):
        np.testing.assert_array_equal(demo.cols[:, column], xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].ravel())
    np.testing.assert_array_equal(demo.weight.reshape(2, -1) @ demo.cols + demo.bias[:, None],
                                  demo.y.reshape(2, -1))
    for k, i, j in np.ndindex(*demo.pooled.shape):  # each switch holds its window's max, inside the window
        r, c = demo.switches[k, i, j]
        assert demo.y[k, r, c] == demo.pooled[k, i, j] and i <= r < i + 2 and j <= c < j + 2
    assert set(np.unique(demo.x)) <= {0, 1, 2} and set(np.unique(demo.weight)) <= {-1, 0, 1}
    np.testing.assert_array_equal(conv_demo().x, demo.x)  # the default seed: the same page every time


def test_given_arrays_and_a_saved_page(tmp_path):
    x = np.arange(16.0).reshape(1, 4, 4)
    demo = conv_demo(x=x, weight=np.ones((1, 1, 2, 2)), bias=[0.5], padding=0, stride=1, pool_size=3,
                     pool_stride=1, grad=[[[2.0]]], save=tmp_path / "demo.html")
    np.testing.assert_array_equal(demo.y[0], [[10.5, 14.5, 18.5], [26.5, 30.5, 34.5], [42.5, 46.5, 50.5]])
    assert demo.pooled.shape == (1, 1, 1) and demo.pooled[0, 0, 0] == 50.5
    assert tuple(demo.switches[0, 0, 0]) == (2, 2) and demo.dbias[0] == 2.0
    text = (tmp_path / "demo.html").read_text(encoding="utf-8")
    assert text == demo.html and "4x4x1 input" in text
    # self-contained: no external script, style, image or font
    assert not re.search(r"""(src|href)\s*=|@import|url\(|https?:""", text)
    assert demo._repr_html_().startswith("<iframe srcdoc=")


def test_errors():
    with pytest.raises(ShapeError, match=r"conv_demo: \(H - F \+ 2P\)/S \+ 1 = \(6 - 3 \+ 2\)/2 \+ 1 = 3.5"):
        conv_demo((3, 6, 6))
    with pytest.raises(ShapeError, match=r"conv_demo: max pooling of the output: .* = 1.5 is not an integer"):
        conv_demo(pool_stride=2)
    with pytest.raises(ValueError, match=r"conv_demo: the page draws every number; .* received input "
                                         r"\(3, 17, 17\)"):
        conv_demo((3, 17, 17), padding=0, stride=1)
    with pytest.raises(ShapeError, match=r"conv_demo: weight must be \(K, C=3, F, F\) .* received shape "
                                         r"\(2, 2, 3, 3\)"):
        conv_demo(weight=np.ones((2, 2, 3, 3)))
    with pytest.raises(ShapeError, match=r"conv_demo: bias must be \(2,\), one per filter; received shape"):
        conv_demo(bias=[1.0])
    with pytest.raises(ShapeError, match=r"conv_demo: x must be one image \(C, H, W\); received shape"):
        conv_demo(x=np.ones((1, 3, 5, 5)))
    with pytest.raises(ShapeError, match=r"conv_demo: grad must have the pooled output's shape \(2, 2, 2\)"):
        conv_demo(grad=np.ones((2, 3, 3)))


# -- in a real browser ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser_page():
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run installs it when root)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason='drives chromium with playwright: pip install -e ".[test]"')
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1300, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()


def numbers(page, selector):
    """The numbers in the cells that ``selector`` picks, in document order ("(-1)" reads as -1)."""
    texts = page.eval_on_selector_all(selector, "cells => cells.map(c => c.textContent)")
    return np.array([float(t.strip("()")) if t else np.nan for t in texts])


def table(page, name, index, shape, where=""):
    return numbers(page, f'table[data-name="{name}"][data-index="{index}"] td{where}').reshape(shape)


def test_the_page_in_chromium_steps_through_cnnkits_numbers(browser_page, tmp_path):
    page = browser_page
    demo = conv_demo(save=tmp_path / "demo.html")
    want = expected(demo)
    K, Ho, Wo = want["y"].shape
    C, H, W = demo.x.shape
    xp = np.pad(demo.x, ((0, 0), (1, 1), (1, 1)))
    problems, requests = [], []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto((tmp_path / "demo.html").as_uri())
    assert page.eval_on_selector("body", "b => [b.dataset.phase, b.dataset.step]") == ["0", "0"]

    # 1. Convolution: every step's dot product, its im2col column, and cnnkit's y.
    for step, (k, i, j) in enumerate(np.ndindex(K, Ho, Wo)):
        if step:
            page.click("#next")
        terms = numbers(page, ".term .tx"), numbers(page, ".term .tw")
        window = xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].ravel()
        np.testing.assert_array_equal(terms[0], window)
        np.testing.assert_array_equal(terms[1], demo.weight[k].ravel())
        total = terms[0] @ terms[1] + numbers(page, f'.bias[data-k="{k}"]')[0]
        assert total == numbers(page, "#dot-sum")[0] == numbers(page, "#dot-cnnkit")[0] == want["y"][k, i, j]
        np.testing.assert_array_equal(numbers(page, 'table[data-name="cols"] td.win'), window)
    np.testing.assert_array_equal(np.stack([table(page, "y", k, (Ho, Wo)) for k in range(K)]), want["y"])
    assert page.locator(".bad").count() == 0

    # 2. Max pooling, entered with its tab; the arrow key steps too.
    page.click('[data-phase-button="1"]')
    Po, Qo = want["pooled"].shape[1:]
    for step, (k, i, j) in enumerate(np.ndindex(K, Po, Qo)):
        if step:
            page.keyboard.press("ArrowRight")
        assert numbers(page, "#pool-max")[0] == numbers(page, "#pool-cnnkit")[0] == want["pooled"][k, i, j]
        assert numbers(page, f'table[data-name="y"][data-index="{k}"] td.max')[0] == want["pooled"][k, i, j]

    # 3. Backward through the pooling: the running sum of dy ends at max_pool2d_backward's.
    page.click("#next")
    assert page.eval_on_selector("body", "b => [b.dataset.phase, b.dataset.step]") == ["2", "0"]
    for _ in range(K * Po * Qo - 1):
        page.click("#next")
    np.testing.assert_array_equal(np.stack([table(page, "dy", k, (Ho, Wo)) for k in range(K)]), want["dy"])
    assert "= cnnkit" in page.text_content("#pb-done")

    # 4. Backward through the convolution: half-way, dx is the sum of the windows sent back so far.
    page.click("#next")
    half = K * Ho * Wo // 2
    for _ in range(half):
        page.click("#next")
    partial = np.zeros_like(xp)
    for k, i, j in list(np.ndindex(K, Ho, Wo))[:half + 1]:
        partial[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += want["dy"][k, i, j] * demo.weight[k]
    np.testing.assert_array_equal(np.stack([table(page, "dx", c, xp.shape[1:]) for c in range(C)]), partial)
    for _ in range(K * Ho * Wo - half - 1):
        page.click("#next")
    dx = np.stack([table(page, "dx", c, xp.shape[1:])[1:-1, 1:-1] for c in range(C)])
    np.testing.assert_array_equal(dx, want["dx"])
    dw = np.stack([np.stack([table(page, "dw", f"{k}-{c}", (3, 3)) for c in range(C)]) for k in range(K)])
    np.testing.assert_array_equal(dw, want["dweight"])
    np.testing.assert_array_equal(numbers(page, ".dbias"), want["dbias"])
    assert page.text_content("#cb-done").count("= cnnkit") == 3 and page.locator(".bad").count() == 0

    # Play runs the steps by itself (next wraps to the first phase) and pauses again.
    page.click("#play")
    page.wait_for_function("document.body.dataset.phase === '0' && document.body.dataset.step !== '0'",
                           timeout=10_000)
    page.click("#play")
    assert "play" in page.text_content("#play")
    assert problems == [] and all(url.startswith("file:") for url in requests)

    page.click('[data-phase-button="0"]')
    for _ in range(4):
        page.click("#next")
    shot = tmp_path / "conv-demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("CNNKIT_UPDATE_SCREENSHOTS"):
        shutil.copy(shot, DOCS / "conv-demo.png")
