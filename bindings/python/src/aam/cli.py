"""Training and analysis from Python: the ``aam`` command-line tool, run as a subprocess.

Training lives in the ``aam`` executable (Burn), not in ``libaam`` (inference only), so
these functions build its command line from keyword arguments and run it:

    import aam
    run = aam.pretrain(table="table.biom", unifrac_matrix="unifrac.npy", output="pretrained",
                       epochs=10, seed=1)
    aam.train(table="table.biom", metadata="metadata.tsv", metadata_column="ph",
              pretrained_encoder=run, output="ph-model")
    aam.export(checkpoint="ph-model", output="ph-export")
    aam.Model("ph-export").predict_biom("new.biom")

A keyword ``max_bp=90`` becomes ``--max-bp 90``; ``True`` becomes a bare flag (``--quiet``),
``False``/``None`` are left out, a list repeats its values after one flag. Every command
and option is documented by ``aam <command> --help``.

The executable is ``AAM_CLI`` when set, else ``aam`` beside ``AAM_LIBRARY`` (a cargo
target directory holds both), else ``aam`` on ``PATH``.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path


class CommandError(RuntimeError):
    """An ``aam`` command exited with a non-zero status; ``stderr`` holds its message."""

    def __init__(self, args, returncode, stderr):
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "(no message)"
        super().__init__(f"`{' '.join(args)}` exited with status {returncode}: {last}")
        self.args_list = args
        self.returncode = returncode
        self.stderr = stderr


def executable():
    """Path of the ``aam`` executable that the functions of this module run.

    Raises FileNotFoundError naming the places looked at when none is found.
    """
    if os.environ.get("AAM_CLI"):
        return os.environ["AAM_CLI"]
    library = os.environ.get("AAM_LIBRARY")
    if library:
        beside = Path(library).resolve().parent / "aam"
        if beside.is_file():
            return str(beside)
    found = shutil.which("aam")
    if found:
        return found
    raise FileNotFoundError(
        "the aam executable was not found: set AAM_CLI to its path (cargo build -p aam-cli "
        "builds target/debug/aam), or put it on PATH"
    )


def command_line(command, **options):
    """The argument list of ``aam <command>`` with ``options`` as flags (see the module doc)."""
    args = [executable(), *command.split()]
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args.append(flag)
            args.extend(str(v) for v in value)
        else:
            args.extend([flag, str(value)])
    return args


def run(command, **options):
    """Runs ``aam <command>`` with ``options`` and returns its standard output (text).

    Progress and warnings (standard error) are passed through. Raises CommandError when the
    command fails (bad input is reported by the command itself, naming the file and the fix).
    """
    args = command_line(command, **options)
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.stderr:
        print(done.stderr, end="")
    if done.returncode != 0:
        raise CommandError(args, done.returncode, done.stderr)
    return done.stdout


def _with_output(command, options):
    if "output" not in options:
        raise TypeError(f"aam {command} needs output=DIR")
    run(command, **options)
    return Path(options["output"])


def pretrain(**options):
    """``aam pretrain``: self-supervised pretraining on UniFrac distances and masked
    nucleotides. Returns the checkpoint directory (``output``)."""
    return _with_output("pretrain", options)


def train(**options):
    """``aam train``: fine-tuning on a metadata column (regression or classification).
    Returns the checkpoint directory (``output``)."""
    return _with_output("train", options)


def export(**options):
    """``aam export``: a checkpoint as ``model.safetensors``, ``model.onnx`` and the split
    graphs, loadable by :class:`aam.Model`; ``checkpoint=[a, b, …]`` writes an ensemble of
    them (``member-K/`` and ``ensemble.json``), which :class:`aam.Model` loads as one model
    averaging its members. Returns the export directory (``output``)."""
    return _with_output("export", options)


def evaluate(**options):
    """``aam evaluate``: metrics with bootstrap confidence intervals, per-sample errors and
    plots. Returns the output directory."""
    return _with_output("evaluate", options)


def importance(**options):
    """``aam importance``: per-ASV importance (integrated gradients, pooling weights or
    permutation). Returns the output directory."""
    return _with_output("importance", options)


def attention(**options):
    """``aam attention``: attention weights of chosen samples as TSV tables and heatmaps.
    Returns the output directory."""
    return _with_output("attention", options)


def tune(**options):
    """``aam tune``: hyper-parameter search over ``train`` or ``pretrain`` from a TOML study
    file (``study=``); ``resume=True`` continues a stopped study. Returns the study directory
    (``output``); read its trials with :func:`read_study`."""
    return _with_output("tune", options)


def read_study(directory):
    """The trials of an ``aam tune`` study (its ``study.json``), one flat dict per trial in
    order: ``trial``, ``state`` (running, complete, pruned, failed), ``value`` (the best
    validation value of the study's metric, None before an epoch), ``best_epoch``,
    ``epochs``, ``seconds``, then every searched option under its name (``lr``,
    ``embedding-dim``, …)."""
    with open(Path(directory) / "study.json") as f:
        study = json.load(f)
    maximize = study["definition"].get("direction") == "maximize"
    rows = []
    for t in study["trials"]:
        values = [v for v in t["values"] if v == v]  # NaN-free
        best = (max if maximize else min)(values) if values else None
        rows.append({
            "trial": t["number"],
            "state": t["state"],
            "value": best,
            "best_epoch": t["values"].index(best) + 1 if best is not None else None,
            "epochs": len(t["values"]),
            "seconds": t["seconds"],
            **t["params"],
        })
    return rows


def read_metrics(checkpoint):
    """The per-epoch metrics of a training run (``metrics.jsonl`` of ``checkpoint``), one flat
    dict per epoch, in order: ``epoch``, ``lr``, ``seconds``, … and the nested training and
    validation figures as ``train_<name>`` and ``validation_<name>`` (``train_total``,
    ``validation_loss``, ``validation_accuracy``, ``validation_unifrac_mae``, …)."""
    rows = []
    with open(Path(checkpoint) / "metrics.jsonl") as f:
        for line in f:
            if not line.strip():
                continue
            row = {}
            for key, value in json.loads(line).items():
                if isinstance(value, dict):
                    row.update({f"{key}_{k}": v for k, v in value.items()})
                else:
                    row[key] = value
            rows.append(row)
    return rows
