"""Weight-update spec export: spec.json, DATASHEET.md, golden vectors and a bit-exact C model.

Public API: :func:`export_spec` (the folder), :func:`build_export` (its files in memory),
:func:`run_golden` (the recorded engine run), :data:`SCHEMA_VERSION`.
"""

from hw_models.spec.document import SCHEMA_VERSION
from hw_models.spec.export import SpecError, build_export, export_spec
from hw_models.spec.golden import run_golden

__all__ = ["SCHEMA_VERSION", "SpecError", "build_export", "export_spec", "run_golden"]
