//! The predictor's heads as ONNX nodes: the count head and the target path with the
//! options of the reference's latest version (categorical fusion, `target_norm`, MLP and
//! residual heads, quantiles, output transforms); mirrors
//! `aam_model::sequence_predictor::SequencePredictor` in eval mode.

use aam_config::architecture::LAYER_NORM_EPS;
use aam_config::{
    Activation, CategoricalFusion, ModelConfig, OutputActivation, Stack, StackConfig, WeightError,
    WeightMap,
};
use onnx_protobuf::tensor_proto::DataType;

use super::builder::{Attr, Dim, GraphBuilder};
use super::layers::{layer_norm, linear, linear_from, padding_bias};
use super::names::{CATEGORICAL_IDS, CLASS_PROBABILITIES, COUNT_PREDICTION, TARGET_PREDICTION};
use super::pooling::attention_pooling;
use super::transformer::{layer_sequence, transformer_stack};

/// Declares the `categorical_ids` input when the model is conditioned on categories.
pub fn categorical_input(g: &mut GraphBuilder, c: &ModelConfig) -> Option<String> {
    c.head.is_conditioned().then(|| {
        g.input(
            CATEGORICAL_IDS,
            DataType::INT64,
            &[
                Dim::Named("batch"),
                Dim::Fixed(c.head.categorical_cardinalities.len()),
            ],
        )
    })
}

/// The count and target heads from the per-ASV sample embeddings `s` f32
/// `[batch, n_asv, D]`, `mask` f32 `[batch, n_asv]`, the pooling score bias `[batch,
/// n_asv]` of abundance-weighted pooling and the `categorical_ids` input; emits
/// `target_prediction` (`[batch, out_dim · num_quantiles]` for a quantile model),
/// `class_probabilities` (classifiers) and `count_prediction`.
///
/// Errors: a weight the configuration needs is missing or has another shape.
pub fn predictor_heads(
    g: &mut GraphBuilder,
    c: &ModelConfig,
    w: &WeightMap,
    s: &str,
    mask: &str,
    pooling_bias: Option<&str>,
    ids: Option<&str>,
) -> Result<(), WeightError> {
    let d = c.embedding_dim;
    let h = &c.head;
    let cat = match ids {
        Some(ids) if h.is_conditioned() => Some(category_embeddings(g, c, w, ids)?),
        _ => None,
    };
    let fusion = cat.as_ref().map(|_| h.categorical_fusion);
    let cw = h.categorical_width();
    let i1 = g.const_i64(&[1]);

    // Fusion before the target transformer.
    let s_fused = match (fusion, &cat) {
        (Some(CategoricalFusion::Concat), Some(cat)) => {
            let shape = g.op("Shape", &[s], vec![], "categorical_projection/Shape");
            let (i0, i2) = (g.const_i64(&[0]), g.const_i64(&[2]));
            let bs = g.op(
                "Slice",
                &[&shape, &i0, &i2],
                vec![],
                "categorical_projection/bs",
            );
            let width = g.const_i64(&[cw as i64]);
            let target = g.op(
                "Concat",
                &[&bs, &width],
                vec![Attr::Int("axis", 0)],
                "categorical_projection/expand_shape",
            );
            let c3 = g.op(
                "Unsqueeze",
                &[cat, &i1],
                vec![],
                "categorical_projection/c3",
            );
            let c3 = g.op(
                "Expand",
                &[&c3, &target],
                vec![],
                "categorical_projection/expand",
            );
            let joined = g.op(
                "Concat",
                &[s, &c3],
                vec![Attr::Int("axis", 2)],
                "categorical_projection/concat",
            );
            linear(g, w, "categorical_projection", &joined, (d + cw, d), true)?
        }
        (Some(CategoricalFusion::Add), Some(cat)) => {
            let shift = linear(g, w, "categorical_projection", cat, (cw, d), true)?;
            let shift = g.op(
                "Unsqueeze",
                &[&shift, &i1],
                vec![],
                "categorical_projection/c3",
            );
            g.op("Add", &[s, &shift], vec![], "categorical_projection/add")
        }
        (Some(CategoricalFusion::CrossAttention), Some(cat)) => {
            cross_attention_fusion(g, w, s, cat, d, cw)?
        }
        _ => s.to_string(),
    };
    let pooled = match (fusion, &cat) {
        (Some(CategoricalFusion::Perceiver), Some(cat)) => {
            perceiver_fusion(g, c, w, &s_fused, mask, cat)?
        }
        _ => {
            let t = transformer_stack(
                g,
                w,
                "target_encoder",
                &s_fused,
                mask,
                &c.stack(Stack::Target),
            )?;
            attention_pooling(g, w, "target_pooling", &t, mask, d, pooling_bias)?
        }
    };
    let pooled = match h.target_layer_norm {
        true => layer_norm(g, w, "target_norm", &pooled, d, LAYER_NORM_EPS)?,
        false => pooled,
    };
    let pooled = match (fusion, &cat) {
        (Some(CategoricalFusion::Gmu), Some(cat)) => {
            let joined = g.op(
                "Concat",
                &[&pooled, cat],
                vec![Attr::Int("axis", 1)],
                "gmu/concat",
            );
            let gate = linear(g, w, "gmu.gate", &joined, (d + cw, d), true)?;
            let gate = g.op("Sigmoid", &[&gate], vec![], "gmu/Sigmoid");
            let update = linear(g, w, "gmu.cat_transform", cat, (cw, d), true)?;
            let update = g.op("Tanh", &[&update], vec![], "gmu/Tanh");
            let gated = g.op("Mul", &[&gate, &update], vec![], "gmu/Mul");
            g.op("Add", &[&pooled, &gated], vec![], "gmu/Add")
        }
        _ => pooled,
    };
    let y = target_head(g, c, w, &pooled)?;
    output_transform(g, c, w, &y, ids)?;

    let count = transformer_stack(g, w, "count_encoder", s, mask, &c.stack(Stack::Count))?;
    let count = linear(g, w, "count_head", &count, (d, 1), true)?;
    let count = match h.bounded_count_prediction {
        true => g.op("Sigmoid", &[&count], vec![], "count_head/Sigmoid"),
        false => count,
    };
    g.output(
        &count,
        COUNT_PREDICTION,
        DataType::FLOAT,
        &[Dim::Named("batch"), Dim::Named("n_asv"), Dim::Fixed(1)],
    );
    Ok(())
}

