r"""Distillation from the full-precision twin: the teacher and the checks that it fits (DESIGN §6.9).

As BinaryBERT and BiBERT do, a binarized student learns from a trained
full-precision model of the same task.  Each batch, the teacher (in eval mode,
no dropout, no gradient) gives its outputs; every student exit i learns from

    t_i = z_N^teacher          distill_from = "last" (the default)
    t_i = z_i^teacher          distill_from = "matching" (the teacher has as many blocks)

through the loss of ``beexnp.exit_loss.MultiExitLoss``.  The student must read
the same token ids as the teacher, so a run with a teacher uses the teacher's
tokenizer.  With honest selection (``select_on="heldout"``) the teacher must
have been trained without the same held-out rows, else they would leak into
the student through its soft targets.
"""
from beexnp.checkpoint import open_checkpoint
from beexnp.config import as_trained

HELDOUT_FIELDS = ("select_on", "heldout_fraction", "heldout_seed", "heldout_unit", "train_subset")


class Teacher:
    """``teacher(ids, mask)`` -> N arrays (B, C): the target of each student exit.

    Not a ``Module``: held by the objective, its weights are nobody's parameters."""

    def __init__(self, model, num_exits, distill_from="last"):
        if distill_from not in ("last", "matching"):
            raise ValueError(f"distill_from must be 'last' or 'matching', got {distill_from!r}")
        if distill_from == "matching" and len(model.blocks) != num_exits:
            raise ValueError(f"distill_from='matching' needs a teacher with as many blocks as the student: "
                             f"teacher {len(model.blocks)}, student {num_exits}")
        self.model, self.num_exits, self.distill_from = model.eval(), num_exits, distill_from

    def __call__(self, ids, mask):
        outputs = self.model.forward(ids, mask)                            # N_teacher x (B, C), eval mode
        return outputs if self.distill_from == "matching" else [outputs[-1]] * self.num_exits


def load_teacher(cfg, task, tokenizer=None):
    """(teacher model, its tokenizer) from the checkpoint ``cfg.teacher``, after checking that it fits
    the run described by the TrainConfig ``cfg`` on ``task``; a clear ValueError says what does not."""
    saved = open_checkpoint(cfg.teacher).require("task", "tokenizer")     # read and checked once
    model, card = saved.model(), saved.raw
    where = f"teacher {cfg.teacher}"
    if saved.card.task != task:
        raise ValueError(f"{where} was trained on {saved.card.task.name!r}, this run is {task.name!r}")
    teacher_tokenizer = saved.card.tokenizer
    if tokenizer is not None and tokenizer.state_dict() != teacher_tokenizer.state_dict():
        raise ValueError(f"{where}: its tokenizer ({len(teacher_tokenizer)} tokens) differs from this run's "
                         f"({len(tokenizer)} tokens); the student must read the teacher's token ids")
    if cfg.select_on == "heldout":
        theirs = dict({"select_on": "dev"}, **as_trained(card.get("train_config", {})))   # older: selected on dev
        differ = [f"{k}: teacher {theirs.get(k)!r}, this run {getattr(cfg, k)!r}"
                  for k in HELDOUT_FIELDS if theirs.get(k) != getattr(cfg, k)]
        if differ:
            raise ValueError(f"{where} was not trained on the same training rows with the same held-out slice "
                             f"(select_on='heldout' needs that, else the held-out rows leak): " + "; ".join(differ))
    return model, teacher_tokenizer
