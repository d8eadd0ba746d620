//! Attention pooling (reference `AttentionPooling`); mirrors
//! `aam_model::attention_pooling::AttentionPooling::forward`.

use aam_model::attention_pooling::POOLING_NORM_EPS;
use aam_model::{WeightError, WeightMap};

use super::builder::{Attr, GraphBuilder};
use super::layers::{layer_norm, linear, padding_bias};

/// `h` `[n, t, D]`, `mask` `[n, t]` f32 → `LN(Σ_t α_t h_t)` `[n, D]` with
/// `α = softmax_valid(q·h_t / √D)`; reads `{prefix}.query.weight` `[1, D]` and
/// `{prefix}.norm.*`. An all-padding row gets uniform α, never NaN. `bias` `[n, t]`, when
/// given, is added to the scores before the softmax (abundance-weighted pooling:
/// [`abundance_bias`]).
pub fn attention_pooling(
    g: &mut GraphBuilder,
    w: &WeightMap,
    prefix: &str,
    h: &str,
    mask: &str,
    dim: usize,
    bias: Option<&str>,
) -> Result<String, WeightError> {
    let scores = linear(g, w, &format!("{prefix}.query"), h, (dim, 1), false)?;
    let axis2 = g.const_i64(&[2]);
    let axis1 = g.const_i64(&[1]);
    let scores = g.op(
        "Squeeze",
        &[&scores, &axis2],
        vec![],
        &format!("{prefix}/scores"),
    );
    let scale = g.scalar_f32((dim as f64).sqrt() as f32);
    let scores = g.op(
        "Div",
        &[&scores, &scale],
        vec![],
        &format!("{prefix}/Scale"),
    );
    let scores = match bias {
        Some(bias) => g.op("Add", &[&scores, bias], vec![], &format!("{prefix}/Abundance")),
        None => scores,
    };
    let bias = padding_bias(g, mask, prefix);
    let scores = g.op("Add", &[&scores, &bias], vec![], &format!("{prefix}/Mask"));
    let alpha = g.op(
        "Softmax",
        &[&scores],
        vec![Attr::Int("axis", 1)],
        &format!("{prefix}/Softmax"),
    );
    let alpha = g.op(
        "Unsqueeze",
        &[&alpha, &axis1],
        vec![],
        &format!("{prefix}/alpha"),
    );
    let pooled = g.op("MatMul", &[&alpha, h], vec![], &format!("{prefix}/Pool"));
    let pooled = g.op(
        "Squeeze",
        &[&pooled, &axis1],
        vec![],
        &format!("{prefix}/pooled"),
    );
    layer_norm(
        g,
        w,
        &format!("{prefix}.norm"),
        &pooled,
        dim,
        POOLING_NORM_EPS,
    )
}

/// `ln(max(counts, 0) + 1)` `[batch, n_asv]` from `counts` f32 `[batch, n_asv, 1]`: the
/// score bias of abundance-weighted pooling (`aam_model::attention_pooling::abundance_bias`).
pub fn abundance_bias(g: &mut GraphBuilder, counts: &str) -> String {
    let zero = g.scalar_f32(0.0);
    let one = g.scalar_f32(1.0);
    let axis2 = g.const_i64(&[2]);
    let clamped = g.op("Max", &[counts, &zero], vec![], "abundance_bias/clamped");
    let plus_one = g.op("Add", &[&clamped, &one], vec![], "abundance_bias/plus_one");
    let log_c = g.op("Log", &[&plus_one], vec![], "abundance_bias/log");
    g.op("Squeeze", &[&log_c, &axis2], vec![], "abundance_bias")
}
