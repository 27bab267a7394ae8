"""Saved models and checkpoints: ONE ``.npz`` file of plain arrays plus a JSON header, never a pickle.

Layout of the file (a zip of ``.npy`` arrays, read with ``allow_pickle=False``):
    ``__cnnkit__``            the JSON header as UTF-8 bytes (a uint8 array): format version, cnnkit version,
                              architecture (``model.config()``), epoch, frozen parameters, RNG states,
                              optimizer hyperparameters, ``extra``;
    ``model/<name>``          every parameter and buffer, by PyTorch-style dotted name;
    ``optimizer/<i.field>``   optimizer state (momentum buffers, moments, step counts);
    ``extra/...``             arrays found inside ``extra`` (the header points to them).

Loading rebuilds the network with :func:`cnnkit.layers.from_config`, which only instantiates registered
cnnkit layer types: no code from the file is ever executed. Writes are atomic (a temporary file in the same
directory, flushed and fsynced, then ``os.replace`` and an fsync of the directory), so a crash or a kill at
any moment leaves either the old file or the new one, never a torn one. The temporary file a killed writer
leaves is named after its writer (pid, start time, host), and the next write into that directory removes
it once that process is gone (never a live writer's).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkit.data.preprocessing import Preprocessing
from cnnkit.filetypes import DAMAGED_ZIP, NPZ, describe
from cnnkit.layers.base import Layer, from_config

FORMAT = "cnnkit-checkpoint"
FORMAT_VERSION = 1
HEADER_KEY = "__cnnkit__"
CHECKPOINT_NAME = "checkpoint.npz"


class CheckpointError(ValueError):
    """A file is not a readable cnnkit checkpoint (corrupt, truncated, pickled, or from a newer cnnkit)."""


@dataclass
class Checkpoint:
    """Everything :func:`load_checkpoint` reads: the rebuilt model and the training state next to it."""

    model: Layer
    path: Path
    epoch: int | None = None
    optimizer: dict | None = None  # an Optimizer.state_dict(): feed it to optimizer.load_state_dict
    extra: dict = field(default_factory=dict)
    version: str = ""
    header: dict = field(default_factory=dict)
    preprocessing: Preprocessing | None = None  # also set on the model, as fit and save see it


# -- writing ------------------------------------------------------------------------------------------
def save(model: Layer, path, *, optimizer=None, epoch: int | None = None, extra: dict | None = None,
         preprocessing: Preprocessing | None = None) -> Path:
    """Write ``model`` (architecture and weights), and optionally the training state, to one ``.npz`` file.

    Args:
        model: any cnnkit Layer whose ``config()`` rebuilds it (every built-in layer and container).
        path: the file to write (its directory is created); written atomically.
        optimizer: an optimizer whose ``state_dict()`` is saved for resuming.
        epoch: the number of completed epochs.
        extra: JSON-able data (dicts, lists, str, numbers) that may contain NumPy arrays anywhere inside;
            arrays are stored as arrays, the rest in the header.
        preprocessing: the input recipe (:class:`cnnkit.data.Preprocessing`); default
            ``model.preprocessing``, which ``fit`` records from its training loader.

    Returns:
        The path written.

    Raises:
        TypeError: something in ``extra`` (or an optimizer hyperparameter) is neither JSON-able nor an array.

    >>> import tempfile, numpy as np
    >>> from cnnkit.layers import Conv2d
    >>> path = Path(tempfile.mkdtemp()) / "conv.npz"
    >>> _ = save(Conv2d(1, 4, 3), path, epoch=3)
    >>> load(path)
    Conv2d(1->4, kernel_size=3, stride=1, padding=0)
    """
    from cnnkit import __version__

    arrays: dict[str, np.ndarray] = {f"model/{k}": np.asarray(v) for k, v in model.state_dict().items()}
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "cnnkit_version": __version__,
        "architecture": model.config(), "epoch": epoch,
        "frozen": [name for name, p in model.named_parameters() if not p.trainable],
        "rng": model_rng_states(model),
        "optimizer": None, "extra": None,
    }
    preprocessing = preprocessing if preprocessing is not None else getattr(model, "preprocessing", None)
    if preprocessing is not None:
        header["preprocessing"] = preprocessing.to_dict()
    if optimizer is not None:
        state = optimizer.state_dict()
        arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in state["state"].items()})
        header["optimizer"] = {"type": state["type"], "param_groups": state["param_groups"],
                               "state_keys": list(state["state"])}
    if extra is not None:
        header["extra"] = _split(extra, "extra", arrays)
    for key, value in arrays.items():
        if value.dtype.hasobject:
            raise TypeError(f"save: {key!r} is an object array, which could only be stored by pickling; "
                            f"cnnkit files hold plain numeric arrays only.")
    try:
        text = json.dumps(header)
    except TypeError as e:
        raise TypeError(f"save: the header is not JSON-able ({e}); pass plain numbers, strings, lists, dicts "
                        f"or NumPy arrays in `extra`.") from e
    arrays[HEADER_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def atomic_write(path, write) -> Path:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then move it into place atomically.

    The sequence (flush, fsync the file, ``os.replace``, fsync the directory) is what makes the rename
    durable: after a crash the path holds the complete old file or the complete new one. A writer killed
    mid-write (SIGKILL, out of memory, power loss) leaves its temporary file behind; the temporary's name
    says who wrote it (:func:`temporary_name`), and every write first removes the temporaries in its
    directory whose writer is gone (:func:`remove_stale_temporaries`).
    """
    path = Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(directory)
    tmp = directory / temporary_name(path.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


# -- temporary files and their writers ----------------------------------------------------------------------
# ``.<file name>.<pid>.<start>.<host>.<8 hex>.tmp``: the writer's process id, its start time (clock ticks
# after boot, from /proc; 0 where unknown) so that a reused pid is not taken for the writer, and its host,
# because on a shared file system a pid means nothing on another machine.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<start>\d+)\.(?P<host>[A-Za-z0-9_-]+)"
                        r"\.(?P<token>[0-9a-f]{8})\.tmp")


