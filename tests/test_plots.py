"""Figures a reader understands: every figure command writes PNG and SVG; no title or legend
holds a raw ``key=value``; bands stay positive on log axes; the heatmap panels share one scale."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from neurosim.plots import describe, group_curves

RAW = re.compile(r"\b[a-z_]{2,}=[^\s,)]+")  # a label built from config keys: bits=None (not n=5)


def svg_texts(path: Path) -> list[str]:
    return ["".join(t.itertext()) for t in ET.parse(path).iter() if t.tag.endswith("text")]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A small precision sweep: two gains, float and 8 bits, two rules of flossing."""
    from neurosim.grid import load_sweep
    from neurosim.sweep import run_sweep

    out = tmp_path_factory.mktemp("plots") / "sweep"
    spec = load_sweep({"grid": {"gain": [0.5, 1.0, 1.5], "bits": ["none", 8], "floss_iters": [0, 2]},
                       "fixed": {"iters": 6, "seeds": 2, "n_hidden": 6, "batch": 2, "log_every": 2,
                                 "final_window": 2, "rule": "eprop"}})
    assert not run_sweep(spec, out, executor="serial").failed
    return out


def test_plot_writes_every_figure_as_png_and_svg_in_words(sweep_dir, tmp_path, capsys):
    code, stdout, err = run_cli(["plot", str(sweep_dir), "--out", str(tmp_path / "figs")], capsys)
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "figs").iterdir())
    stems = {Path(n).stem for n in written}
    assert stems >= {"learning_curves", "le_vs_gain", "final_loss_vs_gain", "final_loss_heatmap"}
    assert all(f"{s}.png" in written and f"{s}.svg" in written for s in stems)
    for svg in (tmp_path / "figs").glob("*.svg"):
        texts = svg_texts(svg)
        assert texts, svg  # text is kept as text
        assert not [t for t in texts if RAW.search(t)], (svg.name, [t for t in texts if RAW.search(t)])


def test_plot_options_pick_format_figures_and_first_iteration(sweep_dir, tmp_path, capsys):
    code, _, err = run_cli(["plot", str(sweep_dir), "--out", str(tmp_path / "f"), "--format", "svg",
                            "--figure", "learning_curves", "--from", "2"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["learning_curves.svg"]
    for args in (["--format", "jpeg"], ["--figure", "nope"], ["--from", "-1"]):
        code, _, err = run_cli(["plot", str(sweep_dir), "--out", str(tmp_path / "g"), *args], capsys)
        assert code == 2 and err.startswith("error: "), err


def test_the_raw_label_check_can_fail():
    assert RAW.search("backend=float-sgd, bits=None") and not RAW.search(describe("bits", None))


def test_bands_are_geometric_and_positive_and_divergence_is_counted():
    rows = [{"backend": "float", "rule": "eprop", "task": "romo", "gain": 1.0, "bits": None,
             "profile": None, "flossing": "off", "lr": 1e-3, "seed": s, "iteration": i, "loss": v}
            for s, losses in enumerate([[1.0, 0.1], [1.0, 0.001], [1.0, None], [1.0, 0.00001]])
            for i, v in enumerate(losses) if v is not None]
    (g,) = group_curves(rows).values()
    assert g["diverged"] == 1 and g["n"] == 4
    # iteration 1: losses 0.1, 0.001, 1e-5: geometric mean 0.001, geometric std x/÷ 10^sqrt(8/3)
    spread = 10 ** np.sqrt(8 / 3)
    assert g["lo"][1] == pytest.approx(0.001 / spread) and g["hi"][1] == pytest.approx(0.001 * spread)
    assert np.all(g["lo"] > 0)  # an arithmetic mean - std would be negative here
    assert g["mean"][1] - g["std"][1] < 0


@pytest.mark.parametrize("out", ["/proc/neurosim-test/figs", "/sys/neurosim-test/figs"])
def test_an_unwritable_figure_folder_is_bad_input_before_drawing(sweep_dir, capsys, out):
    code, _, err = run_cli(["plot", str(sweep_dir), "--out", out], capsys)
    assert code == 2 and err.count("\n") == 1 and "cannot be written" in err, err
