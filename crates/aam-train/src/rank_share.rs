//! One rank's share of the pairwise UniFrac loss when the global batch is split over the
//! processes of a training group (`docs/multi-device.md`, "Several machines"): built so that
//! summing the ranks' gradients (one all-reduce) gives the gradient of the single-process
//! loss on the whole global batch, every pair of it included. Every other loss is computed
//! the same way, on all of the global batch's outputs (`forward_share`).

use std::hash::{Hash, Hasher};

use aam_model::{AamModel, ModelOutputs};
use anyhow::{bail, Result};
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;

use crate::batch_tensors::Tensors;
use crate::collective::Collective;
use crate::data_parallel;
use crate::options::TrainOptions;
use crate::train_data::TrainData;
use aam_config::CheckpointConfig;
use std::collections::BTreeMap;

/// A float tensor of the global batch, e.g. the sample embeddings `[global_batch, D]`,
/// as every rank sees it after an all-gather, with this rank's rows `offset..offset +
/// local_batch` replaced by `local` `[local_batch, …]`, which keep their gradient; every
/// other rank's rows are constants (detached).
///
/// [`crate::losses::unifrac_loss`] of the result against the global batch's UniFrac
/// distances has the single-process value, and its gradient with respect to `local` is the
/// single-process gradient with respect to those samples: a pair with one sample on this
/// rank is counted once with the gradient flowing to this rank's side (the other rank
/// sends the other side's), a pair within this rank as on one process, and a pair with no
/// sample here is a constant. So the ranks' gradients sum to the single-process gradient.
///
/// This holds when this rank's rows of `gathered` are the values of `local` it sent (the
/// same forward pass, the same dropout masks). Every rank still builds the whole
/// `[global_batch, global_batch]` distance matrix, so that cost does not shrink with more
/// ranks; the loss value is the same on every rank (log it once, not summed).
///
/// Panics when `local` does not fit `gathered` at `offset` (its width differs, or its rows
/// run past the end): the caller sized both from the same batch split.
pub fn with_local_rows<B: Backend, const D: usize>(
    gathered: Tensor<B, D>,
    local: Tensor<B, D>,
    offset: usize,
) -> Tensor<B, D> {
    let (shape, local_shape) = (gathered.dims(), local.dims());
    let (global, rows) = (shape[0], local_shape[0]);
    assert!(
        shape[1..] == local_shape[1..] && offset + rows <= global,
        "local rows {local_shape:?} at row {offset} do not fit the gathered {shape:?}"
    );
    let gathered = gathered.detach();
    let mut parts = Vec::with_capacity(3);
    if offset > 0 {
        parts.push(gathered.clone().slice([0..offset]));
    }
    parts.push(local);
    if offset + rows < global {
        parts.push(gathered.slice([offset + rows..global]));
    }
    Tensor::cat(parts, 0)
}

/// Every rank's number of samples of a global batch of `batch` samples split over
/// `world_size` ranks: consecutive near-equal shares in rank order
/// ([`crate::data_parallel::shard_sizes`]), 0 for the ranks past the batch's size.
pub fn rank_rows(batch: usize, world_size: usize) -> Vec<usize> {
    let mut rows = crate::data_parallel::shard_sizes(batch, world_size);
    rows.resize(world_size.max(1), 0);
    rows
}

/// The model's outputs for the whole global `batch` as this rank of `group` sees them:
/// its own rows (`rank_rows`) computed by `model` on `devices` (data parallel there) and
/// live, every other rank's rows all-gathered as constants ([`with_local_rows`]). The
/// losses computed on them have the single-process value on every rank, and the ranks'
/// gradients sum to the single-process gradient. Returns the outputs, the local
/// replicas (several devices) and whether this rank holds rows (a rank past a small
/// last batch holds none: its forward pass on the first sample only gives the shapes,
/// and it must not run a backward pass).
///
/// Errors: the transport's.
pub(crate) fn forward_share<B, M>(
    model: &M,
    batch: &Tensors<B>,
    devices: &[B::Device],
    group: &dyn Collective,
) -> Result<(ModelOutputs<B>, Option<Vec<M>>, bool)>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
{
    let g = group.group();
    let rows = rank_rows(batch.tokens.dims()[0], g.world_size as usize);
    let rank = g.rank as usize;
    let offset: usize = rows[..rank].iter().sum();
    let live = rows[rank] > 0;
    let range = if live {
        offset..offset + rows[rank]
    } else {
        0..1
    };
    let (local, replicas) = data_parallel::forward(model, &batch.rows(range), devices);
    let share = Share {
        rows: &rows,
        offset,
        live,
        group,
    };
    let outputs = ModelOutputs {
        embeddings: share.gather(local.embeddings)?,
        base_embeddings: share.gather(local.base_embeddings)?,
        asv_mask: share.gather(local.asv_mask)?,
        base_prediction: share.gather_some(local.base_prediction)?,
        nuc_predictions: share.gather_some(local.nuc_predictions)?,
        target_prediction: share.gather_some(local.target_prediction)?,
        count_prediction: share.gather_some(local.count_prediction)?,
    };
    Ok((outputs, replicas.filter(|_| live), live))
}

