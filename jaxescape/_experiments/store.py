"""The result store: a run directory whose files are written atomically and checked by SHA-256.

Every file is written to a temporary file in the same directory and renamed into place
(`os.replace`), so a reader sees the old file or the new one, never half of one. `manifest.json`
lists each committed file with its size and SHA-256; it is the commit point: a file is part of
the run once the manifest names it with its hash. A file whose bytes no longer match is reported
by name as corrupted and never reused; a file the manifest does not name (a write that was
interrupted before its commit) is ignored.

Several processes may write one run directory at once (the shards of a sweep on a shared file
system): every commit holds the directory's lock (`fcntl.flock` on `.lock`, which Linux NFS
clients map to POSIX locks), re-reads the manifest and merges its own files into it, so no
process drops another's files. Callers write and commit inside one `RunStore.locked()` block.

Raw arrays are stored as compressed `.npz` archives written with fixed timestamps, so the same
arrays always give the same bytes.
"""

import contextlib
import hashlib
import io
import json
import os
import signal
import tempfile
import threading
import zipfile

import numpy as np


try:
    import fcntl
except ImportError:  # not a POSIX system: one writer per run directory
    fcntl = None


# The layout of a sweep's run directory.
SWEEP_FILE = "sweep.toml"
ENVIRONMENT_FILE = "environment.json"
SUMMARY_FILE = "summary.csv"


# The columns of `load_results` after the point's parameters, in order.
RESULT_NAMES = (
    "method", "num_particles", "num_escaped", "num_censored", "num_diverged", "mfpt",
    "mfpt_standard_error", "mfpt_lower", "mfpt_upper", "mfpt_estimator", "rate",
    "rate_standard_error", "rate_lower", "rate_upper", "exact_mfpt", "kramers_time",
    "ratio_to_exact", "ratio_lower", "ratio_upper", "deviation_in_standard_errors",
    "exponentiality_p_value", "splitting_probability", "cost_particle_steps", "wall_time_s",
    "mfpt_extrapolated", "mfpt_extrapolated_standard_error",
    "extrapolated_deviation_in_standard_errors", "discretisation_bias",
    "discretisation_bias_standard_error",
)


def point_file(index: int, extension: str) -> str:
    """A point's result file, relative to the run directory."""
    return f"points/point-{index:05d}.{extension}"


def atomic_write(path: str, write) -> None:
    """Calls write(binary_file) on a temporary file next to `path`, then renames it into place."""
    directory, name = os.path.split(path)
    descriptor, temporary = tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


MANIFEST = "manifest.json"
LOCK_FILE = ".lock"
_FORMAT = 1


class CorruptedFileError(ValueError):
    """A stored file is missing, truncated or altered since it was committed."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npz_bytes(arrays: dict) -> bytes:
    """A compressed .npz archive of `arrays` (readable by `np.load`), byte-for-byte reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(arrays[name]), allow_pickle=False)
    return buffer.getvalue()


