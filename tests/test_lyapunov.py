"""Lyapunov spectrum: analytic cases, an independent numpy QR loop, two-trajectory divergence."""

import math

import numpy as np
import pytest
import torch

from neurosim.lyapunov import initial_tangent, lyapunov_spectrum, max_lyapunov, qr_positive
from neurosim.model import Params, init_params, step

F64 = torch.float64


def _inputs(T, E, B, n_in, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(T, E, B, n_in, generator=g, dtype=F64)


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.8])
def test_every_exponent_is_log_alpha_without_recurrence(alpha, k):
    """W_h = 0 gives J_t = αI at every step, whatever the inputs do."""
    params = init_params(2, 10, 2, 1.0, ensemble=2, seed=0, dtype=F64)
    params = params._replace(W_h=torch.zeros_like(params.W_h))
    lam = lyapunov_spectrum(params, _inputs(30, 2, 3, 2, 1), alpha=alpha, k=k)
    torch.testing.assert_close(lam, torch.full_like(lam, math.log(alpha)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("symmetric", [True, False])
def test_linear_regime_matches_log_moduli_of_eigenvalues_of_the_constant_jacobian(symmetric):
    """Strong positive drive keeps every unit active, so J_t = αI + (1-α)W_h at every step and
    the exponents are log |eig(J)| (complex pairs give two equal exponents)."""
    E, N, T, warmup, alpha = 3, 6, 1000, 5, 0.5
    g = torch.Generator().manual_seed(3)
    W_h = 0.15 * torch.randn(E, N, N, generator=g, dtype=F64)
    if symmetric:
        W_h = 0.5 * (W_h + W_h.transpose(1, 2))
    params = Params(W_h, torch.ones(E, N, 1, dtype=F64), torch.ones(E, 2, N, dtype=F64))
    x = torch.full((T, E, 1, 1), 50.0, dtype=F64)
    lam = lyapunov_spectrum(params, x, alpha=alpha, k=N, warmup=warmup)
    h = torch.zeros(E, 1, N, dtype=F64)
    for t in range(T):
        h = step(params, h, x[t], alpha)
        assert (h > 0).all(), t  # the premise: h_1 .. h_T all active (h_0 = 0 is in the warm-up)
    J = alpha * torch.eye(N, dtype=F64) + (1 - alpha) * W_h
    expected = torch.linalg.eigvals(J).abs().log().sort(dim=1, descending=True).values
    assert not symmetric or torch.linalg.eigvals(J).imag.abs().max() < 1e-12
    assert symmetric or torch.linalg.eigvals(J).imag.abs().max() > 1e-2  # complex pairs present
    # finite-time QR estimates err by c/T' (the start's projection onto the eigenvectors):
    # measured max error · T' = 2.5 (symmetric), 1.6 (general) at T = 250, 1000, 4000
    got = lam.sort(dim=1, descending=True).values
    torch.testing.assert_close(got, expected, rtol=0, atol=5 / (T - warmup))


def _numpy_spectrum(params, x, alpha, k, warmup):
    """Straightforward reference: one trial at a time, explicit Jacobian matrices, numpy QR."""
    W_h, W_x, xs = params.W_h.numpy(), params.W_x.numpy(), x.numpy()
    T, E, B, _ = x.shape
    N = W_h.shape[1]
    out = np.zeros((E, k))
    for e in range(E):
        for b in range(B):
            h, acc = np.zeros(N), np.zeros(k)
            Q = initial_tangent(N, k).numpy()
            for t in range(T):
                J = alpha * np.eye(N) + (1 - alpha) * W_h[e] @ np.diag((h > 0).astype(float))
                Q, R = np.linalg.qr(J @ Q)
                if t >= warmup:
                    acc += np.log(np.abs(np.diag(R)))
                h = alpha * h + (1 - alpha) * (W_h[e] @ np.maximum(h, 0) + W_x[e] @ xs[t, e, b])
            out[e] += acc / (T - warmup) / B
    return out


@pytest.mark.parametrize("k", [1, 3, 12])
def test_spectrum_matches_independent_numpy_qr_loop(k):
    params = init_params(3, 12, 2, [0.5, 1.2, 1.8], ensemble=3, seed=5, dtype=F64)
    x = _inputs(40, 3, 2, 3, 9)
    lam = lyapunov_spectrum(params, x, alpha=0.5, k=k, warmup=4)
    ref = _numpy_spectrum(params, x, 0.5, k, 4)
    np.testing.assert_allclose(lam.numpy(), ref, rtol=0, atol=1e-6)


def test_each_network_of_an_ensemble_gets_its_own_spectrum():
    params = init_params(2, 10, 2, [0.3, 1.0, 2.0], ensemble=3, seed=7, dtype=F64)
    x = _inputs(25, 3, 2, 2, 3)
    together = lyapunov_spectrum(params, x, alpha=0.5, k=3, warmup=2)
    for e in range(3):
        alone = lyapunov_spectrum(params.map(lambda w, e=e: w[e:e + 1]), x[:, e:e + 1],
                                  alpha=0.5, k=3, warmup=2)
        torch.testing.assert_close(together[e:e + 1], alone, rtol=0, atol=1e-12)


def test_sign_corrected_qr_has_a_nonnegative_diagonal_and_reconstructs_the_matrix():
    A = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    Q, r = qr_positive(A)
    assert (r >= 0).all()
    torch.testing.assert_close(Q.transpose(-2, -1) @ Q, torch.eye(3, dtype=F64).expand(4, 3, 3))
    R = Q.transpose(-2, -1) @ A  # upper triangular with diagonal r
    torch.testing.assert_close(R.diagonal(dim1=-2, dim2=-1), r)
    torch.testing.assert_close(R.tril(-1), torch.zeros_like(R), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("gain", "seed"), [(1.0, 0), (1.5, 0), (1.5, 2)])
def test_max_exponent_matches_divergence_of_two_nearby_trajectories(gain, seed):
    """Engelken's check: run a copy perturbed by d0, renormalise the separation to d0 every
    step, and average log(d_t / d0) over the same steps as the QR estimate."""
    N, T, warmup, d0 = 40, 600, 100, 1e-9
    params = init_params(2, N, 2, gain, ensemble=1, seed=seed, dtype=F64)
    x = _inputs(T, 1, 1, 2, 4, scale=0.5)
    lam = float(max_lyapunov(params, x, alpha=0.5, warmup=warmup)[0])
    h = torch.zeros(1, 1, N, dtype=F64)
    hp = h + d0 * initial_tangent(N, 1).view(1, 1, N)
    logs = []
    for t in range(T):
        h, hp = step(params, h, x[t], 0.5), step(params, hp, x[t], 0.5)
        d = float((hp - h).norm())
        if t >= warmup:
            logs.append(math.log(d / d0))
        hp = h + (hp - h) * (d0 / d)
    # the premise: d0 stays resolvable (|h| << d0 / float64 eps) and the network is not
    # silent (log α = -0.69); the three cases measure λ_1 = -0.34, -0.17 and +0.003
    assert h.abs().max() < 1e3 and -0.6 < lam < 0.1, (float(h.abs().max()), lam)
    # the two estimates differ by the tangent's alignment transient and by rare kink
    # crossings of the finite perturbation: measured < 4e-5, stated bound 1e-3
    assert abs(lam - sum(logs) / len(logs)) < 1e-3


def test_bad_k_or_warmup_is_refused():
    params = init_params(1, 5, 1, 1.0, dtype=F64)
    x = _inputs(10, 1, 1, 1, 0)
    for kw in ({"k": 0}, {"k": 6}, {"warmup": 10}, {"warmup": -1}):
        with pytest.raises(ValueError):
            lyapunov_spectrum(params, x, alpha=0.5, **kw)


@pytest.mark.parametrize("c", [0.6, 1.0, 1.3])
def test_warmup_excludes_exactly_the_zero_state_steps_of_an_analytic_trajectory(c):
    """Zero input for w steps keeps h_0 .. h_w = 0 (J_t = αI for t <= w); then a positive
    drive makes every unit active and W_h = cI gives J_t = (α + (1-α)c) I. So λ with warm-up
    w + 1 is exactly log(α + (1-α)c), and without it the mix of w + 1 steps of log α."""
    alpha, N, T, w = 0.5, 5, 40, 6
    params = Params(c * torch.eye(N, dtype=F64).expand(2, N, N).clone(), torch.ones(2, N, 1, dtype=F64),
                    torch.ones(2, 2, N, dtype=F64))
    x = torch.zeros(T, 2, 3, 1, dtype=F64)
    x[w:] = 1.0
    lam_active = math.log(alpha + (1 - alpha) * c)
    warm = max_lyapunov(params, x, alpha=alpha, warmup=w + 1)
    raw = max_lyapunov(params, x, alpha=alpha)
    torch.testing.assert_close(warm, torch.full_like(warm, lam_active), rtol=0, atol=1e-12)
    expected_raw = ((w + 1) * math.log(alpha) + (T - w - 1) * lam_active) / T
    torch.testing.assert_close(raw, torch.full_like(raw, expected_raw), rtol=0, atol=1e-12)


def test_romo_transient_is_the_steps_whose_jacobian_is_alpha_identity():
    """Romo's transient_steps (7 at dt = 0.5) is where h_t = 0 exactly on every trial."""
    from neurosim.tasks import BatchStream, get_task

    task = get_task("romo", dt=0.5)
    x = BatchStream(task, 16, [0]).next()[0].double()
    params = init_params(1, 20, 2, 1.0, ensemble=1, seed=0, dtype=F64)
    h, zero = torch.zeros(1, 16, 20, dtype=F64), []
    for t in range(x.shape[0]):
        zero.append(bool((h == 0).all()))
        h = step(params, h, x[t], 0.5)
    assert zero.index(False) == task.transient_steps == 7


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.5])
def test_alpha_outside_0_1_is_refused_not_nan(alpha):
    """α = 0 (dt = τ): J_0 = 0 at h_0 = 0 and log 0 = -inf; refused with a reason."""
    from neurosim.errors import InputError
    from neurosim.rules.flossing import flossing_gradients

    params = init_params(1, 5, 1, 1.0, dtype=F64)
    x = _inputs(10, 1, 1, 1, 0)
    with pytest.raises(InputError, match="alpha"):
        max_lyapunov(params, x, alpha=alpha)
    with pytest.raises(InputError, match="alpha"):
        flossing_gradients(params, x, alpha=alpha)


