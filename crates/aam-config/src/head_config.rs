//! The target head's options at the reference's latest version (spec §3.11 "Target path",
//! "CategoricalEmbedder", "Fusion …"): conditioning on metadata categories, MLP and
//! residual heads, quantile outputs and output transforms. The field names are the
//! reference `SequencePredictor` constructor's, so a reference `config.json` reads as is.
//! Every default leaves the head as it was before these options existed (one `Linear`),
//! so older checkpoints read unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the metadata categories condition the target head (`--categorical-fusion`, spec
/// §3.11 "Fusion …"). `c` is the concatenated category embeddings `[batch, C]`
/// (C = columns × `categorical_embed_dim`), `s` the per-ASV sample embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CategoricalFusion {
    /// `Linear(D + C → D)([s ; c])` before the target transformer (`categorical_projection`).
    #[default]
    #[cfg_attr(feature = "clap", value(help = "Linear(D + C → D) of [s ; c] per ASV"))]
    Concat,
    /// `s + Linear(C → D)(c)` before the target transformer (`categorical_projection`).
    #[cfg_attr(feature = "clap", value(help = "s + Linear(C → D)(c) per ASV"))]
    Add,
    /// Gated multimodal unit after pooling: `h + σ(W_g[h ; c] + b_g) ⊙ tanh(W_c c + b_c)`
    /// (`gmu.gate`, `gmu.cat_transform`).
    #[cfg_attr(
        feature = "clap",
        value(help = "Gated multimodal unit on the pooled vector")
    )]
    Gmu,
    /// `LN(s + MHA(q = s, k = v = Linear(C → D)(c)))` before the target transformer
    /// (`cross_attn_fusion`).
    #[cfg_attr(
        feature = "clap",
        value(help = "Cross-attention from each ASV to the category token")
    )]
    CrossAttention,
    /// A Perceiver replaces the target transformer and pooling: learned latents
    /// cross-attend to `[Linear(s) ; Linear(c)]`, then self-attention layers, the mean
    /// over latents and `Linear(D → D)` (`perceiver_fusion`).
    #[cfg_attr(
        feature = "clap",
        value(help = "Learned latents cross-attending to the ASVs and the category token")
    )]
    Perceiver,
}

impl CategoricalFusion {
    /// The `--categorical-fusion` value.
    pub fn name(self) -> &'static str {
        match self {
            CategoricalFusion::Concat => "concat",
            CategoricalFusion::Add => "add",
            CategoricalFusion::Gmu => "gmu",
            CategoricalFusion::CrossAttention => "cross-attention",
            CategoricalFusion::Perceiver => "perceiver",
        }
    }
}

/// The activation on a regression output (`--output-activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OutputActivation {
    /// The value as it is.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// `eˣ`.
    Exp,
}

