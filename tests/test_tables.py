"""experiments/tables.py on tiny synthetic run records: the figures' numbers, when figures are drawn and linked,
and the cells of the held-out table.  No training and no GLUE data (the majority baseline is patched)."""
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))

import tables  # noqa: E402  (experiments/tables.py)

METRICS = {"sst2": ("accuracy",), "cola": ("mcc",), "mrpc": ("f1", "accuracy"), "stsb": ("pearson", "spearman")}
CHOSEN, OTHER = "lr0.001_dropout0.1", "lr0.002_dropout0.3"


def make_record(task="sst2", group="grid", variant="beexformer", seed=0, point=CHOSEN, per_exit=(0.7, 0.8),
                others=None, early=None, heldout=0.8, matched=None, split="heldout"):
    """A run record with the fields tables.py reads.  ``per_exit``: the main metric at each exit (the last one is
    full depth; its length the number of blocks); ``others``: {metric: value at every exit} of the task's other
    metrics; ``matched``: {criterion: dev metric, or None for no threshold within budget}."""
    names = METRICS[task]
    others = others or {k: 0.5 for k in names[1:]}
    exits = [{names[0]: v, **others} for v in per_exit]
    early = per_exit[-1] if early is None else early
    return dict(
        name=f"{task}-{variant}-{point}-seed{seed}", group=group, task=task, variant=variant, seed=seed, point=point,
        chosen_point=None, metric=names[0], model_config=dict(blocks=len(per_exit)),
        dev_full_depth=exits[-1], dev_per_exit=exits, best_exit=len(per_exit),
        early_exit=dict(criterion="fractional", delta=0.1, metrics={names[0]: early, **others}, mean_exit_block=1.5),
        flops=dict(full=2e6, early_exit=1e6, cut=0.5), size_ratio=1.5, sweep=[], train_seconds=60.0, epochs_run=2,
        selection=dict(split=split, score=heldout),
        matched=None if matched is None else dict(criteria=[
            dict(criterion=name, threshold=0.1, selection=dict(flops_cut=0.5),
                 report=None if value is None else dict(metric=value, flops_cut=0.5))
            for name, value in matched.items()]))


def grid(task, full_by_seed, **kw):
    """The grid's BEExformer on ``task`` (6 blocks): two points on seed 0 (CHOSEN wins on held-out), the other seeds
    at CHOSEN only; ``full_by_seed``: the chosen point's dev metric at full depth per seed (0.1 less at the other
    exits, 0.05 less under early exit)."""
    runs = [make_record(task, seed=s, per_exit=[v - 0.1] * 5 + [v], early=v - 0.05, **kw)
            for s, v in enumerate(full_by_seed)]
    return runs + [make_record(task, point=OTHER, heldout=0.1, per_exit=[0.0] * 6, **kw)]


def write(folder, records):
    """Each record into ``folder`` as <name>.json; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / f"{r['name']}.json").write_text(json.dumps(r))
    return folder


def mean_std(values):
    """(mean, std with ddof 1) × 100 of per-seed values: what a figure should plot for them."""
    v = 100 * np.asarray(values)
    return pytest.approx(v.mean()), pytest.approx(v.std(ddof=1))


@pytest.fixture(autouse=True)
def no_glue(monkeypatch):
    """A classification task's majority baseline reads GLUE: here it is 0.5 (STS-B's goes to the real function,
    which reads nothing for a regression task)."""
    real = tables.majority_baseline
    monkeypatch.setattr(tables, "majority_baseline", lambda task: real(task) if task == "stsb" else 0.5)


@pytest.fixture(autouse=True)
def undeclared(monkeypatch, tmp_path):
    """The synthetic grids here have two points, not the six experiments/runs.json declares: no runs file."""
    runs = tmp_path / "runs.json"
    runs.write_text("[]")
    monkeypatch.setattr(tables.selection, "RUNS", runs)


def depth_records():
    """The grid's BEExformer (6 blocks, 3 seeds), blocks2 with 3 seeds and blocks12 with one."""
    blocks2 = [make_record(group="depth", variant="blocks2", seed=s, point="", per_exit=(0.6, v), early=v - 0.02)
               for s, v in enumerate([0.70, 0.74, 0.75])]
    blocks12 = [make_record(group="depth", variant="blocks12", point="", per_exit=[0.5] * 11 + [0.9])]
    return grid("sst2", [0.80, 0.82, 0.87]) + blocks2 + blocks12


