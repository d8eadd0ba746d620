//! Pre-norm encoder layers and a stack with its final LayerNorm; mirrors
//! `aam_model::encoder_layer` and `aam_model::transformer`.

use aam_config::architecture::FINAL_NORM_EPS;
use aam_config::architecture::LAYER_NORM_EPS;
use aam_config::StackConfig;
use aam_config::{WeightError, WeightMap};

use super::attention::{self_attention, StackShapes};
use super::builder::{Attr, GraphBuilder};
use super::layers::{activation, layer_norm, linear, padding_bias};

/// `x` `[n, t, D]`, `mask` `[n, t]` f32 (1 valid) → `[n, t, D]`, reading
/// `{prefix}.encoder.layers.N.*` and `{prefix}.norm.*`.
pub fn transformer_stack(
    g: &mut GraphBuilder,
    w: &WeightMap,
    prefix: &str,
    x: &str,
    mask: &str,
    c: &StackConfig,
) -> Result<String, WeightError> {
    let shapes = stack_shapes(g, x, mask, c, prefix);
    let mut h = x.to_string();
    for i in 0..c.layers {
        h = encoder_layer(
            g,
            w,
            &format!("{prefix}.encoder.layers.{i}"),
            &h,
            c,
            &shapes,
        )?;
    }
    layer_norm(g, w, &format!("{prefix}.norm"), &h, c.dim, FINAL_NORM_EPS)
}

/// The pre-norm layers `{prefix}.0`, `{prefix}.1`, … over `x` `[n, t, D]` with every
/// position valid and no final LayerNorm (the Perceiver's `self_attn_layers`).
pub fn layer_sequence(
    g: &mut GraphBuilder,
    w: &WeightMap,
    prefix: &str,
    x: &str,
    c: &StackConfig,
) -> Result<String, WeightError> {
    // A mask of ones `[n, t]`, its shape taken from `x`.
    let two = g.const_i64(&[2]);
    let zero = g.scalar_f32(0.0);
    let one = g.scalar_f32(1.0);
    let summed = g.op(
        "ReduceSum",
        &[x, &two],
        vec![Attr::Int("keepdims", 0)],
        &format!("{prefix}/mask_sum"),
    );
    let zeros = g.op(
        "Mul",
        &[&summed, &zero],
        vec![],
        &format!("{prefix}/mask_zero"),
    );
    let mask = g.op("Add", &[&zeros, &one], vec![], &format!("{prefix}/mask"));
    let shapes = stack_shapes(g, x, &mask, c, prefix);
    let mut h = x.to_string();
    for i in 0..c.layers {
        h = encoder_layer(g, w, &format!("{prefix}.{i}"), &h, c, &shapes)?;
    }
    Ok(h)
}

/// Reshape targets from `Shape(x)` (never from an example batch) and the key bias.
fn stack_shapes(
    g: &mut GraphBuilder,
    x: &str,
    mask: &str,
    c: &StackConfig,
    prefix: &str,
) -> StackShapes {
    let shape = g.op("Shape", &[x], vec![], &format!("{prefix}/Shape"));
    let zero = g.const_i64(&[0]);
    let two = g.const_i64(&[2]);
    let nt = g.op(
        "Slice",
        &[&shape, &zero, &two],
        vec![],
        &format!("{prefix}/n_t"),
    );
    let heads = g.const_i64(&[c.heads as i64, (c.dim / c.heads) as i64]);
    let heads_extended = g.const_i64(&[c.heads as i64, (c.dim / c.heads + 1) as i64]);
    let dim = g.const_i64(&[c.dim as i64]);
    let split_heads = g.op(
        "Concat",
        &[&nt, &heads],
        vec![Attr::Int("axis", 0)],
        &format!("{prefix}/split_shape"),
    );
    let split_heads_extended = g.op(
        "Concat",
        &[&nt, &heads_extended],
        vec![Attr::Int("axis", 0)],
        &format!("{prefix}/split_shape_extended"),
    );
    let merge_heads = g.op(
        "Concat",
        &[&nt, &dim],
        vec![Attr::Int("axis", 0)],
        &format!("{prefix}/merge_shape"),
    );
    let bias = padding_bias(g, mask, prefix);
    let last = g.const_i64(&[2]);
    let bias = g.op(
        "Unsqueeze",
        &[&bias, &last],
        vec![],
        &format!("{prefix}/key_bias"),
    );
    // 1 at each head's extra k component (see `self_attention`).
    let dh = c.dim / c.heads;
    let selector: Vec<f32> = (0..c.heads * (dh + 1))
        .map(|i| if i % (dh + 1) == dh { 1.0 } else { 0.0 })
        .collect();
    let selector = g.weight(
        &format!("{prefix}.key_bias_selector"),
        &[c.heads * (dh + 1)],
        &selector,
    );
    let key_bias_columns = g.op(
        "Mul",
        &[&bias, &selector],
        vec![],
        &format!("{prefix}/key_bias_columns"),
    );
    StackShapes {
        split_heads,
        split_heads_extended,
        merge_heads,
        key_bias_columns,
    }
}

/// `y = x + MHA(LN1(x))`, `z = y + W2 · act(W1 · LN2(y))` (eval mode: no dropout).
fn encoder_layer(
    g: &mut GraphBuilder,
    w: &WeightMap,
    prefix: &str,
    x: &str,
    c: &StackConfig,
    shapes: &StackShapes,
) -> Result<String, WeightError> {
    let n1 = layer_norm(g, w, &format!("{prefix}.norm1"), x, c.dim, LAYER_NORM_EPS)?;
    let att = self_attention(
        g,
        w,
        &format!("{prefix}.self_attn"),
        &n1,
        c.dim,
        c.heads,
        shapes,
    )?;
    let y = g.op("Add", &[x, &att], vec![], &format!("{prefix}/residual1"));
    let n2 = layer_norm(g, w, &format!("{prefix}.norm2"), &y, c.dim, LAYER_NORM_EPS)?;
    let hidden = linear(
        g,
        w,
        &format!("{prefix}.linear1"),
        &n2,
        (c.dim, c.ffn),
        true,
    )?;
    let hidden = activation(g, &hidden, c.activation, prefix);
    let ff = linear(
        g,
        w,
        &format!("{prefix}.linear2"),
        &hidden,
        (c.ffn, c.dim),
        true,
    )?;
    Ok(g.op("Add", &[&y, &ff], vec![], &format!("{prefix}/residual2")))
}
