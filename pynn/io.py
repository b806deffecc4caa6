"""Model files: architecture, compile config, weights and optimizer state in one file that
can carry no code.

Format (version 1): an uncompressed .npz (a zip of .npy members, as np.savez writes it):
  meta.npy    uint8 array: a UTF-8 JSON document
              {"format": "pynn.model", "version": 1, "kind": "model" | "weights",
               "config": model.get_config(), "compile_config": ... or null,
               "build_input_shape": [...] or null,
               "weights": [{"shape", "dtype", "sha256"}, ...],          -> w000.npy, w001.npy...
               "optimizer_state": [{"name", "shape", "dtype", "sha256"}, ...] or null
                                                                      -> o000.npy, o001.npy...}
  Numeric dtypes only (bool, ints, floats); the architecture is resolved through pynn's closed
  registry of layer names (pynn.models.model_from_config), never by importing or unpickling.

Reading trusts nothing: each member's .npy header is parsed and its declared size compared
with the bytes present before anything is allocated; object dtypes (pickles) are refused; the
zip CRC and a sha256 per array catch flipped bits. Every problem with a file's content raises
ModelFileError (a ValueError) naming the file; a missing file is FileNotFoundError.

Writing is atomic: a temp file in the destination folder, flushed, fsynced, then renamed over
the destination, so a crash mid-save leaves the old file intact.
"""
import collections.abc
import contextlib
import hashlib
import importlib
import json
import os
import secrets
import stat
import zipfile

import numpy as np

__all__ = ["ModelFileError", "save_model", "load_model", "save_weights", "load_weights",
           "FORMAT", "VERSION"]

FORMAT = "pynn.model"
VERSION = 1
_META = "meta"
_MAX_META = 64 << 20           # bytes of JSON
_MAX_MEMBERS = 100_000


class ModelFileError(ValueError):
    """A model file is corrupt, truncated, hostile, or does not fit the model."""


# -- writing -----------------------------------------------------------------------------------
def _describe(arrays, names=None):
    out = []
    for i, a in enumerate(arrays):
        d = {"shape": list(a.shape), "dtype": a.dtype.str,
             "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
        if names is not None:
            d = {"name": names[i], **d}
        out.append(d)
    return out


def _numeric(a, what):
    a = np.asarray(a, order="C")     # not ascontiguousarray: it makes 0-d arrays 1-d
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what} has dtype {a.dtype}: a model file holds numeric arrays only")
    return a


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_savez(path, arrays, overwrite=True):
    """np.savez(path, **arrays) through a temp file + fsync + rename in path's folder.
    overwrite=False: FileExistsError if `path` exists (checked again at the final link)."""
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError("cannot save to an empty path")
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if os.path.islink(path):  # write through the link, as open() would, not over it
        path = os.path.realpath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):   # say so about `path`, not about the temp file's name
        raise FileNotFoundError(f"cannot save to {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path}: it is a directory")
    if os.path.exists(path) and not os.path.isfile(path):
        # a device, pipe or socket: the rename below would replace it (as root, /dev/null)
        raise OSError(f"cannot save to {path}: it exists and is not a regular file")
    # created like open() would (mode 0666 less the umask: mkstemp's 0600 made every saved
    # model private), exclusively, under a fresh name
    while True:
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        if os.path.exists(path):  # a file replaced keeps its permissions
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)       # atomic, and fails if `path` appeared meanwhile
            os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def _build_input_shape(model):
    """The input shape the model was built for (batch axis first), if it says."""
    s = getattr(model, "build_input_shape", None)
    if s is None and getattr(model, "built", False):
        try:
            s = getattr(model, "input_shape", None)
        except (AttributeError, ValueError):
            s = None
    if s is None or isinstance(s, list):   # a graph model rebuilds from its Input shapes
        return None
    return [None if d is None else int(d) for d in s]


