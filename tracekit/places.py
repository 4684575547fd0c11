"""Where a command may read and write: checked before any work, nothing created to find out.

``check_output_dir``, ``check_output_file`` and ``check_input_file`` say whether a command can
write (or read) where the user pointed it: a file where a folder belongs, a folder under a
file, a read-only or otherwise unwritable folder are errors that name the path.

An output (an export folder, a ``--out`` file, a training ``output_dir``, push's staging) must
also keep clear of every tracekit store: :func:`check_outside_stores` refuses a folder that
*is* a store, *lies inside* one (any folder above it holds the store marker) or *holds* one
below it. The search below is bounded: :data:`STORE_SEARCH_DEPTH` folder levels and at most
:data:`STORE_SEARCH_FOLDERS` folders (symbolic links to folders are checked for a marker but
not descended into); a store buried deeper than that is not looked for. A store's own folder
is checked with :func:`check_dir_shape` (shape and permission only).

:func:`check_name_component` is the rule for a name an option turns into a file or folder
name (``export --to llamafactory --name``): one plain file-name component, never a path.
"""

from __future__ import annotations

import os
from pathlib import Path

from tracekit.errors import ConfigError, InputFormatError, OutputError

STORE_SEARCH_DEPTH = 4
STORE_SEARCH_FOLDERS = 10_000


def _marker() -> str:
    from tracekit.store.parts import MARKER  # the store owns its marker's name

    return MARKER


def _first_file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_writable_dir(folder: str | os.PathLike, what: str) -> None:
    """Raise :class:`~tracekit.errors.OutputError` unless new files can be created in ``folder``
    (an existing folder): one hidden temporary file is created and removed. Root ignores file
    modes, so only an attempt tells (a read-only file system, a full disk, a permission)."""
    from tracekit.store.files import temporary_path

    probe = temporary_path(Path(folder) / "probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        msg = (
            f"{what}: cannot create files in {folder}: {exc.strerror or exc}.\n"
            "Hint: make the folder writable (or not read-only), or name another one."
        )
        raise OutputError(msg) from None
    os.close(fd)
    os.unlink(probe)


def _store_above(path: Path) -> Path | None:
    """The store that ``path`` (or a folder above it) is, if any; symbolic links resolved too."""
    marker = _marker()
    seen = set()
    for start in (path.absolute(), path.resolve()):
        for folder in (start, *start.parents):
            if folder in seen:
                continue
            seen.add(folder)
            if (folder / marker).is_file() or (folder / marker).is_dir():
                return folder
    return None


def _store_below(path: Path) -> Path | None:
    """A store somewhere under ``path`` (bounded: see the module docstring), if any."""
    marker = _marker()
    level, visited = [path], 0
    for _depth in range(STORE_SEARCH_DEPTH):
        deeper = []
        for folder in level:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                try:
                    if not entry.is_dir():
                        continue
                except OSError:
                    continue
                visited += 1
                if visited > STORE_SEARCH_FOLDERS:
                    return None
                sub = Path(entry.path)
                if os.path.lexists(sub / marker):
                    return sub
                if not entry.is_symlink():
                    deeper.append(sub)
        level = deeper
    return None


def check_inside_no_store(path: str | os.PathLike, what: str) -> Path:
    """Raise :class:`~tracekit.errors.OutputError` when ``path`` is a tracekit store or lies inside
    one (for a place where a command makes a new folder of its own, such as a temporary one)."""
    path = Path(path)
    store = _store_above(path)
    if store is not None:
        is_it = store in (path.absolute(), path.resolve())
        where = "is the tracekit store" if is_it else "lies inside the tracekit store"
        msg = (
            f"{what} {path} {where} {store}; writing there would damage its tables.\n"
            "Hint: name a folder outside every store (e.g. a sibling of the store)."
        )
        raise OutputError(msg)
    return path


def check_outside_stores(path: str | os.PathLike, what: str) -> Path:
    """Raise :class:`~tracekit.errors.OutputError` when the output folder ``path`` is a tracekit
    store, lies inside one or holds one: an output written there would replace or mix with a
    store's tables. Nothing is created.

    Examples
    --------
    >>> import tempfile
    >>> from tracekit.store import Store
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = Store(root / "st", create=True)
    >>> check_outside_stores(root / "exports", "export --out") == root / "exports"
    True
    >>> check_outside_stores(root / "st" / "hf", "export --out")
    Traceback (most recent call last):
    ...
    tracekit.errors.OutputError: export --out .../st/hf lies inside the tracekit store .../st; ...
    """
    path = check_inside_no_store(path, what)
    if path.is_dir():
        inner = _store_below(path)
        if inner is not None:
            msg = (
                f"{what} {path} holds the tracekit store {inner}; writing there could replace its tables.\n"
                "Hint: name a folder that holds no store."
            )
            raise OutputError(msg)
    return path


