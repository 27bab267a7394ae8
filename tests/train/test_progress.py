"""The progress display: plain-text lines when not a terminal, nothing when quiet."""

import io

from cnnkit.train.progress import Progress, format_seconds, plain_bar


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
