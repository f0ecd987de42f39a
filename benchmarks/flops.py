"""Analytic floating-point operation count of one e-prop iteration (multiply-add = 2 FLOPs).

Per network, T steps, B trials, N hidden, n_in inputs, n_out outputs:

    forward      T · (2BN² + 2BN·n_in + 4BN)         recurrent and input matmuls, leak, relu
    readout      T · 2BN·n_out                        y = W_out r
    error        T · 3B·n_out                         e = (y - y*) m / Σm
    learning sig T · (2B·n_out·N + BN)                L = f'(h) ⊙ (B e)
    traces       2T²·B·(N + n_in)                     ε = K r as a (T, T) matmul
    gradients    2TB·(N² + N·n_in + n_out·N)          Σ_t L ⊗ ε and e ⊗ r as matmuls
"""

from __future__ import annotations


def eprop_flops(*, T: int, E: int, B: int, N: int, n_in: int, n_out: int) -> int:
    """FLOPs of one e-prop iteration of an ensemble of E networks (see module docstring)."""
    per_step = 2 * B * N * N + 2 * B * N * n_in + 4 * B * N + 2 * B * N * n_out + 3 * B * n_out
    per_step += 2 * B * n_out * N + B * N
    traces = 2 * T * T * B * (N + n_in)
    grads = 2 * T * B * (N * N + N * n_in + n_out * N)
    return E * (T * per_step + traces + grads)