/// Column `i` of `ids` `[batch, columns]` as `[batch]`.
fn id_column(g: &mut GraphBuilder, ids: &str, i: usize, scope: &str) -> String {
    let index = g.scalar_i64(i as i64);
    g.op(
        "Gather",
        &[ids, &index],
        vec![Attr::Int("axis", 1)],
        &format!("{scope}/column"),
    )
}

/// The concatenated category embeddings `[batch, columns · e]`; each table's row 0 is
/// written as zeros (the model embeds index 0 as zero whatever it holds).
fn category_embeddings(
    g: &mut GraphBuilder,
    c: &ModelConfig,
    w: &WeightMap,
    ids: &str,
) -> Result<String, WeightError> {
    let e = c.head.categorical_embed_dim;
    let mut parts = Vec::new();
    for (i, (column, &card)) in c.head.categorical_cardinalities.iter().enumerate() {
        let key = format!("categorical_embedder.embeddings.{column}.weight");
        let mut table = w.get(&key, &[card, e])?.to_vec();
        table[..e].fill(0.0);
        let table = g.weight(&key, &[card, e], &table);
        let col = id_column(g, ids, i, &key);
        parts.push(g.op(
            "Gather",
            &[&table, &col],
            vec![Attr::Int("axis", 0)],
            &format!("{key}/Gather"),
        ));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(g.op(
        "Concat",
        &refs,
        vec![Attr::Int("axis", 1)],
        "categorical_embedder/concat",
    ))
}

/// `LN(s + MHA(q = s, k = v = m))` with one key `m = Linear(C → D)(c)`: the softmax over
/// one key is 1, so the attention output is `out_proj(v_proj(m))` for every query.
fn cross_attention_fusion(
    g: &mut GraphBuilder,
    w: &WeightMap,
    s: &str,
    cat: &str,
    d: usize,
    cw: usize,
) -> Result<String, WeightError> {
    let p = "cross_attn_fusion";
    let m = linear(g, w, &format!("{p}.projection"), cat, (cw, d), true)?;
    let in_w = w.get(&format!("{p}.attention.in_proj_weight"), &[3 * d, d])?;
    let in_b = w.get(&format!("{p}.attention.in_proj_bias"), &[3 * d])?;
    let v = linear_from(
        g,
        &format!("{p}.attention.v_proj"),
        &m,
        &in_w[2 * d * d..],
        Some(&in_b[2 * d..]),
        (d, d),
    );
    let out = linear(g, w, &format!("{p}.attention.out_proj"), &v, (d, d), true)?;
    let i1 = g.const_i64(&[1]);
    let out = g.op("Unsqueeze", &[&out, &i1], vec![], &format!("{p}/shift"));
    let sum = g.op("Add", &[s, &out], vec![], &format!("{p}/residual"));
    layer_norm(g, w, &format!("{p}.norm"), &sum, d, LAYER_NORM_EPS)
}

/// The Perceiver (see `aam_model::perceiver_fusion`): the latents' queries are constants
/// of the weights, computed here once; the keys and values come from
/// `[seq_projection(s · mask) ; cat_projection(c)]`, empty slots masked out unless the
/// model attends to them as the reference's.
fn perceiver_fusion(
    g: &mut GraphBuilder,
    c: &ModelConfig,
    w: &WeightMap,
    s: &str,
    mask: &str,
    cat: &str,
) -> Result<String, WeightError> {
    let p = "perceiver_fusion";
    let d = c.embedding_dim;
    let heads = c.head.cross_attn_heads;
    let dh = d / heads;
    let n_lat = c.head.perceiver_num_latents;
    let cw = c.head.categorical_width();
    let (i1, i2) = (g.const_i64(&[1]), g.const_i64(&[2]));
    let mask3 = g.op("Unsqueeze", &[mask, &i2], vec![], &format!("{p}/mask3"));
    let s = g.op("Mul", &[s, &mask3], vec![], &format!("{p}/masked"));
    let seq = linear(g, w, &format!("{p}.seq_projection"), &s, (d, d), true)?;
    let token = linear(g, w, &format!("{p}.cat_projection"), cat, (cw, d), true)?;
    let token = g.op("Unsqueeze", &[&token, &i1], vec![], &format!("{p}/token"));
    let tokens = g.op(
        "Concat",
        &[&seq, &token],
        vec![Attr::Int("axis", 1)],
        &format!("{p}/tokens"),
    );

    let latents = w.get(&format!("{p}.latents"), &[n_lat, d])?;
    let in_w = w.get(&format!("{p}.cross_attn.in_proj_weight"), &[3 * d, d])?;
    let in_b = w.get(&format!("{p}.cross_attn.in_proj_bias"), &[3 * d])?;
    // q [H, n_lat, dh] = (latents W_qᵀ + b_q) / √dh, split by head.
    let scale = 1.0 / (dh as f32).sqrt();
    let mut q = vec![0f32; heads * n_lat * dh];
    for l in 0..n_lat {
        for o in 0..d {
            let row = &in_w[o * d..(o + 1) * d];
            let dot: f32 = row
                .iter()
                .zip(&latents[l * d..(l + 1) * d])
                .map(|(a, b)| a * b)
                .sum();
            let (head, k) = (o / dh, o % dh);
            q[(head * n_lat + l) * dh + k] = (dot + in_b[o]) * scale;
        }
    }
    let q = g.weight(&format!("{p}.cross_attn.q"), &[heads, n_lat, dh], &q);
    let k = linear_from(
        g,
        &format!("{p}.cross_attn.k_proj"),
        &tokens,
        &in_w[d * d..2 * d * d],
        Some(&in_b[d..2 * d]),
        (d, d),
    );
    let v = linear_from(
        g,
        &format!("{p}.cross_attn.v_proj"),
        &tokens,
        &in_w[2 * d * d..],
        Some(&in_b[2 * d..]),
        (d, d),
    );
    // [batch, t, D] → [batch, t, H, dh] (t from the tensor: `0` copies the batch, `-1`
    // infers t).
    let split = g.const_i64(&[0, -1, heads as i64, dh as i64]);
    let k = g.op("Reshape", &[&k, &split], vec![], &format!("{p}/k_split"));
    let k = g.op(
        "Transpose",
        &[&k],
        vec![Attr::Ints("perm", vec![0, 2, 3, 1])],
        &format!("{p}/k_heads"),
    );
    let v = g.op("Reshape", &[&v, &split], vec![], &format!("{p}/v_split"));
    let v = g.op(
        "Transpose",
        &[&v],
        vec![Attr::Ints("perm", vec![0, 2, 1, 3])],
        &format!("{p}/v_heads"),
    );
    let scores = g.op("MatMul", &[&q, &k], vec![], &format!("{p}/QK"));
    // Empty slots are keys only in a model imported from the reference.
    let scores = match c.head.perceiver_attends_padding {
        true => scores,
        false => {
            let i0 = g.const_i64(&[0]);
            let first = g.op(
                "Slice",
                &[mask, &i0, &i1, &i1],
                vec![],
                &format!("{p}/first"),
            );
            let zero = g.scalar_f32(0.0);
            let one = g.scalar_f32(1.0);
            let zeros = g.op("Mul", &[&first, &zero], vec![], &format!("{p}/token_zero"));
            let token = g.op("Add", &[&zeros, &one], vec![], &format!("{p}/token_valid"));
            let valid = g.op(
                "Concat",
                &[mask, &token],
                vec![Attr::Int("axis", 1)],
                &format!("{p}/valid"),
            );
            let bias = padding_bias(g, &valid, p);
            let axes = g.const_i64(&[1, 2]);
            let bias = g.op(
                "Unsqueeze",
                &[&bias, &axes],
                vec![],
                &format!("{p}/key_bias"),
            );
            g.op(
                "Add",
                &[&scores, &bias],
                vec![],
                &format!("{p}/masked_scores"),
            )
        }
    };
    let weights = g.op(
        "Softmax",
        &[&scores],
        vec![Attr::Int("axis", -1)],
        &format!("{p}/Softmax"),
    );
    let out = g.op("MatMul", &[&weights, &v], vec![], &format!("{p}/AV"));
    let out = g.op(
        "Transpose",
        &[&out],
        vec![Attr::Ints("perm", vec![0, 2, 1, 3])],
        &format!("{p}/merge_transpose"),
    );
    let merge = g.const_i64(&[0, n_lat as i64, d as i64]);
    let out = g.op("Reshape", &[&out, &merge], vec![], &format!("{p}/merge"));
    let out = linear(
        g,
        w,
        &format!("{p}.cross_attn.out_proj"),
        &out,
        (d, d),
        true,
    )?;
    let latents = g.weight(&format!("{p}.latents"), &[n_lat, d], latents);
    let x = g.op("Add", &[&latents, &out], vec![], &format!("{p}/residual"));
    let x = layer_norm(g, w, &format!("{p}.cross_norm"), &x, d, LAYER_NORM_EPS)?;
    let stack = StackConfig {
        layers: c.head.perceiver_num_layers,
        heads,
        dim: d,
        ffn: 4 * d,
        activation: Activation::Relu,
        dropout: 0.0,
        attention: Default::default(),
        mixed_precision: Default::default(),
    };
    let x = layer_sequence(g, w, &format!("{p}.self_attn_layers"), &x, &stack)?;
    let summed = g.op(
        "ReduceSum",
        &[&x, &i1],
        vec![Attr::Int("keepdims", 0)],
        &format!("{p}/sum"),
    );
    let n = g.scalar_f32(n_lat as f32);
    let mean = g.op("Div", &[&summed, &n], vec![], &format!("{p}/mean"));
    linear(g, w, &format!("{p}.output_projection"), &mean, (d, d), true)
}

/// `target_head`: one `Linear`, an MLP (`Linear, ReLU` per hidden width, then `Linear`)
/// or that MLP beside a linear skip. Returns `[batch, out_dim · num_quantiles]`.
fn target_head(
    g: &mut GraphBuilder,
    c: &ModelConfig,
    w: &WeightMap,
    pooled: &str,
) -> Result<String, WeightError> {
    let h = &c.head;
    let out = h.output_width(c.out_dim);
    let mut dims = vec![c.embedding_dim];
    dims.extend(&h.regressor_hidden_dims);
    dims.push(out);
    let stride = if h.regressor_dropout > 0.0 { 3 } else { 2 };
    let seq = if h.residual_regression_head {
        "target_head.mlp"
    } else {
        "target_head"
    };
    let last = dims.len() - 2;
    let mut x = pooled.to_string();
    for (i, pair) in dims.windows(2).enumerate() {
        let key = match h.regressor_hidden_dims.is_empty() {
            true => "target_head".to_string(),
            false => format!("{seq}.{}", i * stride),
        };
        x = linear(g, w, &key, &x, (pair[0], pair[1]), true)?;
        if i < last {
            x = g.op("Relu", &[&x], vec![], &format!("{key}/Relu"));
        }
    }
    if h.residual_regression_head {
        let skip = linear(
            g,
            w,
            "target_head.skip",
            pooled,
            (c.embedding_dim, out),
            true,
        )?;
        x = g.op("Add", &[&skip, &x], vec![], "target_head/residual");
    }
    Ok(x)
}

/// Conditional scaling, the learned output scale and the activation (none for
/// quantiles); emits `target_prediction` and, for classifiers, `class_probabilities`.
fn output_transform(
    g: &mut GraphBuilder,
    c: &ModelConfig,
    w: &WeightMap,
    y: &str,
    ids: Option<&str>,
) -> Result<(), WeightError> {
    let h = &c.head;
    let out = c.out_dim;
    let dims = [Dim::Named("batch"), Dim::Fixed(h.output_width(out))];
    if h.num_quantiles.is_some() {
        g.output(y, TARGET_PREDICTION, DataType::FLOAT, &dims);
        return Ok(());
    }
    let mut y = y.to_string();
    let columns = h.categorical_columns();
    if let Some(ids) = ids {
        for column in &h.conditional_scaling_columns {
            let Some(i) = columns.iter().position(|n| n == column) else {
                continue;
            };
            let card = h.categorical_cardinalities[column];
            let col = id_column(g, ids, i, &format!("output_scales.{column}"));
            let mut lookup = |table: &str| -> Result<String, WeightError> {
                let key = format!("{table}.{column}.weight");
                let values = w.get(&key, &[card, out])?;
                let t = g.weight(&key, &[card, out], values);
                Ok(g.op(
                    "Gather",
                    &[&t, &col],
                    vec![Attr::Int("axis", 0)],
                    &format!("{key}/Gather"),
                ))
            };
            let (scale, bias) = (lookup("output_scales")?, lookup("output_biases")?);
            let scaled = g.op(
                "Mul",
                &[&y, &scale],
                vec![],
                &format!("output_scales.{column}/Mul"),
            );
            y = g.op(
                "Add",
                &[&scaled, &bias],
                vec![],
                &format!("output_biases.{column}/Add"),
            );
        }
    }
    if h.learnable_output_scale {
        let scale = g.weight("output_scale", &[out], w.get("output_scale", &[out])?);
        let bias = g.weight("output_bias", &[out], w.get("output_bias", &[out])?);
        let scaled = g.op("Mul", &[&y, &scale], vec![], "output_scale/Mul");
        y = g.op("Add", &[&scaled, &bias], vec![], "output_bias/Add");
    }
    if c.is_classifier {
        let logp = g.op(
            "LogSoftmax",
            &[&y],
            vec![Attr::Int("axis", 1)],
            "target_head/LogSoftmax",
        );
        g.output(&logp, TARGET_PREDICTION, DataType::FLOAT, &dims);
        let p = g.op(
            "Softmax",
            &[&y],
            vec![Attr::Int("axis", 1)],
            "target_head/Softmax",
        );
        g.output(&p, CLASS_PROBABILITIES, DataType::FLOAT, &dims);
        return Ok(());
    }
    let y = match (h.bounded_targets, h.output_activation) {
        (true, _) => g.op("Sigmoid", &[&y], vec![], "output/Sigmoid"),
        (false, OutputActivation::None) => y,
        (false, OutputActivation::Relu) => g.op("Relu", &[&y], vec![], "output/Relu"),
        (false, OutputActivation::Softplus) => stable_softplus(g, &y),
        (false, OutputActivation::Exp) => g.op("Exp", &[&y], vec![], "output/Exp"),
    };
    g.output(&y, TARGET_PREDICTION, DataType::FLOAT, &dims);
    Ok(())
}

/// `Relu(y) + Log(1 + Exp(-Abs(y)))`, the model's softplus, finite for every `y`: ONNX
/// `Softplus` is `ln(e^y + 1)` in tract, infinite for `y > 88` in f32. Without a `Log1p`
/// op it is 0 below `y ≈ -17`, where Burn's is `e^y` (under 5e-8).
fn stable_softplus(g: &mut GraphBuilder, y: &str) -> String {
    let relu = g.op("Relu", &[y], vec![], "output/softplus/Relu");
    let abs = g.op("Abs", &[y], vec![], "output/softplus/Abs");
    let neg = g.op("Neg", &[&abs], vec![], "output/softplus/Neg");
    let exp = g.op("Exp", &[&neg], vec![], "output/softplus/Exp");
    let one = g.scalar_f32(1.0);
    let plus_one = g.op("Add", &[&exp, &one], vec![], "output/softplus/AddOne");
    let log = g.op("Log", &[&plus_one], vec![], "output/softplus/Log");
    g.op("Add", &[&relu, &log], vec![], "output/softplus/Add")
}
