"""e-prop: explicit traces vs detached autograd, and vs BPTT where nothing is truncated."""

import pytest
import torch

from neurosim.model import init_params
from neurosim.rules import eprop_gradients, eprop_gradients_autograd, gradients
from neurosim.rules.eprop import _trace


def _batch(T, E, B, n_in, n_out, seed, mask_p=0.7):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, E, B, n_in, generator=g, dtype=torch.float64)
    target = torch.randn(T, E, B, n_out, generator=g, dtype=torch.float64)
    mask = (torch.rand(T, E, B, generator=g, dtype=torch.float64) < mask_p).double()
    return x, target, mask


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("gain", [0.2, 1.0, 2.5])
@pytest.mark.parametrize("mask_p", [0.3, 1.0])
def test_explicit_traces_equal_detached_autograd(alpha, gain, mask_p):
    params = init_params(3, 12, 2, gain, ensemble=3, seed=7, dtype=torch.float64)
    x, target, mask = _batch(15, 3, 4, 3, 2, seed=11, mask_p=mask_p)
    loss_a, g_a = eprop_gradients(params, x, target, mask, alpha=alpha)
    loss_b, g_b = eprop_gradients_autograd(params, x, target, mask, alpha=alpha)
    # float64 round-off of two summation orders over ~15·4 terms is ~1e-15 relative; gain 2.5
    # with α = 0 grows the states to ~1e7, so the bound is 1e-10 absolute plus 1e-12 relative
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_a, g_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-10)


def test_eprop_equals_bptt_without_recurrence():
    params = init_params(2, 10, 2, 1.0, ensemble=2, seed=3, dtype=torch.float64)
    params = params._replace(W_h=torch.zeros_like(params.W_h))
    x, target, mask = _batch(20, 2, 5, 2, 2, seed=5)
    _, g_e = gradients(params, x, target, mask, rule="eprop", alpha=0.5)
    _, g_b = gradients(params, x, target, mask, rule="bptt", alpha=0.5)
    for a, b in zip(g_e, g_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_eprop_differs_from_bptt_with_recurrence():
    """The truncation is real: with W_h ≠ 0 the recurrent gradient is not BPTT's."""
    params = init_params(2, 10, 2, 1.5, ensemble=1, seed=3, dtype=torch.float64)
    x, target, mask = _batch(20, 1, 5, 2, 2, seed=5)
    _, g_e = gradients(params, x, target, mask, rule="eprop", alpha=0.5)
    _, g_b = gradients(params, x, target, mask, rule="bptt", alpha=0.5)
    assert (g_e.W_h - g_b.W_h).abs().max() > 1e-6
    torch.testing.assert_close(g_e.W_out, g_b.W_out, rtol=0, atol=1e-12)


def test_random_feedback_replaces_readout_transpose():
    params = init_params(2, 8, 2, 1.0, ensemble=1, seed=1, dtype=torch.float64)
    x, target, mask = _batch(10, 1, 3, 2, 2, seed=2)
    B_sym = params.W_out.transpose(1, 2).clone()
    _, g_sym = eprop_gradients(params, x, target, mask, alpha=0.5, feedback=B_sym)
    _, g_def = eprop_gradients(params, x, target, mask, alpha=0.5)
    torch.testing.assert_close(g_sym.W_h, g_def.W_h, rtol=0, atol=0)
    _, g_rand = eprop_gradients(params, x, target, mask, alpha=0.5, feedback=torch.randn_like(B_sym))
    assert not torch.allclose(g_rand.W_h, g_def.W_h)
    torch.testing.assert_close(g_rand.W_out, g_def.W_out, rtol=0, atol=0)


@pytest.mark.parametrize("stored_states", [True, False])
def test_trace_matches_the_recursion(stored_states):
    u = torch.randn(2, 9, 3, 4, dtype=torch.float64)  # (E, T, B, N)
    inputs = torch.cat([torch.zeros_like(u[:, :1]), u[:, :-1]], 1) if stored_states else u
    eps, out = torch.zeros_like(u[:, 0]), []
    for t in range(9):
        eps = 0.7 * eps + 0.3 * inputs[:, t]
        out.append(eps)
    got = _trace(u, 0.7, torch.empty_like(u), stored_states=stored_states)
    torch.testing.assert_close(got, torch.stack(out, 1), rtol=0, atol=1e-14)
