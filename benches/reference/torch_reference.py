#!/usr/bin/env python3
"""The reference PyTorch AAM's inference path, for side-by-side benchmarks with `aam bench`.

The modules follow the reference `SequencePredictor` / `SequenceEncoder` of the PyTorch AAM
(`jbk708/aam`) as specified in `shared/docs/reference-aam.md` §3: pre-LayerNorm
`nn.TransformerEncoderLayer`s (batch_first, norm_first, exact GELU) plus an extra LayerNorm
(eps 1e-6) per stack, attention pooling `softmax(w·h / sqrt(D))` + LayerNorm, all-padding ASV
rows skipped by the nucleotide transformer (gathered out, zeros scattered back), ASV chunks of
`asv_chunk_size` (the reference HEAD default, 256), NaN guards in the pooling. The state-dict
key names are the reference's, so `model.safetensors` written by `aam export` (or the golden
weights) load directly, and `check` verifies this script against the reference's own golden
forward-pass vectors before any timing is trusted.

  torch_reference.py check --golden ../shared/golden/small-regressor
  torch_reference.py bench --weights EXPORT/model.safetensors --tokens X.npy \
      [--iterations 3] [--threads 2]           # prints one JSON line
  torch_reference.py train-bench --inputs DIR [--iterations 3] [--threads 2]   # aam bench --train

Needs CPU `torch`, `numpy` and `safetensors` from PyPI (`benches/reference/requirements.txt`).
"""

import argparse
import json
import math
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open


class TransformerStack(nn.Module):
    """Reference `TransformerEncoder`: PyTorch's pre-norm layers + LayerNorm(eps 1e-6)."""

    def __init__(self, layers, heads, d, ffn, activation, dropout=0.0):
        super().__init__()
        act = nn.GELU() if activation == "gelu" else nn.ReLU()
        layer = nn.TransformerEncoderLayer(
            d_model=d, nhead=heads, dim_feedforward=ffn, dropout=dropout,
            activation=act, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d, eps=1e-6)

    def forward(self, x, mask):
        return self.norm(self.encoder(x, src_key_padding_mask=(mask == 0)))


class AttentionPooling(nn.Module):
    """Reference `AttentionPooling` (spec §3.4), with its NaN guards."""

    def __init__(self, d):
        super().__init__()
        self.query = nn.Linear(d, 1, bias=False)
        self.norm = nn.LayerNorm(d)
        self.scale = math.sqrt(d)

    def forward(self, h, mask):
        if torch.isnan(h).any():
            raise ValueError("NaN in the pooling input")
        scores = self.query(h).squeeze(-1) / self.scale
        all_padding = mask.sum(-1) == 0
        scores = scores.masked_fill(mask == 0, float("-inf"))
        alpha = torch.softmax(scores, dim=-1)
        alpha = alpha * mask
        alpha = alpha / (alpha.sum(-1, keepdim=True) + 1e-8)
        uniform = torch.full_like(alpha, 1.0 / alpha.shape[-1])
        alpha = torch.where(all_padding.unsqueeze(-1), uniform, alpha)
        if torch.isnan(alpha).any():
            raise ValueError("NaN in the pooling weights")
        pooled = (alpha.unsqueeze(-1) * h).sum(1)
        out = self.norm(pooled)
        if torch.isnan(out).any():
            raise ValueError("NaN in the pooling output")
        return out


