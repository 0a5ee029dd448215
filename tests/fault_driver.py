"""Runs ``python -m beexnp`` with its checkpoint writes slowed down and announced, for the fault-injection
tests (tests/test_robustness.py): a test reads the announcements and kills this process with SIGKILL at
the moment it wants -- before a file of a save is written, before one of the two renames, after a step.

    python tests/fault_driver.py PAUSE train ...        # PAUSE: seconds to sleep before each write/rename

Announcements go to stdout, one line each, flushed: ``@@ write NAME``, ``@@ replace SRC DST``,
``@@ step N`` (N = steps done).  With ``FAULT_EVERY_WRITE=1`` every writer's steps are announced too (the
other commands' writers: ``beexnp.outputs.write_whole``, the downloader): ``@@ mkstemp NAME`` (a temporary
file is about to be made), ``@@ fsync NAME`` (its bytes are written, about to be made durable) and
``@@ rmtree NAME``.  Nothing else is changed: the run is the real command line's.
"""
import os
import shutil
import sys
import tempfile
import time

import beexnp.checkpoint as checkpoint
import beexnp.train as train
from beexnp.cli import main

PAUSE = float(sys.argv[1])


def say(event):
    print("@@ " + event, flush=True)


def announced(name, real):
    def wrapper(*args):
        say(name + " " + " ".join(os.path.basename(str(a)) for a in args[:2] if not callable(a)))
        time.sleep(PAUSE)
        return real(*args)
    return wrapper


checkpoint.write_file = announced("write", checkpoint.write_file)
checkpoint.os.replace = announced("replace", os.replace)          # this process only: the renames of a save
if os.environ.get("FAULT_EVERY_WRITE") == "1":
    real_mkstemp, real_fsync, real_rmtree = tempfile.mkstemp, os.fsync, shutil.rmtree

    def mkstemp(*args, **kwargs):
        say(f"mkstemp {kwargs.get('prefix', '')}")
        time.sleep(PAUSE)
        return real_mkstemp(*args, **kwargs)

    def fsync(fd):
        say(f"fsync {os.path.basename(os.readlink(f'/proc/self/fd/{fd}'))}")
        time.sleep(PAUSE)
        return real_fsync(fd)

    def rmtree(path, *args, **kwargs):
        say(f"rmtree {os.path.basename(str(path))}")
        time.sleep(PAUSE)
        return real_rmtree(path, *args, **kwargs)

    tempfile.mkstemp, os.fsync, shutil.rmtree = mkstemp, fsync, rmtree
real_step = train.Trainer.train_step


def train_step(self, *args):
    loss = real_step(self, *args)
    say(f"step {self.state['step'] + 1}")
    return loss


train.Trainer.train_step = train_step
sys.exit(main(sys.argv[2:]))
