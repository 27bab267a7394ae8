"""The progress display: a rich bar on a terminal, one live HTML bar in Jupyter (stubbed, and in a real
kernel run by nbclient), plain-text lines elsewhere, nothing when quiet."""

import io
import sys
import types

import pytest

from cnnkit.train import progress
from cnnkit.train.progress import Progress, format_seconds, notebook_html, plain_bar


def test_plain_bar_and_quiet():
    out = io.StringIO()
    p = Progress(4, "epoch 1/2", stream=out, interval=0.0)
    assert p.mode == "plain"
    for step in range(1, 5):
        p.update(step, 10, 0.5)
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/2 [######------------------] 1/4 ")
    assert "img/s  ETA " in lines[0] and lines[0].endswith("loss 0.5000")
    quiet = io.StringIO()
    q = Progress(4, "x", quiet=True, stream=quiet, interval=0.0)
    q.update(1, 10, 0.5)
    assert quiet.getvalue() == "" and q.images == 10


def test_formatting():
    assert format_seconds(59.6) == "1:00"
    assert plain_bar(3, None, 10.0, 61.0, 1.0) == "3 batches  10 img/s  1:01  loss 1.0000"


def test_rich_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    p = Progress(3, "epoch 1/1", stream=out)
    assert p.mode == "rich"
    for step in range(1, 4):
        p.update(step, 8, 0.25)
    p.close()
    assert "epoch 1/1" in out.getvalue() and "img/s" in out.getvalue()


def test_notebook_html():
    bar = notebook_html("epoch 2/3", 3, 4, 100.0, 2.0, 0.5)
    assert '<progress value="3" max="4"' in bar and "epoch 2/3" in bar and bar.endswith("loss 0.5000</div>")
    assert "ETA 0:01" in bar and "0:02 elapsed" in bar
    unknown = notebook_html("a <b>", 7, None, 10.0, 61.0, 1.0)
    assert "<progress style=" in unknown and "7 batches" in unknown and "ETA" not in unknown
    assert unknown.count("a &lt;b&gt;") == 1  # the description is escaped


def test_in_a_kernel_one_bar_is_redrawn_per_cell(monkeypatch):
    """The notebook mode with IPython's display stubbed: one display per cell, redrawn, nothing printed."""
    IPython = pytest.importorskip("IPython", reason='needs IPython: pip install -e ".[test]"')
    display = pytest.importorskip("IPython.display")

    class OutStream(io.StringIO):  # stands for ipykernel's stdout
        pass

    class Handle:
        def __init__(self, bundle):
            self.shown = [bundle]

        def update(self, bundle, raw):
            assert raw
            self.shown.append(bundle)

    handles = []
    shell = types.SimpleNamespace(kernel=object(), parent_header={"msg_id": "cell-1"})
    monkeypatch.setitem(sys.modules, "ipykernel.iostream", types.SimpleNamespace(OutStream=OutStream))
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    monkeypatch.setattr(display, "display",
                        lambda bundle, raw, display_id: handles.append(Handle(bundle)) or handles[-1])
    monkeypatch.setattr(progress, "_NOTEBOOK", {"cell": None, "handle": None})
    monkeypatch.setattr(progress, "NOTEBOOK_INTERVAL", 3600.0)  # no redraw between the first and the last
    out = OutStream()
    for epoch in (1, 2):
        p = Progress(50, f"epoch {epoch}/2", stream=out)
        assert p.mode == "notebook"
        for step in range(1, 51):
            p.update(step, 10, 0.25)
        p.close()
    assert out.getvalue() == "" and len(handles) == 1
    shown = handles[0].shown
    assert len(shown) == 1 + 2 * 2  # the empty display, then per epoch: its start and its end
    assert 'value="50" max="50"' in shown[-1]["text/html"] and "epoch 2/2" in shown[-1]["text/html"]
    assert shown[-1]["text/plain"].startswith("epoch 2/2 [########################] 50/50 ")
    shell.parent_header = {"msg_id": "cell-2"}  # the next cell gets a bar of its own
    Progress(5, "epoch 1/1", stream=out).close()
    assert len(handles) == 2
    assert Progress(5, "x", stream=io.StringIO()).mode == "plain"  # a stream of the user's: text lines


NOTEBOOK = [
    "import cnnkit as ck\nfrom cnnkit.losses import SoftmaxCrossEntropy\nmodel = ck.models.get('lenet5')\n"
    "train = ck.data.load('embedded', 'train')[:512]\n"
    "loader = ck.data.DataLoader(train, 16, shuffle=True, normalize='auto')",
    "history = ck.train.fit(model, SoftmaxCrossEntropy(), ck.optim.Adam(model, lr=2e-3), loader, epochs=3)",
]


def test_a_real_kernel_shows_one_live_bar_and_a_line_per_epoch(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason='runs a notebook: pip install -e ".[test]"')
    nbclient = pytest.importorskip("nbclient", reason='runs a notebook: pip install -e ".[test]"')
    pytest.importorskip("ipykernel", reason='runs a notebook: pip install -e ".[test]"')

    class Recording(nbclient.NotebookClient):
        def process_message(self, msg, cell, cell_index):
            messages.append((cell_index, msg["msg_type"]))
            return super().process_message(msg, cell, cell_index)

    messages = []
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK])
    Recording(notebook, timeout=300, kernel_name="python3",
              resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[1].outputs
    kinds = [(o.output_type, o.get("name")) for o in outputs]
    assert kinds == [("display_data", None)] + [("stream", "stdout")] * 3  # no stderr, no warning
    bar = outputs[0].data
    assert '<progress value="32" max="32"' in bar["text/html"] and "epoch 3/3" in bar["text/html"]
    assert bar["text/plain"].startswith("epoch 3/3 [########################] 32/32 ")
    lines = "".join(o.text for o in outputs[1:]).splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    updates = messages.count((1, "update_display_data"))
    assert 3 * 2 <= updates <= 3 * (32 + 1)  # each epoch's start and end at least; at most one per batch
    assert messages.count((1, "display_data")) == 1