def gate_records():
    """SST-2: the grid's BEExformer, no_slfn (3 seeds) and forget_gates_only (1); CoLA: the grid's only."""
    no_slfn = [make_record(group="gates", variant="no_slfn", seed=s, point="", per_exit=(0.5, v))
               for s, v in enumerate([0.78, 0.79, 0.83])]
    forget = [make_record(group="gates", variant="forget_gates_only", point="", per_exit=(0.5, 0.81))]
    return grid("sst2", [0.80, 0.82, 0.87]) + grid("cola", [0.10, 0.20]) + no_slfn + forget


def criteria_records():
    """CoLA: 2 seeds with every criterion (patience over budget in seed 1); STS-B: the fractional rule only."""
    cola = [make_record("cola", seed=0, per_exit=(0.1, 0.12), matched=dict(
                fractional=0.10, entropy=0.11, maxprob=0.09, patience=0.13)),
            make_record("cola", seed=1, per_exit=(0.1, 0.16), matched=dict(
                fractional=0.14, entropy=0.12, maxprob=0.10, patience=None)),
            make_record("cola", point=OTHER, heldout=0.1, matched=dict(fractional=0.9))]
    stsb = [make_record("stsb", per_exit=(0.2, 0.3), matched=dict(fractional=0.25))]
    return cola + stsb


def test_depth_points_are_the_seeds_means_and_stds():
    points = tables.depth_points(depth_records())
    assert [(p["blocks"], p["full"].seeds) for p in points] == [(2, 3), (6, 3), (12, 1)]
    two, six, twelve = points
    assert (six["full"].mean, six["full"].std) == mean_std([0.80, 0.82, 0.87])     # the chosen point's seeds only
    assert (six["early"].mean, six["early"].std) == mean_std([0.75, 0.77, 0.82])
    assert (two["full"].mean, two["full"].std) == mean_std([0.70, 0.74, 0.75])
    assert (two["early"].mean, two["early"].std) == mean_std([0.68, 0.72, 0.73])
    assert six["per_exit"] == pytest.approx([100 * np.mean([0.70, 0.72, 0.77])] * 5 + [six["full"].mean])
    assert two["per_exit"] == pytest.approx([60, two["full"].mean])
    assert twelve["full"].mean == pytest.approx(90) and np.isnan(twelve["full"].std)   # one seed: no error bar
    assert len(twelve["per_exit"]) == 12 and twelve["metric"] == "accuracy"


def test_depth_points_need_a_depth_run():
    assert tables.depth_points(grid("sst2", [0.8, 0.82])) == []


def test_gate_bars_are_the_seeds_means_and_stds_and_skip_missing_variants():
    panels = tables.gate_bars(gate_records())
    assert [(p["task"], p["metric"]) for p in panels] == [("sst2", "accuracy"), ("cola", "mcc")]
    sst2, cola = panels
    assert [label for label, _ in sst2["bars"]] == ["all three gates", "no_slfn", "forget_gates_only"]
    (_, gates), (_, no_slfn), (_, forget) = sst2["bars"]
    assert (gates.mean, gates.std, gates.seeds) == (*mean_std([0.80, 0.82, 0.87]), 3)
    assert (no_slfn.mean, no_slfn.std, no_slfn.seeds) == (*mean_std([0.78, 0.79, 0.83]), 3)
    assert forget.mean == pytest.approx(81) and forget.seeds == 1
    assert [label for label, _ in cola["bars"]] == ["all three gates"]
    assert (cola["bars"][0][1].mean, cola["bars"][0][1].std) == mean_std([0.10, 0.20])
    assert tables.gate_bars(grid("sst2", [0.8]) + grid("cola", [0.1])) == []       # no gate variant: no study


