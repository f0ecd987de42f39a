"""``verify_spec``: build an export's C model with the system compiler, run it on the golden
inputs and compare every output file with the golden file of the same name.

The outputs to compare are the golden files whose manifest kind (``spec.json`` ``golden.files``)
is neither ``input`` nor ``initial``; a file the model does not write, a file it writes that the
manifest does not list, and a file whose words differ are each a mismatch. A folder that is not
an export (no ``spec.json``, no ``golden/`` or ``c/``, an unreadable document, a golden input
the driver cannot read) is bad input: :class:`VerifyError`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hw_models.errors import InputError
from hw_models.spec.c_model import SOURCES

BUILD = ("-O2", "-std=c99")
RUN_TIMEOUT_S = 600


def find_compiler() -> str | None:
    """The system C compiler: ``$CC`` if set, else the first of cc, gcc, clang on PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


class VerifyError(InputError):
    """The folder is not a verifiable export-spec folder; the message says what is missing."""


@dataclass(frozen=True)
class Verdict:
    """One signal's comparison: ``ok`` when the model's file equals the golden file word for word."""

    signal: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.signal:<24} {'ok' if self.ok else 'MISMATCH'}: {self.detail}"


def _outputs(folder: Path) -> list[str]:
    try:
        spec = json.loads((folder / "spec.json").read_text())
        files = spec["golden"]["files"]
        return [Path(f["file"]).stem for f in files if f["kind"] not in ("input", "initial")]
    except FileNotFoundError:
        raise VerifyError(f"{folder} has no spec.json: not an export-spec folder") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise VerifyError(f"{folder}/spec.json is not a spec document ({err})") from None


def _compare(name: str, model: Path, golden: Path) -> Verdict:
    if not golden.is_file():
        return Verdict(name, False, f"no golden file {golden}")
    if not model.is_file():
        return Verdict(name, False, "the model wrote no such file")
    a, b = model.read_text().split(), golden.read_text().split()
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return Verdict(name, False, f"word {i} of {len(b)}: model {x}, golden {y}")
    if len(a) != len(b):
        return Verdict(name, False, f"model wrote {len(a)} words, golden has {len(b)}")
    return Verdict(name, True, f"{len(b)} words bit-exact")


def verify_spec(folder: str | Path, *, cc: str | None = None) -> list[Verdict]:
    """Build ``folder/c`` with ``cc`` (default :func:`find_compiler`), run it on ``folder/golden``
    and compare: one :class:`Verdict` per golden output (plus one per unexpected file, or one for
    a failed build or run). Raises :class:`VerifyError` on a folder that is not an export."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VerifyError(f"{folder} is not a directory")
    outputs = _outputs(folder)
    missing = [f"c/{s}" for s in (*SOURCES, "eprop_ref.h") if not (folder / "c" / s).is_file()]
    if not (folder / "golden").is_dir():
        missing.append("golden/")
    if missing:
        raise VerifyError(f"{folder} lacks {', '.join(missing)}: not a complete export-spec folder")
    cc = cc or find_compiler()
    if cc is None or shutil.which(cc) is None:
        raise VerifyError(f"no C compiler ({cc or 'cc, gcc or clang'}) on this machine")
    with tempfile.TemporaryDirectory(prefix="verify-spec-") as tmp:
        exe, out = Path(tmp) / "eprop_ref", Path(tmp) / "out"
        build = subprocess.run([cc, *BUILD, *(str(folder / "c" / s) for s in SOURCES), "-lm", "-o", str(exe)],
                               capture_output=True, text=True)
        if build.returncode != 0:
            first = (build.stderr.strip().splitlines() or ["(no message)"])[0]
            return [Verdict("c model", False, f"{cc} failed: {first}")]
        try:
            run = subprocess.run([str(exe), str(folder / "golden"), str(out)], capture_output=True,
                                 text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return [Verdict("c model", False, f"the driver ran past {RUN_TIMEOUT_S} s")]
        if run.returncode == 2:  # the driver could not read an input: an incomplete folder
            raise VerifyError(f"{folder}: the C driver stopped: {run.stderr.strip()}")
        if run.returncode not in (0, 1):
            return [Verdict("c model", False, f"the driver exited with status {run.returncode}: "
                                              f"{run.stderr.strip()[:200]}")]
        verdicts = [_compare(name, out / f"{name}.hex", folder / "golden" / f"{name}.hex")
                    for name in outputs]
        extra = sorted(p.stem for p in out.glob("*.hex") if p.stem not in set(outputs))
        verdicts += [Verdict(name, False, "written by the model, not listed in spec.json") for name in extra]
    return verdicts
