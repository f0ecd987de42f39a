"""``neurosim verify-spec DIR``: builds the exported C model with cc, runs it on the golden inputs
and compares every output; exit 0 only when bit-exact, 1 on a mismatch (a corrupted golden file,
a wrong C model), 2 on a folder that is not an export. The C driver compares by itself too."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import run_cli

from hw_models.spec.verify import find_compiler

CC = find_compiler()
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler on this machine")


def _outputs(folder: Path) -> list[str]:
    spec = json.loads((folder / "spec.json").read_text())
    return [Path(f["file"]).stem for f in spec["golden"]["files"] if f["kind"] not in ("input", "initial")]


def _copy(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / "copy"))


def test_a_fresh_export_verifies_bit_exact_with_one_line_per_signal(default_export, capsys):
    code, out, err = run_cli(["verify-spec", str(default_export)], capsys)
    lines = out.splitlines()
    assert code == 0, out + err
    outputs = _outputs(default_export)
    assert any(n.startswith("floss_") for n in outputs)  # the flossing phase is verified too
    assert [line.split()[0] for line in lines[:-1]] == outputs
    assert all(" ok: " in line for line in lines[:-1]) and lines[-1] == "verdict: bit-exact"


def test_a_corrupted_golden_word_fails_that_signal_only(default_export, tmp_path, capsys):
    folder = _copy(default_export, tmp_path)
    hexfile = folder / "golden" / "floss_gamma.hex"
    words = hexfile.read_text().split()
    words[3] = f"{(int(words[3], 16) ^ 1):0{len(words[3])}x}"  # one bit of one word
    hexfile.write_text("".join(w + "\n" for w in words))
    code, out, _ = run_cli(["verify-spec", str(folder)], capsys)
    bad = [line for line in out.splitlines() if "MISMATCH:" in line]
    assert code == 1
    assert bad == [next(line for line in bad if line.startswith("floss_gamma "))]
    assert "word 3 of" in bad[0] and out.splitlines()[-1].startswith("verdict: MISMATCH in 1 of")


def test_a_wrong_c_model_fails(default_export, tmp_path, capsys):
    """A C variant that floors γ = sqrt(Σv²) instead of rounding it: γ and the flossing signals
    computed from it differ."""
    folder = _copy(default_export, tmp_path)
    src = folder / "c" / "eprop_ref.c"
    text = src.read_text()
    assert text.count("(isqrt_u64(sq) + 1) >> 1") == 1
    src.write_text(text.replace("(isqrt_u64(sq) + 1) >> 1", "isqrt_u64(sq) >> 1"))
    code, out, _ = run_cli(["verify-spec", str(folder)], capsys)
    bad = {line.split()[0] for line in out.splitlines() if "MISMATCH:" in line}
    assert code == 1 and {"floss_gamma", "floss_q", "floss_pre", "floss_ell"} <= bad


def test_a_missing_output_and_an_unlisted_file_are_mismatches(default_export, tmp_path, capsys):
    folder = _copy(default_export, tmp_path)
    spec = json.loads((folder / "spec.json").read_text())
    spec["golden"]["files"] = [f for f in spec["golden"]["files"] if f["name"] != "floss_ell"]
    extra = {**spec["golden"]["files"][-1], "name": "extra", "file": "golden/extra.hex"}
    spec["golden"]["files"].append(extra)
    (folder / "spec.json").write_text(json.dumps(spec))
    code, out, _ = run_cli(["verify-spec", str(folder)], capsys)
    verdict = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[:-1]}
    assert code == 1
    assert verdict["extra"].startswith("MISMATCH: no golden file")
    assert verdict["floss_ell"] == "MISMATCH: written by the model, not listed in spec.json"


@pytest.mark.parametrize("damage", ["missing", "empty", "no_input", "bad_json", "no_source"])
def test_a_folder_that_is_not_an_export_is_one_error_line_and_exit_2(default_export, tmp_path, capsys,
                                                                       damage):
    folder = tmp_path / "missing" if damage in ("missing", "empty") else _copy(default_export, tmp_path)
    if damage == "empty":
        folder.mkdir()
    elif damage == "no_input":
        (folder / "golden" / "x_raw.hex").unlink()
    elif damage == "bad_json":
        (folder / "spec.json").write_text("{not json")
    elif damage == "no_source":
        (folder / "c" / "eprop_driver.c").unlink()
    code, out, err = run_cli(["verify-spec", str(folder)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


def test_the_driver_creates_its_output_folder_and_compares_by_itself(default_export, tmp_path):
    exe = tmp_path / "eprop_ref"
    c = default_export / "c"
    subprocess.run([CC, "-O2", "-std=c99", str(c / "eprop_ref.c"), str(c / "eprop_driver.c"), "-lm",
                    "-o", str(exe)], check=True)
    out = tmp_path / "new" / "out"
    out.parent.mkdir()
    run = subprocess.run([str(exe), str(default_export / "golden"), str(out)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1].startswith("verdict: bit-exact")
    assert {p.stem for p in out.glob("*.hex")} == set(_outputs(default_export))
    golden = _copy(default_export, tmp_path) / "golden"
    (golden / "dW_h.hex").write_text((golden / "dW_h.hex").read_text().replace("0", "1", 1))
    run = subprocess.run([str(exe), str(golden), str(tmp_path / "out2")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1 and "dW_h" in run.stdout and "MISMATCH at word" in run.stdout
