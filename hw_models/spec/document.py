"""``spec.json``: every signal, the ordered operations, the generator and the golden files.

The document is data an implementer (or ``tests/spec_interpreter.py``) executes; its shape is
the JSON Schema ``hw_models/spec_schema.json`` (``schema_version`` below). Definitions of the
rounding and overflow modes, the operand sources and the term types are written into the
document itself (``conventions``), so it needs no other text.
"""

from __future__ import annotations

from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version

from hw_models.cost import memory_bits
from hw_models.fixedpoint import network_key
from hw_models.operations import (
    COUNTERS,
    FLOSS_PER_STEP,
    LN2_CODE,
    LN2_FRAC,
    WEIGHTS,
    Network,
    elements,
    floss_ops,
    lam_format,
    step_ops,
    update_ops,
)
from hw_models.spec.golden import GoldenRun

SCHEMA_VERSION = "2.0.0"
SCHEMA_ID = "neurosim-eprop-weight-update-spec"

# name → (role, storage class, description)
SIGNALS = {
    "W_h": ("weight", "per_synapse", "recurrent weights W_h[i, j] (post i, pre j)"),
    "W_x": ("weight", "per_synapse", "input weights W_x[i, k]"),
    "W_out": ("weight", "per_synapse", "readout weights W_out[o, i]"),
    "x": ("input", "per_input", "input x_t, quantized from the binary64 task input"),
    "target": ("target", "per_output", "target y*_t, quantized from the binary64 task target"),
    "I": ("drive", "transient", "recurrent plus input drive W_h r_t + W_x x_t"),
    "h": ("state", "per_neuron", "membrane state h_{t+1}"),
    "r": ("rate", "per_neuron", "rate r_{t+1} = relu(h_{t+1})"),
    "y": ("output", "per_output", "output y_t = W_out r_{t+1}"),
    "e": ("error", "per_output", "output error e_t = ∂L/∂y_t (carries 1/Σm of the mean)"),
    "L": ("learning_signal", "per_neuron", "learning signal L_{t+1} = f'(h_{t+1}) (W_outᵀ e_t)"),
    "eps": ("trace", "per_neuron", "presynaptic eligibility trace ε_{t+1} of the recurrent input"),
    "eps_x": ("trace", "per_input", "eligibility trace ε^x_{t+1} of the input"),
    **{f"G_{k}": ("gradient", "transient", f"this step's gradient of {k}, Σ_b post ⊗ pre")
       for k in WEIGHTS},
    **{f"acc_{k}": ("accumulator", "per_synapse", f"gradient accumulator of {k}") for k in WEIGHTS},
    **{f"d{k}": ("weight_change", "transient", f"weight change of {k} at an update") for k in WEIGHTS},
    # local gradient flossing (phase floss_step / floss_end)
    "p": ("floss_tangent", "transient", "gated tangent p = [h_t > 0] · q_t"),
    "v": ("floss_tangent", "transient", "unnormalised tangent v = J_t q_t"),
    "gamma": ("floss_factor", "transient", "growth γ_t = ‖v‖ of one step"),
    "q": ("floss_tangent", "per_neuron", "normalised tangent q_{t+1} = v / γ_t"),
    "pre": ("floss_tangent", "transient", "presynaptic flossing signal p / γ_t"),
    "ell": ("floss_factor", "transient", "Mitchell log2 γ_t"),
    "G_q": ("gradient", "transient", "this step's flossing gradient β_c Σ_b q_{t+1} ⊗ pre"),
    "acc_q": ("accumulator", "per_synapse", "flossing accumulator of W_h (a chip may share acc_W_h's "
                                            "storage: the phases do not overlap)"),
    "Lam": ("floss_factor", "per_network", "Λ = Σ ℓ, the exact sum of log2 growths"),
    "lam": ("floss_factor", "per_network", "λ_1 estimate in nats per step"),
    "g_floss": ("floss_factor", "per_network", "global flossing factor 2 λ_1 / T'"),
    "dW_floss": ("weight_change", "transient", "flossing weight change of W_h"),
}
FLOSS_SIGNALS = ("p", "v", "gamma", "q", "pre", "ell", "G_q", "acc_q", "Lam", "lam", "g_floss", "dW_floss")

