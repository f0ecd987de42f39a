"""Weight-update spec export: spec.json, DATASHEET.md, golden vectors and a bit-exact C model.

Public API: :func:`build_export` (the files of an export folder, in memory, from task trials;
``neurosim.spec_export.export_spec`` samples the task and writes the folder),
:func:`run_golden` (the recorded engine run), :data:`SCHEMA_VERSION`.
"""

from hw_models.spec.document import SCHEMA_VERSION
from hw_models.spec.export import SpecError, build_export, check_export
from hw_models.spec.golden import run_golden

__all__ = ["SCHEMA_VERSION", "SpecError", "build_export", "check_export", "run_golden"]
