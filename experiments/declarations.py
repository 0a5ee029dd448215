"""The campaign's declared runs: experiments/runs.json's groups, each expanded into one run per task, variant,
grid point and seed (``expand``), for run.py and the tests that read what is declared.

``load_runs`` checks the whole file before any run starts: its shape (``spec_problem``: each group's keys and
their types; a setting no run is built with, ``unused_setting``), every run's settings (the training and model
configs it will be built with, checked as ``train`` checks a --config file) and how the runs refer to each other
(``runs_problem``: unique names; ``from_best`` and ``teacher`` name another group that declares the run's task
and seed, a ``from_best`` group a grid chosen on the held-out rows).  A mistake is one line,
``error: <what> (--runs FILE): <fix>``, found before the first run trains, not when its run is reached hours
later.
"""
import json
import re
from pathlib import Path

from beexnp.card import is_int, is_number
from beexnp.config import TrainConfig, model_config_for
from beexnp.glue import get_task
from beexnp.outputs import UserError, guard_input_file, problem, reason
from selection import SELECTION_SEED, grid_points

SPEC_KEYS = {"group", "tasks", "variants", "grid", "seeds", "model", "train", "task_train", "from_best", "teacher",
             "pretrain", "task_pretrain"}
NAME = re.compile(r"[A-Za-z0-9_]+")             # a group's or variant's name: part of file names, so no / . - or space
SET_BY_RUN = ("task", "seed")                   # train settings every run sets itself (its task and seed)
SET_BY_GROUP = SET_BY_RUN + ("teacher",)        # ... and the one the group's "teacher" sets


def with_settings(run, settings):
    """``run`` with dotted settings ({"train.lr": 1e-3, "model.dropout": 0.3}) written into its sections."""
    run = dict(run, model=dict(run["model"]), train=dict(run["train"]))
    for key, value in settings.items():
        section, name = key.split(".")
        if section not in ("model", "train"):
            raise ValueError(f"grid key {key!r} must start with 'model.' or 'train.'")
        run[section][name] = value
    return run


def expand(spec):
    """The runs of one group in runs.json: one per task x variant x grid point x seed."""
    for task in spec["tasks"]:
        for variant, overrides in spec["variants"].items():
            for point, settings in grid_points(spec.get("grid")):
                for seed in spec.get("seeds", [SELECTION_SEED]):
                    run = dict(name=f"{task}-{variant}{'-' + point if point else ''}-seed{seed}", group=spec["group"],
                               task=task, variant=variant, point=point, settings=settings, seed=seed,
                               model={**spec.get("model", {}), **overrides.get("model", {})},
                               train={**spec.get("train", {}), **spec.get("task_train", {}).get(task, {}),
                                      **overrides.get("train", {})},                 # the variant's wins
                               from_best=spec.get("from_best"), teacher=spec.get("teacher"),
                               pretrain={**spec["pretrain"], **spec.get("task_pretrain", {}).get(task, {})}
                               if "pretrain" in spec else None)             # {}: pretrain with the run's settings
                    yield with_settings(run, settings)


def load_runs(path):
    """Every run the groups of the file ``path`` (runs.json) declare, in its order; a ``UserError`` (one line,
    naming ``--runs path``) for the first thing wrong with the file."""
    where = f"--runs {path}"
    try:
        specs = json.loads(Path(guard_input_file(path, "--runs")).read_text())   # a FIFO or device: refused
    except (OSError, UnicodeDecodeError) as err:
        raise problem(f"cannot read the experiment list ({reason(err)})", where,
                      "give --runs a JSON file such as experiments/runs.json") from None
    except json.JSONDecodeError as err:
        raise problem(f"not valid JSON ({err.msg}, line {err.lineno})", where, "fix the file") from None
    what = shape_problem(specs)
    if what:
        raise problem(what, where, "see experiments/runs.json for the form of a group")
    runs = [run for spec in specs for run in expand(spec)]
    what = runs_problem(runs, specs)
    if what:
        raise problem(what[0], where, what[1])
    return runs


