"""The weight-update spec export: the C model, the engine and a spec.json-only interpreter all
reproduce the golden vectors bit for bit, for every shipped profile and for profiles that
exercise every rounding mode, wrap-around and per-step updates."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from spec_interpreter import Interpreter

from hw_models._exactness import ExactnessError
from hw_models.engine import FixedPointEngine
from hw_models.profile import ProfileError, derive_profile, list_profiles, profile_from_dict
from hw_models.spec import SCHEMA_VERSION, SpecError
from hw_models.spec.verify import find_compiler, verify_spec
from neurosim.model import Params
from neurosim.results import OutputError
from neurosim.spec_export import export_spec, spec_files

SCHEMA = json.loads((Path(__file__).parents[1] / "hw_models" / "spec_schema.json").read_text())
WEIGHTS = ("W_h", "W_x", "W_out")
PER_STEP = ("x", "target", "I", "h", "r", "y", "e", "L", "eps", "eps_x")

# derived profiles that reach what the shipped ones do not: every rounding mode in every group,
# stochastic rounding of binary64 inputs, per-step updates, wrap-around, leak 0.7
STRESS = {
    "all_stochastic_per_step": dict(
        rounding_state="stochastic", rounding_trace="stochastic", rounding_learning_signal="stochastic",
        rounding_accumulate="stochastic", rounding="stochastic", schedule="per_step",
        weight_scale="fixed", lr_shift=2, seed=5),
    "mixed_modes": dict(
        rounding_state="nearest_away", rounding_trace="floor", rounding_learning_signal="trunc",
        rounding_accumulate="nearest_even", rounding="stochastic", lr_shift=3),
    "narrow_wrapping": dict(
        overflow="wrap", rounding="nearest_even", x="s3.2", h="s4.2", r="u3.2", y="s4.3", e="s8.7",
        L="s8.7", acc="s10.6", lr_shift=1),
    "left_shift_lr": dict(lr_shift=-2),  # lr 4: the update shift shrinks, still a right shift
    # the accumulator keeps the remainder across updates (and trials): both schedules
    "carry_nearest": dict(accumulator="carry", rounding="nearest_even", lr_shift=4),
    "carry_stochastic_per_step": dict(accumulator="carry", schedule="per_step", lr_shift=2),
}
CASES = list_profiles() + [f"stress:{name}" for name in STRESS]


def _write(files: dict, out: Path) -> Path:
    for rel, content in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(content) if isinstance(content, bytes) else (out / rel).write_text(content)
    return out


@pytest.fixture(scope="module", params=CASES)
def exported(request, tmp_path_factory) -> Path:
    """One export per case: shipped profiles through export_spec (defaults: N=8, 2 trials of
    Romo's 56 steps), stress profiles with leak 0.7, gain 1.5 and 20 steps."""
    out = tmp_path_factory.mktemp("spec") / request.param.replace(":", "_")
    if request.param.startswith("stress:"):
        prof = derive_profile(6, alpha="u8.8", **STRESS[request.param.split(":")[1]])
        return _write(spec_files(prof, n_hidden=8, gain=1.5, trials=2, steps=20, seed=3, alpha=0.7), out)
    return export_spec(request.param, out, n_hidden=8, trials=2, seed=0)


def _spec(out: Path) -> dict:
    return json.loads((out / "spec.json").read_text())


def _golden(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "golden.npz") as g:
        return {k: g[k] for k in g.files}


def _recorded(spec: dict) -> list[dict]:
    return [f for f in spec["golden"]["files"] if f["kind"] not in ("input", "initial")]


# ---- (1) the C model, compiled with the system compiler ---------------------------------------

@pytest.mark.skipif(find_compiler() is None, reason="no C compiler on this machine")
def test_c_model_reproduces_the_golden_vectors_bit_for_bit(exported):
    """verify_spec builds the C model with cc, runs it and compares every output (flossing too)."""
    verdicts = verify_spec(exported)
    assert [v.signal for v in verdicts] == [Path(f["file"]).stem for f in _recorded(_spec(exported))]
    assert all(v.ok for v in verdicts), [v.line() for v in verdicts if not v.ok]
    if _spec(exported)["flossing"]["covered"]:
        assert {"floss_q", "floss_gamma", "floss_dW_floss", "floss_W_h"} <= {v.signal for v in verdicts}


def test_hex_files_hold_the_npz_arrays(exported):
    golden = _golden(exported)
    for f in _spec(exported)["golden"]["files"]:
        words = [int(w, 16) for w in (exported / f["file"]).read_text().split()]
        a = golden[f["npz_key"]]
        assert list(a.shape) == f["shape"]
        if f["encoding"] == "binary64":
            decoded = np.array(words, dtype=np.uint64).view(np.float64)
        else:
            w = f["word_bits"]
            signed = f["encoding"] == "twos_complement"
            decoded = np.array([v - 2**w if signed and v >> (w - 1) else v for v in words])
        np.testing.assert_array_equal(decoded, a.reshape(-1), err_msg=f["name"])


# ---- (2) the golden vectors are the engine's own computation ----------------------------------

def test_rerunning_the_engine_on_the_golden_inputs_reproduces_them(exported):
    spec, golden = _spec(exported), _golden(exported)
    prof = spec["profile"]
    profile = profile_from_dict({k: v for k, v in prof.items() if k != "name"}, prof["name"])
    params = Params(*(torch.from_numpy(golden[f"{k}_init_float"])[None] for k in WEIGHTS))
    eng = FixedPointEngine(profile, params, alpha=spec["network"]["alpha"], seed=spec["rng"]["network_seed"])
    for k in WEIGHTS:
        np.testing.assert_array_equal(eng.W[k][0].numpy(), golden[f"{k}_init"])
    for it in range(spec["flossing"]["iterations"]):  # the flossing phase comes first
        rec = {}
        eng.floss_step(torch.from_numpy(golden["floss_x_raw"][it]).unsqueeze(1), record=rec)
        for name in ("q", "gamma", "h", "acc_q"):
            np.testing.assert_array_equal(rec[name][:, 0].numpy(), golden[f"floss_{name}"][it], err_msg=name)
        np.testing.assert_array_equal(eng.W["W_h"][0].numpy(), golden["floss_W_h"][it])
    per_update = {k: [] for k in ("acc_W_h", "dW_h", "acc_W_out", "dW_out")}
    for trial in range(spec["golden"]["trials"]):
        x, target, mask = (torch.from_numpy(golden[k][trial]).unsqueeze(1)
                           for k in ("x_raw", "target_raw", "mask"))
        rec: dict = {}
        eng.train_step(x, target, mask, record=rec)
        for name in PER_STEP:
            np.testing.assert_array_equal(rec[name][:, 0].numpy(), golden[name][trial], err_msg=name)
        for k in per_update:
            per_update[k] += list(rec[k][:, 0].numpy())
        n = spec["golden"]["updates"] // spec["golden"]["trials"] * (trial + 1)
        for k in WEIGHTS:
            np.testing.assert_array_equal(eng.W[k][0].numpy(), golden[k][n - 1], err_msg=k)
    for k, v in per_update.items():
        np.testing.assert_array_equal(np.stack(v), golden[k], err_msg=k)
    counts = [eng.counters.get(c, 0) for c in spec["overflow_counters"]]
    assert counts == golden["overflow_counts"][-1].tolist()


# ---- (3) spec.json alone is enough -----------------------------------------------------------

def test_an_interpreter_of_spec_json_alone_reproduces_the_golden_vectors(exported):
    spec, golden = _spec(exported), _golden(exported)
    ours = Interpreter(spec, golden).run()
    recorded = _recorded(spec)
    assert {f["npz_key"] for f in recorded} == set(ours)
    for f in recorded:
        np.testing.assert_array_equal(ours[f["npz_key"]], golden[f["npz_key"]], err_msg=f["name"])


def test_initial_codes_and_scale_exponents_follow_from_the_float_weights(exported):
    """The interpreter quantizes <W>_init_float and floss_q_init_float itself (exact rational
    pow2 rule, nearest_even, overflow): the golden initial codes must be what the spec says."""
    spec, golden = _spec(exported), _golden(exported)
    ours = Interpreter(spec, golden)
    assert ours.exponents == spec["weight_scale"]["exponents"]
    for k in WEIGHTS:
        np.testing.assert_array_equal(ours.mem[k], golden[f"{k}_init"], err_msg=k)
    if spec["flossing"]["covered"]:
        np.testing.assert_array_equal(ours.q_init, golden["floss_q_init"])


def test_stress_profiles_reach_wraps_and_stochastic_inputs(tmp_path_factory):
    """The stress cases test what they claim: wrap-around happens, binary64 inputs draw."""
    files = spec_files(derive_profile(6, alpha="u8.8", **STRESS["narrow_wrapping"]), n_hidden=8,
                         gain=1.5, trials=2, steps=20, seed=3, alpha=0.7)
    spec = json.loads(files["spec.json"])
    assert spec["golden"]["files"][-1]["name"] == "overflow_counts"
    out = _write(files, tmp_path_factory.mktemp("wrap"))
    assert _golden(out)["overflow_counts"][-1].sum() > 0
    stoch = json.loads(spec_files(derive_profile(6, alpha="u8.8", **STRESS["all_stochastic_per_step"]),
                                    n_hidden=4, trials=1, steps=3)["spec.json"])
    names = {f["name"] for f in stoch["golden"]["files"]}
    assert {"draw_x", "draw_target", "draw_e", "draw_h", "draw_dW_h"} <= names
    assert stoch["golden"]["updates"] == 3 * stoch["golden"]["trials"]  # per-step: one update per step


# ---- (4) the document validates against its JSON Schema -------------------------------------

def test_spec_json_validates_against_the_schema(exported):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    spec = _spec(exported)
    jsonschema.validate(spec, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert spec["schema_version"] == SCHEMA_VERSION


def test_schema_rejects_a_malformed_operation(exported):
    spec = _spec(exported)
    spec["operations"]["step"][1]["rounding"] = "round_half_up"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_every_signal_has_a_format_and_the_flossing_signals_are_marked(exported):
    spec = _spec(exported)
    status = {s["name"]: s["status"] for s in spec["signals"]}
    assert {k for k, v in status.items() if v == "flossing"} == {
        "p", "v", "gamma", "q", "pre", "ell", "G_q", "acc_q", "Lam", "lam", "g_floss", "dW_floss"}
    assert {"W_h", "h", "r", "eps", "e", "L", "acc_W_h"} <= {k for k, v in status.items() if v == "used"}
    ops = {op["result"] for op in spec["operations"]["floss_step"] + spec["operations"]["floss_end"]}
    assert {k for k, v in status.items() if v == "flossing"} <= ops | {"acc_q"}
    sheet = (exported / "DATASHEET.md").read_text()
    assert f"Memory for N = {spec['dimensions']['N']}" in sheet and "Horowitz" in sheet


# ---- (5) bad input: one clear error, nothing written -----------------------------------------

def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


def test_unknown_profile_is_refused(tmp_path):
    with pytest.raises(ProfileError, match="unknown profile 'int7'"):
        export_spec("int7", tmp_path / "out")
    assert _leftovers(tmp_path) == []


def test_non_empty_output_is_refused_and_force_replaces_only_an_export(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="exists and is not empty"):
        export_spec("int16", out, trials=1, steps=3)
    with pytest.raises(OutputError, match="did not write"):  # --force never deletes a user's folder
        export_spec("int16", out, trials=1, steps=3, force=True)
    assert _leftovers(out) == ["keep.txt"] and _leftovers(tmp_path) == ["out"]
    (out / "keep.txt").unlink()
    export_spec("int16", out, trials=1, steps=3)
    (out / "stale.txt").write_text("x")
    export_spec("int16", out, trials=1, steps=3, force=True)
    assert (out / "spec.json").is_file() and not (out / "stale.txt").exists()
    assert _leftovers(tmp_path) == ["out"]  # no lock, probe or temporary left beside it


def test_network_beyond_the_exactness_bound_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "out"
    export_spec("int16", out, trials=1, steps=3)
    before = _leftovers(out)
    # float-like-24: N · 2^23 · 2^19 · 2 >= 2^53 once N >= 1024
    with pytest.raises(ExactnessError, match="2\\^53"):
        export_spec("float-like-24", out, n_hidden=1024, trials=1, steps=2, force=True)
    assert _leftovers(tmp_path) == ["out"] and _leftovers(out) == before


@pytest.mark.parametrize("kw, match", [
    (dict(n_hidden=0), "--n-hidden must be an integer >= 1"),
    (dict(trials=0), "--trials must be"),
    (dict(steps=0), "--steps must be"),
    (dict(task="mnist"), "unknown task 'mnist'"),
    (dict(gain=-1.0), "--gain must be"),
])
def test_bad_options_name_the_option(tmp_path, kw, match):
    with pytest.raises(SpecError, match=match):
        export_spec("int16", tmp_path / "out", **kw)
    assert _leftovers(tmp_path) == []


def test_export_spec_command_writes_the_folder(tmp_path):
    import typer
    from typer.testing import CliRunner

    from neurosim.cli_spec import export_spec as command

    app = typer.Typer()
    app.command("export-spec")(command)
    app.command("unused")(lambda: None)  # two commands: typer keeps the command name
    out = tmp_path / "spec"
    r = CliRunner().invoke(app, ["export-spec", "--profile", "int8-stochastic", "--out", str(out),
                                 "--trials", "1", "--steps", "4"])
    assert r.exit_code == 0, r.output
    assert "spec written to" in r.output
    assert {p.name for p in out.iterdir()} == {"spec.json", "DATASHEET.md", "golden.npz", "golden", "c"}
    r = CliRunner().invoke(app, ["export-spec", "--profile", "nope", "--out", str(tmp_path / "x")])
    assert isinstance(r.exception, ProfileError)


def test_coverage_table_counts_agree_with_the_overflow_counters(exported):
    """Each rounding operation's overflow_high + overflow_low is what the golden overflow_counts
    say for its counter (where the counter is its own), and the directed trials reach both
    saturation directions and both tie branches of the binary64 input S0 (integer rounding)."""
    spec, golden = _spec(exported), _golden(exported)
    final = dict(zip(spec["overflow_counters"], golden["overflow_counts"][-1].tolist(), strict=True))
    rows = {r["id"]: r for r in spec["coverage"]["rows"]}
    counters = [op.get("counter") for ops in spec["operations"].values() for op in ops]
    for ops in spec["operations"].values():
        for op in ops:
            r = rows.get(op["id"])
            if (r is None or "overflow_high" not in r["counts"] or counters.count(op.get("counter")) > 1
                    or "note" in r or op["result"] in ("x", "I", "h", "r")):
                continue  # the flossing phase's S0..S3 count into x, I, h, r too
            c = r["counts"]
            assert c["overflow_high"] + c["overflow_low"] == final[op["counter"]], op["id"]
    if spec["profile"]["rounding"]["state"] in ("nearest_even", "nearest_away"):
        s0 = rows["S0"]["counts"]
        assert s0["overflow_high"] > 0 and s0["overflow_low"] > 0 and s0["tie_even"] > 0
        assert (s0.get("tie_odd") or s0.get("tie_negative")) > 0
