//! The model as ONNX graphs: ASV encoder → sample encoder → encoder stack → sample
//! embedding, plus the count and target heads of a predictor. Mirrors
//! `aam_model::{asv_encoder, sample_encoder, sequence_encoder, sequence_predictor}`.
//!
//! [`GraphPart::Full`] (`model.onnx`, named dynamic axes `batch`, `n_asv`):
//! - input `tokens` int64 `[batch, n_asv, max_bp + 1]` (0 = padding);
//! - input `counts` f32 `[batch, n_asv, 1]` (each slot's read count), only in a model
//!   that reads counts (`ModelConfig::uses_counts`: a count embedding or
//!   abundance-weighted pooling);
//! - `embeddings` f32 `[batch, D]`;
//! - predictors: `target_prediction` f32 `[batch, out_dim]` (standardized value, or class
//!   log-probabilities), `count_prediction` f32 `[batch, n_asv, 1]`, and for classifiers
//!   `class_probabilities` f32 `[batch, out_dim]`;
//! - a predictor conditioned on metadata categories also takes `categorical_ids` int64
//!   `[batch, n_columns]` (see [`super::head`]), and a quantile model's
//!   `target_prediction` is `[batch, out_dim · num_quantiles]`.
//!
//! The same model split in two, so each unique ASV sequence is encoded once (an ASV's
//! embedding depends only on its sequence):
//! - [`GraphPart::AsvEncoder`] (`asv_encoder.onnx`): `asv_tokens` int64
//!   `[n, max_bp + 1]` → `asv_embeddings` f32 `[n, D]` (an all-padding row gives zeros);
//! - [`GraphPart::SampleModel`] (`sample_model.onnx`): `asv_embeddings` f32
//!   `[batch, n_asv, D]` and `asv_mask` f32 `[batch, n_asv]` (1 = ASV present, 0 = empty
//!   slot), plus `counts` f32 `[batch, n_asv, 1]` when the model reads counts → the outputs
//!   of the full graph.

use aam_config::architecture::BASE_PREFIX;
use aam_config::{CountEmbeddingMethod, ModelConfig, ModelKind, Stack};
use aam_config::{WeightError, WeightMap};
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::GraphProto;

use super::builder::{Attr, Dim, GraphBuilder};
use super::head::{categorical_input, predictor_heads};
use super::layers::linear;
use super::pooling::attention_pooling;
use super::transformer::transformer_stack;

pub use super::names::*;

/// Which graph to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphPart {
    /// Tokens to every output (`model.onnx`).
    Full,
    /// One ASV's tokens to its embedding (`asv_encoder.onnx`).
    AsvEncoder,
    /// ASV embeddings and mask to every output (`sample_model.onnx`).
    SampleModel,
}

impl GraphPart {
    /// File name of this graph in an export directory.
    pub fn file_name(self) -> &'static str {
        match self {
            GraphPart::Full => "model.onnx",
            GraphPart::AsvEncoder => "asv_encoder.onnx",
            GraphPart::SampleModel => "sample_model.onnx",
        }
    }
}

