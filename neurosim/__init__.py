"""neurosim: float reference of the leaky ReLU RNN, e-prop/BPTT, flossing, training and results.

The public API is the list below; every other module is free to move.
"""

from neurosim.api import run_training
from neurosim.config import ConfigError, TrainConfig
from neurosim.errors import InputError
from neurosim.grid import load_sweep
from neurosim.model import Params, init_params, masked_mse, readout, run, step
from neurosim.plots import plot_learning_curves
from neurosim.results import load_run, write_run
from neurosim.rules import gradients
from neurosim.sweep import run_sweep
from neurosim.tasks import TASKS, BatchStream, get_task
from neurosim.train import RunResult, train

__all__ = [
    "BatchStream", "ConfigError", "InputError", "Params", "RunResult", "TASKS", "TrainConfig",
    "get_task", "gradients", "init_params", "load_run", "masked_mse", "plot_learning_curves",
    "load_sweep", "readout", "run", "run_sweep", "run_training", "step", "train", "write_run",
]