/// The target head's options; flattened into [`crate::ModelConfig`]'s JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeadConfig {
    /// Metadata columns the target head is conditioned on, name → cardinality: the rows of
    /// the column's embedding table, index 0 being the unknown or missing category (the
    /// padding row). Sorted by name, the order of the model's `categorical_ids`
    /// `[batch, columns]` input. Empty: no conditioning.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub categorical_cardinalities: BTreeMap<String, usize>,
    /// Embedding dim of each categorical column.
    pub categorical_embed_dim: usize,
    /// How the category embeddings enter the head.
    pub categorical_fusion: CategoricalFusion,
    /// Heads of the cross-attention fusion and of the Perceiver's attention.
    pub cross_attn_heads: usize,
    /// Learned latents of the Perceiver fusion.
    pub perceiver_num_latents: usize,
    /// Self-attention layers over the Perceiver's latents.
    pub perceiver_num_layers: usize,
    /// The Perceiver's latents attend to empty ASV slots too, as the reference's do (its
    /// output then depends on how many empty slots a batch pads to). Set for models
    /// imported from the reference; aam's own mask the empty slots out.
    #[serde(skip_serializing_if = "is_false")]
    pub perceiver_attends_padding: bool,
    /// Columns (of `categorical_cardinalities`) whose category scales and shifts the
    /// output: `pred · scale[col][id] + bias[col][id]`, one column after the other.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditional_scaling_columns: Vec<String>,
    /// A LayerNorm (eps 1e-5) on the pooled vector before the head (`target_norm`); on in
    /// the reference's latest version, absent from models written before it.
    #[serde(skip_serializing_if = "is_false")]
    pub target_layer_norm: bool,
    /// `count_prediction` through a sigmoid, in (0, 1), as in the reference's latest
    /// version; unbounded otherwise.
    #[serde(skip_serializing_if = "is_false")]
    pub bounded_count_prediction: bool,
    /// Hidden widths of an MLP target head (`Linear, ReLU[, Dropout]` per width, then
    /// `Linear`); empty: one `Linear(D → out)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regressor_hidden_dims: Vec<usize>,
    /// Dropout after each hidden ReLU of the MLP head.
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub regressor_dropout: f64,
    /// The MLP head plus a linear skip connection `Linear(D → out)` (`target_head.skip`,
    /// `target_head.mlp`).
    #[serde(skip_serializing_if = "is_false")]
    pub residual_regression_head: bool,
    /// Quantiles predicted per output (quantile loss): the head's width is
    /// `out_dim · num_quantiles`, read as `[batch, out_dim, num_quantiles]`, with no
    /// output transform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_quantiles: Option<usize>,
    /// A learned `output_scale`, `output_bias` `[out_dim]` (initially 1 and 0) on the output.
    #[serde(skip_serializing_if = "is_false")]
    pub learnable_output_scale: bool,
    /// A sigmoid on a regression output, for targets in (0, 1).
    #[serde(skip_serializing_if = "is_false")]
    pub bounded_targets: bool,
    /// The activation on a regression output.
    #[serde(skip_serializing_if = "is_no_activation")]
    pub output_activation: OutputActivation,
}

