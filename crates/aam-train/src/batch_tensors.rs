//! A training batch from host arrays to tensors on the device: what each step and the
//! validation pass feed the model and the losses.

use aam_data::{Batch, TargetKind};
use aam_model::{AamModel, ModelOutputs};
use anyhow::Result;
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::masking::{mask_nucleotides, MaskedTokens};
use crate::options::TrainOptions;
use crate::train_data::TrainData;

/// A batch on the training device: tokens (masked when the nucleotide loss is on), read
/// counts `[batch, n_asv]`, the ASV mask, and the targets of each loss.
pub(crate) struct Tensors<B: Backend> {
    pub(crate) tokens: Tensor<B, 3, Int>,
    /// `tokens` before nucleotide masking, when masked: what the k-mer embedding reads.
    pub(crate) unmasked: Option<Tensor<B, 3, Int>>,
    pub(crate) counts: Tensor<B, 2>,
    pub(crate) asv_mask: Tensor<B, 2>,
    pub(crate) unifrac: Option<Tensor<B, 2>>,
    pub(crate) targets: Option<Vec<f32>>,
    /// Weight of each sample's target loss (`None`: all 1; validation is unweighted).
    pub(crate) sample_weights: Option<Vec<f32>>,
    pub(crate) nuc_targets: Option<(Tensor<B, 3, Int>, Tensor<B, 3>)>,
    pub(crate) faith: Option<Tensor<B, 2>>,
    /// Category indices int `[batch, n_columns]` of a model conditioned on them.
    pub(crate) categorical_ids: Option<Tensor<B, 2, Int>>,
}

impl<B: Backend> Tensors<B> {
    /// The read counts as the model takes them, `[batch, n_asv, 1]` (read only by a
    /// model with a count embedding).
    pub(crate) fn model_counts(&self) -> Tensor<B, 3> {
        self.counts.clone().unsqueeze_dim(2)
    }

    /// Samples `range` of this batch: what [`Tensors::forward`] and
    /// [`crate::data_parallel::forward`] read (tokens, their unmasked copy, counts, ASV
    /// mask, category indices), without the loss targets.
    pub(crate) fn rows(&self, range: std::ops::Range<usize>) -> Tensors<B> {
        Tensors {
            tokens: self.tokens.clone().slice([range.clone()]),
            unmasked: self.unmasked.clone().map(|u| u.slice([range.clone()])),
            counts: self.counts.clone().slice([range.clone()]),
            asv_mask: self.asv_mask.clone().slice([range.clone()]),
            unifrac: None,
            targets: None,
            sample_weights: None,
            nuc_targets: None,
            faith: None,
            categorical_ids: self.categorical_ids.clone().map(|i| i.slice([range])),
        }
    }

    /// The model's forward pass on this batch; with nucleotide masking the k-mer
    /// embedding reads the unmasked tokens ([`AamModel::forward_masked`]).
    pub(crate) fn forward<M: AamModel<B>>(&self, model: &M) -> ModelOutputs<B> {
        model.forward_masked(
            self.tokens.clone(),
            self.unmasked.clone(),
            Some(self.model_counts()),
            self.categorical_ids.clone(),
        )
    }
}

/// A batch as built on a data worker: host arrays only, so it crosses threads.
pub(crate) struct HostBatch {
    /// Table positions of the batch's samples.
    pub(crate) samples: Vec<usize>,
    pub(crate) batch: Batch,
    /// The masked-nucleotide input and targets, when the nucleotide loss is on.
    pub(crate) masked: Option<MaskedTokens>,
}

