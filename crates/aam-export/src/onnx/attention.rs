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
    // q, k, v as three Linear layers so each weight is a plain [D, D] initializer.
    let mut parts = Vec::with_capacity(3);
    for (i, name) in ["q", "k", "v"].iter().enumerate() {
        let y = linear_from(
            g,
            &format!("{prefix}.{name}_proj"),
            x,
            &in_w[i * dim * dim..(i + 1) * dim * dim],
            Some(&in_b[i * dim..(i + 1) * dim]),
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
    let scale = g.scalar_f32((dh as f64).sqrt() as f32);
    let scores = g.op(
        "MatMul",
        &[&parts[0], &parts[1]],
        vec![],
        &format!("{prefix}/QK"),
    );
    let scores = g.op(
        "Div",
        &[&scores, &scale],
        vec![],
        &format!("{prefix}/Scale"),
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
