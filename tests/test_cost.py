"""Cost model: memory bits and operation counts against hand counts, energies against the
published Horowitz (ISSCC 2014) numbers they are scaled from."""

from __future__ import annotations

import math

import pytest

from hw_models.cost import (
    add_pj,
    comparison,
    cost_report,
    cost_table_markdown,
    dominant_memory,
    estimate,
    mult_pj,
    sram_pj_per_bit,
)
from hw_models.profile import apply_overrides, list_profiles, load_profile


def test_scaled_energies_hit_the_published_anchor_points():
    # Horowitz 2014, 45 nm: 32-bit add 0.1 pJ, 32-bit mult 3.1 pJ (the anchors) ...
    assert add_pj(32) == pytest.approx(0.1) and mult_pj(32, 32) == pytest.approx(3.1)
    # ... and the 8-bit values the width scaling predicts: add 0.03 pJ, mult 0.2 pJ published
    assert add_pj(8) == pytest.approx(0.03, rel=0.2) and mult_pj(8, 8) == pytest.approx(0.2, rel=0.05)
    assert mult_pj(16, 8) == pytest.approx(2 * mult_pj(8, 8))  # ∝ product of the widths
    # 64-bit SRAM read: 10 pJ up to 8 KB, 20 pJ up to 32 KB, 100 pJ up to 1 MB, then DRAM
    kb = 8 * 1024
    assert [sram_pj_per_bit(b) * 64 for b in (8 * kb, 8 * kb + 1, 32 * kb, 1024 * kb, 1024 * kb + 1)] \
        == pytest.approx([10, 20, 20, 100, 1300])


def test_memory_bits_are_the_formats_times_the_counts():
    N = 8
    c = estimate(load_profile("int8-stochastic"), N)  # W s8, acc s32, eps s8, h/x/y s16, r u15, e/L s24
    syn = N * N + N * 1 + 2 * N
    assert c.memory_bits["weights"] == syn * 8
    assert c.memory_bits["accumulators"] == syn * 32
    assert c.memory_bits["traces"] == (N + 1) * 8
    assert c.memory_bits["state"] == N * (16 + 15 + 24) + 1 * 16 + 2 * (16 + 16 + 24)
    assert c.memory_bits["total"] == sum(v for k, v in c.memory_bits.items() if k != "total")


@pytest.mark.parametrize("N", [8, 64])
def test_multiplies_per_step_match_a_hand_count(N):
    n_in, n_out = 1, 2
    c = estimate(load_profile("int16"), N, n_in=n_in, n_out=n_out)
    by_hand = (N * N + N * n_in  # W_h r + W_x x
               + 2 * N  # α_c h + β_c I
               + n_out * N + n_out  # W_out r, (y - y*) w
               + N * n_out  # W_out^T e
               + 2 * N + 2 * n_in  # traces
               + N * N + N * n_in + n_out * N)  # L ⊗ ε, L ⊗ ε^x, e ⊗ r
    assert sum(n for k, n in c.ops_per_step.items() if k.startswith("mult")) == by_hand
    assert c.ops_per_step["mult 16x15"] == N * N + n_out * N + N  # W_h r, W_out r (s16 x u15), β_c r
    assert "hash32" not in c.ops_per_step  # int16 rounds to nearest in every step operation


def test_stochastic_rounding_costs_draws_and_nearest_does_not():
    N = 16
    stoch, nearest = (estimate(load_profile(p), N) for p in ("int8-stochastic", "int8-nearest"))
    syn = N * N + N + 2 * N
    assert stoch.ops_per_update["hash32"] == syn + 3 * 2  # a draw per weight, two hashes per key
    assert "hash32" not in nearest.ops_per_update
    assert stoch.energy_pj["per_update"] > nearest.energy_pj["per_update"]


def test_carry_costs_one_accumulator_subtract_per_synapse_and_no_memory():
    """Both write every accumulator after an update (zeros or the remainder; acc was read for
    dW already): carry adds one 32-bit subtract per synapse, nothing else."""
    N = 16
    clear, carry = (estimate(load_profile(p), N) for p in ("int8-stochastic", "int8-carry"))
    syn = N * N + N + 2 * N
    assert carry.ops_per_update["add 32"] - clear.ops_per_update.get("add 32", 0) == syn
    assert carry.traffic_bits_per_update == clear.traffic_bits_per_update
    assert carry.memory_bits == clear.memory_bits


def test_per_step_updates_multiply_the_update_cost_by_T():
    p = load_profile("int16")
    trial, step = estimate(p, 8), estimate(apply_overrides(p, schedule="per_step"), 8)
    e = trial.energy_pj
    assert e["per_trial"] == pytest.approx(56 * e["per_step"] + e["per_update"], rel=1e-6)
    assert step.energy_pj["per_trial"] == pytest.approx(56 * (e["per_step"] + e["per_update"]), rel=1e-6)