/// Builds the batch of `samples` (epoch `epoch` of the random token-limit policy) and,
/// with `mask = Some((ratio, seed))`, its masked-nucleotide input. Errors: a streamed
/// chunk that cannot be read.
pub(crate) fn host_batch(
    data: &TrainData,
    samples: &[usize],
    epoch: u64,
    mask: Option<(f64, u64)>,
    augmentation: Option<(&aam_data::Augmentation, u64)>,
) -> Result<HostBatch> {
    let batch = match (&data.stream, augmentation) {
        (Some(stream), _) => stream.batch(&data.dataset, samples, None, epoch, augmentation)?,
        (None, Some((a, seed))) => data.dataset.augmented_batch(samples, None, epoch, a, seed),
        (None, None) => data.dataset.batch(samples, None, epoch),
    };
    let masked = mask.map(|(ratio, seed)| mask_nucleotides(&batch.tokens, ratio, seed));
    Ok(HostBatch {
        samples: samples.to_vec(),
        batch,
        masked,
    })
}

/// `host` as tensors on `device`, with the batch's samples' standardized Faith PD and
/// category indices from `data`.
pub(crate) fn to_tensors<B: Backend>(
    host: &HostBatch,
    data: &TrainData,
    device: &B::Device,
) -> Tensors<B> {
    let faith = data.faith_pd.as_deref();
    let (batch, samples) = (&host.batch, &host.samples);
    let (b, s, l) = batch.tokens.dim();
    let int3 = |a: &ndarray::Array3<i64>| {
        Tensor::<B, 3, Int>::from_data(
            TensorData::new(a.iter().copied().collect::<Vec<_>>(), [b, s, l]),
            device,
        )
    };
    let (tokens, unmasked, nuc_targets) = match &host.masked {
        Some(m) => {
            let mask_t = Tensor::<B, 3>::from_data(
                TensorData::new(m.mask.iter().copied().collect::<Vec<_>>(), [b, s, l]),
                device,
            );
            (
                int3(&m.tokens),
                Some(int3(&batch.tokens)),
                Some((int3(&m.targets), mask_t)),
            )
        }
        None => (int3(&batch.tokens), None, None),
    };
    let f2 = |v: Vec<f32>, shape: [usize; 2]| {
        Tensor::<B, 2>::from_data(TensorData::new(v, shape), device)
    };
    Tensors {
        tokens,
        unmasked,
        counts: f2(batch.counts.iter().copied().collect(), [b, s]),
        asv_mask: f2(
            batch
                .asv_mask
                .iter()
                .map(|&m| if m { 1.0 } else { 0.0 })
                .collect(),
            [b, s],
        ),
        unifrac: batch
            .unifrac
            .as_ref()
            .map(|u| f2(u.iter().copied().collect(), [b, b])),
        targets: batch.targets.as_ref().map(|t| t.to_vec()),
        sample_weights: data
            .sample_weights
            .as_ref()
            .map(|w| samples.iter().map(|&i| w[i]).collect()),
        nuc_targets,
        faith: faith.map(|f| f2(samples.iter().map(|&i| f[i]).collect(), [b, 1])),
        categorical_ids: data.categorical_ids.as_ref().map(|ids| {
            let n = ids.ncols();
            let rows: Vec<i64> = samples.iter().flat_map(|&i| ids.row(i).to_vec()).collect();
            Tensor::<B, 2, Int>::from_data(TensorData::new(rows, [b, n]), device)
        }),
    }
}

/// The balanced class weights `[n_classes]` of the training split (`--class-weights`),
/// `None` for a regressor or without the option.
pub(crate) fn class_weight_tensor<B: Backend>(
    data: &TrainData,
    opts: &TrainOptions,
    device: &B::Device,
) -> Option<Tensor<B, 1>> {
    if !opts.class_weights || data.target_kind != Some(TargetKind::Categorical) {
        return None;
    }
    let targets = data.dataset.targets.as_ref()?;
    let mut counts = vec![0f32; data.n_classes];
    for &i in &data.split.train {
        counts[targets[i] as usize] += 1.0;
    }
    let n: f32 = counts.iter().sum();
    // sklearn "balanced": n / (C · n_c); an absent class gets weight 0.
    let w: Vec<f32> = counts
        .iter()
        .map(|&c| {
            if c > 0.0 {
                n / (data.n_classes as f32 * c)
            } else {
                0.0
            }
        })
        .collect();
    Some(Tensor::from_data(
        TensorData::new(w, [data.n_classes]),
        device,
    ))
}
