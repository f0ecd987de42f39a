"""Test-session settings: one torch thread (small tensors; see neurosim.training.torch_threads)."""

import warnings

import pytest
import torch

torch.set_num_threads(1)
warnings.filterwarnings("ignore", module="gymnasium")


@pytest.fixture(scope="session")
def default_export(tmp_path_factory):
    """``export-spec`` of int8-stochastic with its defaults (N = 8, 2 Romo trials, seed 0): the
    folder the C-model, verify-spec and mutation tests share (read-only: copy it to change it)."""
    from neurosim.spec_export import export_spec

    return export_spec("int8-stochastic", tmp_path_factory.mktemp("default") / "spec")
