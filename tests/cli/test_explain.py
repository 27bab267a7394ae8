"""``cnnkit explain conv``: the demo page from the shell, the notes' volume order, one-line errors."""

import numpy as np
import pytest

from cnnkit.cli import main
from cnnkit.cli.explain import parse_volume
from cnnkit.viz import conv_demo


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return exit_info.value.code, out + err


def test_the_notes_demo(tmp_path, capsys):
    out = tmp_path / "pages" / "demo.html"
    code, text = run_cli(capsys, "explain", "conv", "--input", "5x5x3", "--pad", "1", "--filters", "2",
                         "--size", "3", "--stride", "2", "--out", out)
    assert code == 0, text
    assert f"wrote {out}" in text and "-> output 3x3x2, 18 dot products" in text
    assert out.read_text(encoding="utf-8") == conv_demo().html  # seed 0, the library's default


def test_volume_order_and_seed(tmp_path, capsys):
    assert parse_volume("7x4x1") == (1, 4, 7)  # width x height x depth, as the notes write 32x32x3
    out = tmp_path / "d.html"
    code, text = run_cli(capsys, "explain", "conv", "--input", "7x5x2", "--pad", "0", "--filters", "1",
                         "--stride", "1", "--pool", "3", "--pool-stride", "2", "--seed", "3", "-o", out)
    assert code == 0 and "output 5x3x1" in text
    demo = conv_demo((2, 5, 7), padding=0, filters=1, stride=1, pool_size=3, pool_stride=2,
                     rng=np.random.default_rng(3))
    assert out.read_text(encoding="utf-8") == demo.html


def test_errors(tmp_path, capsys):
    code, text = run_cli(capsys, "explain", "conv", "--input", "6x6", "-o", tmp_path / "d.html")
    assert code == 2 and "'6x6': give the volume as the notes write it, width x height x depth" in text
    code, text = run_cli(capsys, "explain", "conv", "--input", "6x6x3", "-o", tmp_path / "d.html")
    assert code == 1 and "(6 - 3 + 2)/2 + 1 = 3.5 is not an integer" in text and "change --pad" in text
    assert text.count("\n") == 1 and not (tmp_path / "d.html").exists()
    code, text = run_cli(capsys, "explain", "conv", "-o", tmp_path)
    assert code == 1 and "it is a folder" in text
    code, text = run_cli(capsys, "explain", "conv", "--stride", "0", "-o", tmp_path / "d.html")
    assert code == 2 and "--stride" in text