/// Builds graph `part` of a model of configuration `c` and kind `kind` from its weights
/// (reference state-dict names).
///
/// Errors: a weight the configuration needs is missing or has another shape.
pub fn model_graph(
    c: &ModelConfig,
    kind: ModelKind,
    w: &WeightMap,
    part: GraphPart,
) -> Result<GraphProto, WeightError> {
    let mut g = GraphBuilder::default();
    let l = c.max_bp + 1;
    let d = c.embedding_dim;
    let base = match kind {
        ModelKind::Encoder => "",
        ModelKind::Predictor => BASE_PREFIX,
    };
    let (i0, i1, i2) = (g.const_i64(&[0]), g.const_i64(&[1]), g.const_i64(&[2]));
    match part {
        GraphPart::AsvEncoder => {
            let rows = g.input(
                ASV_TOKENS,
                DataType::INT64,
                &[Dim::Named("n"), Dim::Fixed(l)],
            );
            let emb = asv_encoder(&mut g, c, w, base, &rows)?;
            g.output(
                &emb,
                ASV_EMBEDDINGS,
                DataType::FLOAT,
                &[Dim::Named("n"), Dim::Fixed(d)],
            );
            return Ok(g.finish("aam_asv_encoder"));
        }
        GraphPart::SampleModel => {
            let dims = [Dim::Named("batch"), Dim::Named("n_asv")];
            let asv_emb = g.input(
                ASV_EMBEDDINGS,
                DataType::FLOAT,
                &[dims[0].clone(), dims[1].clone(), Dim::Fixed(d)],
            );
            let mask = g.input(ASV_MASK, DataType::FLOAT, &dims);
            let counts = counts_input(&mut g, c);
            let ids = match kind {
                ModelKind::Predictor => categorical_input(&mut g, c),
                ModelKind::Encoder => None,
            };
            let mask3 = g.op("Unsqueeze", &[&mask, &i2], vec![], "asv_mask3");
            sample_model(
                &mut g,
                c,
                kind,
                w,
                base,
                &asv_emb,
                &mask3,
                counts.as_deref(),
                ids.as_deref(),
            )?;
            return Ok(g.finish(graph_name(kind)));
        }
        GraphPart::Full => {}
    }
    let tokens = g.input(
        TOKENS,
        DataType::INT64,
        &[Dim::Named("batch"), Dim::Named("n_asv"), Dim::Fixed(l)],
    );
    let counts = counts_input(&mut g, c);
    let ids = match kind {
        ModelKind::Predictor => categorical_input(&mut g, c),
        ModelKind::Encoder => None,
    };

    // Dynamic sizes, all from Shape(tokens).
    let shape = g.op("Shape", &[&tokens], vec![], "tokens/Shape");
    let b = g.op("Slice", &[&shape, &i0, &i1], vec![], "batch");
    let s = g.op("Slice", &[&shape, &i1, &i2], vec![], "n_asv");

    // ASV encoder: every ASV slot of every sample is one row of nucleotides.
    let n = g.op("Mul", &[&b, &s], vec![], "n_rows");
    let l_const = g.const_i64(&[l as i64]);
    let flat_shape = g.op(
        "Concat",
        &[&n, &l_const],
        vec![Attr::Int("axis", 0)],
        "rows_shape",
    );
    let flat = g.op("Reshape", &[&tokens, &flat_shape], vec![], "rows");
    let pooled = asv_encoder(&mut g, c, w, base, &flat)?;
    let d_const = g.const_i64(&[d as i64]);
    let asv_shape = g.op(
        "Concat",
        &[&b, &s, &d_const],
        vec![Attr::Int("axis", 0)],
        "asv_embeddings_shape",
    );
    let asv_emb = g.op("Reshape", &[&pooled, &asv_shape], vec![], "asv_embeddings");

    // A slot holds an ASV when any of its tokens is non-zero.
    let se = format!("{base}sample_encoder");
    let zero = g.scalar_i64(0);
    let token_sum = g.op(
        "ReduceSum",
        &[&tokens, &i2],
        vec![Attr::Int("keepdims", 1)],
        &format!("{se}/token_sum"),
    );
    let has_asv = g.op(
        "Greater",
        &[&token_sum, &zero],
        vec![],
        &format!("{se}/has_asv"),
    );
    let asv_mask3 = g.op(
        "Cast",
        &[&has_asv],
        vec![Attr::Int("to", DataType::FLOAT as i64)],
        "asv_mask3",
    );
    sample_model(
        &mut g,
        c,
        kind,
        w,
        base,
        &asv_emb,
        &asv_mask3,
        counts.as_deref(),
        ids.as_deref(),
    )?;
    Ok(g.finish(graph_name(kind)))
}

/// The `counts` input f32 `[batch, n_asv, 1]` of a model with a count embedding or
/// abundance-weighted pooling.
fn counts_input(g: &mut GraphBuilder, c: &ModelConfig) -> Option<String> {
    c.uses_counts().then(|| {
        g.input(
            COUNTS,
            DataType::FLOAT,
            &[Dim::Named("batch"), Dim::Named("n_asv"), Dim::Fixed(1)],
        )
    })
}

/// `ln(max(counts, 0) + 1)` f32 `[batch, n_asv, 1]` of `counts` f32 `[batch, n_asv, 1]`
/// (`aam_model::count_embedding::log_counts`): what the count embedding and
/// abundance-weighted pooling read, computed once for both.
fn log_counts(g: &mut GraphBuilder, se: &str, counts: &str) -> String {
    let zero = g.scalar_f32(0.0);
    let one = g.scalar_f32(1.0);
    let clamped = g.op(
        "Max",
        &[counts, &zero],
        vec![],
        &format!("{se}/counts_clamped"),
    );
    let plus_one = g.op(
        "Add",
        &[&clamped, &one],
        vec![],
        &format!("{se}/counts_plus_one"),
    );
    g.op("Log", &[&plus_one], vec![], &format!("{se}/log_counts"))
}

