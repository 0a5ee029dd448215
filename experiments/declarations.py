"""The campaign's declared runs: experiments/runs.json's groups, each expanded into one run per task, variant,
grid point and seed (``expand``), for run.py and the tests that read what is declared."""
import json
from pathlib import Path

from selection import SELECTION_SEED, grid_points


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
                               model=dict(spec.get("model", {}), **overrides.get("model", {})),
                               train=dict(spec.get("train", {}), **spec.get("task_train", {}).get(task, {}),
                                          **overrides.get("train", {})),
                               from_best=spec.get("from_best"), teacher=spec.get("teacher"),
                               pretrain=dict(spec["pretrain"], **spec.get("task_pretrain", {}).get(task, {}))
                               if "pretrain" in spec else None)             # {}: pretrain with the run's settings
                    yield with_settings(run, settings)


def load_runs(path):
    """Every run the groups of the file ``path`` (runs.json) declare, in its order."""
    return [run for spec in json.loads(Path(path).read_text()) for run in expand(spec)]