def test_criteria_bars_are_the_matched_heldout_table_numbers():
    panels = tables.criteria_bars(criteria_records())
    assert [(p["task"], p["metric"]) for p in panels] == [("cola", "mcc"), ("stsb", "pearson")]
    cola, stsb = panels
    bars = dict(cola["bars"])
    assert list(bars) == ["fractional", "entropy", "maxprob", "patience"]
    assert (bars["fractional"].mean, bars["fractional"].std) == mean_std([0.10, 0.14])
    assert (bars["maxprob"].mean, bars["maxprob"].std) == mean_std([0.09, 0.10])
    assert bars["patience"] is None                                  # a seed found no threshold within budget
    assert (cola["full"].mean, cola["full"].std) == mean_std([0.12, 0.16])
    assert [name for name, _ in stsb["bars"]] == ["fractional"] and stsb["bars"][0][1].mean == pytest.approx(25)
    table = tables.matched_heldout_table(criteria_records())
    assert f"| cola | 0.1/0.1 (50.0%) | {tables.spread([0.10, 0.14])}, cut 50.0% |" in table
    assert "no threshold within budget" in table


FIGURES = {"depth": depth_records, "gates": gate_records, "criteria": criteria_records}


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_is_written_and_linked_only_when_its_records_exist(tmp_path, name):
    folder = write(tmp_path / "results", FIGURES[name]())
    assert tables.main(["--results", str(folder)]) == 0
    text = (folder / "TABLES.md").read_text()
    for other in FIGURES:
        drawn = other == name
        assert (f"]({other}.png)" in text) == drawn, other
        assert (folder / f"{other}.png").exists() == drawn, other
    assert text.count("![") == 1 and (folder / f"{name}.png").stat().st_size > 10_000
    assert "accuracy_flops.png" not in text                           # no run selected on dev: nothing to draw


def test_the_figures_sit_under_their_tables(tmp_path):
    gate_variants = [r for r in gate_records() if r["group"] == "gates"]
    folder = write(tmp_path / "results", depth_records() + criteria_records() + gate_variants)
    readme = tmp_path / "docs" / "README.md"
    readme.parent.mkdir()
    readme.write_text(f"intro\n{tables.START}\nold\n{tables.END}\n")
    assert tables.main(["--results", str(folder), "--results-readme", str(readme)]) == 0
    text = (folder / "TABLES.md").read_text()
    order = [text.index(s) for s in ("### Depth", "](depth.png)", "### The SLFN's gates", "](gates.png)",
                                      "### Exit criteria at matched FLOPs, thresholds", "](criteria.png)")]
    assert order == sorted(order)
    assert "](../results/depth.png)" in readme.read_text()           # the README links relative to itself


def test_mrpc_full_depth_cell_shows_accuracy_beside_f1():
    runs = [make_record("mrpc", seed=s, per_exit=(0.7, f1), others=dict(accuracy=acc))
            for s, (f1, acc) in enumerate([(0.77, 0.68), (0.79, 0.70), (0.80, 0.69)])]
    table = tables.honest_table(runs)
    accuracy = 100 * np.array([0.68, 0.70, 0.69])
    cell = f"{tables.spread([0.77, 0.79, 0.80])}; accuracy {accuracy.mean():.2f} ± {accuracy.std(ddof=1):.2f}"
    assert f"| {cell} |" in table


def test_majority_cell_is_a_dash_for_a_regression_task_and_the_baseline_otherwise():
    assert tables.majority_baseline("stsb") is None                  # no classes: there is no majority class
    table = tables.honest_table([make_record("stsb"), make_record("sst2")])
    stsb, sst2 = (next(line for line in table.splitlines() if line.startswith(f"| {t} |")) for t in ("stsb", "sst2"))
    assert stsb.endswith("| – |") and "spearman" in stsb
    assert sst2.endswith("| 50.00 |")                                # the (patched) baseline × 100
    by_dev = [make_record(t, variant=v, point="", split="dev") for t in ("stsb", "sst2")
              for v in ("beexformer", "full_precision")]
    main = tables.main_table(by_dev, {})
    assert "| stsb | pearson | – |" in main and "| sst2 | accuracy | 50.00 |" in main