ROUNDING_MODES = {
    "nearest_even": {"integer": "fl + [rem > half] + [rem == half and fl odd]",
                     "binary64": "roundTiesToEven(v) (C rint in the default rounding mode)"},
    "nearest_away": {"integer": "fl + [rem > half] + [rem == half and S >= 0]",
                     "binary64": "nearest integer, ties away from zero (C round)"},
    "floor": {"integer": "fl", "binary64": "floor(v)"},
    "trunc": {"integer": "fl + [rem != 0 and S < 0]", "binary64": "trunc(v) (toward zero)"},
    "stochastic": {"integer": "fl + [d · 2^k < rem · 2^32] (exact integer comparison; for k <= 32: "
                              "(d >> (32 - k)) < rem, i.e. add the inverted top k bits of d, then "
                              "shift right by k)",
                   "binary64": "floor(v) + [d · 2^-32 < v - floor(v)] (subtraction and comparison "
                               "in binary64)"},
}

CONVENTIONS = {
    "code": "every signal is an integer code c of its format; its value is c · 2^-frac_bits. A "
            "weight's frac_bits is the format's fraction minus the matrix's scale exponent s.",
    "format": "s<word>.<frac>: signed two's complement, codes in [-2^(word-1), 2^(word-1) - 1]; "
              "u<word>.<frac>: unsigned, codes in [0, 2^word - 1]",
    "layout": "arrays are row-major; shapes are given in the dimension names of 'dimensions'",
    "requantize": "result = overflow(round(S · 2^-shift)) where S is the exact sum of the terms "
                  "(integer arithmetic: each term's value times 2^left_shift; binary64 arithmetic: "
                  "the binary64 value of the single term), multiplied elementwise by [gate > 0] "
                  "when a gate is given. shift <= 0 is an exact left shift (no rounding).",
    "rounding_integer": "For an integer sum S and shift k > 0: fl = floor(S / 2^k), rem = S - fl · 2^k "
                        "(0 <= rem < 2^k), half = 2^(k-1); see rounding_modes",
    "rounding_binary64": "for binary64 operations v = S · 2^-shift (exact in binary64) is rounded "
                         "as rounding_modes[mode].binary64 states",
    "terms": {
        "matvec": "out[b, i] = Σ_j M[i, j] · v[b, j]; with transpose, Σ_j M[j, i] · v[b, j]",
        "elementwise": "out = coefficient · (relu ? max(operand, 0) : operand)",
        "outer": "out[i, j] = Σ_b post[b, i] · pre[b, j]",
        "input": "out = the binary64 input value (shift = -frac_bits scales it exactly)",
        "weighted_difference": "out[b, o] = binary64(a[b, o] - b_[b, o]) · w[t, b], one binary64 "
                               "multiplication; w is defined in 'trial'",
    },
    "sources": {"previous_step": "the value the signal had at the end of the previous step "
                                 "(0 at t = 0 of every trial)",
                "this_step": "the value an earlier operation of this step wrote",
                "memory": "a weight or accumulator (persistent)",
                "input": "the trial's binary64 input at step t"},
    "accumulate": "result = overflow(result + operand), no rounding",
    "subtract": "W = overflow(W - dW), no rounding",
    "clear": "result = 0",
    "carry": "result = operands[0] - operands[1] · 2^left_shift, exact and never out of range "
             "(|acc - (dW << s)| <= |acc|, or < 2^s when dW is in range): the accumulator keeps "
             "what the update did not apply",
    "counter": "every overflow (saturation or wrap) of an operation adds 1 per element to the "
               "counter its 'counter' field names (one of 'overflow_counters'). Counters are per "
               "signal except where operations share one: S11, S13 and S15 (the three accumulator "
               "adds) all count into 'acc', and U2 and F13 (both write W_h) into 'W_h'",
    "overflow_counts": "overflow_counts[k] holds every counter after trial k, cumulative since the "
                       "network was created (the flossing phase included); floss_overflow_counts[k] "
                       "the same after flossing iteration k",
    "records": "per-step golden arrays hold each signal's value after its operation in step t "
               "(acc_<W>_step: the accumulator after S11/S13/S15 of step t, before an update); "
               "per-update arrays: acc_<W> is the accumulator the update read (before it is "
               "cleared or carried), d<W> the change, <W> the weight after the update; flossing: "
               "floss_acc_q after F8 of step t, floss_W_h after F13 of the iteration",
    "files": "inputs of an implementation: the golden files of kind 'input' (binary64 task inputs) "
             "and 'initial' (initial codes; <W>_init_float and floss_q_init_float are the float "
             "values they were quantized from, for checking the initial quantization); every other "
             "golden file is an output to reproduce bit for bit",
}


