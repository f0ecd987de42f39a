"""Performance harness for neurosim: ``python -m benchmarks [--quick] [--out FILE] [--fig1]``.

Every benchmark is measured in one run on one machine and reported as a ratio, so the numbers
compare like with like even on a busy machine (each time is the median of ``--reps``
repetitions, the two sides of a ratio measured back to back):

1. ``ensemble_speedup`` — E networks as one ensemble vs the same E one after another
   (e-prop + Adam, Romo), per network-iteration; goal >= 20.
2. ``fixed_point_cost`` — one step of the integer engine vs the float e-prop step (SGD, the
   engine's optimiser) at the same E, N, B; goal <= 2.
3. ``fraction_of_peak`` — achieved GFLOP/s of ensemble e-prop (FLOPs counted analytically,
   :mod:`benchmarks.flops`) vs a large float32 matmul on the same threads; goal >= 0.3.
4. ``vs_plain_pytorch`` — a per-network nn.Linear + autograd e-prop loop
   (:mod:`benchmarks.baseline`) vs neurosim's ensemble e-prop, per network-iteration; goal >= 30.
5. ``fig1`` (``--fig1`` only) — wall time and peak RSS of ``neurosim reproduce fig1``.
"""
