"""Output folders: checked before any work, locked while written, replaced atomically.

Every command that writes a folder (a run, a sweep, a spec export) goes through
:func:`claim_output`, which

1. refuses, before anything is written: the working directory, any of its parents, the home
   directory or its parents, and ``/`` (never an output folder, with or without ``--force``);
   a file or a symbolic link in the way (the user removes it); a non-empty folder unless
   ``force`` (and with ``force`` only a folder neurosim wrote: one holding ``config.json``,
   ``manifest.json`` or ``spec.json``); a name too long for the file system; a location that
   cannot be written — proved by creating and removing a probe folder there, since as root
   ``os.access`` says yes even on ``/proc``;
2. takes an exclusive lock, ``.NAME.lock`` beside the folder, before deleting or writing
   anything, and holds it for the whole command: a second command on the same folder is
   refused at once instead of after its work;
3. removes what killed writes to that folder left beside it (``.NAME.tmp-*``, ``.NAME.old-*``).

:func:`atomic_dir` then writes the folder under a temporary name and renames it into place, so
a reader sees it whole or not at all. Files and folders get the permissions the umask allows
(``tempfile`` alone would make them private).
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from neurosim.errors import InputError

OUTPUT_MARKERS = ("config.json", "manifest.json", "spec.json")  # a folder neurosim wrote
SIBLING_SUFFIX = 20  # the longest suffix of a hidden sibling: ".checkpoint.pt", ".tmp-XXXXXXXX"


class OutputError(InputError):
    """The output location cannot be used (protected, in the way, not writable, locked, ...)."""


class OutputLockError(OutputError):
    """Another neurosim command is writing to the same output folder."""


def _protected(resolved: Path) -> str | None:
    """Why ``resolved`` may never be an output folder, or None."""
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if resolved == cwd:
        return "the working directory"
    if resolved in cwd.parents:
        return "a parent of the working directory"
    if resolved == home or resolved in home.parents:
        return "the home directory" if resolved == home else "a parent of the home directory"
    return None


def _written_by_neurosim(folder: Path) -> bool:
    return any((folder / m).exists() for m in OUTPUT_MARKERS)


def check_output(out: str | Path, *, force: bool = False, existing_ok: bool = False) -> Path:
    """Refuse an unusable output folder (see the module docstring); return ``out`` as a Path.

    ``existing_ok``: a non-empty folder is fine (a run or sweep being resumed into)."""
    out = Path(out)
    if str(out).strip() == "":
        raise OutputError("the output folder is an empty path")
    _check_names(out)
    resolved = out.resolve()
    why = _protected(resolved)
    if why:
        raise OutputError(f"output {out} is {why}; give a folder of its own (e.g. runs/NAME)")
    if out.is_symlink():
        raise OutputError(f"output {out} is a symbolic link; give the real folder, or remove the link")
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} is a file, not a folder; remove it or choose another --out")
    if out.is_dir() and not existing_ok and any(out.iterdir()):
        if not force:
            raise OutputError(f"output {out} exists and is not empty (use --force to replace it)")
        if not _written_by_neurosim(out):
            raise OutputError(f"output {out} holds files neurosim did not write; --force replaces only a "
                              "neurosim output folder: remove it yourself or choose another --out")
    _probe(resolved)
    return out


def remove_output(out: Path) -> None:
    """Delete output folder ``out`` (``--force``), re-checking right here what
    :func:`check_output` checked: never a protected location, never a folder neurosim did not
    write. The caller holds its lock."""
    out = Path(out)
    why = _protected(out.resolve())
    if why or out.is_symlink() or not out.is_dir():
        raise OutputError(f"refusing to delete {out}: {why or 'not a folder'}")
    if any(out.iterdir()) and not _written_by_neurosim(out):
        raise OutputError(f"refusing to delete {out}: it holds files neurosim did not write")
    shutil.rmtree(out)


def _check_names(out: Path) -> None:
    """Refuse a path the file system cannot hold (names of hidden siblings included)."""
    absolute = os.path.abspath(out)
    if len(os.fsencode(absolute)) > 4000:
        raise OutputError(f"output path is too long ({len(absolute)} characters)")
    for i, part in enumerate(out.parts):
        limit = 255 - (SIBLING_SUFFIX + 1 if i == len(out.parts) - 1 else 0)
        if len(os.fsencode(part)) > limit:
            raise OutputError(f"output name {part[:40]}… is too long ({len(os.fsencode(part))} bytes; "
                              f"at most {limit})")


def check_writable(folder: str | Path) -> Path:
    """Refuse (:class:`OutputError`) a folder that files cannot be written into — for outputs
    that add files to a folder rather than own it (``neurosim plot --out``)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder")
    _check_names(folder)
    _probe(folder.resolve())
    return folder


