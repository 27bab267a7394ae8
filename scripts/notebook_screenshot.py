"""docs/notebook.png: a short cnnkit notebook as Jupyter shows it.

The notebook builds LeNet-5 (its layer tree), shows its summary table, trains it for three epochs on the
embedded MNIST subset (the live progress bar and a line per epoch), plots the History and shows an
occlusion map. It is executed with nbclient in a fresh kernel, converted to HTML by nbconvert (JupyterLab's
template, outputs as the kernel sent them), and rendered by headless Chromium: Debian's ``chromium``
driven by Playwright with the launch options of tests/viz/test_conv_demo.py (no browser download, no
network: requests that leave the machine, nbconvert's MathJax and require.js, are refused).

Needs the ``docs`` extra (nbconvert) and the ``test`` extra (nbclient, ipykernel, playwright) and
``apt-get install chromium``::

    python scripts/notebook_screenshot.py                  # writes docs/notebook.png
    python scripts/notebook_screenshot.py --html nb.html   # also keeps the HTML

It stops, saying which, if a cell writes to stderr (a warning) or raises.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]

CELLS = [
    ("markdown", """# LeNet-5 on MNIST with cnnkit
A model, its summary, three epochs of training, the curves and an occlusion map."""),
    ("code", """import numpy as np
import cnnkit as ck
from cnnkit.losses import SoftmaxCrossEntropy

model = ck.models.get("lenet5", rng=np.random.default_rng(0))
model"""),
    ("code", "ck.summary(model, (1, 28, 28))"),
    ("code", """train, test = ck.data.load("embedded", "train")[:2000], ck.data.load("embedded", "test")
loader = ck.data.DataLoader(train, 32, shuffle=True, normalize="auto")
val = ck.data.DataLoader(test[:500], 250, normalize=(loader.mean, loader.std))
optimizer = ck.optim.Adam(model, lr=2e-3)
history = ck.train.fit(model, SoftmaxCrossEntropy(), optimizer, loader, val, epochs=3)"""),
    ("code", "history.plot()"),
    ("code", """image, label = test.images[0], int(test.labels[0])  # raw pixels: fit set model.preprocessing
ck.viz.occlusion(model, image, target=label, patch=8, stride=2, score="logit")"""),
]


def run_notebook(workdir: Path):
    """The notebook, executed in a fresh kernel; SystemExit if a cell wrote to stderr."""
    import nbclient
    import nbformat

    cells = [nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
             for kind, text in CELLS]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}}).execute()
    for number, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                raise SystemExit(f"cell {number} wrote to stderr:\n{output.text}")
    return notebook


def to_html(notebook) -> str:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    return body


def screenshot(html_path: Path, out: Path, width: int):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True,
                                                       args=FLAGS, viewport={"width": width, "height": 900})
        try:
            page = context.new_page()
            # Only the file itself and its inline data: nbconvert's CDN scripts (MathJax, require.js) are
            # refused at once rather than waited for on an offline machine.
            local = ("file:", "data:")
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(local)
                       else route.abort())
            page.goto(html_path.as_uri(), wait_until="load")
            page.screenshot(path=str(out), full_page=True)
        finally:
            context.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "notebook.png")
    parser.add_argument("--html", type=Path, help="also keep the HTML nbconvert made")
    parser.add_argument("--width", type=int, default=1000, help="browser window width in pixels")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        notebook = run_notebook(work)
        html_path = args.html.resolve() if args.html else work / "notebook.html"
        html_path.write_text(to_html(notebook), encoding="utf-8")
        screenshot(html_path, args.out, args.width)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
