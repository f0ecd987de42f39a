"""Analytic FLOP count of one e-prop training iteration as neurosim computes it.

A multiply-add counts 2, any other arithmetic operation 1 per output element. Shapes: E
networks, T steps, B trials, N hidden, n_in inputs, n_out outputs; ``M = E·T·B`` rows.
Both traces are counted as the recursion neurosim runs (3 per element: α ε + (1-α) u).
"""

from __future__ import annotations


def eprop_flops(E: int, T: int, B: int, N: int, n_in: int, n_out: int) -> dict[str, int]:
    """FLOPs per term of one iteration (gradients + Adam) of E networks; ``total`` is the sum."""
    M = E * T * B
    terms = {
        "forward_bmm": 2 * M * N * N + 2 * M * N * n_in,  # W_h r_t and the input drive W_x x_t
        "forward_elementwise": 4 * M * N,  # (1-α) scale of u, + α h, + bmm, relu
        "readout": 2 * M * N * n_out,  # y = W_out r
        "error": 3 * M * n_out + 4 * M * n_out,  # e = (y - y*) m / Σm, and the loss ½ Σ m (y - y*)²
        "learning_signal": 2 * M * n_out * N + M * N,  # B e, times f'(h)
        "trace_filter": 3 * M * (N + n_in),  # the ε and ε^x recursions
        "contractions": 2 * M * N * (N + n_in) + 2 * M * n_out * N,  # ∇W_h, ∇W_x, ∇W_out
        "adam": 12 * E * (N * N + N * n_in + n_out * N),
    }
    terms["total"] = sum(terms.values())
    return terms


def sgemm_flops(n: int) -> int:
    """FLOPs of one (n, n) @ (n, n) float32 matmul."""
    return 2 * n**3