def _save(model, path, kind, include_optimizer, overwrite):
    weights = [_numeric(w, f"weight {i}") for i, w in enumerate(model.get_weights())]
    doc = {"format": FORMAT, "version": VERSION, "kind": kind,
           "config": model.get_config(), "build_input_shape": _build_input_shape(model),
           "compile_config": None, "weights": _describe(weights), "optimizer_state": None}
    arrays = {f"w{i:03d}": w for i, w in enumerate(weights)}
    if kind == "model":
        get_cc = getattr(model, "get_compile_config", None)
        doc["compile_config"] = get_cc() if get_cc is not None else None
        opt = getattr(model, "optimizer", None)
        if include_optimizer and opt is not None and hasattr(opt, "get_state"):
            state = opt.get_state()
            names = [str(k) for k in state]
            vals = [_numeric(state[k], f"optimizer state {k!r}") for k in state]
            doc["optimizer_state"] = _describe(vals, names)
            arrays.update({f"o{i:03d}": v for i, v in enumerate(vals)})
    try:
        text = json.dumps(doc, allow_nan=True)
    except TypeError as e:
        raise TypeError(f"the model's config is not JSON-serializable: {e}") from None
    arrays[_META] = np.frombuffer(text.encode("utf-8"), np.uint8)
    _atomic_savez(path, arrays, overwrite)


def save_model(model, path, overwrite=True, include_optimizer=True):
    """Write `model` (architecture, compile config, weights, optimizer state) to `path`.

    The write is atomic: a crash leaves the old file intact. overwrite=False raises
    FileExistsError when `path` exists.
    """
    _save(model, path, "model", include_optimizer, overwrite)


def save_weights(model, path, overwrite=True):
    """Write `model`'s weights (and its config, for checking) to `path`."""
    _save(model, path, "weights", False, overwrite)


# -- reading -----------------------------------------------------------------------------------
def _read_member(zf, info, path):
    """One .npy member, checked before anything is allocated."""
    fmt = np.lib.format
    with zf.open(info) as f:
        major, minor = fmt.read_magic(f)
        if (major, minor) == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=10000)
        elif (major, minor) in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=10000)
        else:
            raise ModelFileError(f"{path}: member {info.filename}: unknown .npy version "
                                 f"{major}.{minor}")
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
            raise ModelFileError(f"{path}: member {info.filename} has dtype {dtype}: a model "
                                 f"file holds numeric arrays only (never pickled objects)")
        count = 1
        for s in shape:
            count *= int(s)
        nbytes = count * dtype.itemsize
        if nbytes != info.file_size - f.tell():
            raise ModelFileError(f"{path}: member {info.filename} declares shape {shape} "
                                 f"({nbytes} bytes) but holds {info.file_size - f.tell()}")
        data = f.read(nbytes)
        if len(data) != nbytes or f.read(1):   # reading to the end checks the zip CRC
            raise ModelFileError(f"{path}: member {info.filename} is truncated")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C").copy()