/// The count embedding (`aam_model::count_embedding`) of `log_c` (see [`log_counts`])
/// f32 `[batch, n_asv, 1]` mixed into the masked ASV embeddings `a` `[batch, n_asv, D]`.
fn count_embedding(
    g: &mut GraphBuilder,
    c: &ModelConfig,
    w: &WeightMap,
    se: &str,
    a: &str,
    log_c: &str,
) -> Result<String, WeightError> {
    let d = c.embedding_dim;
    let log_c = log_c.to_string();
    Ok(match c.count_embedding_method {
        CountEmbeddingMethod::Add => {
            let e = linear(g, w, &format!("{se}.count_embed"), &log_c, (1, d), true)?;
            g.op("Add", &[a, &e], vec![], &format!("{se}/count_add"))
        }
        CountEmbeddingMethod::Concat => {
            let e = linear(g, w, &format!("{se}.count_embed"), &log_c, (1, d), true)?;
            let joined = g.op(
                "Concat",
                &[a, &e],
                vec![Attr::Int("axis", 2)],
                &format!("{se}/count_concat"),
            );
            linear(g, w, &format!("{se}.count_proj"), &joined, (2 * d, d), true)?
        }
        CountEmbeddingMethod::Film => {
            let gb = linear(g, w, &format!("{se}.count_film"), &log_c, (1, 2 * d), true)?;
            let (i0, i2) = (g.const_i64(&[0]), g.const_i64(&[2]));
            let (id, i2d) = (g.const_i64(&[d as i64]), g.const_i64(&[2 * d as i64]));
            let gamma = g.op(
                "Slice",
                &[&gb, &i0, &id, &i2],
                vec![],
                &format!("{se}/film_gamma"),
            );
            let beta = g.op(
                "Slice",
                &[&gb, &id, &i2d, &i2],
                vec![],
                &format!("{se}/film_beta"),
            );
            let scaled = g.op("Mul", &[a, &gamma], vec![], &format!("{se}/film_scale"));
            let shifted = g.op("Add", &[&scaled, a], vec![], &format!("{se}/film_residual"));
            g.op(
                "Add",
                &[&shifted, &beta],
                vec![],
                &format!("{se}/film_shift"),
            )
        }
    })
}

fn graph_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Encoder => "aam_encoder",
        ModelKind::Predictor => "aam_predictor",
    }
}

/// The ASV encoder on `rows` int64 `[n, max_bp + 1]`: `[n, D]`, zero for all-padding rows.
fn asv_encoder(
    g: &mut GraphBuilder,
    c: &ModelConfig,
    w: &WeightMap,
    base: &str,
    rows: &str,
) -> Result<String, WeightError> {
    let l = c.max_bp + 1;
    let d = c.embedding_dim;
    let (i1, i2) = (g.const_i64(&[1]), g.const_i64(&[2]));
    let asv = format!("{base}sample_encoder.asv_encoder");
    let zero = g.scalar_i64(0);
    let valid = g.op("Greater", &[rows, &zero], vec![], "nucleotide_valid");
    let mask = g.op(
        "Cast",
        &[&valid],
        vec![Attr::Int("to", DataType::FLOAT as i64)],
        "nucleotide_mask",
    );
    let tok_table = w.get(&format!("{asv}.token_embedding.weight"), &[c.vocab_size, d])?;
    let tok_table = g.weight(
        &format!("{asv}.token_embedding.weight"),
        &[c.vocab_size, d],
        tok_table,
    );
    let pos_key = format!("{asv}.position_embedding.position_embedding.weight");
    let pos_table = w.get(&pos_key, &[l, d])?;
    let pos_table = g.weight(&pos_key, &[l, d], pos_table);
    let x = g.op(
        "Gather",
        &[&tok_table, rows],
        vec![Attr::Int("axis", 0)],
        &format!("{asv}/embed"),
    );
    let x = g.op(
        "Add",
        &[&x, &pos_table],
        vec![],
        &format!("{asv}/positions"),
    );
    let h = transformer_stack(
        g,
        w,
        &format!("{asv}.transformer"),
        &x,
        &mask,
        &c.stack(Stack::Asv),
    )?;
    // Empty ASV slots are zeroed (the reference skips them).
    let counts = g.op(
        "ReduceSum",
        &[&mask, &i1],
        vec![Attr::Int("keepdims", 1)],
        &format!("{asv}/row_count"),
    );
    let one = g.scalar_f32(1.0);
    let row_valid = g.op("Min", &[&counts, &one], vec![], &format!("{asv}/row_valid"));
    let row_valid = g.op(
        "Unsqueeze",
        &[&row_valid, &i2],
        vec![],
        &format!("{asv}/row_valid3"),
    );
    let h = g.op(
        "Mul",
        &[&h, &row_valid],
        vec![],
        &format!("{asv}/zero_empty"),
    );
    let pooled = attention_pooling(
        g,
        w,
        &format!("{asv}.attention_pooling"),
        &h,
        &mask,
        d,
        None,
    )?;
    if c.kmer_size == 0 {
        return Ok(pooled);
    }
    let bag = kmer_bag(g, c, w, &asv, rows)?;
    Ok(g.op("Add", &[&pooled, &bag], vec![], &format!("{asv}/add_kmers")))
}