def test_a_majority_cell_without_the_data_is_a_dash_and_says_so(monkeypatch, tmp_path, capsys):
    """Tables made where GLUE is not found would silently lose the majority column: they warn, once per task."""
    monkeypatch.undo()                                                 # the real baseline, not the fixture's 0.5
    monkeypatch.setenv("GLUE_DIR", str(tmp_path))                      # an empty GLUE folder
    tables.majority_baseline.cache_clear()
    try:
        assert tables.majority_cell("cola") == "–" and tables.majority_cell("cola") == "–"
    finally:
        tables.majority_baseline.cache_clear()
    err = capsys.readouterr().err
    assert err.count("warning: no majority class for cola") == 1 and "set GLUE_DIR" in err


def test_a_grid_with_a_declared_point_missing_chooses_nothing(tmp_path):
    runs = tmp_path / "declared.json"
    runs.write_text(json.dumps([dict(group="grid", tasks=["cola"], variants={"beexformer": {}},
                                     grid={"train.lr": [0.001, 0.002, 0.003], "model.dropout": [0.1, 0.3]})]))
    tables.selection.RUNS = runs                                    # the fixture puts it back
    records = grid("cola", [0.1, 0.2])                              # 2 of the 6 declared points
    assert tables.reported(records, "grid", "beexformer", "cola") == []
    with pytest.raises(LookupError, match="2 of 6 grid points"):
        tables.reported(records, "grid", "beexformer", "cola", strict=True)
    assert "| cola | BEExformer | not chosen yet: 2 of 6 grid points" in tables.honest_table(records)


def test_a_record_selected_on_another_score_is_refused():
    """An MRPC record whose held-out score is the best exit's F1 (the rule before DESIGN §9.2) is never mixed in."""
    record = make_record("mrpc", heldout=0.81)
    record["selection"]["per_exit"] = {"heldout": [dict(f1=0.81, accuracy=0.68), dict(f1=0.70, accuracy=0.75)]}
    with pytest.raises(ValueError, match="another score than mean"):
        tables.heldout_score(record)
    record["selection"]["score"] = (0.81 + 0.68) / 2               # the selection score of its best exit
    assert tables.heldout_score(record) == pytest.approx(0.745)


def test_the_point_is_chosen_on_seed_0_alone():
    """Seeds 1 and 2 at every point, where their mean would choose the other point: seed 0 still decides."""
    records = [make_record("cola", seed=0, point=CHOSEN, heldout=0.30), make_record("cola", seed=0, point=OTHER,
                                                                                     heldout=0.29)]
    records += [make_record("cola", seed=s, point=p, heldout=h) for s in (1, 2)
                for p, h in ((CHOSEN, 0.0), (OTHER, 0.5))]
    chosen = tables.reported(records, "grid", "beexformer", "cola")
    assert [(r["point"], r["seed"]) for r in chosen] == [(CHOSEN, 0), (CHOSEN, 1), (CHOSEN, 2)]


def test_records_of_the_replaced_slice_are_never_mixed_and_are_marked(monkeypatch):
    monkeypatch.setattr(tables, "majority_baseline", lambda task: 0.5)
    old = [make_record("cola", seed=s, point=p, heldout=h) for s, p, h in ((0, CHOSEN, 0.3), (0, OTHER, 0.2),
                                                                              (1, CHOSEN, 0.3))]
    assert [r["seed"] for r in tables.reported(old, "grid", "beexformer", "cola")] == [0, 1]
    assert "lr0.001_dropout0.1; held-out: rows, before issue 25" in tables.honest_table(old)
    new = [dict(make_record("cola", seed=0, point=p, heldout=h), selection=dict(split="heldout", score=h,
                                                                                unit="near-duplicate groups"))
           for p, h in ((CHOSEN, 0.1), (OTHER, 0.15))]
    chosen = tables.reported(old + new, "grid", "beexformer", "cola")           # the new slice alone chooses
    assert [(r["point"], r["seed"], r["selection"].get("unit")) for r in chosen] == [
        (OTHER, 0, "near-duplicate groups")]
    assert "before issue 25" not in tables.honest_table(old + new).split("| cola | BEExformer |")[1].split("\n")[0]


