"""``spec.json``: every signal, the ordered operations, the generator and the golden files.

The document is data an implementer (or ``tests/spec_interpreter.py``) executes; its shape is
the JSON Schema ``hw_models/spec_schema.json`` (``schema_version`` below). Definitions of the
rounding and overflow modes, the operand sources and the term types are written into the
document itself (``conventions``), so it needs no other text.
"""

from __future__ import annotations

from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version

from hw_models.fixedpoint import network_key
from hw_models.operations import COUNTERS, WEIGHTS, Network, elements, step_ops, update_ops
from hw_models.spec.golden import GoldenRun

SCHEMA_VERSION = "1.1.0"
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
}

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
               "named counter in 'overflow_counters'",
}


def _fmt_fields(net: Network, name: str) -> dict:
    f = net.fmt(name)
    return {"format": str(f), "signed": f.signed, "word_bits": f.word, "frac_bits": f.frac,
            "effective_frac_bits": net.frac(name), "min_code": f.min_code, "max_code": f.max_code}


def signals(net: Network) -> list[dict]:
    """Every signal: format, shape, storage and memory for this network."""
    out = []
    for name, (role, storage, desc) in SIGNALS.items():
        shape = list(net.dims(name))
        n = elements(net, shape) if storage != "transient" else 0
        per_unit = {"per_synapse": 1, "per_neuron": net.batch, "per_input": net.batch,
                    "per_output": net.batch}.get(storage, 0)
        out.append({"name": name, "role": role, "description": desc, **_fmt_fields(net, name),
                    "shape": shape, "storage": storage, "status": "used",
                    "bits_per_unit": net.fmt(name).word * per_unit, "memory_bits": n * net.fmt(name).word})
    f = net.profile.formats
    for name, role, storage, desc, n in (
        ("alpha", "constant", "per_network", "leak codes α_c and β_c = 2^A - α_c", 2),
        ("q", "floss_tangent", "per_neuron", "flossing tangent q (local gradient flossing)", net.n_hidden),
        ("floss_gain", "floss_factor", "per_network", "flossing growth γ, log γ and global factor", 3),
    ):
        fmt = getattr(f, name)
        out.append({"name": name, "role": role, "description": desc, "format": str(fmt),
                    "signed": fmt.signed, "word_bits": fmt.word, "frac_bits": fmt.frac,
                    "effective_frac_bits": fmt.frac, "min_code": fmt.min_code, "max_code": fmt.max_code,
                    "shape": ["N"] if name == "q" else [], "storage": storage,
                    "status": "used" if name == "alpha" else "flossing_only",
                    "bits_per_unit": fmt.word, "memory_bits": n * fmt.word})
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
        "order": "operations draw in the order of 'operations' (step operations of step t, then "
                 "the update operations when the schedule updates), trial after trial; "
                 "deterministic operations draw nothing",
    }


def build_spec(run: GoldenRun, *, task: str, gain: float, seed: int, files: list[dict],
               cost: dict) -> dict:
    """The spec.json document of a golden run (``files``: the golden manifest)."""
    net, p = run.net, run.net.profile
    f = p.formats
    try:
        pkg_version = version("neurosim")
    except PackageNotFoundError:
        pkg_version = "unknown"
    sig = signals(net)
    mem = {"weights": 0, "accumulators": 0, "state": 0, "traces": 0}
    group = {"weight": "weights", "accumulator": "accumulators", "trace": "traces"}
    for s in sig:
        if s["status"] == "used" and s["storage"] not in ("transient", "per_network"):
            mem[group.get(s["role"], "state")] += s["memory_bits"]
    mem["total"] = sum(mem.values())
    mem["flossing"] = sum(s["memory_bits"] for s in sig if s["status"] == "flossing_only")
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
        "rng": rng_section(net, seed),
        "operations": {"step": step_ops(net), "update": update_ops(net)},
        "overflow_counters": list(COUNTERS),
        "flossing": {
            "covered": False,
            "note": "the engine's local gradient flossing (hw_models/flossing.py, "
                    "FixedPointEngine.floss_step) uses q and floss_gain; its operations are not "
                    "part of this schema version and the golden vectors do not exercise them",
        },
        "golden": {"npz": "golden.npz", "hex_dir": "golden", "trials": run.trials,
                   "steps_per_trial": run.steps, "updates": run.updates, "losses": run.losses,
                   "files": files},
        "c_model": {
            "files": ["c/eprop_ref.h", "c/eprop_ref.c", "c/eprop_driver.c"],
            "build": "cc -O2 -std=c99 eprop_ref.c eprop_driver.c -lm -o eprop_ref",
            "run": "./eprop_ref ../golden OUT_DIR  (then compare OUT_DIR/*.hex with ../golden/*.hex)",
        },
        "cost": cost,
    }


def golden_manifest(run: GoldenRun) -> list[dict]:
    """One entry per golden array: file, npz key, shape, word width, encoding, kind."""
    out = []
    for name, a in run.arrays.items():
        word, enc = run.words[name]
        if name.endswith("_raw") or name == "mask":
            kind = "input"
        elif "_init" in name:
            kind = "initial"
        elif name.startswith("draw_"):
            kind = "draw"
        elif name == "overflow_counts":
            kind = "counters"
        elif name in ("I", "h", "r", "x", "target", "y", "e", "L", "eps", "eps_x"):
            kind = "step"
        else:
            kind = "update"
        out.append({"name": name, "file": f"golden/{name}.hex", "npz_key": name, "kind": kind,
                    "shape": list(a.shape), "word_bits": word, "encoding": enc})
    return out