/// The k-mer embedding (`aam_model::kmer_embedding`) of ASV rows `rows` int64
/// `[n, max_bp + 1]`: the sum of `{asv}.kmer_embedding.weight` `[4^k, D]` over each
/// row's `n` windows of `k` nucleotide tokens divided by `√n`, `[n, D]` (zeros without a
/// window).
fn kmer_bag(
    g: &mut GraphBuilder,
    c: &ModelConfig,
    w: &WeightMap,
    asv: &str,
    rows: &str,
) -> Result<String, WeightError> {
    let (k, d, l) = (c.kmer_size, c.embedding_dim, c.max_bp + 1);
    let n_kmers = 1usize << (2 * k);
    let key = format!("{asv}.kmer_embedding.weight");
    let table = w.get(&key, &[n_kmers, d])?;
    let table = g.weight(&key, &[n_kmers, d], table);
    let width = l.saturating_sub(k - 1);
    let (zero, one) = (g.scalar_i64(0), g.scalar_i64(1));
    let (three, four, five) = (g.scalar_i64(3), g.scalar_i64(4), g.scalar_i64(5));
    let above = g.op(
        "Greater",
        &[rows, &zero],
        vec![],
        &format!("{asv}/kmer_above_pad"),
    );
    let below = g.op(
        "Less",
        &[rows, &five],
        vec![],
        &format!("{asv}/kmer_below_start"),
    );
    let is_base = g.op(
        "And",
        &[&above, &below],
        vec![],
        &format!("{asv}/kmer_is_base"),
    );
    let is_base = g.op(
        "Cast",
        &[&is_base],
        vec![Attr::Int("to", DataType::INT64 as i64)],
        &format!("{asv}/kmer_is_base_int"),
    );
    let base = g.op("Sub", &[rows, &one], vec![], &format!("{asv}/kmer_base"));
    let base = g.op(
        "Min",
        &[&base, &three],
        vec![],
        &format!("{asv}/kmer_base_max"),
    );
    let base = g.op(
        "Max",
        &[&base, &zero],
        vec![],
        &format!("{asv}/kmer_base_min"),
    );
    let axis1 = g.const_i64(&[1]);
    let mut index: Option<String> = None;
    let mut valid: Option<String> = None;
    for j in 0..k {
        let (start, end) = (g.const_i64(&[j as i64]), g.const_i64(&[(j + width) as i64]));
        let b = g.op(
            "Slice",
            &[&base, &start, &end, &axis1],
            vec![],
            &format!("{asv}/kmer_base_{j}"),
        );
        let v = g.op(
            "Slice",
            &[&is_base, &start, &end, &axis1],
            vec![],
            &format!("{asv}/kmer_valid_{j}"),
        );
        index = Some(match index {
            None => b,
            Some(i) => {
                let shifted = g.op(
                    "Mul",
                    &[&i, &four],
                    vec![],
                    &format!("{asv}/kmer_shift_{j}"),
                );
                g.op(
                    "Add",
                    &[&shifted, &b],
                    vec![],
                    &format!("{asv}/kmer_index_{j}"),
                )
            }
        });
        valid = Some(match valid {
            None => v,
            Some(a) => g.op("Mul", &[&a, &v], vec![], &format!("{asv}/kmer_all_{j}")),
        });
    }
    let (index, valid) = (index.unwrap_or_default(), valid.unwrap_or_default());
    let valid = g.op(
        "Cast",
        &[&valid],
        vec![Attr::Int("to", DataType::FLOAT as i64)],
        &format!("{asv}/kmer_valid"),
    );
    let vectors = g.op(
        "Gather",
        &[&table, &index],
        vec![Attr::Int("axis", 0)],
        &format!("{asv}/kmer_lookup"),
    );
    let axis2 = g.const_i64(&[2]);
    let valid3 = g.op(
        "Unsqueeze",
        &[&valid, &axis2],
        vec![],
        &format!("{asv}/kmer_valid3"),
    );
    let vectors = g.op(
        "Mul",
        &[&vectors, &valid3],
        vec![],
        &format!("{asv}/kmer_masked"),
    );
    let sum = g.op(
        "ReduceSum",
        &[&vectors, &axis1],
        vec![Attr::Int("keepdims", 0)],
        &format!("{asv}/kmer_sum"),
    );
    let count = g.op(
        "ReduceSum",
        &[&valid, &axis1],
        vec![Attr::Int("keepdims", 1)],
        &format!("{asv}/kmer_count"),
    );
    let one_f = g.scalar_f32(1.0);
    let count = g.op(
        "Max",
        &[&count, &one_f],
        vec![],
        &format!("{asv}/kmer_count_min1"),
    );
    let root = g.op("Sqrt", &[&count], vec![], &format!("{asv}/kmer_count_sqrt"));
    Ok(g.op("Div", &[&sum, &root], vec![], &format!("{asv}/kmer_sqrtn")))
}