def _fmt_fields(net: Network, name: str, steps: int) -> dict:
    f = lam_format(net, steps) if name == "Lam" else net.fmt(name)
    return {"format": str(f), "signed": f.signed, "word_bits": f.word, "frac_bits": f.frac,
            "effective_frac_bits": f.frac if name == "Lam" else net.frac(name), "min_code": f.min_code,
            "max_code": f.max_code}


def signals(net: Network, steps: int) -> list[dict]:
    """Every signal: format, shape, storage and memory for this network (``status``: ``used`` by
    e-prop, ``flossing`` by the flossing phase only)."""
    out = []
    for name, (role, storage, desc) in SIGNALS.items():
        shape = list(net.dims(name))
        n = elements(net, shape) if storage != "transient" else 0
        per_unit = {"per_synapse": 1, "per_neuron": net.batch, "per_input": net.batch,
                    "per_output": net.batch, "per_network": 1}.get(storage, 0)
        fields = _fmt_fields(net, name, steps)
        out.append({"name": name, "role": role, "description": desc, **fields,
                    "shape": shape, "storage": storage,
                    "status": "flossing" if name in FLOSS_SIGNALS else "used",
                    "bits_per_unit": fields["word_bits"] * per_unit, "memory_bits": n * fields["word_bits"]})
    fmt = net.profile.formats.alpha
    out.append({"name": "alpha", "role": "constant", "description": "leak codes α_c and β_c = 2^A - α_c",
                "format": str(fmt), "signed": fmt.signed, "word_bits": fmt.word, "frac_bits": fmt.frac,
                "effective_frac_bits": fmt.frac, "min_code": fmt.min_code, "max_code": fmt.max_code,
                "shape": [], "storage": "per_network", "status": "used", "bits_per_unit": fmt.word,
                "memory_bits": 2 * fmt.word})
    return out


def rng_section(net: Network, network_seed: int) -> dict:
    p = net.profile
    return {
        "algorithm": "counter-based: a 32-bit hash of (network key, operation counter, element "
                     "index); hash = lowbias32, C. Wellons, https://nullprogram.com/blog/2018/07/31/",
        "word_bits": 32,
        "hash": {"name": "lowbias32", "arithmetic": "unsigned 32-bit words, products modulo 2^32",
                 "steps": [{"xor_shift_right": 16}, {"multiply": "0x7feb352d"},
                           {"xor_shift_right": 15}, {"multiply": "0x846ca68b"},
                           {"xor_shift_right": 16}]},
        "stream_seed": p.seed,
        "network_seed": network_seed,
        "key_constant": "0x9e3779b9",
        "key": "key = H(H(H(stream_seed ^ key_constant) ^ lo32(s)) ^ hi32(s)), s = network_seed mod 2^64",
        "network_key": f"0x{network_key(p.seed, network_seed):08x}",
        "counter": "c = 0 when the network is created; +1 (mod 2^32) after every operation whose "
                   "rounding is stochastic, whatever its size; never reset between trials",
        "operation_key": "K = H(key ^ H(c))",
        "draw": "d_i = H(K ^ i), i = row-major index of the element in the operation's result",
        "uniform": "u_i = d_i · 2^-32",
        "order": "operations draw in the order they run: first the flossing iterations (see "
                 "flossing.draw_order), then the trials: the order of 'operations' (step "
                 "operations of step t, then "
                 "the update operations when the schedule updates), trial after trial; "
                 "deterministic operations draw nothing",
    }


