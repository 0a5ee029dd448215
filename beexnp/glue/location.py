"""Where the GLUE files are: an explicit path, else ``$GLUE_DIR``, else ``data/glue/``
(in the current directory, then in the project).

The GLUE directory holds one folder per task, named as the official zips
unpack them (``SST-2/``, ``CoLA/``, ``MRPC/`` ...).

* An explicit ``glue_dir`` is the only place looked at.
* Otherwise, in this order: ``$GLUE_DIR`` (when set), ``data/glue/``
  relative to the current directory, then ``<project>/data/glue/`` -- the
  checkout that holds the ``beexnp`` package -- when that is a different
  folder (notebooks run from ``notebooks/``, where ``./data/glue`` is not the
  one ``python -m beexnp download`` filled).  The first that holds the
  task's folder wins, so a read-only copy named by ``GLUE_DIR`` can be
  completed by tasks downloaded into ``data/glue/``.

When nothing is found the error (one line) names every place looked at and the
command that fetches the task into a folder the same command reads
(``download_command``, into ``download_dir``).  A task fetched on first use (``download.ensure_task``)
goes to ``download_dir``: the explicit path, else ``$GLUE_DIR``, else
``data/glue/`` -- the project's when the current directory is inside the
project, so that all of the places above find it.
"""
import os
import shlex
from pathlib import Path

from beexnp.glue.tasks import get_task

ENV_VAR = "GLUE_DIR"
DEFAULT_DIR = Path("data") / "glue"
PROJECT_DIR = Path(__file__).resolve().parent.parent.parent     # <project>/beexnp/glue/location.py


def project_glue_dir():
    """``data/glue`` in the project that holds the ``beexnp`` package."""
    return PROJECT_DIR / DEFAULT_DIR


def candidate_dirs(glue_dir=None):
    """The GLUE directories to try, in order, as (description, Path) pairs."""
    if glue_dir is not None:
        return [("the path given", Path(glue_dir))]
    places = []
    if os.environ.get(ENV_VAR):
        places.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    places.append((f"the default, in the current directory {Path.cwd()}", DEFAULT_DIR))
    if project_glue_dir() != DEFAULT_DIR.resolve():
        places.append(("the default, in the project", project_glue_dir()))
    return places


def download_dir(glue_dir=None):
    """Where a missing task is downloaded to, as a (description, Path) pair: ``glue_dir``, else
    ``$GLUE_DIR``, else ``data/glue`` -- the project's one when the current directory is inside
    the project (notebooks run from ``notebooks/``), else the current directory's."""
    if glue_dir is not None:
        return "the path given", Path(glue_dir)
    if os.environ.get(ENV_VAR):
        return f"${ENV_VAR}", Path(os.environ[ENV_VAR])
    cwd = Path.cwd().resolve()
    if cwd != PROJECT_DIR and cwd.is_relative_to(PROJECT_DIR):
        return "the default, in the project", Path(os.path.relpath(project_glue_dir(), cwd))
    return "the default", DEFAULT_DIR


def download_command(task, glue_dir, url=None):
    """The ``download`` command that fetches ``task`` into ``glue_dir``, to paste into a shell."""
    into = "" if Path(glue_dir) == DEFAULT_DIR else f" --dir {shlex.quote(str(glue_dir))}"
    return f"python -m beexnp download --tasks {task.name}{into}" + (f" --base-url {url}" if url else "")


def find_glue_dir(glue_dir=None, task=None):
    """The GLUE directory to read ``task`` from (or, without a task, the first
    candidate directory that exists).  Raises a one-line FileNotFoundError naming every
    place looked at and the download command into a folder this same call reads."""
    places = candidate_dirs(glue_dir)
    task = None if task is None else get_task(task)
    if glue_dir is not None and Path(glue_dir).exists() and not Path(glue_dir).is_dir():
        raise NotADirectoryError(f"the GLUE folder is not a folder ({glue_dir}): give --glue-dir a folder that "
                                 "holds the task's folder, or leave it out")
    looked = []
    for description, root in places:
        target = root if task is None else root / task.dir
        if target.is_dir():
            return root
        looked.append(f"{target} ({description})")
    what = "the GLUE directory" if task is None else f"the {task.dir} folder of GLUE task {task.name!r}"
    into = download_dir(glue_dir)[1]                    # a folder this same search reads
    fetch = download_command(task or get_task("sst2"), into)
    if task is None:
        fetch = fetch.replace("--tasks sst2", "--tasks sst2,cola")
    raise FileNotFoundError(
        f"could not find {what} (looked at: {'; '.join(looked)}): fetch it with: {fetch}, "
        f"or point ${ENV_VAR} (or --glue-dir) at a folder that holds it")