def test_the_reference_table_holds_the_baseline_and_the_published_rows(monkeypatch):
    monkeypatch.setattr(tables, "majority_baseline", lambda task: 0.68 if task == "mrpc" else None)
    baseline = dict(task="mrpc", model="TF-IDF + logistic regression", point=dict(ngrams=2, strength=0.1),
                    dev_full_depth=dict(f1=0.8429, accuracy=0.7598), selection=dict(unit="near-duplicate groups"))
    rows = dict(baseline, point=dict(ngrams=1, strength=1.0), selection=dict(unit="rows"))   # the old slice: left out
    text = tables.reference_table([make_record("mrpc", per_exit=(0.7, 0.8), others={"accuracy": 0.6})],
                                  [baseline, rows])
    assert "strength 1)" not in text
    assert "| mrpc | TF-IDF + logistic regression (this project; n-grams 1..2, strength 0.1) | no | held-out slice | " \
           "84.29 / 75.98 |" in text
    assert "| mrpc | GLUE paper, single-task BiLSTM | yes (GloVe) | dev | 85.1 / 77.9 |" in text
    assert "| mrpc | BEExformer (this project, mean of 1 seed) | no | held-out slice; held-out: rows, before issue 25 " \
           "| 80.00 / 60.00 |" in text
    assert "| cola | GPT-1 paper, Transformer w/o pre-training | no | dev | 18.9 |" in text


# ---- README's summary and the two READMEs' blocks ------------------------------------------------------
def summary_records():
    """SST-2: three seeds, 1.5× smaller, 30% FLOPs cut, early exit 0.05 below full depth; CoLA: two seeds, 3×,
    a 60% cut and early exit above full depth by less than a seed's spread; a binarized-embedding run on dev."""
    sst2 = grid("sst2", [0.80, 0.82, 0.87])
    cola = [make_record("cola", seed=s, per_exit=(0.1, v), early=e) for s, (v, e) in enumerate([(0.1, 0.2),
                                                                                               (0.3, 0.3)])]
    for r in sst2:
        r.update(size_ratio=1.5, flops=dict(full=2e6, early_exit=1.4e6, cut=0.3))
    for r in cola:
        r.update(size_ratio=3.0, flops=dict(full=2e6, early_exit=0.8e6, cut=0.6))
        r["selection"]["unit"] = tables.current_slice("cola")          # CoLA's runs on today's slice
    twin = [make_record("sst2", group="twin", variant="twin", seed=s, per_exit=(0.5, 0.79)) for s in range(3)]
    embeddings = make_record("sst2", group="ablation", variant="binarized_embeddings", point="", split="dev")
    embeddings["size_ratio"] = 22.5
    return sst2 + cola + twin + [embeddings]


def test_a_summary_cell_chosen_on_an_old_slice_is_marked(tmp_path):
    records = summary_records()
    for r in records:
        if r["task"] == "cola":
            del r["selection"]["unit"]                                  # chosen on single rows, before issue 25
    text = tables.summary(write(tmp_path / "results", records))
    assert "| cola | mcc | 50.00 | – | 20.00 ± 14.14† | 25.00 ± 7.07† | 60.0% | 3.00× |" in text
    assert tables.OLD_SLICE_NOTE in text
    assert tables.OLD_SLICE_NOTE not in tables.summary(write(tmp_path / "now", summary_records()))