def shape_problem(specs):
    """What is wrong with the form of a list of group specs, or None."""
    if not (isinstance(specs, list) and specs):
        return "the experiment list must be a non-empty JSON list of groups"
    groups = []
    for i, spec in enumerate(specs):
        what = spec_problem(spec)
        if what:
            name = spec.get("group") if isinstance(spec, dict) and isinstance(spec.get("group"), str) else f"#{i + 1}"
            return f"group {name}: {what}"
        if spec["group"] in groups:
            return f"group {spec['group']} is declared twice"
        groups.append(spec["group"])
    return None


def is_dict_of_dicts(value):
    return isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())


def spec_problem(spec):
    """What is wrong with one group's spec (its keys and their types), or None."""
    if not isinstance(spec, dict):
        return f"a group is a JSON object, got {type(spec).__name__}"
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        return f"unknown key {unknown[0]!r} (the keys are {', '.join(sorted(SPEC_KEYS))})"
    if not (isinstance(spec.get("group"), str) and NAME.fullmatch(spec["group"])):
        return f"group must be a name of letters, digits and _, got {spec.get('group', 'nothing')!r}"
    tasks = spec.get("tasks")
    if not (isinstance(tasks, list) and tasks and all(isinstance(t, str) for t in tasks)):
        return f"tasks must be a non-empty list of task names, got {tasks!r}"
    for task in tasks:
        try:
            if get_task(task).name != task:
                return f"task {task!r} must be written as {get_task(task).name!r}"
        except ValueError as err:
            return getattr(err, "what", str(err))
    if len(set(tasks)) != len(tasks):
        return "tasks names a task twice"
    variants = spec.get("variants")
    if not (isinstance(variants, dict) and variants and is_dict_of_dicts(variants)):
        return f"variants must be a non-empty object of {{name: {{\"model\": ..., \"train\": ...}}}}, got {variants!r}"
    for name, overrides in variants.items():
        if not NAME.fullmatch(name):
            return f"variant {name!r}: a name is letters, digits and _"
        odd = sorted(set(overrides) - {"model", "train"})
        if odd or not is_dict_of_dicts(overrides):
            return f"variant {name}: only 'model' and 'train' objects, got {overrides!r}"
    for key in ("model", "train", "pretrain"):
        if key in spec and not isinstance(spec[key], dict):
            return f"{key} must be a JSON object, got {spec[key]!r}"
    for key in ("task_train", "task_pretrain"):
        if key in spec:
            if not is_dict_of_dicts(spec[key]):
                return f"{key} must map tasks to JSON objects, got {spec[key]!r}"
            stray = sorted(set(spec[key]) - set(tasks))
            if stray:
                return f"{key} names {stray[0]!r}, which is not one of the group's tasks"
    if "task_pretrain" in spec and "pretrain" not in spec:
        return "task_pretrain needs pretrain"
    seeds = spec.get("seeds", [SELECTION_SEED])
    if not (isinstance(seeds, list) and seeds and all(is_int(x) and x >= 0 for x in seeds)) \
            or len(set(seeds)) != len(seeds):
        return f"seeds must be a non-empty list of distinct integers >= 0, got {seeds!r}"
    for key in ("from_best", "teacher"):
        ref = spec.get(key)
        if key in spec and not (isinstance(ref, dict) and set(ref) == {"group", "variant"}
                                and all(isinstance(v, str) for v in ref.values())):
            return f"{key} must be {{\"group\": G, \"variant\": V}}, got {ref!r}"
    return grid_problem(spec.get("grid")) or unused_setting(spec)


def unused_setting(spec):
    """A setting the group declares that no run is built with, or None: one the grid sweeps (set in the group's
    ``train``/``model``, a task's or a variant's), or a group's (or a task's) that every variant sets itself.
    Nobody writes a value meant to be lost; it is a mistake, most often in the other place."""
    grid = spec.get("grid") or {}
    variants = spec["variants"].values()
    for section in ("model", "train"):
        places = [(section, spec.get(section, {}))] + [(f"task_train.{t}", v) for t, v in
                                                       spec.get("task_train", {}).items() if section == "train"]
        for place, settings in places + [(f"variant {v}", o.get(section, {})) for v, o in spec["variants"].items()]:
            for name in settings:
                if f"{section}.{name}" in grid:
                    return f"{place} sets {name}, which the grid ({section}.{name}) sweeps: the grid's value wins"
        for place, settings in places:
            for name in settings:
                if all(name in o.get(section, {}) for o in variants):
                    return f"{place} sets {name}, which every variant sets itself: the group's value is never used"
        tasks = spec.get("task_train", {}) if section == "train" else {}
        for name in spec.get(section, {}):
            if all(name in tasks.get(t, {}) for t in spec["tasks"]):
                return f"{section} sets {name}, which every task's task_train sets: the group's value is never used"
    return None