/// One rank's place in a global batch, for gathering its outputs.
struct Share<'a> {
    rows: &'a [usize],
    offset: usize,
    live: bool,
    group: &'a dyn Collective,
}

impl Share<'_> {
    /// Every rank's rows of `local` (`[local_rows, …]`) in rank order, this rank's live.
    fn gather<B: Backend, const D: usize>(&self, local: Tensor<B, D>) -> Result<Tensor<B, D>> {
        let mut shape = local.dims();
        let per_row: usize = shape[1..].iter().product();
        let values: Vec<f32> = if self.live {
            local
                .clone()
                .into_data()
                .convert::<f32>()
                .to_vec()
                .map_err(|e| anyhow::anyhow!("cannot read the model's outputs: {e:?}"))?
        } else {
            Vec::new()
        };
        let counts: Vec<usize> = self.rows.iter().map(|r| r * per_row).collect();
        let all = self.group.all_gather(&values, &counts)?;
        shape[0] = self.rows.iter().sum();
        let gathered = Tensor::<B, D>::from_data(
            TensorData::new(all, shape).convert_dtype(local.dtype()),
            &local.device(),
        );
        Ok(if self.live {
            with_local_rows(gathered, local, self.offset)
        } else {
            gathered
        })
    }

    fn gather_some<B: Backend, const D: usize>(
        &self,
        local: Option<Tensor<B, D>>,
    ) -> Result<Option<Tensor<B, D>>> {
        local.map(|t| self.gather(t)).transpose()
    }
}

/// Checks that this rank of `group` starts where rank 0 does: the same weights (initial
/// or resumed), training and validation samples, training options (but the progress
/// display and the data workers) and model configuration. Each rank builds its model and split itself, so a rank given other inputs or
/// flags would otherwise train another model silently.
///
/// Errors (on the rank that differs, naming it): the fingerprints differ; the transport's.
pub(crate) fn check_same_start<B: Backend, M: Module<B>>(
    model: &M,
    data: &TrainData,
    opts: &TrainOptions,
    config: &CheckpointConfig,
    group: &dyn Collective,
) -> Result<()> {
    struct Sum(f64, usize);
    impl<B: Backend> ModuleVisitor<B> for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let values = param.val().into_data().convert::<f32>();
            self.0 += values
                .as_slice::<f32>()
                .map(|v| v.iter().map(|&x| f64::from(x)).sum::<f64>())
                .unwrap_or(f64::NAN);
            self.1 += values.num_elements();
        }
    }
    let mut sum = Sum(0.0, 0);
    model.visit(&mut sum);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // Every training option but what only shows progress or feeds the data workers
    // (neither changes the model), and the model's configuration.
    let options = TrainOptions {
        progress: false,
        prefetch: Default::default(),
        ..opts.clone()
    };
    (
        &data.split.train,
        &data.split.validation,
        serde_json::to_string(&options)?,
        serde_json::to_string(config)?,
    )
        .hash(&mut h);
    let mut mine = Vec::with_capacity(24);
    mine.extend_from_slice(&sum.0.to_le_bytes());
    mine.extend_from_slice(&(sum.1 as u64).to_le_bytes());
    mine.extend_from_slice(&h.finish().to_le_bytes());
    let rank0 = group.broadcast_from_rank0(mine.clone())?;
    if rank0[..16] != mine[..16] {
        bail!(
            "rank {} starts from other weights than rank 0 (sum {} over {} values here): give every process the same --seed, architecture flags and --pretrained-encoder",
            group.group().rank,
            sum.0,
            sum.1
        );
    }
    if rank0[16..] != mine[16..] {
        bail!(
            "rank {} has other training or validation samples, training options or model configuration than rank 0: give every process the same command line and inputs",
            group.group().rank
        );
    }
    Ok(())
}