def build_spec(run: GoldenRun, *, task: str, gain: float, seed: int, files: list[dict],
               cost: dict) -> dict:
    """The spec.json document of a golden run (``files``: the golden manifest)."""
    net, p = run.net, run.net.profile
    f = p.formats
    fl = floss_ops(net, run.steps)
    try:
        pkg_version = version("neurosim")
    except PackageNotFoundError:
        pkg_version = "unknown"
    sig = signals(net, run.steps)
    mem = memory_bits(net)  # the cost model's count: one statement of the memory footprint
    mem["flossing"] = sum(s["memory_bits"] for s in sig if s["status"] == "flossing")
    return {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "generated_by": {"package": "neurosim", "version": pkg_version},
        "profile": p.to_dict(),
        "network": {
            "n_hidden": net.n_hidden, "n_in": net.n_in, "n_out": net.n_out, "batch": net.batch,
            "alpha": net.alpha, "alpha_format": str(f.alpha), "alpha_code": net.alpha_c,
            "beta_code": net.beta_c, "feedback": "symmetric (B = W_out^T)", "task": task,
            "gain": gain, "seed": seed, "steps_per_trial": run.steps, "trials": run.trials,
        },
        "dimensions": {"N": net.n_hidden, "n_in": net.n_in, "n_out": net.n_out, "B": net.batch,
                       "T": run.steps},
        "conventions": CONVENTIONS,
        "rounding_modes": ROUNDING_MODES,
        "overflow_modes": {"saturate": "min(max(c, min_code), max_code)",
                           "wrap": "((c - min_code) mod 2^word_bits) + min_code"},
        "signals": sig,
        "memory_bits": mem,
        "weight_scale": {
            "mode": p.weight_scale,
            "rule": "pow2: s is the least integer with 2^headroom · max|W_init| <= max_code · 2^-frac "
                    "· 2^s (headroom per matrix, below; the fixed feedback B uses 1); fixed: s = 0. "
                    "Weight value = code · 2^-(frac - s).",
            "headroom": asdict(p.headroom),
            "exponents": dict(net.scale_exp),
            "effective_frac_bits": {k: net.frac(k) for k in WEIGHTS},
            "initial_quantization": "code = nearest_even(W_init · 2^(frac - s)), then overflow",
        },
        "learning_rate": {"lr_shift": p.lr_shift, "learning_rate": 2.0**-p.lr_shift,
                          "rule": "SGD with a shift: ΔW = acc · 2^-(lr_shift) in weight units, "
                                  "applied in U1, U4, U7. The golden vectors use this value in "
                                  "every trial; training with an lr decay (neurosim --lr-decay "
                                  "cosine) raises it between trials, never below this value, the "
                                  "operations otherwise unchanged: a chip that supports it holds "
                                  "the shift in a register (the C reference model compiles in one "
                                  "value)"},
        "update_schedule": {
            "schedule": p.schedule,
            "rule": "per_step: the update operations run after the step operations of every step; "
                    "per_trial: after those of step T-1 only",
        },
        "trial": {
            "start": "h, r, eps, eps_x start at 0 (their previous_step values at t = 0); "
                     "acc_W_h, acc_W_x, acc_W_out are 0 before the first trial",
            "w": "w[t, b] = mask[t, b] / max(Σ_{t, b} mask, 1), binary64 division (mask values are "
                 "0 or 1, so the sum is exact)",
            "loop": "for t = 0..T-1: the step operations in order, then the update operations if "
                    "the schedule says so",
            "persistent": "weights, accumulators (0 after a 'clear' update, the remainder after "
                          "a 'carry' one) and the generator counter carry over to the next trial",
        },
        "rng": rng_section(net, run.network_seed),
        "operations": {"step": step_ops(net), "update": update_ops(net),
                       "floss_step": fl["step"], "floss_end": fl["end"]},
        "overflow_counters": list(COUNTERS),
        "flossing": flossing_section(net, run),
        "coverage": {
            "branches": {"inexact": "a non-zero remainder (the rounding mode decides)",
                         "tie_even": "an exact half with an even floor", "tie_odd": "an exact half "
                         "with an odd floor (nearest_even rounds it up)", "tie_negative": "an exact "
                         "half below zero (nearest_away rounds it down)", "inexact_negative":
                         "a non-zero remainder below zero (trunc differs from floor)",
                         "stochastic_equal": "u equal to the remainder (u < frac is false)",
                         "overflow_high": "the rounded code above max_code", "overflow_low": "below "
                         "min_code", "overflow": "saturations or wraps counted by the operation's "
                         "counter (operations without rounding)"},
            "rows": run.coverage,
        },
        "golden": {"npz": "golden.npz", "hex_dir": "golden", "trials": run.trials,
                   "directed_trials": run.directed,
                   "floss_iterations": run.floss_iters,
                   "steps_per_trial": run.steps, "updates": run.updates, "losses": run.losses,
                   "files": files},
        "c_model": {
            "files": ["c/eprop_ref.h", "c/eprop_ref.c", "c/eprop_driver.c"],
            "build": "cc -O2 -std=c99 eprop_ref.c eprop_driver.c -lm -o eprop_ref",
            "run": "./eprop_ref ../golden OUT_DIR: reads the golden inputs, creates OUT_DIR, writes "
                   "every output there and compares it with ../golden, one line per signal and a "
                   "verdict; exit 0 bit-exact, 1 mismatch, 2 unreadable input. `neurosim verify-spec "
                   "DIR` does all of this, the build included",
        },
        "cost": cost,
    }