def temporary_name(name: str) -> str:
    """The name of a temporary file for ``name`` written by this process (see :func:`writer_is_gone`)."""
    pid = os.getpid()
    return f".{name}.{pid}.{_start_time(pid) or 0}.{_host()}.{secrets.token_hex(4)}.tmp"


def remove_stale_temporaries(directory) -> list[Path]:
    """Delete the temporary files in ``directory`` left by writers that died; return the paths removed.

    Only names of the exact form :func:`temporary_name` makes are considered, and of those only the ones
    written on this host by a process that no longer runs: a live writer's file is never touched, nor one
    from another machine (whose processes cannot be checked from here). ``cnnkit train`` calls this on its
    run directory at start; every checkpoint save calls it on the directory it writes to.
    """
    removed = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        if writer_is_gone(int(match["pid"]), int(match["start"]), match["host"]):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:  # another process cleaned it first
                continue
            removed.append(Path(entry.path))
    return removed


def writer_is_gone(pid: int, start: int, host: str) -> bool:
    """Whether the process that named a temporary file (pid, start time, host) has certainly ended.

    False whenever it cannot be known: another host, or a running process with that pid whose start time
    is unknown. A pid that runs again but started at another time is another process; a zombie (killed,
    not yet reaped by its parent) writes nothing more.
    """
    if host != _host():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, owned by another user
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return False
    state, started = stat
    return state == "Z" or (start != 0 and started != start)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "localhost"


def _start_time(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) from /proc/PID/stat, or None without /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (command name) ": state is field 3
    try:
        return fields[0], int(fields[19])  # starttime is field 22
    except (IndexError, ValueError):
        return None


