"""Experiment tracking of `aam train` read back with the tools' own Python packages.

Usage: check_tracking.py AAM_BINARY WORK_DIR

Starts a real MLflow tracking server on loopback (SQLite store, artifacts served by the
server), trains the example table for two epochs with `--tensorboard --mlflow-uri`, then
resumes it for a third, and checks:

- TensorBoard (the `tensorboard` package's EventAccumulator): one `train_step/<term>` and
  `learning_rate` value per optimizer step; the learning rate equals `metrics.jsonl`'s
  (the rate at an epoch's end is the next step's); every epoch's `train/` and
  `validation/` value equals `metrics.jsonl`'s; a histogram per weight tensor whose count,
  minimum, maximum and sum equal the last epoch's `last.safetensors`; the configuration
  text holds `config.json`.
- MLflow (`mlflow.MlflowClient`): one run over both invocations, FINISHED; params equal
  `config.json`'s values; the metric histories equal `metrics.jsonl`; the artifacts
  `config.json`, `model.safetensors` (byte for byte), `metrics.jsonl`, `split.tsv` and the
  training-curve plots.
- An unreachable server stops `aam train` before training with a message naming it.
"""

import json
import math
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data" / "circadian-ihc"
SMALL = [
    "--embedding-dim", "16", "--attention-heads", "2", "--attention-layers", "1",
    "--max-bp", "90", "--token-limit", "32", "--batch-size", "8", "--seed", "1",
    "--lr", "3e-3", "--quiet",
]
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def close(a, b, rel=1e-5):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-6)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow(work):
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    log = open(work / "mlflow-server.log", "w")
    server = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
         "--artifacts-destination", str(work / "mlflow-artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=work,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit(f"mlflow server exited with {server.returncode}; see {work / 'mlflow-server.log'}")
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                if r.status == 200:
                    return server, uri
        except OSError:
            time.sleep(0.5)
    server.kill()
    sys.exit(f"mlflow server did not answer on {uri} within 120 s")


def train(aam, output, uri, epochs, resume):
    cmd = [aam, "train", "--table", str(DATA / "table.biom"), "--metadata",
           str(DATA / "metadata.tsv"), "--metadata-column", "exposure_type",
           "--output", str(output), "--epochs", str(epochs), *SMALL,
           "--tensorboard", "--mlflow-uri", uri, "--mlflow-experiment", "aam-ci",
           "--resume" if resume else "--overwrite"]
    subprocess.run(cmd, check=True)


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for key, info in header.items():
        assert info["dtype"] == "F32", info
        a, b = info["data_offsets"]
        out[key] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4")
    return out


def check_tensorboard(output, records):
    from tensorboard.backend.event_processing import event_accumulator

    logdir = output / "tensorboard"
    check(len(list(logdir.glob("events.out.tfevents.*"))) == 2, "one event file per invocation")
    acc = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    steps = records[-1]["step"]
    # The loss terms are logged per step; the training metric (accuracy or r2, computed
    # over the whole epoch) only per epoch.
    terms = sorted(t for t in records[-1]["train"] if t not in ("accuracy", "r2"))
    for term in terms:
        values = acc.Scalars(f"train_step/{term}")
        check([e.step for e in values] == list(range(1, steps + 1)),
              f"train_step/{term}: one value per optimizer step 1..{steps}")
    lr = {e.step: e.value for e in acc.Scalars("learning_rate")}
    check(sorted(lr) == list(range(1, steps + 1)), "learning_rate: one value per step")
    for r in records[:-1]:
        check(close(lr[r["step"] + 1], r["lr"]),
              f"learning_rate at step {r['step'] + 1} = metrics.jsonl's lr of epoch {r['epoch']}")
    for group in ("train", "validation"):
        for name in records[-1][group]:
            got = {e.step: e.value for e in acc.Scalars(f"{group}/{name}")}
            want = {r["step"]: r[group][name] for r in records}
            check(sorted(got) == sorted(want)
                  and all(close(got[s], want[s]) for s in want),
                  f"{group}/{name} per epoch = metrics.jsonl")
    weights = read_safetensors(output / "last.safetensors")
    check(sorted(tags["histograms"]) == sorted(f"weights/{k}" for k in weights),
          f"a histogram for each of the {len(weights)} weight tensors")
    for key, values in weights.items():
        h = acc.Histograms(f"weights/{key}")[-1]
        hv = h.histogram_value
        ok = (h.step == steps and hv.num == values.size and hv.min == float(values.min())
              and hv.max == float(values.max())
              and close(hv.sum, float(values.astype(np.float64).sum()), 1e-9)
              and sum(hv.bucket) == values.size)
        if not ok:
            check(False, f"histogram weights/{key} = last.safetensors")
    check(True, "histograms: count, min, max, sum of every tensor = last.safetensors")
    texts = acc.Tensors("config")
    config = json.loads((output / "config.json").read_text())
    text = texts[-1].tensor_proto.string_val[0].decode()
    embedded = json.loads(text.split("```json\n")[1].split("\n```")[0])
    check(embedded == config, "config text = config.json")


def flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else k, v, out)
    elif value is not None:
        out[prefix] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def check_mlflow(uri, output, records):
    import mlflow

    run_id = json.loads((output / "mlflow_run.json").read_text())["run_id"]
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    check(run.info.status == "FINISHED", f"run {run_id} FINISHED")
    check(len(client.search_runs([run.info.experiment_id])) == 1,
          "the resumed invocation continued the same run")
    config = {}
    flatten("", json.loads((output / "config.json").read_text()), config)
    params = run.data.params
    mismatched = [k for k, v in config.items() if params.get(k) != v]
    check(not mismatched, f"{len(config)} params = config.json ({mismatched[:3]})")
    check(params.get("train.epochs") == "2" and params.get("train.lr") == "0.003",
          "training options logged (first invocation's)")
    steps = records[-1]["step"]
    history = client.get_metric_history(run_id, "train_step/total")
    check(sorted(m.step for m in history) == list(range(1, steps + 1)),
          "train_step/total: one value per step")
    for name in records[-1]["validation"]:
        got = {m.step: m.value for m in client.get_metric_history(run_id, f"validation/{name}")}
        want = {r["step"]: r["validation"][name] for r in records}
        check(sorted(got) == sorted(want) and all(close(got[s], want[s], 1e-12) for s in want),
              f"validation/{name} = metrics.jsonl")
    names = {a.path for a in client.list_artifacts(run_id)}
    names |= {a.path for a in client.list_artifacts(run_id, "plots")}
    expected = {"config.json", "model.safetensors", "metrics.jsonl", "split.tsv",
                "plots/training_curves.png", "plots/training_curves.svg"}
    check(expected <= names, f"artifacts {sorted(expected)}")
    with tempfile.TemporaryDirectory() as d:
        local = client.download_artifacts(run_id, "model.safetensors", d)
        check(Path(local).read_bytes() == (output / "model.safetensors").read_bytes(),
              "model.safetensors artifact = the checkpoint's, byte for byte")


