//! Multi-head self-attention (reference `nn.MultiheadAttention`, packed `in_proj`)
//! as ONNX nodes; mirrors `aam_model::attention::SelfAttention::forward`.

use aam_config::{WeightError, WeightMap};

use super::builder::{Attr, GraphBuilder};
use super::layers::{linear, linear_from};

/// Shapes shared by every layer of one stack, computed once from the stack input.
pub struct StackShapes {
    /// int64 `[n, t, H, D/H]`: target of the head split.
    pub split_heads: String,
    /// int64 `[n, t, D]`: target of the head merge.
    pub merge_heads: String,
    /// int64 `[n, t, H, D/H + 1]`: head split of the extended q and k.
    pub split_heads_extended: String,
    /// `[n, t, H·(D/H + 1)]` f32: the key bias (0 at valid keys, `MASKED_SCORE` at padding)
    /// at each head's extra k component, 0 elsewhere.
    pub key_bias_columns: String,
}

/// `x` `[n, t, D]` → `[n, t, D]`, reading `{prefix}.in_proj_weight` `[3D, D]`,
/// `in_proj_bias` `[3D]` and `out_proj.*`.
pub fn self_attention(
    g: &mut GraphBuilder,
    w: &WeightMap,
    prefix: &str,
    x: &str,
    dim: usize,
    heads: usize,
    shapes: &StackShapes,
) -> Result<String, WeightError> {
    let in_w = w.get(&format!("{prefix}.in_proj_weight"), &[3 * dim, dim])?;
    let in_b = w.get(&format!("{prefix}.in_proj_bias"), &[3 * dim])?;
    let dh = dim / heads;
    // The scores are `softmax(Q·Kᵀ / √dh + key bias)`. Both the 1/√dh and the key bias are
    // folded into the Q·Kᵀ MatMul, so no pass over the `[n, H, t, t]` scores is spent on
    // them: q and k get one extra component per head, q's constant 1 (a zero weight column
    // with bias 1) and k's the key bias of its token (`shapes.key_bias_columns`), so
    // Q'·K'ᵀ = Q·Kᵀ/√dh + bias. A broadcast Add of the `[n, 1, 1, t]` bias to the scores took
    // ~20% of tract's time (its fast binary kernels do not cover a middle-axis broadcast).
    // (A Concat of [Q, 1] and [Kᵀ; bias] trips tract 0.23.9's `concat-einsum-k` rule.)
    let inv_sqrt_dh = 1.0 / (dh as f32).sqrt();
    let q = head_extended(
        &in_w[..dim * dim],
        &in_b[..dim],
        dim,
        heads,
        inv_sqrt_dh,
        1.0,
    );
    let k = head_extended(
        &in_w[dim * dim..2 * dim * dim],
        &in_b[dim..2 * dim],
        dim,
        heads,
        1.0,
        0.0,
    );
    let ext = heads * (dh + 1);
    let q = linear_from(
        g,
        &format!("{prefix}.q_proj"),
        x,
        &q.0,
        Some(&q.1),
        (dim, ext),
    );
    let k = linear_from(
        g,
        &format!("{prefix}.k_proj"),
        x,
        &k.0,
        Some(&k.1),
        (dim, ext),
    );
    let k = g.op(
        "Add",
        &[&k, &shapes.key_bias_columns],
        vec![],
        &format!("{prefix}/k_key_bias"),
    );
    let v = linear_from(
        g,
        &format!("{prefix}.v_proj"),
        x,
        &in_w[2 * dim * dim..],
        Some(&in_b[2 * dim..]),
        (dim, dim),
    );
    // q: [n, H, t, dh + 1]; k: [n, H, dh + 1, t] (already transposed for QKᵀ); v: [n, H, t, dh].
    let mut heads_of = |y: &str, name: &str, split: &str, perm: Vec<i64>| {
        let y = g.op(
            "Reshape",
            &[y, split],
            vec![],
            &format!("{prefix}/{name}_split"),
        );
        g.op(
            "Transpose",
            &[&y],
            vec![Attr::Ints("perm", perm)],
            &format!("{prefix}/{name}_heads"),
        )
    };
    let q = heads_of(&q, "q", &shapes.split_heads_extended, vec![0, 2, 1, 3]);
    let k = heads_of(&k, "k", &shapes.split_heads_extended, vec![0, 2, 3, 1]);
    let v = heads_of(&v, "v", &shapes.split_heads, vec![0, 2, 1, 3]);
    let scores = g.op("MatMul", &[&q, &k], vec![], &format!("{prefix}/QK"));
    let weights = g.op(
        "Softmax",
        &[&scores],
        vec![Attr::Int("axis", -1)],
        &format!("{prefix}/Softmax"),
    );
    let out = g.op("MatMul", &[&weights, &v], vec![], &format!("{prefix}/AV"));
    let out = g.op(
        "Transpose",
        &[&out],
        vec![Attr::Ints("perm", vec![0, 2, 1, 3])],
        &format!("{prefix}/merge_transpose"),
    );
    let out = g.op(
        "Reshape",
        &[&out, &shapes.merge_heads],
        vec![],
        &format!("{prefix}/merge"),
    );
    linear(g, w, &format!("{prefix}.out_proj"), &out, (dim, dim), true)
}

/// One projection of the packed `in_proj` (`weight` `[D, D]` PyTorch layout, `bias` `[D]`),
/// scaled by `scale`, with one extra output per head whose weight row is 0 and whose bias
/// is `extra_bias`: returns weight `[H·(dh + 1), D]` and bias `[H·(dh + 1)]`.
fn head_extended(
    weight: &[f32],
    bias: &[f32],
    dim: usize,
    heads: usize,
    scale: f32,
    extra_bias: f32,
) -> (Vec<f32>, Vec<f32>) {
    let dh = dim / heads;
    let mut w = Vec::with_capacity(heads * (dh + 1) * dim);
    let mut b = Vec::with_capacity(heads * (dh + 1));
    for h in 0..heads {
        for o in h * dh..(h + 1) * dh {
            w.extend(weight[o * dim..(o + 1) * dim].iter().map(|v| v * scale));
            b.push(bias[o] * scale);
        }
        w.extend(std::iter::repeat(0.0).take(dim));
        b.push(extra_bias);
    }
    (w, b)
}