class PositionEmbedding(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        self.position_embedding = nn.Embedding(n, d)

    def forward(self, x):
        return x + self.position_embedding.weight[: x.shape[1]].unsqueeze(0)


def ffn_of(c):
    return c.get("intermediate_size") or 4 * c["embedding_dim"]


def stack(c, name):
    return TransformerStack(c[f"{name}_num_layers"], c[f"{name}_num_heads"], c["embedding_dim"],
                            ffn_of(c), c[f"{name}_activation"], c.get("dropout", 0.0))


class ASVEncoder(nn.Module):
    """Reference `ASVEncoder` (spec §3.5), eval path without the nucleotide logits."""

    def __init__(self, c, asv_chunk_size):
        super().__init__()
        d = c["embedding_dim"]
        self.token_embedding = nn.Embedding(c["vocab_size"], d)
        self.position_embedding = PositionEmbedding(c["max_bp"] + 1, d)
        self.transformer = stack(c, "asv")
        self.attention_pooling = AttentionPooling(d)
        if c.get("predict_nucleotides"):
            self.nucleotide_head = nn.Linear(d, c["vocab_size"])
        self.chunk = asv_chunk_size

    def encode(self, tokens):
        b, s, l = tokens.shape
        flat = tokens.reshape(b * s, l)
        mask = (flat > 0).long()
        x = self.position_embedding(self.token_embedding(flat))
        valid = torch.where(mask.sum(-1) > 0)[0]
        out = torch.zeros_like(x)
        if len(valid) > 0:
            out = out.index_put((valid,), self.transformer(x[valid], mask[valid]))
        pooled = self.attention_pooling(out, mask).reshape(b, s, -1)
        logits = None
        if self.training and hasattr(self, "nucleotide_head"):
            logits = self.nucleotide_head(out).reshape(b, s, l, -1)
        return pooled, logits

    def forward(self, tokens):
        """ASV embeddings `[b, s, D]` and, in training mode with a nucleotide head, the
        nucleotide logits `[b, s, L, V]` (else None)."""
        s = tokens.shape[1]
        if self.chunk and s > self.chunk:
            parts = [self.encode(tokens[:, i:i + self.chunk]) for i in range(0, s, self.chunk)]
            logits = [p[1] for p in parts]
            return (torch.cat([p[0] for p in parts], dim=1),
                    None if logits[0] is None else torch.cat(logits, dim=1))
        return self.encode(tokens)


class SampleSequenceEncoder(nn.Module):
    def __init__(self, c, asv_chunk_size):
        super().__init__()
        self.asv_encoder = ASVEncoder(c, asv_chunk_size)
        self.sample_position_embedding = PositionEmbedding(c["token_limit"] + 5, c["embedding_dim"])
        self.sample_transformer = stack(c, "sample")

    def forward(self, tokens):
        mask = (tokens.sum(-1) > 0).long()
        a, logits = self.asv_encoder(tokens)
        a = torch.nan_to_num(a, nan=0.0) * mask.unsqueeze(-1)
        a = self.sample_position_embedding(a)
        h = torch.nan_to_num(self.sample_transformer(a, mask), nan=0.0) * mask.unsqueeze(-1)
        return h, mask, logits


class SequenceEncoder(nn.Module):
    def __init__(self, c, asv_chunk_size):
        super().__init__()
        self.sample_encoder = SampleSequenceEncoder(c, asv_chunk_size)
        self.encoder_transformer = stack(c, "encoder")
        self.attention_pooling = AttentionPooling(c["embedding_dim"])
        if c.get("encoder_type", "unifrac") != "unifrac":
            d = c["embedding_dim"]
            width = c.get("base_output_dim") or (1 if c["encoder_type"] == "faith_pd" else d)
            self.output_head = nn.Linear(d, width)

    def forward(self, tokens):
        s, mask, logits = self.sample_encoder(tokens)
        p = self.attention_pooling(self.encoder_transformer(s, mask), mask)
        return {"embeddings": p, "base_embeddings": s, "nuc_predictions": logits}, mask


class SequencePredictor(nn.Module):
    def __init__(self, c, asv_chunk_size):
        super().__init__()
        d = c["embedding_dim"]
        self.base_model = SequenceEncoder(c, asv_chunk_size)
        self.count_encoder = stack(c, "count")
        self.count_head = nn.Linear(d, 1)
        self.target_encoder = stack(c, "target")
        self.target_pooling = AttentionPooling(d)
        self.target_head = nn.Linear(d, c["out_dim"])
        self.is_classifier = c.get("is_classifier", False)

    def forward(self, tokens):
        out, mask = self.base_model(tokens)
        s = out["base_embeddings"]
        out["count_prediction"] = self.count_head(self.count_encoder(s, mask))
        t = self.target_head(self.target_pooling(self.target_encoder(s, mask), mask))
        out["target_prediction"] = F.log_softmax(t, dim=-1) if self.is_classifier else t
        return out


def load(weights_path, config=None, asv_chunk_size=256):
    """The model of `weights_path` (reference key names); its config from the `aam_config`
    metadata of an `aam export` file, or `config` (reference constructor arguments)."""
    with safe_open(weights_path, "pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    if config is None:
        if "aam_config" not in meta:
            sys.exit(f"{weights_path}: no aam_config metadata; pass --config")
        full = json.loads(meta["aam_config"])
        config = full["model"]
        predictor = full["kind"] == "predictor"
    else:
        predictor = any(k.startswith("base_model.") for k in state)
    model = (SequencePredictor if predictor else SequenceEncoder)(config, asv_chunk_size)
    missing, unexpected = model.load_state_dict(
        {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in state.items()},
        strict=False)
    if missing:
        sys.exit(f"{weights_path}: missing weights {missing[:5]}")
    if [k for k in unexpected if "nucleotide_head" not in k]:
        sys.exit(f"{weights_path}: unexpected weights {unexpected[:5]}")
    return model.eval()


def train_losses(out, nuc_targets, nuc_mask, counts, classes):
    """aam's fine-tuning losses (crates/aam-train/src/losses.rs, spec §4): NLL of the
    class log-probabilities + count MSE on log1p(relative abundance) over ASV slots +
    masked-nucleotide cross-entropy, each weight 1."""
    slot = (counts > 0).float()
    target = torch.log1p(counts / counts.sum(1, keepdim=True).clamp_min(1.0))
    se = (out["count_prediction"].squeeze(-1) - target) ** 2 * slot
    count = se.sum() / slot.sum().clamp_min(1.0)
    nll = F.nll_loss(out["target_prediction"], classes)
    logits = out["nuc_predictions"]
    lp = F.log_softmax(logits.reshape(-1, logits.shape[-1]), dim=-1)
    lp = lp.gather(1, nuc_targets.reshape(-1, 1)).squeeze(1)
    m = nuc_mask.reshape(-1)
    nuc = -(lp * m).sum() / m.sum().clamp_min(1.0)
    return nll + count + nuc


def train_bench(args):
    """Times the training step of `aam train` on a classifier: forward on the masked
    tokens, the three losses, backward, gradient clipping (norm 1) and AdamW."""
    torch.set_num_threads(args.threads)
    d = args.inputs
    model = load(f"{d}/model.safetensors", None, args.asv_chunk_size).train()
    load_np = lambda name: torch.from_numpy(np.load(f"{d}/{name}.npy"))
    tokens = load_np("masked_tokens").long()
    nuc_targets, nuc_mask = load_np("nuc_targets").long(), load_np("nuc_mask").float()
    counts, classes = load_np("counts").float(), load_np("classes").long()
    # Burn's AdamW defaults (aam's optimizer): betas (0.9, 0.999), eps 1e-5.
    optim = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay,
                              eps=1e-5)

    def step():
        optim.zero_grad(set_to_none=True)
        loss = train_losses(model(tokens), nuc_targets, nuc_mask, counts, classes)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        return loss.item()

    first_loss = step()  # warm-up, and the loss aam's first step is checked against
    latencies = []
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        step()
        latencies.append((time.perf_counter() - t0) * 1e3)
    # This machine's fp32 GEMM rate through torch's BLAS, for the share-of-peak column.
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    t0, reps = time.perf_counter(), 5
    for _ in range(reps):
        a @ b
    gemm_gflops = reps * 2 * 2048 ** 3 / (time.perf_counter() - t0) / 1e9
    latencies.sort()
    mean_s = sum(latencies) / len(latencies) / 1e3
    print(json.dumps({
        "backend": "pytorch", "torch": torch.__version__, "threads": args.threads,
        "batch": tokens.shape[0], "n_asv": tokens.shape[1], "first_loss": first_loss,
        "samples_per_s": tokens.shape[0] / mean_s, "latencies_ms": latencies,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "gemm_gflops": gemm_gflops,
    }))


def run(model, tokens):
    with torch.inference_mode():
        out = model(tokens)
    return out[0] if isinstance(out, tuple) else out


def check(args):
    g = args.golden
    config = json.load(open(f"{g}/config.json"))
    model = load(f"{g}/weights.safetensors", config, args.asv_chunk_size)
    tokens = torch.from_numpy(np.load(f"{g}/tokens.npy"))
    out = run(model, tokens)
    with safe_open(f"{g}/outputs.safetensors", "pt") as f:
        want = {k: f.get_tensor(k) for k in f.keys()}
    slots = (tokens.sum(-1) > 0)
    worst = 0.0
    for name in ["target_prediction", "embeddings", "base_embeddings", "count_prediction"]:
        got, exp = out[name], want[name]
        if name in ("base_embeddings", "count_prediction"):
            got, exp = got[slots], exp[slots]
        diff = (got - exp).abs().max().item()
        worst = max(worst, diff)
        print(f"{name}: max |diff| {diff:.2e}")
    if not worst <= args.tolerance:
        sys.exit(f"the reference re-implementation differs from the golden vectors by {worst:.2e}")
    print(f"golden vectors reproduced within {args.tolerance:g}")


def bench(args):
    torch.set_num_threads(args.threads)
    model = load(args.weights, None, args.asv_chunk_size)
    tokens = torch.from_numpy(np.load(args.tokens)).long()
    out = run(model, tokens)  # warm-up
    if not torch.isfinite(out["embeddings"]).all():
        sys.exit("non-finite embeddings")
    latencies = []
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        run(model, tokens)
        latencies.append((time.perf_counter() - t0) * 1e3)
    latencies.sort()
    pick = lambda p: latencies[min(len(latencies) - 1, round((len(latencies) - 1) * p))]
    mean_s = sum(latencies) / len(latencies) / 1e3
    print(json.dumps({
        "backend": "pytorch", "torch": torch.__version__, "threads": args.threads,
        "batch": tokens.shape[0], "n_asv": tokens.shape[1],
        "samples_per_s": tokens.shape[0] / mean_s, "p50_ms": pick(0.5), "p99_ms": pick(0.99),
        "latencies_ms": latencies,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "embeddings": out["embeddings"].tolist(),
    }))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="reproduce the reference's golden forward-pass vectors")
    c.add_argument("--golden", required=True)
    c.add_argument("--tolerance", type=float, default=1e-4)
    b = sub.add_parser("bench", help="time eval-mode forward passes on a token batch")
    b.add_argument("--weights", required=True, help="model.safetensors written by `aam export`")
    b.add_argument("--tokens", required=True, help="int64 [batch, n_asv, max_bp + 1] .npy")
    b.add_argument("--iterations", type=int, default=3)
    b.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("train-bench", help="time training steps (aam bench --train)")
    t.add_argument("--inputs", required=True,
                   help="directory written by `aam bench --train`: model.safetensors, masked_tokens.npy, "
                        "nuc_targets.npy, nuc_mask.npy, counts.npy, classes.npy")
    t.add_argument("--iterations", type=int, default=3)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--weight-decay", type=float, default=0.01)
    for s in (c, b, t):
        s.add_argument("--asv-chunk-size", type=int, default=256,
                       help="ASV columns per nucleotide-transformer block (reference HEAD default 256; 0: off)")
    args = p.parse_args()
    {"check": check, "bench": bench, "train-bench": train_bench}[args.command](args)


if __name__ == "__main__":
    main()
