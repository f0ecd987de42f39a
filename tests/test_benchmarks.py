"""The benchmark harness runs end to end in its tiny mode: every ratio line, valid JSON.
(Behaviour only: wall times are the harness's output, never asserted here.)"""

import json
import subprocess
import sys
from pathlib import Path

RATIO_LINES = ("ensemble speedup", "fixed-point cost", "fraction of peak", "against plain PyTorch")


def test_quick_harness_prints_every_ratio_and_writes_json(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
                          cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    for title in RATIO_LINES:
        hits = [ln for ln in lines if ln.startswith(title)]
        assert len(hits) == 1, (title, proc.stdout)
        assert "x (goal" in hits[0] or "skipped: engine not available" in hits[0], hits[0]
    results = json.loads(out.read_text())
    for key in ("ensemble_speedup", "fraction_of_peak", "vs_plain_pytorch"):
        assert results[key]["ratio"] > 0 and results[key]["E"] == 4
    assert results["fraction_of_peak"]["flops"]["total"] == sum(
        v for k, v in results["fraction_of_peak"]["flops"].items() if k != "total")


def test_without_out_nothing_is_written(tmp_path):
    subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "fraction_of_peak"],
                   cwd=tmp_path, capture_output=True, text=True, check=True)
    assert list(tmp_path.iterdir()) == []
