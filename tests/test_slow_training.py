"""Real training on real SST-2 (minutes, not seconds): run with `pytest -m slow`."""
import os
from pathlib import Path

import pytest

from beexnp.config import TrainConfig
from beexnp.train import Trainer

GLUE_DIR = os.environ.get("GLUE_DIR")
pytestmark = [pytest.mark.slow, pytest.mark.glue, pytest.mark.skipif(
    not GLUE_DIR or not (Path(GLUE_DIR) / "SST-2").is_dir(), reason="needs GLUE_DIR with SST-2")]


def test_default_binarized_model_reaches_80_percent_on_sst2_in_one_epoch(tmp_path):
    """The default config, one epoch of the whole training split (~4 min on two cores)."""
    trainer = Trainer(TrainConfig(task="sst2", epochs=1), {}, tmp_path / "run", progress=False)
    history = trainer.fit()
    per_exit = [m["accuracy"] for m in history[-1]["dev"]["dev"]]
    assert max(per_exit) >= 0.80, per_exit