impl Default for HeadConfig {
    /// The reference's defaults for the options (`--categorical-embed-dim 16`,
    /// `--cross-attn-heads 8`, `--perceiver-num-latents 64`, `--perceiver-num-layers 2`);
    /// conditioning, MLP, quantiles and transforms off.
    fn default() -> Self {
        HeadConfig {
            categorical_cardinalities: BTreeMap::new(),
            categorical_embed_dim: 16,
            categorical_fusion: CategoricalFusion::Concat,
            cross_attn_heads: 8,
            perceiver_num_latents: 64,
            perceiver_num_layers: 2,
            perceiver_attends_padding: false,
            conditional_scaling_columns: Vec::new(),
            target_layer_norm: false,
            bounded_count_prediction: false,
            regressor_hidden_dims: Vec::new(),
            regressor_dropout: 0.0,
            residual_regression_head: false,
            num_quantiles: None,
            learnable_output_scale: false,
            bounded_targets: false,
            output_activation: OutputActivation::None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

fn is_no_activation(a: &OutputActivation) -> bool {
    *a == OutputActivation::None
}

/// Most categorical columns, rows of one column's table and quantiles aam builds.
const MAX_COLUMNS: usize = 256;
const MAX_CARDINALITY: usize = 1 << 20;
const MAX_QUANTILES: usize = 256;
const MAX_LATENTS: usize = 1024;
const MAX_PERCEIVER_LAYERS: usize = 16;

impl HeadConfig {
    /// Whether the model takes `categorical_ids` int64 `[batch, columns]`.
    pub fn is_conditioned(&self) -> bool {
        !self.categorical_cardinalities.is_empty()
    }

    /// The categorical columns in input order (sorted by name).
    pub fn categorical_columns(&self) -> Vec<&str> {
        self.categorical_cardinalities
            .keys()
            .map(String::as_str)
            .collect()
    }

    /// Whether the head is the reference's first one (`target_encoder`, `target_pooling`,
    /// one `Linear`, an unbounded count head): every option here at its default except
    /// the sizes that only matter with them.
    pub fn is_plain(&self) -> bool {
        !self.is_conditioned()
            && !self.target_layer_norm
            && !self.bounded_count_prediction
            && self.regressor_hidden_dims.is_empty()
            && self.num_quantiles.is_none()
            && !self.learnable_output_scale
            && !self.bounded_targets
            && self.output_activation == OutputActivation::None
    }

    /// Width C of the concatenated category embeddings (0 without conditioning).
    pub fn categorical_width(&self) -> usize {
        self.categorical_cardinalities.len() * self.categorical_embed_dim
    }

    /// Predictions per sample: `out_dim · num_quantiles` (or `out_dim`).
    pub fn output_width(&self, out_dim: usize) -> usize {
        out_dim * self.num_quantiles.unwrap_or(1)
    }

    /// Checks the options against each other and against the model width `dim`, before
    /// anything is sized from them (a configuration may come from an untrusted file);
    /// the reference's checks (spec §3.11 "Validation errors") plus size bounds.
    pub fn validate(&self, dim: usize, is_classifier: bool) -> Result<(), String> {
        let n = self.categorical_cardinalities.len();
        if n > MAX_COLUMNS {
            return Err(format!(
                "{n} categorical columns (--categorical-columns); aam builds at most {MAX_COLUMNS}"
            ));
        }
        for (column, &card) in &self.categorical_cardinalities {
            if !(1..=MAX_CARDINALITY).contains(&card) {
                return Err(format!(
                    "categorical column `{column}`: cardinality {card} is not in 1..={MAX_CARDINALITY} (index 0 is the unknown category)"
                ));
            }
        }
        if self.is_conditioned() && !(1..=4096).contains(&self.categorical_embed_dim) {
            return Err(format!(
                "categorical_embed_dim (--categorical-embed-dim) {} is not in 1..=4096",
                self.categorical_embed_dim
            ));
        }
        let uses_heads = self.is_conditioned()
            && matches!(
                self.categorical_fusion,
                CategoricalFusion::CrossAttention | CategoricalFusion::Perceiver
            );
        if uses_heads && (self.cross_attn_heads == 0 || dim % self.cross_attn_heads != 0) {
            return Err(format!(
                "cross_attn_heads (--cross-attn-heads) {} does not divide embedding_dim {dim}",
                self.cross_attn_heads
            ));
        }
        if self.is_conditioned() && self.categorical_fusion == CategoricalFusion::Perceiver {
            if !(1..=MAX_LATENTS).contains(&self.perceiver_num_latents) {
                return Err(format!(
                    "perceiver_num_latents (--perceiver-num-latents) {} is not in 1..={MAX_LATENTS}",
                    self.perceiver_num_latents
                ));
            }
            if !(1..=MAX_PERCEIVER_LAYERS).contains(&self.perceiver_num_layers) {
                return Err(format!(
                    "perceiver_num_layers (--perceiver-num-layers) {} is not in 1..={MAX_PERCEIVER_LAYERS}",
                    self.perceiver_num_layers
                ));
            }
        }
        for column in &self.conditional_scaling_columns {
            if !self.categorical_cardinalities.contains_key(column) {
                return Err(format!(
                    "--conditional-output-scaling names `{column}`, which is not one of the categorical columns ({}); add it to --categorical-columns",
                    self.categorical_columns().join(", ")
                ));
            }
        }
        if let Some(&h) = self
            .regressor_hidden_dims
            .iter()
            .find(|&&h| h == 0 || h > 1 << 16)
        {
            return Err(format!(
                "--regressor-hidden-dims holds {h}; each width must be in 1..=65536"
            ));
        }
        if self.residual_regression_head && self.regressor_hidden_dims.is_empty() {
            return Err(
                "--residual-regression-head needs --regressor-hidden-dims (the MLP beside the skip connection)".into(),
            );
        }
        if !(0.0..1.0).contains(&self.regressor_dropout) {
            return Err(format!(
                "regressor_dropout (--regressor-dropout) {} is not in [0, 1)",
                self.regressor_dropout
            ));
        }
        if let Some(q) = self.num_quantiles {
            if !(1..=MAX_QUANTILES).contains(&q) {
                return Err(format!("num_quantiles {q} is not in 1..={MAX_QUANTILES}"));
            }
            if is_classifier {
                return Err("quantile outputs are for regression, not a classifier".into());
            }
        }
        let activation = self.output_activation != OutputActivation::None;
        if activation && (self.bounded_targets || is_classifier) {
            return Err(format!(
                "--output-activation {:?} cannot be combined with --bounded-targets or a classifier (each sets the output's range)",
                self.output_activation
            ));
        }
        if self.bounded_targets && is_classifier {
            return Err("--bounded-targets is for regression, not a classifier".into());
        }
        Ok(())
    }
}
