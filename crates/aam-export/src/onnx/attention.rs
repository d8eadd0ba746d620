//! Multi-head self-attention (reference `nn.MultiheadAttention`, packed `in_proj`)
//! as ONNX nodes; mirrors `aam_model::attention::SelfAttention::forward`.

use aam_model::{WeightError, WeightMap};

use super::builder::{Attr, GraphBuilder};
use super::layers::{linear, linear_from};

/// Shapes shared by every layer of one stack, computed once from the stack input.
pub struct StackShapes {
    /// int64 `[n, t, H, D/H]`: target of the head split.
    pub split_heads: String,
    /// int64 `[n, t, D]`: target of the head merge.
    pub merge_heads: String,
    /// `[n, 1, 1, t]` f32: 0 at valid keys, `MASKED_SCORE` at padding.
    pub key_bias: String,
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
    // The scores are `softmax(Q·Kᵀ / √dh + key bias)`; 1/√dh is folded into the q
    // projection, which saves a pass over the `[n, H, t, t]` scores. (Folding the key
    // bias into the MatMul too, as Q' = [Q, 1] and K'ᵀ = [Kᵀ; bias], trips tract 0.23.9's
    // `concat-einsum-k` declutter rule.)
    let inv_sqrt_dh = 1.0 / (dh as f32).sqrt();
    let scaled_q: Vec<f32> = in_w[..dim * dim].iter().map(|v| v * inv_sqrt_dh).collect();
    let scaled_qb: Vec<f32> = in_b[..dim].iter().map(|v| v * inv_sqrt_dh).collect();
    // q, k, v as three Linear layers so each weight is a plain [D, D] initializer.
    let mut parts = Vec::with_capacity(3);
    for (i, name) in ["q", "k", "v"].iter().enumerate() {
        let (weight, bias) = if i == 0 {
            (&scaled_q[..], &scaled_qb[..])
        } else {
            (
                &in_w[i * dim * dim..(i + 1) * dim * dim],
                &in_b[i * dim..(i + 1) * dim],
            )
        };
        let y = linear_from(
            g,
            &format!("{prefix}.{name}_proj"),
            x,
            weight,
            Some(bias),
            (dim, dim),
        );
        let y = g.op(
            "Reshape",
            &[&y, &shapes.split_heads],
            vec![],
            &format!("{prefix}/{name}_split"),
        );
        // q, v: [n, H, t, dh]; k: [n, H, dh, t] (already transposed for QKᵀ).
        let perm = if *name == "k" {
            vec![0, 2, 3, 1]
        } else {
            vec![0, 2, 1, 3]
        };
        parts.push(g.op(
            "Transpose",
            &[&y],
            vec![Attr::Ints("perm", perm)],
            &format!("{prefix}/{name}_heads"),
        ));
    }
    let scores = g.op(
        "MatMul",
        &[&parts[0], &parts[1]],
        vec![],
        &format!("{prefix}/QK"),
    );
    let scores = g.op(
        "Add",
        &[&scores, &shapes.key_bias],
        vec![],
        &format!("{prefix}/Mask"),
    );
    let weights = g.op(
        "Softmax",
        &[&scores],
        vec![Attr::Int("axis", -1)],
        &format!("{prefix}/Softmax"),
    );
    let out = g.op(
        "MatMul",
        &[&weights, &parts[2]],
        vec![],
        &format!("{prefix}/AV"),
    );
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