def test_dt_equal_tau_is_a_config_error_naming_alpha():
    from neurosim.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="alpha = 0"):
        TrainConfig(dt=1.0, tau=1.0)
    TrainConfig(dt=0.99, tau=1.0)  # just below is fine


def test_an_overflowing_float32_trajectory_gives_nan_not_a_drift_toward_log_alpha():
    """Network 0 grows 5.5x per step (W_h = 10 I, all active) and overflows float32 near step
    53; network 1 is tame. Rule: NaN for network 0 (and a zero flossing gradient), the right
    value for network 1. Without the rule network 0 would report ~log α-weighted garbage."""
    from neurosim.lyapunov import finite_trajectory
    from neurosim.rules.flossing import flossing_gradients

    N, T = 4, 80
    W_h = torch.stack([10 * torch.eye(N), 0.5 * torch.eye(N)])
    params = Params(W_h, torch.ones(2, N, 1), torch.ones(2, 2, N))
    x = torch.ones(T, 2, 2, 1)
    lam = max_lyapunov(params, x, alpha=0.5)
    assert torch.isnan(lam[0]) and not torch.isnan(lam[1])
    assert abs(float(lam[1]) - ((T - 1) * math.log(0.75) + math.log(0.5)) / T) < 1e-5
    assert finite_trajectory(params, x, alpha=0.5).tolist() == [False, True]
    assert finite_trajectory(params, x[:20], alpha=0.5).tolist() == [True, True]  # before the overflow
    loss, grads = flossing_gradients(params, x, alpha=0.5)
    assert torch.isnan(loss[0]) and (grads.W_h[0] == 0).all() and (grads.W_h[1] != 0).any()