def _read_archive(path):
    """{name: array} of every member; ModelFileError on anything malformed."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        infos = zf.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise ModelFileError(f"{path}: {len(infos)} members: not a model file")
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise ModelFileError(f"{path}: duplicate members: not a model file")
        for i in infos:
            # stored members only: declared sizes cannot exceed the file (no zip bombs)
            if i.compress_type != zipfile.ZIP_STORED or i.file_size > size \
                    or not i.filename.endswith(".npy"):
                raise ModelFileError(f"{path}: member {i.filename!r} is not a stored .npy "
                                     f"array: not a pynn model file")
        return {i.filename[:-4]: _read_member(zf, i, path) for i in infos}


def _check_entries(path, entries, arrays, prefix, named):
    if not isinstance(entries, list):
        raise ModelFileError(f"{path}: '{prefix}' entries are not a list")
    out = []
    for i, e in enumerate(entries):
        key = f"{prefix}{i:03d}"
        a = arrays.get(key)
        if a is None or not isinstance(e, dict):
            raise ModelFileError(f"{path}: array {key} listed but missing")
        if e.get("shape") != list(a.shape) or e.get("dtype") != a.dtype.str:
            raise ModelFileError(f"{path}: array {key} is {a.dtype.str} {list(a.shape)}, the "
                                 f"header says {e.get('dtype')} {e.get('shape')}")
        if e.get("sha256") != hashlib.sha256(a.tobytes()).hexdigest():
            raise ModelFileError(f"{path}: array {key} fails its sha256 check: corrupt file")
        if named and not isinstance(e.get("name"), str):
            raise ModelFileError(f"{path}: array {key} has no name")
        out.append((e.get("name"), a))
    return out


def _read(path):
    """(doc, weights list, optimizer state dict or None) of a checked model file."""
    path = os.fsdecode(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path}")
    if not os.path.isfile(path):  # a pipe would block the read forever, a device stream
        raise ModelFileError(f"{path}: not a regular file, so not a pynn model file")
    try:
        arrays = _read_archive(path)
        meta = arrays.pop(_META, None)
        if meta is None or meta.dtype != np.uint8 or meta.ndim != 1 or meta.size > _MAX_META:
            raise ModelFileError(f"{path}: no pynn header (meta.npy): not a pynn model file")
        doc = json.loads(meta.tobytes().decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not a pynn model file (format "
                                 f"{doc.get('format') if isinstance(doc, dict) else doc!r})")
        if doc.get("version") != VERSION:
            raise ModelFileError(f"{path}: format version {doc.get('version')!r}; this pynn "
                                 f"reads version {VERSION}: upgrade pynn or re-save the model")
        weights = [a for _, a in _check_entries(path, doc.get("weights"), arrays, "w", False)]
        state = doc.get("optimizer_state")
        if state is not None:
            state = dict(_check_entries(path, state, arrays, "o", True))
        expected = len(weights) + (len(state) if state is not None else 0)
        if len(arrays) != expected:
            raise ModelFileError(f"{path}: {len(arrays)} arrays, the header lists {expected}")
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            UnicodeDecodeError, RecursionError, KeyError, TypeError, OverflowError,
            SyntaxError, RuntimeError) as e:   # RuntimeError: zip flags (encrypted...)
        raise ModelFileError(f"{path}: not a readable pynn model file (corrupt or truncated): "
                             f"{type(e).__name__}: {e}") from None
    return doc, weights, state


def _model_from_config(config, backend=None):
    """pynn.models.model_from_config: the closed registry of layer names."""
    from_config = importlib.import_module("pynn.models").model_from_config
    return from_config(config) if backend is None else from_config(config, backend=backend)


def _rebuild(doc, path, backend=None):
    try:
        model = _model_from_config(doc.get("config"), backend)
        shape = doc.get("build_input_shape")
        if shape is not None and not getattr(model, "built", True):
            model.build(tuple(shape))
    except ModelFileError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
        raise ModelFileError(f"{path}: the architecture in the file cannot be rebuilt: "
                             f"{type(e).__name__}: {e}") from None
    return model


def _set_weights(model, weights, path):
    have = [np.shape(w) for w in model.get_weights()]
    want = [w.shape for w in weights]
    if have != want:
        raise ModelFileError(f"{path}: the file holds {len(want)} weight arrays of shapes "
                             f"{want}, the model has {len(have)} of shapes {have}")
    try:
        model.set_weights(weights)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: weights do not fit the model: {e}") from None


def _custom_kinds():
    """(base class, its module's custom_objects scope) of every kind of class a model file
    names; the first three build the architecture, the others the compile config."""
    from . import (initializers as _init, layers as _layers, losses as _losses,
                   metrics as _metrics, optim as _optim, regularizers as _reg)
    return ((_layers.Layer, _layers.custom_objects),
            (_reg.Regularizer, _reg.custom_objects),
            (_init.Initializer, _init.custom_objects),
            (_losses.Loss, _losses.custom_objects),
            (_metrics.Metric, _metrics.custom_objects),
            (_optim.Optimizer, _optim.custom_objects),
            (_optim.schedules.LearningRateSchedule, _optim.schedules.custom_objects))


def _split_custom_objects(custom_objects, kinds):
    """{name: class} -> one {name: class} per kind; TypeError on anything else."""
    out = [{} for _ in kinds]
    if custom_objects is None:
        return out
    if not isinstance(custom_objects, collections.abc.Mapping):
        raise TypeError(f"custom_objects must be a dict {{class name: class}}, received "
                        f"{type(custom_objects).__name__}")
    for name, obj in custom_objects.items():
        if not isinstance(name, str):
            raise TypeError(f"custom_objects keys are class names (str), received {name!r}")
        for (base, _), mine in zip(kinds, out):
            if isinstance(obj, type) and issubclass(obj, base):
                mine[name] = obj
                break
        else:
            hint = ("; pynn's compile takes no plain-function losses or metrics: write a "
                    "Loss or Metric subclass" if callable(obj) and not isinstance(obj, type)
                    else "")
            names = [base.__name__ for base, _ in kinds]
            raise TypeError(f"custom_objects maps class names to pynn "
                            f"{', '.join(names[:-1])} or {names[-1]} subclasses; {name!r} "
                            f"maps to {obj!r}{hint}")
    return out


def _scopes(kinds, own):
    stack = contextlib.ExitStack()
    for (_, scope), mine in zip(kinds, own):
        stack.enter_context(scope(mine))
    return stack


def load_model(path, compile=True, backend=None, custom_objects=None):
    """Rebuild the model saved at `path`: architecture, weights, and (if `compile`) its compile
    config and optimizer state, so predictions are identical and training resumes exactly.
    backend: 'c' or 'reference' for the new model (None: the global default).
    custom_objects: {class name: class} of your own classes the file names, as Keras takes
      them: subclasses of pynn's Layer, Regularizer and Initializer in the architecture, and
      of Loss, Metric, Optimizer and LearningRateSchedule in the compile config (each
      rebuilt by its from_config(get_config()), so a constructor argument your get_config
      returns comes back). They are known for this load only and take precedence over
      pynn's own classes of the same name. Anything else (instances, plain functions...) is
      a TypeError. A class the file names that neither pynn nor custom_objects knows is a
      ModelFileError saying which name to pass in custom_objects. Nothing is imported or
      unpickled: only the classes given here and pynn's closed registries resolve.
    While the architecture is rebuilt, no layer may create more weight values than the file
    holds (checked before each weight is allocated): an altered config that asks for huge
    layers is a ModelFileError, not gigabytes allocated first."""
    kinds = _custom_kinds()
    own = _split_custom_objects(custom_objects, kinds)
    doc, weights, state = _read(path)
    if doc.get("kind") != "model":
        raise ModelFileError(f"{path}: holds weights only ({doc.get('kind')!r}): build the "
                             f"model and call load_weights(model, path)")
    from .layers.base import weight_budget
    # no weight larger than what the file can fill is allocated while rebuilding
    with _scopes(kinds[:3], own[:3]), weight_budget(sum(int(w.size) for w in weights)):
        model = _rebuild(doc, path, backend)
    _set_weights(model, weights, path)
    cc = doc.get("compile_config")
    if compile and cc is not None:
        try:
            with _scopes(kinds[3:], own[3:]):
                model.compile_from_config(cc)
            if state is not None and getattr(model, "optimizer", None) is not None:
                params = getattr(model, "_flat_params", None)
                for k, a in state.items():  # slots follow the model's flat parameters
                    if k != "iterations" and params is not None and (
                            a.shape != params.shape or a.dtype != params.dtype):
                        raise ValueError(f"optimizer state {k!r} is {a.dtype} of shape "
                                         f"{a.shape}, the model's parameters are "
                                         f"{params.dtype} of shape {params.shape}")
                model.optimizer.set_state(state)
                # the state follows this model's arrangement of its weights from now on
                model.optimizer._model_layout = getattr(model, "_layout", None)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise ModelFileError(f"{path}: the compile config or optimizer state cannot be "
                                 f"restored: {type(e).__name__}: {e}") from None
    return model


def load_weights(model, path):
    """Set `model`'s weights from a file written by save_weights or save_model."""
    doc, weights, _ = _read(path)
    shape = doc.get("build_input_shape")
    if shape is not None and not getattr(model, "built", True):
        model.build(tuple(shape))
    _set_weights(model, weights, path)
    return model