def test_the_summary_is_the_records_and_the_claims_are_counted(tmp_path):
    text = tables.summary(write(tmp_path / "results", summary_records()))
    full, early = tables.spread([0.80, 0.82, 0.87]).split(" (")[0], tables.spread([0.75, 0.77, 0.82]).split(" (")[0]
    assert f"| sst2 | accuracy | 50.00 | {tables.spread([0.79] * 3).split(' (')[0]} | {full} | {early} | 30.0% | " \
           "1.50× |" in text
    assert "| cola | mcc | 50.00 | – | 20.00 ± 14.14 | 25.00 ± 7.07 | 60.0% | 3.00× |" in text
    assert text.startswith("From scratch (no pretrained weights), 2 GLUE tasks, 2–3 seeds each; ")
    claims = [line for line in text.splitlines() if re.match(r"\d\. ", line)]
    assert len(claims) == 3
    assert "not held with real embeddings, held with binarized ones" in claims[0]
    assert "1.50–3.00× with real embeddings (2 tasks); 22.50× with binarized embeddings" in claims[0]
    assert "met on 1 of 2 tasks — sst2 30.0%, cola 60.0%" in claims[1]
    assert "on 1 of 2 tasks, 0 of them by more than one standard deviation over seeds" in claims[2]
    assert "sst2 78.00 vs 83.00, cola 25.00 vs 20.00" in claims[2]


def test_a_rise_beyond_the_spread_is_counted(tmp_path):
    records = [make_record("cola", seed=s, per_exit=(0.1, v), early=v + 0.2) for s, v in enumerate([0.1, 0.12])]
    assert "on 1 of 1 tasks, 1 of them by more than one" in tables.accuracy_claim(records)
    one_seed = [make_record("cola", per_exit=(0.1, 0.1), early=0.5)]     # no spread to compare with: not counted
    assert "on 1 of 1 tasks, 0 of them" in tables.accuracy_claim(one_seed)


def test_main_writes_both_blocks_and_leaves_the_prose_alone(tmp_path):
    folder = write(tmp_path / "results", summary_records())
    readme, full = tmp_path / "README.md", tmp_path / "results" / "README.md"
    readme.write_text(f"# intro\n{tables.SUMMARY_START}\nold\n{tables.SUMMARY_END}\nafter\n")
    full.write_text(f"prose\n{tables.START}\nold\n{tables.END}\nnotes\n")
    assert tables.main(["--results", str(folder), "--readme", str(readme), "--results-readme", str(full)]) == 0
    assert readme.read_text() == (f"# intro\n{tables.SUMMARY_START}\n{tables.summary(folder)}"
                                  f"{tables.SUMMARY_END}\nafter\n")
    assert full.read_text() == f"prose\n{tables.START}\n{tables.build(folder)}{tables.END}\nnotes\n"
    assert tables.between_markers(full.read_text(), tables.START, tables.END) == tables.build(folder)


def test_a_readme_without_its_markers_is_a_one_line_error(tmp_path, capsys):
    folder = write(tmp_path / "results", summary_records())
    readme = tmp_path / "README.md"
    readme.write_text(f"{tables.START}\n{tables.END}\n")            # the full tables' markers, not the summary's
    assert tables.main(["--results", str(folder), "--readme", str(readme)]) == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: ") and "\n" not in message and tables.SUMMARY_START in message
    assert readme.read_text() == f"{tables.START}\n{tables.END}\n"


def test_the_targets_table_takes_three_seeds_on_the_current_slice_and_says_how_far_short():
    def runs(group, variant, values, unit="sentences", heldout=0.8):
        out = [make_record("sst2", group=group, variant=variant, seed=s, point="", per_exit=(0.1, v), heldout=heldout)
               for s, v in enumerate(values)]
        for r in out:
            r["selection"]["unit"] = unit
        return out
    records = (runs("grid", "beexformer", [0.80, 0.81, 0.82], heldout=0.85)  # held-out's pick
               + runs("bpe", "bpe", [0.84, 0.84, 0.84])                    # met, but picked on dev: the closest row
               + runs("distill", "distilled", [0.90, 0.90], heldout=0.99)  # two seeds: left out
               + runs("pretrain", "pretrained", [0.95] * 3, unit="rows", heldout=0.99))  # the replaced slice: left out
    table = tables.targets_table(records)
    bpe = "BEExformer, BPE subword tokens (at the BEExformer's point)"
    assert table.splitlines()[-1] == (f"| sst2 | accuracy ≥ 83 | accuracy 81.00 | {bpe} | accuracy 84.00 | met | "
                                      "BEExformer | accuracy 81.00 | 2.00 |")
    flipped = runs("grid", "beexformer", [0.80, 0.81, 0.82], heldout=0.7) + records[3:]      # held-out now picks BPE
    assert tables.targets_table(flipped).splitlines()[-1].endswith(f"| {bpe} | accuracy 84.00 | met |")
    short = tables.targets_table(records[:3])
    assert short.splitlines()[-1] == ("| sst2 | accuracy ≥ 83 | accuracy 81.00 | BEExformer | accuracy 81.00 | 2.00 | "
                                      "BEExformer | accuracy 81.00 | 2.00 |")
    mrpc = [make_record("mrpc", seed=s, point="", per_exit=(0.1, 0.80), others={"accuracy": 0.70}) for s in range(3)]
    for r in mrpc:
        r["selection"]["unit"] = tables.current_slice("mrpc")
    assert tables.targets_table(mrpc).splitlines()[-1].endswith("| accuracy 70.00 / f1 80.00 | 1.20 |")