def _split(obj, prefix: str, arrays: dict):
    """Replace every array inside ``obj`` by ``{"__array__": key}`` and put it in ``arrays[key]``."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split(v, f"{prefix}/{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_split(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join(obj, arrays: dict):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


# -- RNG states ---------------------------------------------------------------------------------------------
def model_rng_states(model: Layer) -> dict:
    """``{"<layer path>:<attribute>": bit_generator.state}`` for every Generator a layer holds (dropout)."""
    return {f"{path}:{name}": value.bit_generator.state
            for path, layer in model.named_layers() for name, value in vars(layer).items()
            if isinstance(value, np.random.Generator)}


def set_model_rng_states(model: Layer, states: dict):
    """Put saved generator states back, so dropout masks continue exactly where they stopped."""
    layers = dict(model.named_layers())
    for key, state in states.items():
        path, name = key.rsplit(":", 1)
        layer = layers.get(path)
        if layer is None:
            continue
        kind = getattr(np.random, str(state.get("bit_generator")), None)
        if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
            raise CheckpointError(f"unknown bit generator {state.get('bit_generator')!r} for {key}.")
        bit_generator = kind()
        bit_generator.state = state
        setattr(layer, name, np.random.Generator(bit_generator))


# -- reading ------------------------------------------------------------------------------------------
def load(path) -> Layer:
    """Rebuild the model saved at ``path`` (a file, or a run directory holding checkpoint.npz), in eval mode.

    Raises:
        FileNotFoundError: no such file. CheckpointError: not a readable cnnkit file (see load_checkpoint).
    """
    return load_checkpoint(path).model


def load_checkpoint(path) -> Checkpoint:
    """The model plus epoch, optimizer state and ``extra``, as written by :func:`save`.

    The file is opened with ``allow_pickle=False``: an object array (which only pickle can decode) is
    refused, and nothing in the file can run code.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: truncated or corrupt file, an object array, no cnnkit header, or a newer format.
    """
    path = resolve_checkpoint_path(path)
    header, arrays = _read_npz(path)
    _register_layer_types()
    try:
        model = from_config(header["architecture"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: cannot rebuild the architecture: {e}") from e
    state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    dtypes = {v.dtype for v in state.values() if np.issubdtype(v.dtype, np.floating)}
    if len(dtypes) == 1:
        model.astype(dtypes.pop())  # a float64 model comes back as float64
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: the weights do not fit the architecture: {e}") from e
    frozen = set(header.get("frozen", []))
    for name, p in model.named_parameters():
        p.trainable = name not in frozen
    set_model_rng_states(model, header.get("rng") or {})
    model.eval()
    optimizer = None
    if header.get("optimizer"):
        saved = header["optimizer"]
        optimizer = {"type": saved["type"], "param_groups": saved["param_groups"],
                     "state": {k: arrays[f"optimizer/{k}"] for k in saved["state_keys"]}}
    extra = _join(header.get("extra") or {}, arrays)
    try:  # older runs of cnnkit train kept the recipe in their metadata only
        preprocessing = Preprocessing.from_dict(header["preprocessing"]) if header.get("preprocessing") else \
            Preprocessing.from_metadata((extra or {}).get("metadata") or {})
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: unreadable preprocessing record: {e}") from e
    model.preprocessing = preprocessing
    return Checkpoint(model=model, path=path, epoch=header.get("epoch"), optimizer=optimizer, extra=extra,
                      version=header.get("cnnkit_version", ""), header=header, preprocessing=preprocessing)


def resolve_checkpoint_path(path) -> Path:
    """``path``, or ``path/checkpoint.npz`` for a run directory; FileNotFoundError if neither exists."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file.")
    return path


def _read_npz(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    what = describe(path)  # a PNG or a text file is named as such, not reported as a corrupt zip
    if what not in (NPZ, DAMAGED_ZIP):
        never = "; cnnkit never unpickles files" if what.startswith("pickle") else ""
        raise CheckpointError(f"{path}: this is {what}, not a cnnkit checkpoint (.npz){never}.")
    key = None
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path}: is a single .npy array, not a cnnkit checkpoint (.npz).")
        with npz:
            if HEADER_KEY not in npz.files:
                held = ", ".join(npz.files[:5]) or "nothing"
                raise CheckpointError(f"{path}: is an .npz file but not a cnnkit checkpoint "
                                      f"(no {HEADER_KEY!r} header; it holds {held}).")
            arrays = {}
            for key in npz.files:
                arrays[key] = npz[key]
    except CheckpointError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickled" in str(e):
            what = f"the array {key!r} is an object array" if key else "it is not an .npz file (pickle data?)"
            raise CheckpointError(f"{path}: refused: {what}, which only unpickling could read; cnnkit never "
                                  f"unpickles files.") from e
        raise CheckpointError(f"{path}: corrupt checkpoint ({e}).") from e
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as e:
        where = f" while reading {key!r}" if key else ""
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint{where} ({e}); "
                              f"use an earlier checkpoint or save again.") from e
    try:
        header = json.loads(arrays.pop(HEADER_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: the cnnkit header is not valid JSON ({e}).") from e
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: header format {header.get('format')!r}, expected {FORMAT!r}.")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by cnnkit {header.get('cnnkit_version')} in format version "
                              f"{header['format_version']}; this cnnkit reads up to {FORMAT_VERSION}. "
                              f"Upgrade cnnkit to load it.")
    return header, arrays


def _register_layer_types():
    """Import the modules that define layer classes so from_config knows every type (the zoo's too)."""
    import importlib

    for module in ("cnnkit.layers", "cnnkit.models"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass
