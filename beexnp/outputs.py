"""Every file a command writes: refused when it would destroy what it should protect, then written whole.

One guard and one writer serve every command that writes (``export``, ``evaluate --json``, ``sweep``,
``train --out``, ``download --dir``, the experiment and table tools):

* ``guard_file(path, flag)`` / ``guard_folder(path, flag)``, after resolving symlinks, refuse a target
  inside a checkpoint folder (one holding ``checkpoint.json``: its next save replaces the whole folder),
  over a name a run owns in its output folder (``best``, ``last``, ``history.json``, ``.lock``, their
  aside and temporary copies), and a target that exists and is not what is written (a folder, a
  device such as ``/dev/null``, a FIFO, a socket for a file; a file for a folder).  They are cheap and
  called before any long work starts.
* ``atomic_write(path, write)`` writes into a temporary file in the target's own folder
  (``.NAME.tmp-PID-XXXX``), fsyncs it and renames it over the target: a reader sees the old file or
  the new one, never a part.  On any failure (a full disk, Ctrl-C, SIGTERM) the temporary file is
  removed; the leftovers of a killed command (whose PID is no longer alive) are removed by the next
  command that writes that name (``clean_leftovers``).  A failure is one line naming the path.
* ``interrupts_deferred()`` holds Ctrl-C, SIGTERM and SIGHUP while a few renames must happen together.
* ``diagnostics_never_fail()``: a stderr that cannot be written (closed, a full device) drops the progress
  bars and messages instead of failing the command (``Diagnostics``).

A message is ``<what is wrong> (<flag or path>): <what to do>`` (``problem``); ``main`` adds ``error:``.
"""
import contextlib
import errno
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
from pathlib import Path

CARD = "checkpoint.json"
LOCK = ".lock"
TMP_MARK = ".tmp-"
RUN_FILES = ("best", "last", "history.json")      # what a run writes into its output folder
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class UserError(ValueError):
    """A user's mistake: its text is the one message form, ``<what is wrong> (<flag or path>): <what to do>``,
    on one line (``main`` prints ``error: `` and it, status 1; any other exception is not a user's mistake)."""

    def __init__(self, what, where, fix):
        self.what, self.where, self.fix = (one_line(part) for part in (what, where, fix))
        if not (self.what and self.where and self.fix):
            raise TypeError(f"a user error needs what, where and fix, got {(what, where, fix)!r}")
        super().__init__(f"{self.what} ({self.where}): {self.fix}")


def problem(what, where, fix, kind=UserError):
    """The one message form, built in one place: a ``kind`` (``UserError`` or a subclass) to raise."""
    return kind(what, where, fix)


def reason(err):
    """Why an error happened, in words: an OSError's strerror (no path: the message names it), else its text."""
    return getattr(err, "strerror", None) or str(err)


def one_line(text):
    """``text`` with every run of whitespace (newlines included) made one space: a message on one line."""
    return " ".join(str(text).split())


class OutputRefused(UserError):
    """A target a command must not write: it would destroy something, or it cannot be a file there."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C raises KeyboardInterrupt, so that every path that cleans up
    after Ctrl-C (temporary files, training's save of ``last``) cleans up after them too."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class ReaderGone(Terminated):
    """stdout's reader went away (``| head -1``): the command stops as SIGPIPE stops a C program, cleaning up
    as after Ctrl-C, and ends quietly with status 128 + SIGPIPE (``Results``)."""

    def __init__(self):
        super().__init__(signal.SIGPIPE)


def signal_name(signum):
    return signal.Signals(signum).name


# ---- what the guard protects --------------------------------------------------------------
def aside_name(name):
    """The name a save sets the previous checkpoint aside under (``beexnp.checkpoint.aside``)."""
    return f".{name}.old"


def is_checkpoint(folder):
    return (Path(folder) / CARD).is_file()


def is_run_folder(folder):
    """A run's output folder: it holds a run's lock or one of its checkpoints (or their aside copies)."""
    folder = Path(folder)
    return (folder / LOCK).is_file() or any(is_checkpoint(folder / n) or is_checkpoint(folder / aside_name(n))
                                            for n in RUN_FILES if n != "history.json")


def run_owns(name):
    """True for a name a run writes, sets aside or stages in its output folder."""
    return name in RUN_FILES or name == LOCK or any(
        name == aside_name(n) or name.startswith(f".{n}{TMP_MARK}") for n in RUN_FILES)


def kind_of(path):
    """'a folder', 'a device', 'a FIFO', 'a socket', 'a file' or None (nothing there); not following a last link."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise problem(f"cannot look at the target ({err.strerror})", path,
                                    "choose another path", OutputRefused) from None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a file"


def protected(resolved):
    """Why writing at the resolved path ``resolved`` would destroy something, or None."""
    for place in (resolved, *resolved.parents):
        if is_checkpoint(place):
            return f"it is inside the checkpoint {place}, which its next save replaces whole"
        if place.name and run_owns(place.name) and is_run_folder(place.parent):
            return f"{place} belongs to the run in {place.parent}"
    return None


def where(flag, path):
    return f"{flag} {path}" if flag else str(path)


def resolved(path):
    """``path`` with every symlink followed (absolute); what a write there really changes."""
    return Path(os.path.realpath(Path(path).expanduser()))


def guard_file(path, flag=None):
    """The resolved path a file may be written at (``path`` as typed, for ``flag``); else a one-line OutputRefused."""
    if str(path).strip() == "":
        raise problem("the output path is empty", flag or "path", "give a file name", OutputRefused)
    real = resolved(path)
    kind = kind_of(real)
    if kind is not None and kind != "a file":
        fix = "give a file name inside it" if kind == "a folder" else "give the path of a regular file"
        raise problem(f"the output is {kind}, not a regular file" +
                                    (f" ({real})" if real != Path(path).absolute() else ""), where(flag, path), fix, OutputRefused)
    why = protected(real)
    if why:
        raise problem(f"refusing to write there: {why}", where(flag, path),
                                    "choose a path outside checkpoint folders and a run's files", OutputRefused)
    if kind == "a file" and read_only(real):
        raise problem("the file is read-only" + (f" ({real})" if real != Path(path).absolute() else ""),
                      where(flag, path), "make it writable (chmod u+w) to replace it, or choose another path",
                      OutputRefused)
    parent = real.parent
    parent_kind = kind_of(parent)
    if parent_kind != "a folder":
        what = "does not exist" if parent_kind is None else f"is {parent_kind}, not a folder"
        raise problem(f"the folder {parent} {what}", where(flag, path),
                                    "create the folder first, or choose another path", OutputRefused)
    if not writable(parent):
        raise problem(f"the folder {parent} is not writable", where(flag, path),
                                    "choose a folder you can write", OutputRefused)
    return real


def guard_input_file(path, flag=None):
    """An input file to read whole: refused (one line) when it is a folder, a device or a FIFO (reading a FIFO
    waits for a writer forever).  A missing file is left to the reader's own error."""
    kind = kind_of(resolved(path))
    if kind not in (None, "a file"):
        raise problem(f"the input is {kind}, not a regular file", where(flag, path),
                                    "give the path of a file", OutputRefused)
    return path


def guard_folder(path, flag=None, create=False):
    """The resolved folder outputs may be written into; refused (one line) when it is a file, a device, inside a
    checkpoint or a run's own file.  ``create``: make it (and its parents)."""
    if str(path).strip() == "":
        raise problem("the output folder is empty", flag or "path", "give a folder name", OutputRefused)
    real = resolved(path)
    kind = kind_of(real)
    if kind is not None and kind != "a folder":
        raise problem(f"the output folder is {kind}" +
                                    (f" ({real})" if real != Path(path).absolute() else ""), where(flag, path),
                                    "give the path of a folder (it is created if missing)", OutputRefused)
    why = protected(real)
    if why:
        raise problem(f"refusing to write there: {why}", where(flag, path),
                                    "choose a folder outside checkpoint folders and a run's files", OutputRefused)
    existing = next(p for p in (real, *real.parents) if p.exists())
    if kind_of(existing) != "a folder":
        raise problem(f"{existing} is {kind_of(existing)}, not a folder", where(flag, path),
                                    "choose another folder", OutputRefused)
    if not writable(existing):
        raise problem(f"the folder {existing} is not writable", where(flag, path),
                                    "choose a folder you can write", OutputRefused)
    if create:
        try:
            real.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise write_error(err, real) from None
    return real


def writable(folder):
    """True when ``folder`` (or, if it does not exist yet, its nearest existing parent) is a folder this process
    may write in and that is not marked read-only (no write bit for anyone: root could still write there, but
    it is someone's read-only copy)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder.is_dir() and not read_only(folder)


def read_only(path):
    """True when the existing ``path`` may not be written by this process or is marked read-only (no write bit for
    anyone): a file or folder someone protected, which a rename over it would replace all the same."""
    return not (os.access(path, os.W_OK) and path.stat().st_mode & 0o222)


# ---- written whole --------------------------------------------------------------------------
def umask():
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(folder):
    """Make a folder's entries (renames, new files) durable (POSIX; a no-op where folders cannot be opened)."""
    if os.name == "nt":                 # pragma: no cover
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path, write):
    """write(file object) into ``path`` (a new file), flushed and fsynced, mode 0666 less the umask."""
    with open(path, "xb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def temp_prefix(name):
    """The prefix of this process's temporary copies of ``name``: ``.NAME.tmp-PID-``."""
    return f".{name}{TMP_MARK}{os.getpid()}-"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:             # another user's: alive
        return True
    return True


def clean_leftovers(folder, name):
    """Remove the temporary copies of ``name`` in ``folder`` left by killed commands (their PID is gone, or
    they predate PIDs in the name); a live process's are left alone.  Returns the paths removed."""
    removed = []
    pattern = re.compile(re.escape(f".{name}{TMP_MARK}") + r"(?:(\d+)-)?")
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if not match or (match.group(1) and alive(int(match.group(1)))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


class Missing(UserError, FileNotFoundError):
    """Something a command reads is not there (a GLUE folder, a split's file): a user error, and a FileNotFoundError."""


class WriteFailed(UserError, OSError):
    """A write the system refused (a full disk, no permission): a user error naming the path."""


def write_error(err, path):
    """An OSError of a write as one line naming ``path`` and what to do."""
    fixes = {errno.ENOSPC: "free some space or write elsewhere", errno.EDQUOT: "free some space or write elsewhere",
             errno.EACCES: "choose a folder you can write", errno.EPERM: "choose a folder you can write",
             errno.EROFS: "choose a folder on a writable disk"}
    fix = fixes.get(err.errno, "check the disk and the path, then try again")
    one = problem(f"could not write: {err.strerror or err}", path, f"{fix}; nothing was written there", WriteFailed)
    one.errno = err.errno
    return one


def write_whole(path, write, shown=None):
    """write(file object) into a temporary file beside the (resolved) ``path``, fsynced, then renamed over it;
    unguarded: for a run's own files (``history.json``) and for ``atomic_write``.  ``shown``: the path named
    in a failure's message (default ``path``)."""
    path = Path(path)
    shown = shown or path
    clean_leftovers(path.parent, path.name)
    try:                                                  # a replaced file keeps its permissions; a new one: umask's
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), dir=path.parent)
    except OSError as err:
        raise write_error(err, shown) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise write_error(err, shown) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write(path, write, flag=None):
    """``write_whole`` at ``path`` once ``guard_file`` let it through: on failure the temporary file is removed and
    the previous file, if any, is unchanged.  Returns the resolved path written."""
    return write_whole(guard_file(path, flag), write, where(flag, path))


def write_text(path, text, flag=None):
    """``atomic_write`` of a str (UTF-8)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data), flag)


def save_figure(fig, path, dpi=120, flag=None):
    """A matplotlib figure saved whole to ``path`` (its format from the suffix, PNG by default)."""
    kind = Path(path).suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda f: fig.savefig(f, format=kind, dpi=dpi), flag)


# ---- signals -----------------------------------------------------------------------------------
@contextlib.contextmanager
def handlers(mapping):
    """Install ``{signal: handler}`` while the block runs and put the previous handlers back after; outside the
    main thread (where Python cannot set handlers) nothing is installed."""
    previous = {}
    try:
        for sig, handler in mapping.items():
            previous[sig] = signal.signal(sig, handler)
    except (ValueError, TypeError):     # not the main thread
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends, then deliver them to the handlers that were in
    place (Ctrl-C's default raises KeyboardInterrupt; a training loop's may just note it)."""
    caught = []
    try:
        with handlers({sig: lambda signum, frame: caught.append(signum) for sig in STOP_SIGNALS}):
            yield
    finally:
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


def raise_terminated(signum, frame):
    raise Terminated(signum)


def terminations_raise():
    """A block in which SIGTERM and SIGHUP raise ``Terminated`` (a KeyboardInterrupt) as Ctrl-C does; the
    previous handlers come back after.  Only in the main thread."""
    return handlers({sig: raise_terminated for sig in STOP_SIGNALS if sig != signal.SIGINT})


# ---- diagnostics -------------------------------------------------------------------------------
def to_null(stream):
    """Point ``stream``'s descriptor at the null device, so that what its buffer still holds cannot fail again
    when the interpreter flushes it at exit (status 120, "Exception ignored"); a stream without one is left."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)


class Diagnostics:
    """sys.stderr for progress bars and messages, that never fails the command: a write stderr cannot take
    (closed, ``2>&-``; a full device, ``2>/dev/full``; a reader gone) is dropped, and so is everything after
    it.  A command's work and its files never die of its diagnostics."""

    def __init__(self, stream):
        self.stream = stream                       # None: Python started with fd 2 closed

    def _attempt(self, act, fallback):
        if self.stream is not None:
            try:
                return act(self.stream)
            except (OSError, ValueError):           # ValueError: a closed file
                to_null(self.stream)
                self.stream = None
        return fallback

    def write(self, text):
        self._attempt(lambda s: s.write(text), None)
        return len(text)

    def flush(self):
        self._attempt(lambda s: s.flush(), None)

    def isatty(self):
        return self._attempt(lambda s: s.isatty(), False)

    @property
    def encoding(self):
        return getattr(self.stream, "encoding", None) or "utf-8"


class Results:
    """sys.stdout for a command's results.  A write whose reader has gone (EPIPE) raises ``ReaderGone``, so
    the command stops where it is and cleans up as after Ctrl-C; any other failure (a full device) is the
    command's error, in the one message form.  After either, stdout points at the null device and takes
    nothing more, so that nothing fails again at exit."""

    def __init__(self, stream):
        self.stream = stream                       # None once a write has failed: the rest goes nowhere

    def _attempt(self, act, fallback):
        if self.stream is None:
            return fallback
        try:
            return act(self.stream)
        except OSError as err:
            to_null(self.stream)
            self.stream = None
            if isinstance(err, BrokenPipeError):
                raise ReaderGone() from None
            raise problem("cannot write the results", "stdout", f"{reason(err)}; send them where there is room, "
                          "or to /dev/null to discard them") from None

    def write(self, text):
        return self._attempt(lambda s: s.write(text), len(text))

    def flush(self):
        self._attempt(lambda s: s.flush(), None)

    def __getattr__(self, name):                     # isatty, encoding, fileno, ... of the stream itself
        return getattr(self.stream, name)


@contextlib.contextmanager
def results_stream():
    """sys.stdout as ``Results`` while the block runs (every entry point's ``guarded``, which flushes it before
    it returns, so that a failure to deliver the last lines is the command's, and refuses a closed stdout).
    Every other way out (``--help``'s SystemExit, Ctrl-C, an error) flushes it too, its failure then silent:
    the command has already ended otherwise."""
    saved = sys.stdout
    sys.stdout = saved if saved is None else Results(saved)
    try:
        yield
    finally:
        if sys.stdout is not None:
            with contextlib.suppress(ReaderGone, UserError):
                sys.stdout.flush()
        sys.stdout = saved


@contextlib.contextmanager
def diagnostics_never_fail():
    """sys.stderr as ``Diagnostics`` while the block runs (every entry point's ``guarded``)."""
    saved = sys.stderr
    sys.stderr = Diagnostics(saved)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = saved