def test_the_gap_table_sets_each_slice_held_out_score_beside_dev(monkeypatch):
    old = [make_record("cola", seed=s, point=p, per_exit=(0.1, d), heldout=h)            # no unit: single rows
           for s, p, h, d in ((0, CHOSEN, 0.30, 0.10), (0, OTHER, 0.20, 0.50), (1, CHOSEN, 0.34, 0.12))]
    new = [make_record("cola", seed=s, point=CHOSEN, per_exit=(0.1, d), heldout=h) for s, h, d in ((0, 0.1, 0.2),)]
    for r in new:
        r["selection"]["unit"] = tables.current_slice("cola")
    table = tables.gap_table(new + old, {"single rows": old})
    assert "| cola | BEExformer | mcc | single rows | 2 | 32.00 | 11.00 | +21.00 |" in table  # seeds 0, 1 at CHOSEN
    assert "| cola | BEExformer | mcc | near-duplicate groups | 1 | 10.00 | 20.00 | -10.00 |" in table
    assert tables.gap_table(old, {}).count("| cola |") == 0                           # an old slice alone: not today's
    assert "siamese" not in table                                                   # no siamese run: no siamese row


def test_the_gap_table_shows_a_second_model_once_it_has_runs_on_today_slice():
    def siamese(seed, heldout, dev, today):
        r = make_record("stsb", group="pairs", variant="siamese", seed=seed, point=CHOSEN, per_exit=(0.1, dev),
                        heldout=heldout)
        if today:
            r["selection"]["unit"] = tables.current_slice("stsb")
        return r
    old = [siamese(0, 0.30, 0.20, False)]
    assert "siamese" not in tables.gap_table(old, {"single rows": old})                 # before alone: not shown
    table = tables.gap_table(old + [siamese(0, 0.55, 0.61, True)], {"single rows": old})
    assert "| stsb | BEExformer, siamese pairs | pearson | single rows | 1 | 30.00 | 20.00 | +10.00 |" in table
    assert f"| stsb | BEExformer, siamese pairs | pearson | {tables.current_slice('stsb')} | 1 | 55.00 | 61.00 | " \
           "-6.00 |" in table


def test_the_calibration_table_is_the_seeds_shifts_and_held_out_scores():
    runs = [make_record("sst2", seed=s, point="") for s in range(3)]
    for r, shift, before, after in zip(runs, (0.1, 0.3, 0.5), (0.50, 0.52, 0.54), (0.60, 0.62, 0.64)):
        r["calibration"] = dict(exit=2, shift=[0.0, shift], score_before=before, score_after=after)
    assert tables.calibration_table(runs).splitlines()[-1] == "| sst2 | 3 | 0.30 ± 0.20 | 52.00 | 62.00 |"
    assert tables.calibration_table(runs[:1]).splitlines()[-1] == "| sst2 | 1 | 0.10 | 50.00 | 60.00 |"
    for r in runs:
        del r["calibration"]
    assert len(tables.calibration_table(runs).splitlines()) == 2                        # none calibrated: no row
