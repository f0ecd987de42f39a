"""The tour notebook (examples/tour.ipynb) runs top to bottom with nbclient, as a reader would."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def test_the_tour_notebook_runs():
    nb = nbformat.read(ROOT / "examples" / "tour.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "curves.png le.png" in outputs
    assert "['fixed', 'float-adam', 'float-sgd']" in outputs
    assert "spec.json" in outputs and "DATASHEET.md" in outputs
