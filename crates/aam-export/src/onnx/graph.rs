//! The whole model as one ONNX graph: ASV encoder → sample encoder → encoder stack →
//! sample embedding, plus the count and target heads of a predictor. Mirrors
//! `aam_model::{asv_encoder, sample_encoder, sequence_encoder, sequence_predictor}`.
//!
//! Inputs and outputs (named dynamic axes `batch`, `n_asv`):
//! - `tokens` int64 `[batch, n_asv, max_bp + 1]` (0 = padding);
//! - `embeddings` f32 `[batch, D]`;
//! - predictors: `target_prediction` f32 `[batch, out_dim]` (standardized value, or class
//!   log-probabilities), `count_prediction` f32 `[batch, n_asv, 1]`, and for classifiers
//!   `class_probabilities` f32 `[batch, out_dim]`.

use aam_config::{ModelConfig, ModelKind, Stack};
use aam_model::sequence_predictor::BASE_PREFIX;
use aam_model::{WeightError, WeightMap};
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::GraphProto;

use super::builder::{Attr, Dim, GraphBuilder};
use super::layers::linear;
use super::pooling::attention_pooling;
use super::transformer::transformer_stack;

/// Name of the graph input.
pub const TOKENS: &str = "tokens";
/// Pooled sample embedding output.
pub const EMBEDDINGS: &str = "embeddings";
/// Target head output.
pub const TARGET_PREDICTION: &str = "target_prediction";
/// Class probabilities output (classifiers).
pub const CLASS_PROBABILITIES: &str = "class_probabilities";
/// Count head output.
pub const COUNT_PREDICTION: &str = "count_prediction";

/// Builds the graph of a model of configuration `c` and kind `kind` from its weights
/// (reference state-dict names).
///
/// Errors: a weight the configuration needs is missing or has another shape.
pub fn model_graph(
    c: &ModelConfig,
    kind: ModelKind,
    w: &WeightMap,
) -> Result<GraphProto, WeightError> {
    let mut g = GraphBuilder::default();
    let l = c.max_bp + 1;
    let d = c.embedding_dim;
    let tokens = g.input(
        TOKENS,
        DataType::INT64,
        &[Dim::Named("batch"), Dim::Named("n_asv"), Dim::Fixed(l)],
    );
    let base = match kind {
        ModelKind::Encoder => "",
        ModelKind::Predictor => BASE_PREFIX,
    };

    // Dynamic sizes, all from Shape(tokens).
    let shape = g.op("Shape", &[&tokens], vec![], "tokens/Shape");
    let (i0, i1, i2) = (g.const_i64(&[0]), g.const_i64(&[1]), g.const_i64(&[2]));
    let b = g.op("Slice", &[&shape, &i0, &i1], vec![], "batch");
    let s = g.op("Slice", &[&shape, &i1, &i2], vec![], "n_asv");

    // ASV encoder: every ASV slot of every sample is one row of nucleotides.
    let asv = format!("{base}sample_encoder.asv_encoder");
    let n = g.op("Mul", &[&b, &s], vec![], "n_rows");
    let l_const = g.const_i64(&[l as i64]);
    let flat_shape = g.op(
        "Concat",
        &[&n, &l_const],
        vec![Attr::Int("axis", 0)],
        "rows_shape",
    );
    let flat = g.op("Reshape", &[&tokens, &flat_shape], vec![], "rows");
    let zero = g.scalar_i64(0);
    let valid = g.op("Greater", &[&flat, &zero], vec![], "nucleotide_valid");
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
        &[&tok_table, &flat],
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
        &mut g,
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
    let pooled = attention_pooling(&mut g, w, &format!("{asv}.attention_pooling"), &h, &mask, d)?;
    let d_const = g.const_i64(&[d as i64]);
    let asv_shape = g.op(
        "Concat",
        &[&b, &s, &d_const],
        vec![Attr::Int("axis", 0)],
        "asv_embeddings_shape",
    );
    let asv_emb = g.op("Reshape", &[&pooled, &asv_shape], vec![], "asv_embeddings");

    // Sample encoder: ASV embeddings + slot positions through the sample transformer.
    let se = format!("{base}sample_encoder");
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
    let asv_mask = g.op("Squeeze", &[&asv_mask3, &i2], vec![], "asv_mask");
    let rows = c.token_limit + aam_model::sample_encoder::SAMPLE_POSITION_EXTRA;
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
        &[&asv_emb, &asv_mask3],
        vec![],
        &format!("{se}/mask_empty"),
    );
    let a = g.op(
        "Add",
        &[&a, &positions],
        vec![],
        &format!("{se}/add_positions"),
    );
    let h = transformer_stack(
        &mut g,
        w,
        &format!("{se}.sample_transformer"),
        &a,
        &asv_mask,
        &c.stack(Stack::Sample),
    )?;
    let sample_emb = g.op("Mul", &[&h, &asv_mask3], vec![], "base_embeddings");

    // Base model: encoder stack and pooling to the sample embedding.
    let h = transformer_stack(
        &mut g,
        w,
        &format!("{base}encoder_transformer"),
        &sample_emb,
        &asv_mask,
        &c.stack(Stack::Encoder),
    )?;
    let embeddings = attention_pooling(
        &mut g,
        w,
        &format!("{base}attention_pooling"),
        &h,
        &asv_mask,
        d,
    )?;
    g.output(
        &embeddings,
        EMBEDDINGS,
        DataType::FLOAT,
        &[Dim::Named("batch"), Dim::Fixed(d)],
    );
    if kind == ModelKind::Encoder {
        return Ok(g.finish("aam_encoder"));
    }

    // Predictor heads.
    let target = transformer_stack(
        &mut g,
        w,
        "target_encoder",
        &sample_emb,
        &asv_mask,
        &c.stack(Stack::Target),
    )?;
    let target = attention_pooling(&mut g, w, "target_pooling", &target, &asv_mask, d)?;
    let target = linear(&mut g, w, "target_head", &target, (d, c.out_dim), true)?;
    let out_dims = [Dim::Named("batch"), Dim::Fixed(c.out_dim)];
    if c.is_classifier {
        let logp = g.op(
            "LogSoftmax",
            &[&target],
            vec![Attr::Int("axis", 1)],
            "target_head/LogSoftmax",
        );
        g.output(&logp, TARGET_PREDICTION, DataType::FLOAT, &out_dims);
        let p = g.op(
            "Softmax",
            &[&target],
            vec![Attr::Int("axis", 1)],
            "target_head/Softmax",
        );
        g.output(&p, CLASS_PROBABILITIES, DataType::FLOAT, &out_dims);
    } else {
        g.output(&target, TARGET_PREDICTION, DataType::FLOAT, &out_dims);
    }
    let count = transformer_stack(
        &mut g,
        w,
        "count_encoder",
        &sample_emb,
        &asv_mask,
        &c.stack(Stack::Count),
    )?;
    let count = linear(&mut g, w, "count_head", &count, (d, 1), true)?;
    g.output(
        &count,
        COUNT_PREDICTION,
        DataType::FLOAT,
        &[Dim::Named("batch"), Dim::Named("n_asv"), Dim::Fixed(1)],
    );
    Ok(g.finish("aam_predictor"))
}