def _probe(resolved: Path) -> None:
    """Create (and remove) the folder's missing parents and a file in a probe folder inside the
    nearest existing ancestor: the only proof that the location can be written."""
    existing = next(p for p in (resolved, *resolved.parents) if p.exists())
    if not existing.is_dir():
        raise OutputError(f"output {resolved} cannot be written: {existing} is not a folder")
    missing = resolved.relative_to(existing).parts
    try:
        probe = Path(tempfile.mkdtemp(prefix=".neurosim-probe-", dir=existing))
    except OSError as err:
        raise OutputError(f"output {resolved} cannot be written: {existing}: {err.strerror or err}") from None
    try:
        inner = probe.joinpath(*missing)
        inner.mkdir(parents=True, exist_ok=True)
        (inner / ".probe").write_bytes(b"x")
    except OSError as err:
        raise OutputError(f"output {resolved} cannot be written: {err.strerror or err}") from None
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def lock_path(out: Path) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.lock"


@contextmanager
def output_lock(out: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of output folder ``out`` (``.NAME.lock`` beside it). The kernel
    frees it when the process dies, so a killed command never blocks the next one."""
    path = lock_path(Path(out))
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(path, "a")  # noqa: SIM115 — held for the whole block
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise OutputLockError(f"another neurosim command is writing to {out} (lock {path}); "
                                  "wait for it to finish") from None
        try:  # the holder before us may have removed the file we locked: lock the current one
            if os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        fh.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        fh.close()


@contextmanager
def claim_output(out: str | Path, *, force: bool = False, existing_ok: bool = False) -> Iterator[Path]:
    """Check ``out``, lock it, check again under the lock (another command may have written it
    meanwhile) and clear what killed writes left beside it; yield ``out`` as a Path."""
    out = check_output(out, force=force, existing_ok=existing_ok)
    with output_lock(out):
        check_output(out, force=force, existing_ok=existing_ok)
        remove_stale_siblings(out)
        yield out


def remove_stale_siblings(out: Path) -> None:
    """Temporaries of killed writes to ``out`` (only ever ours: the caller holds its lock)."""
    out = Path(out)
    if not out.parent.is_dir():
        return
    for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*"):
        for p in out.parent.glob(_glob_escape(pattern)):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def _glob_escape(pattern: str) -> str:
    """Escape glob characters of a name, keeping the trailing ``*``."""
    head = pattern[:-1]
    return "".join(f"[{c}]" if c in "*?[" else c for c in head) + "*"


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_dir(out: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``out`` that becomes ``out`` only if the block succeeds.

    ``replace``: an existing ``out`` is moved aside, the new one renamed in, then the old one
    removed. The caller holds ``out``'s lock (:func:`claim_output`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        old = None
        if out.exists():
            if not replace:
                raise OutputError(f"output {out} appeared while this command was writing it")
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write(path: str | Path, write: Callable[[io.IOBase], None], *, binary: bool = False) -> None:
    """Write a file through ``write(fh)`` into a temporary sibling, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "wb" if binary else "w", newline=None if binary else "") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(folder: Path, files: dict[str, str | bytes]) -> None:
    """Write ``{relative path: text or bytes}`` into ``folder`` (a fresh temporary folder)."""
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
