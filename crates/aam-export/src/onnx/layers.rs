//! The primitive layers: Linear (MatMul + Add with the PyTorch `[out, in]` weight
//! stored transposed as `[in, out]`), LayerNormalization (opset 17), GELU / ReLU.

use aam_config::Activation;
use aam_config::{WeightError, WeightMap};

use super::builder::{Attr, GraphBuilder};

/// `y = x Wᵀ + b` for `x` `[…, in]`, reading `{prefix}.weight` `[out, in]` and, when
/// `bias`, `{prefix}.bias` `[out]`. Returns `[…, out]`.
pub fn linear(
    g: &mut GraphBuilder,
    w: &WeightMap,
    prefix: &str,
    x: &str,
    (inp, out): (usize, usize),
    bias: bool,
) -> Result<String, WeightError> {
    let weight = w.get(&format!("{prefix}.weight"), &[out, inp])?;
    let b = if bias {
        Some(w.get(&format!("{prefix}.bias"), &[out])?)
    } else {
        None
    };
    Ok(linear_from(g, prefix, x, weight, b, (inp, out)))
}

/// [`linear`] from a PyTorch-layout `weight` `[out, in]` and optional `bias` `[out]`;
/// the graph names them `{name}.weight_t` (`[in, out]`) and `{name}.bias`.
pub fn linear_from(
    g: &mut GraphBuilder,
    name: &str,
    x: &str,
    weight: &[f32],
    bias: Option<&[f32]>,
    (inp, out): (usize, usize),
) -> String {
    let mut transposed = vec![0f32; inp * out];
    for o in 0..out {
        for i in 0..inp {
            transposed[i * out + o] = weight[o * inp + i];
        }
    }
    let wt = g.weight(&format!("{name}.weight_t"), &[inp, out], &transposed);
    let y = g.op("MatMul", &[x, &wt], vec![], &format!("{name}/MatMul"));
    match bias {
        None => y,
        Some(b) => {
            let b = g.weight(&format!("{name}.bias"), &[out], b);
            g.op("Add", &[&y, &b], vec![], &format!("{name}/Add"))
        }
    }
}

/// LayerNormalization over the last axis with `{prefix}.weight` / `{prefix}.bias` `[dim]`.
pub fn layer_norm(
    g: &mut GraphBuilder,
    w: &WeightMap,
    prefix: &str,
    x: &str,
    dim: usize,
    eps: f64,
) -> Result<String, WeightError> {
    let scale = w.get(&format!("{prefix}.weight"), &[dim])?;
    let scale = g.weight(&format!("{prefix}.weight"), &[dim], scale);
    let bias = w.get(&format!("{prefix}.bias"), &[dim])?;
    let bias = g.weight(&format!("{prefix}.bias"), &[dim], bias);
    Ok(g.op(
        "LayerNormalization",
        &[x, &scale, &bias],
        vec![Attr::Int("axis", -1), Attr::Float("epsilon", eps as f32)],
        &format!("{prefix}/LayerNormalization"),
    ))
}

/// Exact GELU `0.5·x·(1 + erf(x/√2))` (opset 17 has no Gelu op) or ReLU.
pub fn activation(g: &mut GraphBuilder, x: &str, act: Activation, scope: &str) -> String {
    match act {
        Activation::Relu => g.op("Relu", &[x], vec![], &format!("{scope}/Relu")),
        Activation::Gelu => {
            let sqrt2 = g.scalar_f32(std::f32::consts::SQRT_2);
            let one = g.scalar_f32(1.0);
            let half = g.scalar_f32(0.5);
            let scaled = g.op("Div", &[x, &sqrt2], vec![], &format!("{scope}/Gelu/Div"));
            let erf = g.op("Erf", &[&scaled], vec![], &format!("{scope}/Gelu/Erf"));
            let plus = g.op("Add", &[&erf, &one], vec![], &format!("{scope}/Gelu/Add"));
            let prod = g.op("Mul", &[x, &plus], vec![], &format!("{scope}/Gelu/Mul"));
            g.op(
                "Mul",
                &[&prod, &half],
                vec![],
                &format!("{scope}/Gelu/Half"),
            )
        }
    }
}

/// `(1 - mask) · MASKED_SCORE`: the additive bias that removes padded positions from a
/// softmax. `mask`: f32, 1 valid / 0 padding.
pub fn padding_bias(g: &mut GraphBuilder, mask: &str, scope: &str) -> String {
    let one = g.scalar_f32(1.0);
    let masked = g.scalar_f32(aam_config::architecture::MASKED_SCORE);
    let inv = g.op("Sub", &[&one, mask], vec![], &format!("{scope}/Invert"));
    g.op(
        "Mul",
        &[&inv, &masked],
        vec![],
        &format!("{scope}/PaddingBias"),
    )
}
