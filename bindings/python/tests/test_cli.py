"""Tests of aam.cli: the command lines it builds and what it reads back (the aam executable
beside AAM_LIBRARY, as the test command builds both)."""

import json

import numpy as np

import pytest

import aam
from aam import cli

from test_aam import MODEL, REPO, TABLE, read_tsv


def test_keyword_options_become_flags():
    args = cli.command_line("train", table="t.biom", max_bp=90, quiet=True, resume=False,
                            group_column=None, devices=[0, 1])
    assert args[1:] == ["train", "--table", "t.biom", "--max-bp", "90", "--quiet",
                        "--devices", "0", "1"]


def test_read_metrics_flattens_each_epoch(tmp_path):
    lines = [{"epoch": 1, "lr": 0.1, "train": {"total": 2.5}, "validation": {"loss": 2.0}},
             {"epoch": 2, "lr": 0.05, "train": {"total": 1.5}, "validation": {"loss": 1.0}}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines) + "\n")
    assert aam.read_metrics(tmp_path) == [
        {"epoch": 1, "lr": 0.1, "train_total": 2.5, "validation_loss": 2.0},
        {"epoch": 2, "lr": 0.05, "train_total": 1.5, "validation_loss": 1.0},
    ]


def test_a_failing_command_raises_with_its_message(tmp_path):
    with pytest.raises(aam.CommandError) as e:
        aam.evaluate(model=MODEL, table=TABLE, metadata=tmp_path / "missing.tsv",
                     metadata_column="exposure_type", output=tmp_path / "out")
    assert "missing.tsv" in str(e.value) and e.value.returncode != 0