def flossing_section(net: Network, run: GoldenRun) -> dict:
    """How the flossing phase runs: its loop, start values, constants and draw order."""
    return {
        "covered": run.floss_problem is None,
        "reason": run.floss_problem,
        "iterations": run.floss_iters,
        "warmup": 0,
        "steps_per_iteration": run.steps,
        "rule": "local gradient flossing, k = 1 (Engelken 2023): W_h descends on λ_1², λ_1 the "
                "largest Lyapunov exponent along the network's own trajectory; every operation "
                "integer (isqrt, restoring division, Mitchell log2)",
        "inputs": "iteration k runs on floss_x_raw[k] (T, B, n_in): the forward operations S0..S3 "
                  "only (no targets, no e-prop accumulation)",
        "start": "every iteration: h, r = 0 (previous_step values at t = 0), q (previous_step at "
                 "t = 0) = floss_q_init broadcast over B, acc_q = 0, Λ = 0",
        "initial_tangent": "floss_q_init = nearest_even(q0 · 2^f_q), then overflow, with q0 = "
                           "floss_q_init_float, the first column of the QR of an (N, 1) standard "
                           "normal matrix drawn with torch seed 0 (a fixed vector: the golden file "
                           "gives it)",
        "loop": "for t = 0..T-1: floss_step operations F1..F9 in order (those with when 't >= "
                "warmup' only then), then the step operations S0..S3 (x_t, I, h_{t+1}, r_{t+1}); "
                "after step T-1 the floss_end operations F10..F13",
        "constants": {"ln2_code": LN2_CODE, "ln2_frac": LN2_FRAC,
                      "n": run.steps * net.batch},
        "order": "the flossing iterations run before the first e-prop trial, sharing the weights, "
                 "the generator counter and the overflow counters; the trials start from W_h after "
                 "the last iteration (W_h_init is the weight before flossing)",
        "draw_order": "stochastic operations draw in the order they run: per step F2, F4, F5, F6, "
                      "F7 (whichever are stochastic), then S0..S3; after the last step F10, F11, F12",
        "divisor_broadcast": "a divisor of shape (B,) divides every element of row b of the (B, N) "
                             "numerator",
    }


def golden_manifest(run: GoldenRun) -> list[dict]:
    """One entry per golden array: file, npz key, shape, word width, encoding, kind."""
    out = []
    for name, a in run.arrays.items():
        word, enc = run.words[name]
        base = name.removeprefix("floss_")
        if name.endswith("_raw") or name == "mask":
            kind = "input"
        elif "_init" in name:
            kind = "initial"
        elif base.startswith("draw_"):
            kind = "draw"
        elif base == "overflow_counts":
            kind = "counters"
        elif name.startswith("floss_"):
            kind = "floss_step" if base in (*FLOSS_PER_STEP, "G_q", "acc_q") else "floss_iteration"
        elif name in ("I", "h", "r", "x", "target", "y", "e", "L", "eps", "eps_x") or name.startswith("G_") \
                or name.endswith("_step"):
            kind = "step"
        else:
            kind = "update"
        out.append({"name": name, "file": f"golden/{name}.hex", "npz_key": name, "kind": kind,
                    "shape": list(a.shape), "word_bits": word, "encoding": enc})
    return out
