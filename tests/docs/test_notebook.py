"""cnnkit in a fresh Jupyter kernel: a small notebook, executed with nbclient, shows the layer tree, the
summary table, a history's curves and the convolution demo as HTML and PNG, and writes nothing to stderr
(no warning)."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat", reason='runs a notebook: pip install -e ".[test]"')
nbclient = pytest.importorskip("nbclient", reason='runs a notebook: pip install -e ".[test]"')
pytest.importorskip("ipykernel", reason='runs a notebook: pip install -e ".[test]"')

CELLS = [
    "import numpy as np\nimport cnnkit as ck\nfrom cnnkit.losses import SoftmaxCrossEntropy",
    'model = ck.models.get("lenet5")\nmodel',
    "ck.summary(model, (1, 28, 28))",
    'train = ck.data.load("embedded", "train")[:256]\n'
    "loader = ck.data.DataLoader(train, 64, shuffle=True, normalize=\"auto\")\n"
    "history = ck.train.fit(model, SoftmaxCrossEntropy(), ck.optim.Adam(model, lr=2e-3), loader, epochs=2,\n"
    "                       quiet=True)\n"
    "history",
    "history.plot()",
    "ck.viz.conv_demo()",
]


def test_a_fresh_kernel_shows_cnnkit_objects(matplotlib, tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [cell.outputs for cell in notebook.cells]
    stderr = [o.text for out in outputs for o in out if o.output_type == "stream" and o.name == "stderr"]
    assert stderr == []
    shown = [out[-1].data if out else {} for out in outputs]
    assert "<details open" in shown[1]["text/html"] and "conv1" in shown[1]["text/html"]
    assert "<table" in shown[2]["text/html"] and "61,706" in shown[2]["text/html"]
    assert "History</b>: 2 epochs" in shown[3]["text/html"]
    assert "data:image/png;base64," in shown[3]["text/html"]
    assert shown[4]["image/png"]  # base64 text of the PNG, shown inline
    assert shown[5]["text/html"].startswith("<iframe srcdoc=")