def test_evaluate_writes_its_tables(tmp_path):
    out = aam.evaluate(model=MODEL, table=TABLE, metadata=f"{REPO}/data/circadian-ihc/metadata.tsv",
                       metadata_column="exposure_type", split=f"{MODEL}/split.tsv",
                       output=tmp_path / "evaluation", bootstrap=10)
    rows = (out / "metrics.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:2] == ["metric", "value"]
    # The shipped model's recorded validation accuracy on its own split: 7 of 12 samples.
    accuracy = dict(r.split("\t")[:2] for r in rows[1:])["accuracy"]
    assert abs(float(accuracy) - 7 / 12) < 1e-12


def test_a_small_study_and_its_trials(tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(f"""
command = "train"
trials = 2
sampler = "random"
seed = 5
[pruner]
kind = "none"
[args]
table = "{TABLE}"
metadata = "{REPO}/data/circadian-ihc/metadata.tsv"
metadata-column = "exposure_type"
epochs = 2
embedding-dim = 8
attention-heads = 2
attention-layers = 1
max-bp = 40
token-limit = 16
batch-size = 8
[space]
lr = {{ log_uniform = [1e-4, 1e-2] }}
""")
    out = aam.tune(study=study, output=tmp_path / "study")
    rows = aam.read_study(out)
    assert [r["trial"] for r in rows] == [0, 1]
    for r in rows:
        losses = [l["validation_loss"] for l in aam.read_metrics(out / "trials" / f"{r['trial']:04d}")]
        assert r["state"] == "complete" and r["epochs"] == 2
        assert r["value"] == min(losses) and r["best_epoch"] == losses.index(min(losses)) + 1
        assert 1e-4 <= r["lr"] <= 1e-2
    # results.tsv holds the same values (Rust's shortest round-trip formatting).
    table = (out / "results.tsv").read_text().splitlines()
    assert [float(line.split("\t")[2]) for line in table[1:]] == [r["value"] for r in rows]


def test_a_model_conditioned_on_a_category_reads_it_from_the_metadata(tmp_path):
    metadata = f"{REPO}/data/circadian-ihc/metadata.tsv"
    run = aam.train(table=TABLE, metadata=metadata, metadata_column="exposure_type",
                    categorical_columns="cycle", embedding_dim=16, attention_layers=1,
                    attention_heads=2, max_bp=60, token_limit=16, epochs=1, quiet=True,
                    output=tmp_path / "run")
    export = aam.export(checkpoint=run, output=tmp_path / "export")
    cli_tsv = tmp_path / "predictions.tsv"
    cli.run("predict", model=export, table=TABLE, metadata=metadata, output=cli_tsv)
    want = read_tsv(cli_tsv)
    with aam.Model(export) as model:
        preds = model.predict_biom(TABLE, metadata=metadata)
        assert preds.sample_ids == [r["sample_id"] for r in want]
        classes = model.class_labels
        expected = np.array([[float(r[f"probability_{c}"]) for c in classes] for r in want])
        np.testing.assert_allclose(preds.probabilities, expected, atol=1e-5)
        # Every sample's cycle flipped (day <-> night): other probabilities.
        text = open(metadata).read().split("\n")
        col = text[0].split("\t").index("cycle")
        flipped = [text[0]]
        for line in text[1:]:
            if line:
                f = line.split("\t")
                f[col] = {"day": "night", "night": "day"}.get(f[col], f[col])
                line = "\t".join(f)
            flipped.append(line)
        (tmp_path / "flipped.tsv").write_text("\n".join(flipped))
        other = model.predict_biom(TABLE, metadata=tmp_path / "flipped.tsv")
        assert np.abs(other.probabilities - preds.probabilities).max() > 1e-6
        with pytest.raises(aam.AamError, match="conditioned on the metadata categories cycle"):
            model.predict_biom(TABLE)
        # From tokens: each sample's labels; the same tokens under day and night differ,
        # and an unseen label is the unknown category (index 0), as a missing one.
        assert model.categorical_columns == ["cycle"]
        assert model.category_index("cycle", "volcano") == 0
        assert {model.category_index("cycle", c) for c in ("day", "night")} == {1, 2}
        tokens = np.zeros((4, 2, model.info["token_width"]), np.int64)
        tokens[:, :, 0] = 5
        tokens[:, :, 1:40] = 3
        counts = np.full((4, 2), 10.0) if model.uses_counts else None
        by_label = model.predict_tokens(tokens, counts=counts,
                                        categories=[{"cycle": "day"}, {"cycle": "night"},
                                                    {"cycle": "volcano"}, {}])
        assert np.abs(by_label.probabilities[0] - by_label.probabilities[1]).max() > 1e-6
        np.testing.assert_array_equal(by_label.probabilities[2], by_label.probabilities[3])


def test_a_quantile_regressor_gives_one_column_per_level(tmp_path):
    run = aam.train(table=TABLE, metadata=f"{REPO}/data/circadian-ihc/metadata.tsv",
                    metadata_column="zt", loss_type="quantile", quantiles="0.25,0.75,0.5",
                    embedding_dim=16, attention_layers=1, attention_heads=2, max_bp=60,
                    token_limit=16, epochs=1, quiet=True, output=tmp_path / "run")
    export = aam.export(checkpoint=run, output=tmp_path / "export")
    with aam.Model(export) as model:
        preds = model.predict_biom(TABLE)
    np.testing.assert_array_equal(preds.quantile_levels, [0.25, 0.5, 0.75])
    assert preds.quantiles.shape == (46, 3) and np.isfinite(preds.quantiles).all()
    np.testing.assert_array_equal(preds.values[preds.has_value], preds.quantiles[preds.has_value, 1])


def test_a_regressor_of_several_columns_gives_one_column_each(tmp_path):
    run = aam.train(table=TABLE, metadata=f"{REPO}/data/circadian-ihc/metadata.tsv",
                    metadata_column="zt,timepoint", loss_config='{"timepoint": "mae"}',
                    embedding_dim=16, attention_layers=1, attention_heads=2, max_bp=60,
                    token_limit=16, epochs=1, quiet=True, output=tmp_path / "run")
    export = aam.export(checkpoint=run, output=tmp_path / "export")
    cli_tsv = tmp_path / "predictions.tsv"
    cli.run("predict", model=export, table=TABLE, output=cli_tsv)
    want = read_tsv(cli_tsv)
    with aam.Model(export) as model:
        preds = model.predict_biom(TABLE)
    assert preds.target_columns == ["zt", "timepoint"]
    expected = np.array([[float(r[f"prediction_{c}"]) for c in preds.target_columns] for r in want])
    np.testing.assert_allclose(preds.targets, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(preds.values, preds.targets[:, 0])
