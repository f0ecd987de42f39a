"""neurosim: float reference of the leaky ReLU RNN, e-prop/BPTT, flossing, training and results.

The public API is the list below; every other module is free to move. Names load on first use
(PEP 562), so ``import neurosim`` — or ``hw_models`` importing the model contract
``neurosim.model`` — runs none of the run machinery and changes no global state.
"""

from hw_models._lazy import lazy_face

_PUBLIC = {
    "run_training": "api", "ConfigError": "config", "TrainConfig": "config", "InputError": "errors",
    "load_sweep": "grid", "Params": "model", "init_params": "model", "masked_mse": "model",
    "readout": "model", "run": "model", "step": "model", "plot_learning_curves": "plots",
    "load_run": "results", "write_run": "results", "gradients": "rules", "run_sweep": "sweep",
    "TASKS": "tasks", "BatchStream": "tasks", "get_task": "tasks", "RunResult": "training",
    "train": "training",
}
__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_face("neurosim", _PUBLIC, globals())