/// Everything after the ASV encoder, on `asv_emb` f32 `[batch, n_asv, D]` and `asv_mask3`
/// f32 `[batch, n_asv, 1]` (and the `counts` input `[batch, n_asv, 1]` of a model with a
/// count embedding); registers the graph outputs.
#[allow(clippy::too_many_arguments)]
fn sample_model(
    g: &mut GraphBuilder,
    c: &ModelConfig,
    kind: ModelKind,
    w: &WeightMap,
    base: &str,
    asv_emb: &str,
    asv_mask3: &str,
    counts: Option<&str>,
    ids: Option<&str>,
) -> Result<(), WeightError> {
    let d = c.embedding_dim;
    let (i0, i1, i2) = (g.const_i64(&[0]), g.const_i64(&[1]), g.const_i64(&[2]));
    let se = format!("{base}sample_encoder");
    let emb_shape = g.op("Shape", &[asv_emb], vec![], &format!("{se}/Shape"));
    let s = g.op(
        "Slice",
        &[&emb_shape, &i1, &i2],
        vec![],
        &format!("{se}/n_asv"),
    );
    let asv_mask = g.op("Squeeze", &[asv_mask3, &i2], vec![], "asv_mask2");
    let rows = c.token_limit + aam_config::architecture::SAMPLE_POSITION_EXTRA;
    let sp_key = format!("{se}.sample_position_embedding.position_embedding.weight");
    let sp_table = w.get(&sp_key, &[rows, d])?;
    let sp_table = g.weight(&sp_key, &[rows, d], sp_table);
    let positions = g.op(
        "Slice",
        &[&sp_table, &i0, &s, &i0],
        vec![],
        &format!("{se}/positions"),
    );
    let a = g.op(
        "Mul",
        &[asv_emb, asv_mask3],
        vec![],
        &format!("{se}/mask_empty"),
    );
    let log_c = counts.map(|counts| log_counts(g, &se, counts));
    // The abundance-weighted pooling's score bias `[batch, n_asv]`.
    let pooling_bias = match (c.abundance_pooling, &log_c) {
        (true, Some(log_c)) => Some(g.op("Squeeze", &[log_c, &i2], vec![], "abundance_bias")),
        _ => None,
    };
    let a = match log_c.filter(|_| c.count_embedding) {
        Some(log_c) => {
            let mixed = count_embedding(g, c, w, &se, &a, &log_c)?;
            g.op(
                "Mul",
                &[&mixed, asv_mask3],
                vec![],
                &format!("{se}/count_remask"),
            )
        }
        None => a,
    };
    let a = g.op(
        "Add",
        &[&a, &positions],
        vec![],
        &format!("{se}/add_positions"),
    );
    let h = transformer_stack(
        g,
        w,
        &format!("{se}.sample_transformer"),
        &a,
        &asv_mask,
        &c.stack(Stack::Sample),
    )?;
    let sample_emb = g.op("Mul", &[&h, asv_mask3], vec![], "base_embeddings");

    // Base model: encoder stack and pooling to the sample embedding.
    let h = transformer_stack(
        g,
        w,
        &format!("{base}encoder_transformer"),
        &sample_emb,
        &asv_mask,
        &c.stack(Stack::Encoder),
    )?;
    let embeddings = attention_pooling(
        g,
        w,
        &format!("{base}attention_pooling"),
        &h,
        &asv_mask,
        d,
        pooling_bias.as_deref(),
    )?;
    g.output(
        &embeddings,
        EMBEDDINGS,
        DataType::FLOAT,
        &[Dim::Named("batch"), Dim::Fixed(d)],
    );
    if kind == ModelKind::Encoder {
        return Ok(());
    }
    predictor_heads(
        g,
        c,
        w,
        &sample_emb,
        &asv_mask,
        pooling_bias.as_deref(),
        ids,
    )
}