/// Rank 0's epoch metrics (`train`, `validation`: name → value) on every rank of `group`,
/// sent bit for bit (NaN included), so that every rank takes the same decisions from them.
///
/// Errors: the transport's; bytes that are not what rank 0 encoded.
pub(crate) fn rank0_metrics(
    group: &dyn Collective,
    train: BTreeMap<String, f64>,
    validation: BTreeMap<String, f64>,
) -> Result<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
    let bits = |m: &BTreeMap<String, f64>| -> Vec<(String, u64)> {
        m.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect()
    };
    let bytes = serde_json::to_vec(&(bits(&train), bits(&validation)))?;
    let bytes = group.broadcast_from_rank0(bytes)?;
    type Bits = Vec<(String, u64)>;
    let (t, v): (Bits, Bits) = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("the epoch's metrics rank 0 sent cannot be read: {e}"))?;
    let back = |m: Bits| m.into_iter().map(|(k, b)| (k, f64::from_bits(b))).collect();
    Ok((back(t), back(v)))
}

#[cfg(test)]
mod tests {
    use super::with_local_rows;
    use crate::data_parallel::shard_sizes;
    use crate::losses::unifrac_loss;
    use burn::prelude::*;
    use burn::tensor::{Distribution, TensorData};

    type B = burn::backend::Autodiff<burn::backend::NdArray<f32>>;

    /// Symmetric distances in [0, 1) with a zero diagonal, `[n, n]`.
    fn distances(n: usize) -> Tensor<B, 2> {
        let mut v = vec![0f32; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let d = ((i * 7 + j * 3) % 10) as f32 / 10.0;
                v[i * n + j] = d;
                v[j * n + i] = d;
            }
        }
        Tensor::from_data(TensorData::new(v, [n, n]), &Default::default())
    }

    /// Split over 3 ranks (3 + 2 + 2 samples), each rank's UniFrac loss on the gathered
    /// embeddings with its own rows live: the same loss value as one process, and the
    /// ranks' gradients of the weights sum to the single-process gradient (1e-5).
    #[test]
    fn ranks_gradients_sum_to_the_single_process_gradient() {
        let device = Default::default();
        let (n, features, dim) = (7, 5, 4);
        let x = Tensor::<B, 2>::random([n, features], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<B, 2>::random([features, dim], Distribution::Normal(0.0, 0.5), &device)
            .require_grad();
        let truth = distances(n);

        let single = unifrac_loss(x.clone().matmul(w.clone()), truth.clone(), 1.0);
        let single_value: f32 = single.clone().into_scalar();
        let single_grad = w.grad(&single.backward()).unwrap();

        // Every sample's embeddings, still tracked: with_local_rows must let no gradient
        // through the other ranks' rows (an all-gather hands over values only).
        let gathered = x.clone().matmul(w.clone());
        let mut offset = 0;
        let mut summed = None;
        for rows in shard_sizes(n, 3) {
            let local = x.clone().slice([offset..offset + rows]).matmul(w.clone());
            let loss = unifrac_loss(
                with_local_rows(gathered.clone(), local, offset),
                truth.clone(),
                1.0,
            );
            let value: f32 = loss.clone().into_scalar();
            assert!(
                (value - single_value).abs() < 1e-6,
                "{value} vs {single_value}"
            );
            let grad = w.grad(&loss.backward()).unwrap();
            summed = Some(match summed {
                None => grad,
                Some(s) => s + grad,
            });
            offset += rows;
        }
        let summed: Vec<f32> = summed.unwrap().into_data().to_vec().unwrap();
        let single_grad: Vec<f32> = single_grad.into_data().to_vec().unwrap();
        assert!(
            single_grad.iter().any(|g| g.abs() > 1e-3),
            "{single_grad:?}"
        );
        for (a, b) in summed.iter().zip(&single_grad) {
            assert!((a - b).abs() < 1e-5, "{summed:?}\nvs\n{single_grad:?}");
        }
    }

    #[test]
    fn every_rank_gets_a_share_and_ranks_past_a_small_batch_none() {
        use super::rank_rows;
        assert_eq!(rank_rows(8, 2), vec![4, 4]);
        assert_eq!(rank_rows(7, 3), vec![3, 2, 2]);
        assert_eq!(rank_rows(1, 3), vec![1, 0, 0]);
        assert_eq!(rank_rows(0, 2), vec![0, 0]);
        assert_eq!(rank_rows(5, 1), vec![5]);
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn local_rows_past_the_end_are_refused() {
        let device = Default::default();
        let gathered = Tensor::<B, 2>::zeros([4, 2], &device);
        let _ = with_local_rows(gathered, Tensor::zeros([2, 2], &device), 3);
    }
}