def check_dir_shape(path: str | os.PathLike, what: str) -> Path:
    """Check that ``path`` can be a folder to write in (it exists as a writable folder, or can be
    created): shape and permission only, nothing is created (a store's own root uses this).
    Raises :class:`~tracekit.errors.OutputError`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        msg = f"{what} {path} is a file, not a folder.\nHint: name a folder (it is created when missing)."
        raise OutputError(msg)
    blocker = _first_file_above(path)
    if blocker is not None:
        msg = f"{what} {path}: {blocker} is a file, so no folder can be made under it.\nHint: name another folder."
        raise OutputError(msg)
    existing = next(p for p in (path, *path.parents) if p.exists())
    check_writable_dir(existing, what)
    return path


def check_output_dir(path: str | os.PathLike, what: str) -> Path:
    """Check that ``path`` can be a command's output folder: :func:`check_dir_shape`, and it is
    not, does not hold and does not lie inside a tracekit store (:func:`check_outside_stores`).
    Nothing is created. Raises :class:`~tracekit.errors.OutputError`."""
    path = check_dir_shape(path, what)
    return check_outside_stores(path, what)


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """Check that ``path`` can be written as a file (an existing file is replaced): its folder
    exists and is writable, ``path`` is not a folder, and it lies inside no tracekit store.
    Raises :class:`~tracekit.errors.OutputError`."""
    path = Path(path)
    if path.is_dir():
        msg = (
            f"{what} {path} is a folder, not a file.\nHint: name a file inside it, e.g. {path / 'out.jsonl'}."
        )
        raise OutputError(msg)
    blocker = _first_file_above(path)
    if blocker is not None:
        msg = f"{what} {path}: {blocker} is a file, not a folder.\nHint: name a file in an existing folder."
        raise OutputError(msg)
    if not path.parent.is_dir():
        msg = f"{what} {path}: the folder {path.parent} does not exist.\nHint: create it first."
        raise OutputError(msg)
    store = _store_above(path.parent)
    if store is not None:
        msg = (
            f"{what} {path} lies inside the tracekit store {store}; a file written there would mix with its tables.\n"
            "Hint: name a file outside every store."
        )
        raise OutputError(msg)
    check_writable_dir(path.parent, what)
    return path


def check_input_file(path: str | os.PathLike, what: str, hint: str) -> Path:
    """``path`` as a :class:`Path` when it is an existing file; else an
    :class:`~tracekit.errors.InputFormatError` saying what it is instead."""
    path = Path(path)
    if path.is_dir():
        raise InputFormatError(f"{what} {path} is a folder, not a file.\nHint: {hint}")
    if not path.exists():
        raise InputFormatError(f"{what} {path} does not exist.\nHint: {hint}")
    return path


def check_name_component(name: str, what: str) -> str:
    """``name`` when it is one plain file-name component (it becomes a file or folder name);
    else a :class:`~tracekit.errors.ConfigError`. Refused: empty, ``.``/``..``, a path separator,
    a leading dot (hidden, and tracekit's temporaries), control characters, over 200 bytes.

    Examples
    --------
    >>> check_name_component("tracekit_sft", "--name")
    'tracekit_sft'
    >>> check_name_component("../x", "--name")
    Traceback (most recent call last):
    ...
    tracekit.errors.ConfigError: --name '../x' is not a plain file name: it holds a path separator. ...
    """
    why = None
    if not isinstance(name, str) or not name:
        why = "it is empty"
    elif name in (".", ".."):
        why = "it names a folder, not a new name"
    elif "/" in name or "\\" in name or (os.sep in name) or (os.altsep and os.altsep in name):
        why = "it holds a path separator"
    elif name.startswith("."):
        why = "it starts with a dot (hidden names are tracekit's temporaries)"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        why = "it holds a control character"
    elif len(name.encode("utf-8", "surrogatepass")) > 200:
        why = "it is longer than 200 bytes"
    elif os.path.isabs(name) or os.path.splitdrive(name)[0]:
        why = "it is an absolute path"
    if why:
        msg = (
            f"{what} {name!r} is not a plain file name: {why}.\n"
            "Hint: use letters, digits, '_', '-' and '.' (e.g. tracekit_sft); files go inside --out."
        )
        raise ConfigError(msg)
    return name