def json_bytes(data) -> bytes:
    """Indented JSON; non-finite floats become null."""
    def sanitise(value):
        if isinstance(value, dict):
            return {key: sanitise(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [sanitise(item) for item in value]
        if isinstance(value, float) and not np.isfinite(value):
            return None
        return value

    return (json.dumps(sanitise(data), indent=2, ensure_ascii=False, allow_nan=False)
            + "\n").encode()


@contextlib.contextmanager
def deferred_interrupt():
    """Holds back Ctrl-C (SIGINT) until the block ends, so a commit is never cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


class RunStore:
    """A run directory: atomic writes, a SHA-256 manifest, verified reads."""

    def __init__(self, directory, *, create: bool = False):
        self.directory = os.fspath(directory)
        if create:
            os.makedirs(self.directory, exist_ok=True)
        elif not os.path.isdir(self.directory):
            raise FileNotFoundError(f"run directory {self.directory!r} does not exist")
        self._files = self._read_manifest()
        self._pending = {}  # written (entry) or forgotten (None) since the last commit
        self._lock = None
        self._lock_depth = 0

    @contextlib.contextmanager
    def locked(self):
        """Holds the directory's lock (re-entrant); on entry the manifest is re-read, so the
        store sees every file another process committed, plus this one's uncommitted writes."""
        if self._lock_depth == 0:
            self._lock = _acquire_lock(self._path(LOCK_FILE))
            self.refresh()
        self._lock_depth += 1
        try:
            yield self
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                lock, self._lock = self._lock, None
                if lock is not None:
                    lock.close()  # releases the flock

    def refresh(self) -> None:
        """Re-reads the manifest (files other processes committed) under this store's writes."""
        files = self._read_manifest()
        for name, entry in self._pending.items():
            if entry is None:
                files.pop(name, None)
            else:
                files[name] = entry
        self._files = files

    def digest(self, name: str) -> str | None:
        """The committed SHA-256 of `name` (None if not committed)."""
        entry = self._files.get(name)
        return None if entry is None else entry["sha256"]

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, *name.split("/"))

    def _read_manifest(self) -> dict:
        path = self._path(MANIFEST)
        if not os.path.exists(path):
            return {}
        try:
            with open(path, "rb") as file:
                manifest = json.loads(file.read())
            files = manifest["files"]
            if manifest.get("format") != _FORMAT or not all(
                isinstance(entry["sha256"], str) and isinstance(entry["bytes"], int)
                for entry in files.values()
            ):
                raise ValueError("unexpected layout")
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
            raise CorruptedFileError(
                f"{os.path.join(self.directory, MANIFEST)} is corrupted ({error}): the stored "
                "files cannot be verified"
            ) from None
        return dict(files)

    @property
    def files(self) -> tuple[str, ...]:
        """The committed files (names relative to the directory, '/'-separated)."""
        return tuple(sorted(self._files))

    def exists(self) -> bool:
        """Whether the directory holds a manifest."""
        return os.path.exists(self._path(MANIFEST))

    def write(self, name: str, data: bytes) -> None:
        """Writes `name` atomically; it becomes part of the run at the next `commit`."""
        path = self._path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, lambda file: file.write(data))
        self._files[name] = self._pending[name] = {"sha256": _sha256(data), "bytes": len(data)}

    def commit(self) -> None:
        """Atomically writes the manifest: every file committed so far, by any process, and
        this store's writes, each with its hash."""
        with self.locked():
            manifest = {"format": _FORMAT, "files": dict(sorted(self._files.items()))}
            atomic_write(self._path(MANIFEST), lambda file: file.write(json_bytes(manifest)))
            self._pending.clear()

    def _verified(self, name: str) -> tuple[bytes | None, str | None]:
        entry = self._files.get(name)
        if entry is None:
            return None, "not committed"
        try:
            with open(self._path(name), "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None, "missing"
        except OSError as error:
            return None, f"unreadable ({error})"
        if len(data) != entry["bytes"]:
            return None, f"truncated or altered ({len(data)} bytes, {entry['bytes']} committed)"
        if _sha256(data) != entry["sha256"]:
            return None, "altered (SHA-256 differs from the manifest)"
        return data, None

    def problem(self, name: str) -> str | None:
        """Why a committed file cannot be used (missing, truncated, altered), or None."""
        return self._verified(name)[1]

    def corrupted(self) -> dict[str, str]:
        """Committed file -> its problem, for every committed file that fails verification."""
        problems = {name: self.problem(name) for name in self.files}
        return {name: problem for name, problem in problems.items() if problem is not None}

    def read(self, name: str) -> bytes:
        """The bytes of a committed file, verified against the manifest."""
        data, problem = self._verified(name)
        if problem is not None:
            raise CorruptedFileError(f"{os.path.join(self.directory, name)}: {problem}")
        return data

    def read_json(self, name: str):
        return json.loads(self.read(name))

    def read_arrays(self, name: str) -> dict:
        with np.load(io.BytesIO(self.read(name)), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}

    def forget(self, name: str) -> None:
        """Drops `name` from the manifest (at the next commit); the file stays, unused."""
        self._files.pop(name, None)
        self._pending[name] = None


def _acquire_lock(path: str):
    """An open lock file holding an exclusive `flock`, or None where nothing can be locked
    (a read-only directory: no writer to wait for; a system without `fcntl`)."""
    try:
        file = open(path, "ab")
    except OSError:
        return None
    if fcntl is not None:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        except BaseException:
            file.close()
            raise
    return file
