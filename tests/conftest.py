"""Test-session settings: one torch thread (small tensors; see neurosim.train.torch_threads)."""

import warnings

import torch

torch.set_num_threads(1)
warnings.filterwarnings("ignore", module="gymnasium")
