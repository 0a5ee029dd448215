"""The run records of a results folder, read in one place for run.py (what is done, what a grid chose, how long
the campaign takes) and tables.py (what the tables report).

A record is ``<folder>/<name>.json``, one JSON object per run, written by ``run.py`` (or ``baseline_tfidf.py``
into ``baselines/``).  ``read_records`` checks every file before anything reads one: a file that is not such a
record (truncated, edited, a stray JSON file, a record copied under another name) is a one-line error naming it,
never a traceback, a silent zero or a row of nonsense.  It checks what every reader relies on, not every field a
table shows.  A folder holds the records of one kind of run only: ``--fast`` runs (tiny slices and models) or
real ones, never both, so that a pipeline check can never stand in for a measurement.
"""
import json
from pathlib import Path

from beexnp.card import is_int, is_number
from beexnp.glue import get_task
from beexnp.outputs import problem, protected, reason, resolved, write_text

SKIPPED = "skipped.json"            # what run.py writes beside its records: the runs it could not run, with why
NOT_RECORDS = (SKIPPED,)
FIX = "move the file out of the records folder (or delete it) and run that run again"
SKIPPED_FIX = FIX.replace("that run", "the runs")


def record_problem(record, stem):
    """What is wrong with ``record``, the JSON of file ``<stem>.json``, or None."""
    if not isinstance(record, dict):
        return f"a record is a JSON object, this is a {type(record).__name__}"
    for key in ("name", "group", "task", "variant", "metric"):
        if not isinstance(record.get(key), str) or not record[key]:
            return f"{key} must be a non-empty string, got {record.get(key, 'nothing')!r}"
    if record["name"] != stem:
        return f"the record of run {record['name']!r} is in the file of run {stem!r}"
    try:
        get_task(record["task"])
    except ValueError:
        return f"task {record['task']!r} is not a GLUE task"
    seed = record.get("seed")
    if not (is_int(seed) and seed >= 0):
        return f"seed must be an integer >= 0, got {seed!r}"
    if not isinstance(record.get("fast", False), bool):
        return f"fast must be true or false, got {record['fast']!r}"
    full = record.get("dev_full_depth")
    if not (isinstance(full, dict) and is_number(full.get(record["metric"]))):
        return f"dev_full_depth must hold the metric {record['metric']!r} as a finite number, got {full!r}"
    for key in ("run_seconds", "train_seconds", "size_ratio"):
        if key in record and not (is_number(record[key]) and record[key] >= 0):
            return f"{key} must be a finite number >= 0, got {record[key]!r}"
    return None


def read_records(folder, fast=None):
    """{run name: record} of every record in ``folder`` (``skipped.json`` aside), each checked
    (``record_problem``); ``fast`` (True or False): the kind of run the caller reads, and a record of the other
    kind is an error.  Either way the records must all be of one kind."""
    records = {}
    why = protected(resolved(folder))               # a checkpoint's card is no damaged record to delete
    if why:
        raise problem(f"not a records folder: {why}", folder, "give the folder run.py wrote its records to")
    try:
        paths = sorted(p for p in Path(folder).iterdir() if p.suffix == ".json" and p.name not in NOT_RECORDS)
    except OSError as err:
        raise problem(f"cannot list the records folder ({reason(err)})", folder,
                      "give --results a folder of run records that this user can read") from None
    for path in paths:
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as err:
            raise problem(f"cannot read a record ({reason(err)})", path, FIX) from None
        except json.JSONDecodeError as err:
            raise problem(f"a damaged record: not valid JSON ({err.msg}, line {err.lineno})", path, FIX) from None
        what = record_problem(record, path.stem)
        if what:
            raise problem(f"a damaged record: {what}", path, FIX)
        records[record["name"]] = record
    want = fast if fast is not None else next(iter(records.values()), {}).get("fast", False)
    odd = next((r for r in records.values() if r.get("fast", False) != want), None)
    if odd:
        raise problem(f"a {kind(not want)} run's record among {kind(want)} ones", Path(folder) / f"{odd['name']}.json",
                      "keep --fast records in a folder of their own (run.py --fast writes results/experiments-fast)")
    return records


def kind(fast):
    return "--fast" if fast else "real"


def read_skipped(folder):
    """{run name: why it was not run} of ``folder``'s ``skipped.json`` ({} without one); one error line if it is
    not such a map."""
    path = Path(folder) / SKIPPED
    if not path.exists():
        return {}
    try:
        skipped = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise problem(f"cannot read the list of skipped runs ({reason(err)})", path,
                      SKIPPED_FIX) from None
    if not (isinstance(skipped, dict) and all(isinstance(v, str) for v in skipped.values())):
        raise problem("the list of skipped runs must map run names to reasons", path, SKIPPED_FIX)
    return skipped


def write_skipped(folder, ran, skipped):
    """Update ``skipped.json``: the runs of ``ran`` (those a call looked at) leave it, those of ``skipped`` (each
    with why) enter it, the others keep their entries; a list left empty is removed."""
    before = read_skipped(folder)
    now = dict({name: why for name, why in before.items() if name not in ran}, **skipped)
    path = Path(folder) / SKIPPED
    if now and now != before:
        write_text(path, json.dumps(now, indent=1))
    elif not now and path.exists():
        path.unlink()
