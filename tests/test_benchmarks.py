"""The benchmark harness runs end to end in its tiny mode and reports every ratio.
(Behaviour only: tests never assert wall time.)"""

import json
import math

from benchmarks.__main__ import main
from benchmarks.flops import eprop_flops


def test_quick_harness_prints_every_ratio_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    results = main(["--quick", "--out", str(out)])
    text = capsys.readouterr().out
    names = ["ensemble speedup", "fixed-point / float step", "fraction of float32 matmul peak",
             "vs straightforward per-network loop"]
    assert [r["name"] for r in results] == names
    assert all(name in text for name in names)
    saved = json.loads(out.read_text())
    assert [r["name"] for r in saved["results"]] == names
    assert all(math.isfinite(r["ratio"]) and r["ratio"] > 0 for r in saved["results"])


def test_flop_count_of_the_dominant_terms():
    """With n_in = n_out = 0 and T = 1 the count is the recurrent matmul, the elementwise
    work, the trace matmul and the gradient contraction, term by term."""
    T, E, B, N = 1, 3, 2, 4
    expected = E * (2 * B * N * N + 4 * B * N + B * N + 2 * T * T * B * N + 2 * T * B * N * N)
    assert eprop_flops(T=T, E=E, B=B, N=N, n_in=0, n_out=0) == expected
