//! `aam train`'s target-head options: conditioning on metadata categories and the head's
//! shape and output (the reference's latest options, spec §3.11 and §6.4), mapped onto
//! [`aam_config::HeadConfig`], whose defaults they take.

use aam_config::{CategoricalFusion, HeadConfig, OutputActivation};
use anyhow::{bail, Result};
use clap::Args;

/// Target-head arguments of `aam train`.
#[derive(Args, Debug, Clone)]
pub struct HeadArgs {
    /// Metadata columns to condition the prediction on (e.g. `body-site,sex`): each
    /// column's categories in the training samples get a learnt embedding (an unseen or
    /// missing value: the unknown category); the labels are stored in the checkpoint.
    #[arg(long, value_delimiter = ',')]
    pub categorical_columns: Vec<String>,
    /// Weights of each training sample's target loss by its category: `auto` (n / (K ·
    /// n_k), balancing the categories) or JSON `{"gut": 2, "skin": 0.5}` (unlisted: 1).
    #[arg(long, value_name = "auto|JSON", requires = "categorical_columns")]
    pub categorical_loss_weights: Option<aam_train::sample_weights::CategoricalLossWeights>,
    /// The categorical column of --categorical-loss-weights (default: the first of
    /// --categorical-columns).
    #[arg(long, requires = "categorical_loss_weights")]
    pub categorical_loss_weight_column: Option<String>,
    /// Embedding dim of each categorical column.
    #[arg(long, default_value_t = HeadConfig::default().categorical_embed_dim)]
    pub categorical_embed_dim: usize,
    /// How the category embeddings enter the target head.
    #[arg(long, value_enum, default_value_t = CategoricalFusion::default())]
    pub categorical_fusion: CategoricalFusion,
    /// Attention heads of the cross-attention and Perceiver fusions (must divide the
    /// embedding dim).
    #[arg(long, default_value_t = HeadConfig::default().cross_attn_heads)]
    pub cross_attn_heads: usize,
    /// Learned latents of the Perceiver fusion.
    #[arg(long, default_value_t = HeadConfig::default().perceiver_num_latents)]
    pub perceiver_num_latents: usize,
    /// Self-attention layers over the Perceiver's latents.
    #[arg(long, default_value_t = HeadConfig::default().perceiver_num_layers)]
    pub perceiver_num_layers: usize,
    /// Categorical columns whose category scales and shifts the output (a learnt scale
    /// and bias per category, starting at 1 and 0); each must be in --categorical-columns.
    #[arg(long, value_delimiter = ',')]
    pub conditional_output_scaling: Vec<String>,
    /// Hidden widths of an MLP target head (e.g. `64,32`; ReLU between); none: one
    /// linear layer.
    #[arg(long, value_delimiter = ',')]
    pub regressor_hidden_dims: Vec<usize>,
    /// Dropout after each hidden layer of the MLP head.
    #[arg(long, default_value_t = HeadConfig::default().regressor_dropout)]
    pub regressor_dropout: f64,
    /// The MLP head beside a linear skip connection (needs --regressor-hidden-dims).
    #[arg(long)]
    pub residual_regression_head: bool,
    /// A LayerNorm on the pooled vector before the head (on in the reference's latest
    /// version; off by default here, where the head's defaults were measured without it).
    #[arg(
        long,
        default_value_t = HeadConfig::default().target_layer_norm,
        default_missing_value = "true",
        num_args = 0..=1,
        action = clap::ArgAction::Set,
        value_name = "true|false"
    )]
    pub target_layer_norm: bool,
    /// A sigmoid on a regression output, for targets in (0, 1).
    #[arg(long)]
    pub bounded_targets: bool,
    /// The activation on a regression output.
    #[arg(long, value_enum, default_value_t = OutputActivation::default())]
    pub output_activation: OutputActivation,
    /// A learnt output scale and bias (initially 1 and 0) on the output.
    #[arg(long)]
    pub learnable_output_scale: bool,
}

impl HeadArgs {
    /// The head configuration; the categorical columns' cardinalities are filled in by
    /// the training job from the training samples.
    ///
    /// Errors: a --conditional-output-scaling column that is not a categorical column.
    pub fn head_config(&self) -> Result<HeadConfig> {
        if let Some(c) = self
            .conditional_output_scaling
            .iter()
            .find(|c| !self.categorical_columns.contains(c))
        {
            bail!("--conditional-output-scaling names `{c}`, which is not in --categorical-columns; add it there");
        }
        Ok(HeadConfig {
            categorical_embed_dim: self.categorical_embed_dim,
            categorical_fusion: self.categorical_fusion,
            cross_attn_heads: self.cross_attn_heads,
            perceiver_num_latents: self.perceiver_num_latents,
            perceiver_num_layers: self.perceiver_num_layers,
            conditional_scaling_columns: self.conditional_output_scaling.clone(),
            target_layer_norm: self.target_layer_norm,
            regressor_hidden_dims: self.regressor_hidden_dims.clone(),
            regressor_dropout: self.regressor_dropout,
            residual_regression_head: self.residual_regression_head,
            learnable_output_scale: self.learnable_output_scale,
            bounded_targets: self.bounded_targets,
            output_activation: self.output_activation,
            ..HeadConfig::default()
        })
    }
}
