r"""Memory, operation counts and an energy estimate of the integer e-prop engine on a chip.

Everything is counted from the operation list of :mod:`hw_models.operations` (the arithmetic the
engine, ``spec.json`` and the C model share), for one network, batch 1:

- **memory**: bits of every stored signal (weights and accumulators per synapse; state,
  rate, traces and learning signal per neuron; input, output and error per channel).
- **operations** per time step and per weight update, by type and width: ``mult AxB``
  (a product of an A-bit and a B-bit operand; by a leak code α_c/β_c too), ``add W`` (one
  addition in the W-bit exact intermediate of the operation; a sum of n products is n
  additions), ``round W`` (one shift-and-round of a W-bit intermediate, counted as an add),
  and for stochastic operations ``hash32`` draws (lowbias32: two 32x32 multiplies).
- **memory traffic**: every weight and accumulator word an operation reads or writes (the
  per-neuron state, O(N) words, is neglected against the O(N²) synaptic words).

Energy (per-operation energies at 45 nm, 0.9 V, from M. Horowitz, "Computing's energy
problem (and what we can do about it)", ISSCC 2014, Fig. 1.1.9):

    integer add      8 bit 0.03 pJ     32 bit 0.1 pJ
    integer multiply 8 bit 0.2 pJ      32 bit 3.1 pJ
    SRAM read (64 bit)  8 KB 10 pJ     32 KB 20 pJ     1 MB 100 pJ
    DRAM (64 bit)       1.3 - 2.6 nJ

Scaling to other widths: an add costs ``0.1 pJ · W/32`` (energy ∝ width; gives 0.025 pJ at 8
bits against the published 0.03), a multiply ``3.1 pJ · A·B/32²`` (∝ width², i.e. to the
partial-product array; gives 0.19 pJ at 8x8 against the published 0.2). A memory access costs
``E_64 · bits/64`` with E_64 of the smallest listed SRAM that holds the whole network (DRAM at
the low end, 1.3 nJ, beyond 1 MB); a write is taken to cost a read. Shifts, compares, gates and
XORs are not counted. These are order-of-magnitude estimates for comparing profiles, not a
chip's power figure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hw_models.operations import Network, elements, step_ops, update_ops
from hw_models.profile import Profile, list_profiles, load_profile

ADD_PJ_32 = 0.1
MULT_PJ_32 = 3.1
SRAM_PJ_64 = ((8 * 1024 * 8, 10.0), (32 * 1024 * 8, 20.0), (1024 * 1024 * 8, 100.0))
DRAM_PJ_64 = 1300.0
HASH_MULTS = 2  # lowbias32: two 32x32-bit multiplies per draw
ROMO_STEPS = 56

# storage class of every stored signal (transient results live in registers)
STORAGE = {"W_h": "synapse", "W_x": "synapse", "W_out": "synapse", "acc_W_h": "synapse",
           "acc_W_x": "synapse", "acc_W_out": "synapse", "h": "neuron", "r": "neuron",
           "eps": "neuron", "L": "neuron", "x": "input", "eps_x": "input", "y": "output",
           "target": "output", "e": "output"}
GROUPS = {"weights": ("W_h", "W_x", "W_out"), "accumulators": ("acc_W_h", "acc_W_x", "acc_W_out"),
          "state": ("h", "r", "L", "x", "y", "target", "e"), "traces": ("eps", "eps_x")}


def add_pj(width: int) -> float:
    return ADD_PJ_32 * width / 32


def mult_pj(a: int, b: int) -> float:
    return MULT_PJ_32 * a * b / 32**2


def sram_pj_per_bit(total_bits: int) -> float:
    """Energy per bit accessed in the smallest listed memory holding ``total_bits``."""
    for size, pj in SRAM_PJ_64:
        if total_bits <= size:
            return pj / 64
    return DRAM_PJ_64 / 64


@dataclass(frozen=True)
class CostEstimate:
    """Memory bits, operation counts (type → count) and energies (pJ) of one network."""

    profile: str
    n_hidden: int
    n_in: int
    n_out: int
    steps: int
    schedule: str
    memory_bits: dict[str, int]
    ops_per_step: dict[str, int]
    ops_per_update: dict[str, int]
    traffic_bits_per_step: int
    traffic_bits_per_update: int
    energy_pj: dict[str, float]

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def memory_bits(net: Network) -> dict[str, int]:
    """Stored bits by group (weights, accumulators, state, traces) and in total."""
    out = {g: sum(elements(net, list(net.dims(s))) * net.fmt(s).word for s in names)
           for g, names in GROUPS.items()}
    out["total"] = sum(out.values())
    return out


def _words(net: Network, ref: dict) -> int:
    return elements(net, list(net.dims(ref["signal"])))


def _count(net: Network, ops: list[dict]) -> tuple[Counter, int]:
    """Operation counts by type/width and memory traffic (bits) of a list of operations."""
    ops_c, traffic = Counter(), 0
    fw = lambda ref: net.fmt(ref["signal"]).word  # noqa: E731
    alpha_w = net.profile.formats.alpha.word
    for op in ops:
        n_out = elements(net, op["shape"])
        binary64 = op.get("arithmetic") == "binary64"  # rounded into the result word
        wide = net.fmt(op["result"]).word if binary64 else op.get("intermediate_bits")
        if op["kind"] == "requantize":
            for t in op["terms"]:
                if t["type"] == "matvec":
                    n = _words(net, t["matrix"])
                    ops_c[f"mult {fw(t['matrix'])}x{fw(t['vector'])}"] += n * net.batch
                    ops_c[f"add {wide}"] += n * net.batch
                    traffic += n * fw(t["matrix"])
                elif t["type"] == "outer":
                    ops_c[f"mult {fw(t['post'])}x{fw(t['pre'])}"] += n_out * net.batch
                    if net.batch > 1:
                        ops_c[f"add {wide}"] += n_out * (net.batch - 1)
                elif t["type"] == "elementwise":
                    if t["coefficient"] != 1:
                        ops_c[f"mult {alpha_w}x{fw(t['operand'])}"] += n_out
                        ops_c[f"add {wide}"] += n_out
                    if STORAGE.get(t["operand"]["signal"]) == "synapse":
                        traffic += n_out * fw(t["operand"])
                elif t["type"] == "weighted_difference":  # (y - y*) then times w_t
                    ops_c[f"add {fw(t['a'])}"] += n_out
                    ops_c[f"mult {fw(t['a'])}x{net.fmt(op['result']).word}"] += n_out
            ops_c[f"round {wide}"] += n_out
            if op["stochastic"]:
                ops_c["hash32"] += n_out + 2
        elif op["kind"] in ("accumulate", "subtract"):
            ops_c[f"add {net.fmt(op['result']).word}"] += n_out
            traffic += 2 * n_out * net.fmt(op["result"]).word  # read-modify-write
        elif op["kind"] == "carry":  # acc - (dW << s): acc was read for dW already, written here
            ops_c[f"add {net.fmt(op['result']).word}"] += n_out
            traffic += n_out * net.fmt(op["result"]).word
        elif op["kind"] == "clear":  # zeros written over the accumulator
            traffic += n_out * net.fmt(op["result"]).word
    return ops_c, traffic


def _sorted(counts: Counter) -> dict[str, int]:
    """Multiplies, adds, rounds, hashes; each by width."""
    order = {"mult": 0, "add": 1, "round": 2, "hash32": 3}

    def key(kind: str):
        head, _, width = kind.partition(" ")
        return order[head], [int(w) for w in width.split("x") if w]

    return {k: counts[k] for k in sorted(counts, key=key)}


def _energy(counts: Counter) -> float:
    pj = 0.0
    for kind, n in counts.items():
        if kind == "hash32":
            pj += n * HASH_MULTS * mult_pj(32, 32)
        elif kind.startswith("mult"):
            a, b = map(int, kind.split()[1].split("x"))
            pj += n * mult_pj(a, b)
        else:
            pj += n * add_pj(int(kind.split()[1]))
    return pj


def estimate(profile: Profile, n_hidden: int, *, n_in: int = 1, n_out: int = 2,
             steps: int = ROMO_STEPS, net: Network | None = None) -> CostEstimate:
    """Memory, operations and energy of one network (Romo sizes by default: 1 in, 2 out, 56
    steps). ``net`` (with its weight scale exponents) overrides the sizes; otherwise the
    exponents are 0, which changes only alignment shifts, not the counts."""
    net = net or Network(profile, n_hidden, n_in, n_out, 1, 0.5)
    mem = memory_bits(net)
    step_c, step_t = _count(net, step_ops(net))
    upd_c, upd_t = _count(net, update_ops(net))
    per_bit = sram_pj_per_bit(mem["total"])
    e_step = _energy(step_c) + per_bit * step_t
    e_upd = _energy(upd_c) + per_bit * upd_t
    updates = steps if profile.schedule == "per_step" else 1
    energy = {"compute_per_step": _energy(step_c), "memory_per_step": per_bit * step_t,
              "per_step": e_step, "per_update": e_upd,
              "per_trial": steps * e_step + updates * e_upd}
    return CostEstimate(profile.name, net.n_hidden, net.n_in, net.n_out, steps, profile.schedule,
                        mem, _sorted(step_c), _sorted(upd_c), step_t,
                        upd_t, {k: round(v, 3) for k, v in energy.items()})


def _ops_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def cost_report(profile: str | Profile, n_hidden: int = 64) -> str:
    """A markdown report of :func:`estimate` for one profile."""
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    c = estimate(prof, n_hidden)
    return format_estimate(c)


def format_estimate(c: CostEstimate) -> str:
    m, e = c.memory_bits, c.energy_pj
    lines = [
        f"### Cost estimate: {c.profile}, N = {c.n_hidden} (n_in {c.n_in}, n_out {c.n_out}, "
        f"T = {c.steps} steps, batch 1, {c.schedule} updates)", "",
        "| memory | bits |", "|---|---:|",
        *[f"| {k} | {v:,} |" for k, v in m.items()], "",
        f"- operations per time step: {_ops_line(c.ops_per_step)}",
        f"- operations per weight update: {_ops_line(c.ops_per_update)}",
        f"- memory traffic: {c.traffic_bits_per_step:,} bits per step, "
        f"{c.traffic_bits_per_update:,} bits per update",
        f"- energy: {e['per_step']:,.1f} pJ per step ({e['compute_per_step']:,.1f} arithmetic + "
        f"{e['memory_per_step']:,.1f} memory), {e['per_update']:,.1f} pJ per update, "
        f"{e['per_trial'] / 1000:,.2f} nJ per trial",
        "",
        "Energies from Horowitz, ISSCC 2014 (45 nm): int add 0.03 pJ (8 bit) / 0.1 pJ (32 bit), "
        "int mult 0.2 pJ (8 bit) / 3.1 pJ (32 bit), 64-bit SRAM read 10 pJ (8 KB) / 20 pJ (32 KB) "
        "/ 100 pJ (1 MB), DRAM 1.3-2.6 nJ; add ∝ width and mult ∝ product of widths from the "
        "32-bit values, a write costs a read.",
    ]
    return "\n".join(lines)


def dominant_memory(mem: dict[str, int]) -> str:
    """The largest memory group of :func:`memory_bits` (weights, accumulators, state, traces)."""
    return max(GROUPS, key=lambda g: mem[g])


def comparison(profiles: list[str | Profile], n_hidden: int = 64) -> list[dict]:
    """One row per profile (Romo sizes, batch 1): word widths, memory by group and in total
    (bits), the dominant memory group and its share of the total, multiplies per step and the
    energies (pJ per step and update, nJ per trial). The rows of ``neurosim cost --csv``."""
    rows = []
    for prof in profiles:
        p = prof if isinstance(prof, Profile) else load_profile(prof)
        c, f = estimate(p, n_hidden), p.formats
        mem = c.memory_bits
        top = dominant_memory(mem)
        rows.append({
            "profile": p.name, "n_hidden": n_hidden, "W_bits": f.W_h.word, "eps_bits": f.eps.word,
            "h_bits": f.h.word, "acc_bits": f.acc.word,
            **{f"{k}_bits": v for k, v in mem.items()},
            "dominant_memory": top, "dominant_share": round(mem[top] / mem["total"], 4),
            "mults_per_step": sum(n for k, n in c.ops_per_step.items() if k.startswith("mult")),
            "pj_per_step": c.energy_pj["per_step"], "pj_per_update": c.energy_pj["per_update"],
            "nj_per_trial": round(c.energy_pj["per_trial"] / 1000, 6),
        })
    return rows


def cost_table_markdown(n_hidden: int = 64, profiles: list[str | Profile] | None = None) -> str:
    """A Markdown comparison of :func:`comparison`'s rows, one per profile (default: every
    shipped profile), naming each profile's dominant memory."""
    rows = ["| profile | W / eps / h / acc bits | memory (kbit) | dominant memory | mults per step "
            "| pJ per step | pJ per update | nJ per trial |",
            "|---|---|---:|---|---:|---:|---:|---:|"]
    for r in comparison(list_profiles() if profiles is None else profiles, n_hidden):
        rows.append(
            f"| {r['profile']} | {r['W_bits']} / {r['eps_bits']} / {r['h_bits']} / {r['acc_bits']} "
            f"| {r['total_bits'] / 1000:,.1f} | {r['dominant_memory']} ({r['dominant_share']:.0%}) "
            f"| {r['mults_per_step']:,} | {r['pj_per_step']:,.0f} | {r['pj_per_update']:,.0f} "
            f"| {r['nj_per_trial']:,.1f} |")
    rows.append(f"\nN = {n_hidden} hidden units, Romo (1 input, 2 outputs, {ROMO_STEPS} steps), "
                "batch 1; memory in kbit (1000 bits); the dominant memory is the largest group "
                "(weights, accumulators, state, traces) and its share of the total; energies from "
                "Horowitz (ISSCC 2014, 45 nm), see hw_models/cost.py.")
    return "\n".join(rows)