def test_narrower_profiles_need_less_memory_and_energy():
    n = 64
    wide, narrow = estimate(load_profile("float-like-24"), n), estimate(load_profile("int4-stochastic"), n)
    assert narrow.memory_bits["weights"] * 6 == wide.memory_bits["weights"]  # 4 vs 24 bits
    assert narrow.energy_pj["per_trial"] < wide.energy_pj["per_trial"]
    assert all(math.isfinite(v) and v > 0 for v in wide.energy_pj.values())


def test_report_and_table_name_the_sources():
    text = cost_report("loihi-like", 16)
    assert "loihi-like" in text and "N = 16" in text and "Horowitz" in text and "3.1 pJ" in text
    table = cost_table_markdown(32)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "profile" not in line]
    assert [r.split("|")[1].strip() for r in rows] == list_profiles()


def test_cost_command_prints_the_report():
    import typer
    from typer.testing import CliRunner

    from neurosim.cli_spec import cost

    app = typer.Typer()
    app.command("cost")(cost)
    app.command("unused")(lambda: None)
    r = CliRunner().invoke(app, ["cost", "--profile", "int16", "--n-hidden", "16"])
    assert r.exit_code == 0, r.output
    assert "Cost estimate: int16, N = 16" in r.output


def test_the_spec_states_the_cost_models_memory_count():
    """One count of the memory footprint: spec.json's table is the cost model's, and it equals
    the sum over the spec's own list of stored signals."""
    import json

    from hw_models.cost import memory_bits
    from neurosim.spec_export import spec_files

    spec = json.loads(spec_files("loihi-like", trials=1, steps=3)["spec.json"])
    stored = sum(s["memory_bits"] for s in spec["signals"]
                 if s["status"] == "used" and s["storage"] not in ("transient", "per_network"))
    mem = spec["memory_bits"]
    assert mem["total"] == stored == sum(mem[k] for k in ("weights", "accumulators", "state", "traces"))
    assert {k: v for k, v in mem.items() if k != "flossing"} == memory_bits(_net_of(spec))


def _net_of(spec: dict):
    from hw_models.operations import Network
    from hw_models.profile import load_profile

    n = spec["network"]
    return Network(load_profile("loihi-like"), n["n_hidden"], n["n_in"], n["n_out"], n["batch"], n["alpha"])


def test_dominant_memory_is_the_largest_group():
    assert dominant_memory({"weights": 5, "accumulators": 3, "state": 9, "traces": 1, "total": 18}) == "state"
    for row in comparison(["int16", "loihi-like"], 16):
        mem = estimate(load_profile(row["profile"]), 16).memory_bits
        groups = {g: mem[g] for g in ("weights", "accumulators", "state", "traces")}
        assert row["dominant_memory"] == max(groups, key=groups.get)
        assert row["dominant_share"] == pytest.approx(max(groups.values()) / sum(groups.values()), abs=1e-4)
        assert row["total_bits"] == sum(groups.values())


def test_cost_compares_several_profiles_as_markdown_and_csv(tmp_path, capsys):
    import csv

    from cli_helpers import run_cli

    path = tmp_path / "cost.csv"
    code, out, err = run_cli(["cost", "--profile", "loihi-like", "--profile", "int16", "--n-hidden", "16",
                              "--csv", str(path)], capsys)
    assert code == 0 and err == "", err
    rows = [ln.split("|")[1:-1] for ln in out.splitlines() if ln.startswith("| ") and "profile" not in ln]
    assert [r[0].strip() for r in rows] == ["loihi-like", "int16"]
    with open(path) as fh:
        written = list(csv.DictReader(fh))
    expected = comparison(["loihi-like", "int16"], 16)
    assert [r["profile"] for r in written] == ["loihi-like", "int16"]
    for got, want, md in zip(written, expected, rows, strict=True):
        assert int(got["total_bits"]) == want["total_bits"]
        assert got["dominant_memory"] == want["dominant_memory"]
        assert md[3].strip().startswith(want["dominant_memory"])
    code, _, err = run_cli(["cost", "--n-hidden", "16", "--csv", str(path)], capsys)  # exists, no --force
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    code, out, _ = run_cli(["cost", "--n-hidden", "16", "--csv", str(path), "--force"], capsys)
    assert code == 0
    with open(path) as fh:
        assert [r["profile"] for r in csv.DictReader(fh)] == list_profiles()


def test_cost_csv_never_replaces_a_folder_device_pipe_or_link(tmp_path, capsys):
    """The CSV is renamed over its path, so --force on a device (/dev/null) or a pipe would
    replace it by a plain file: such paths are refused before anything is computed."""
    import os

    from cli_helpers import run_cli

    target = tmp_path / "kept.csv"
    target.write_text("user data\n")
    link, pipe = tmp_path / "link.csv", tmp_path / "pipe"
    link.symlink_to(target)
    os.mkfifo(pipe)
    for path in (tmp_path, link, pipe):
        code, out, err = run_cli(["cost", "--n-hidden", "4", "--csv", str(path), "--force"], capsys)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, (path, err)
        assert "not a plain file" in err
    assert pipe.is_fifo() and link.is_symlink() and target.read_text() == "user data\n"
