//! Attention pooling (reference `AttentionPooling`); mirrors
//! `aam_model::attention_pooling::AttentionPooling::forward`.

use aam_config::architecture::POOLING_NORM_EPS;
use aam_config::{WeightError, WeightMap};

use super::builder::{Attr, GraphBuilder};
use super::layers::{layer_norm, linear, padding_bias};

/// `h` `[n, t, D]`, `mask` `[n, t]` f32 → `LN(Σ_t α_t h_t)` `[n, D]` with
/// `α = softmax_valid(q·h_t / √D)`; reads `{prefix}.query.weight` `[1, D]` and
/// `{prefix}.norm.*`. An all-padding row gets uniform α, never NaN. `bias` `[n, t]`, when
/// given, is added to the scores before the softmax (abundance-weighted pooling:
/// `abundance_bias` of the sample model).
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
        Some(bias) => g.op(
            "Add",
            &[&scores, bias],
            vec![],
            &format!("{prefix}/Abundance"),
        ),
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