def check_unreachable(aam, work):
    port = free_port()  # nothing listens there
    out = subprocess.run(
        [aam, "train", "--table", str(DATA / "table.biom"), "--metadata",
         str(DATA / "metadata.tsv"), "--metadata-column", "exposure_type",
         "--output", str(work / "unreachable"), "--epochs", "1", *SMALL, "--overwrite",
         "--mlflow-uri", f"http://127.0.0.1:{port}"],
        capture_output=True, text=True)
    check(out.returncode != 0 and "cannot reach the MLflow server" in out.stderr
          and f"127.0.0.1:{port}" in out.stderr
          and not (work / "unreachable" / "metrics.jsonl").exists(),
          "an unreachable server stops the run before training, naming it")


def main():
    aam, work = sys.argv[1], Path(sys.argv[2]).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # A fresh server store and run: the checks count runs and event files.
    (work / "mlflow.db").unlink(missing_ok=True)
    for stale in ("mlflow-artifacts", "run", "unreachable"):
        shutil.rmtree(work / stale, ignore_errors=True)
    server, uri = start_mlflow(work)
    try:
        output = work / "run"
        train(aam, output, uri, epochs=2, resume=False)
        train(aam, output, uri, epochs=3, resume=True)
        records = [json.loads(l) for l in (output / "metrics.jsonl").read_text().splitlines()]
        check(len(records) == 3, "three epochs logged")
        check_tensorboard(output, records)
        check_mlflow(uri, output, records)
        check_unreachable(aam, work)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    if failures:
        sys.exit(f"{len(failures)} tracking checks failed")
    print("tracking: TensorBoard and MLflow checks passed")


if __name__ == "__main__":
    main()