def grid_problem(grid):
    """What is wrong with a group's grid ({"train.lr": [numbers], ...}), or None."""
    if grid is None:
        return None
    if not (isinstance(grid, dict) and grid):
        return f"grid must be a non-empty object of {{\"model.x\" or \"train.x\": [values]}}, got {grid!r}"
    for key, values in grid.items():
        section, _, name = key.partition(".")
        if section not in ("model", "train") or not NAME.fullmatch(name):
            return f"grid key {key!r} must be 'model.<setting>' or 'train.<setting>'"
        if section == "train" and name in SET_BY_RUN:
            return f"grid key {key!r}: every run sets its own {name} (use the group's tasks or seeds)"
        if not (isinstance(values, list) and values and all(map(is_number, values))):
            return f"grid {key} must be a non-empty list of finite numbers, got {values!r}"
        shown = [f"{v:g}" for v in values]
        if len(set(shown)) != len(shown):
            return f"grid {key} holds two values that name the same point ({', '.join(shown)})"
    return None


def runs_problem(runs, specs):
    """(what, fix) for the first run whose settings do not make a run, or whose name or references clash;
    None when every run is sound."""
    seen, variants = {}, {s["group"]: set(s["variants"]) for s in specs}
    for run in runs:
        if run["name"] in seen:
            return (f"run {run['name']} is declared twice (groups {seen[run['name']]} and {run['group']})",
                    "give one of the groups another variant name")
        seen[run["name"]] = run["group"]
        for key, seed in (("from_best", SELECTION_SEED), ("teacher", run["seed"])):
            ref = run[key]
            if not ref:
                continue
            if ref["variant"] not in variants.get(ref["group"], ()) or ref["group"] == run["group"]:
                return (f"group {run['group']}: {key} names variant {ref['variant']!r} of group {ref['group']!r}, "
                        "which is not declared (or is the group itself)", "name another group declared in the file "
                        "and one of its variants")
            if not any((r["group"], r["variant"], r["task"], r["seed"]) == (ref["group"], ref["variant"], run["task"],
                                                                            seed) for r in runs):
                return (f"run {run['name']} (group {run['group']}): its {key} group {ref['group']} declares no "
                        f"{ref['variant']} run on {run['task']} with seed {seed}",
                        f"add the task (and seed) to group {ref['group']}")
            target = next(s for s in specs if s["group"] == ref["group"])
            if key == "from_best":
                chooses = target.get("grid") and target.get("train", {}).get("select_on") == "heldout"
                if not chooses:
                    return (f"group {run['group']}: from_best names group {ref['group']}, which has no grid chosen "
                            "on the held-out rows", "name a group with a grid and select_on heldout")
                for swept in target["grid"]:
                    section, name = swept.split(".")
                    if name in run[section]:
                        return (f"group {run['group']} sets {swept}, which its from_best point ({ref['group']}) "
                                "sets: the point's value wins", f"leave {swept} out of group {run['group']}")
        if run["train"].keys() & set(SET_BY_GROUP):
            return (f"group {run['group']}: train sets {sorted(run['train'].keys() & set(SET_BY_GROUP))[0]}, which "
                    "every run sets itself", "use the group's tasks, seeds and teacher")
        try:
            cfg = TrainConfig.from_dict(dict(run["train"], task=run["task"], seed=run["seed"]))
            model_config_for(cfg, run["model"])
            if run["pretrain"] is not None:
                TrainConfig.from_dict({**run["train"], **run["pretrain"], "task": run["task"], "seed": run["seed"]})
        except UserError as err:
            return f"run {run['name']} (group {run['group']}): {err.what} ({err.where})", err.fix
    return None
