//! Data parallelism over several devices of one backend (`--devices`), in one Burn
//! autodiff graph: the batch is split into one shard per device, each device runs a
//! replica of the model (`Module::fork`: the same parameters, copied to the device) on
//! its shard, and the outputs are gathered on the first device, where the losses are
//! computed over the whole batch exactly as on one device. The pairwise UniFrac loss
//! therefore sees every pair of the global batch, across devices (the reference computed
//! it per device and lost the cross-device pairs). The backward pass sends each gradient
//! back through the gather to the device that produced it; every replica's parameter
//! gradients are then moved to the first device and summed (the all-reduce: the replicas
//! are re-forked from the updated model at the next step, so one optimizer state
//! suffices).
//!
//! Results equal the single-device run for the same global batch (up to float summation
//! order) when dropout is 0; with dropout each shard draws its own masks.

use crate::batch_tensors::Tensors;
use aam_model::{AamModel, ModelOutputs};
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// Draws every lazily initialised parameter of `model` now, in module order. Burn
/// initialises a parameter at its first use, and a clone of an uninitialised parameter
/// draws its own values: replicas forked from an uninitialised model would each get
/// other weights. Training materialises the model first for any device count, so one
/// and several devices start from the same weights.
pub fn materialize<B: Backend, M: Module<B>>(model: &M) {
    struct Touch;
    impl<B: Backend> ModuleVisitor<B> for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}

/// Sizes of `shards` near-equal consecutive shards of `batch` samples (the first
/// `batch % shards` one larger); fewer shards when the batch is smaller than `shards`.
pub fn shard_sizes(batch: usize, shards: usize) -> Vec<usize> {
    let n = shards.clamp(1, batch.max(1));
    (0..n)
        .map(|i| batch / n + usize::from(i < batch % n))
        .collect()
}

/// The model's outputs for `batch` (its tokens int `[batch, n_asv, max_bp + 1]`, their
/// unmasked copy when masked, and read counts `[batch, n_asv, 1]`, all on the first
/// device), computed by one replica per device on consecutive shards and gathered on the
/// first device; with the replicas, whose gradients [`accumulate_gradients`] collects.
/// One device: the model itself, no replica.
pub(crate) fn forward<B, M>(
    model: &M,
    batch: &Tensors<B>,
    devices: &[B::Device],
) -> (ModelOutputs<B>, Option<Vec<M>>)
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
{
    if devices.len() <= 1 {
        return (batch.forward(model), None);
    }
    let (tokens, counts) = (batch.tokens.clone(), batch.model_counts());
    let main = tokens.device();
    let mut start = 0;
    let mut outputs = Vec::new();
    let mut replicas = Vec::new();
    for (size, device) in shard_sizes(tokens.dims()[0], devices.len())
        .into_iter()
        .zip(devices)
    {
        let shard = tokens
            .clone()
            .slice([start..start + size])
            .to_device(device);
        let shard_counts = counts
            .clone()
            .slice([start..start + size])
            .to_device(device);
        let shard_unmasked = batch
            .unmasked
            .as_ref()
            .map(|u| u.clone().slice([start..start + size]).to_device(device));
        let shard_ids = batch
            .categorical_ids
            .as_ref()
            .map(|i| i.clone().slice([start..start + size]).to_device(device));
        start += size;
        let replica = model.clone().fork(device);
        outputs.push(replica.forward_masked(shard, shard_unmasked, Some(shard_counts), shard_ids));
        replicas.push(replica);
    }
    (gather(outputs, &main), Some(replicas))
}

/// Concatenates per-shard outputs along the batch dimension on `device`.
fn gather<B: Backend>(outputs: Vec<ModelOutputs<B>>, device: &B::Device) -> ModelOutputs<B> {
    fn cat<B: Backend, const D: usize>(
        parts: Vec<Tensor<B, D>>,
        device: &B::Device,
    ) -> Tensor<B, D> {
        Tensor::cat(parts.into_iter().map(|t| t.to_device(device)).collect(), 0)
    }
    fn cat_some<B: Backend, const D: usize>(
        parts: Vec<Option<Tensor<B, D>>>,
        device: &B::Device,
    ) -> Option<Tensor<B, D>> {
        parts
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(|p| cat(p, device))
    }
    macro_rules! field {
        ($f:ident) => {
            outputs.iter().map(|o| o.$f.clone()).collect::<Vec<_>>()
        };
    }
    ModelOutputs {
        embeddings: cat(field!(embeddings), device),
        base_embeddings: cat(field!(base_embeddings), device),
        asv_mask: cat(field!(asv_mask), device),
        base_prediction: cat_some(field!(base_prediction), device),
        nuc_predictions: cat_some(field!(nuc_predictions), device),
        target_prediction: cat_some(field!(target_prediction), device),
        count_prediction: cat_some(field!(count_prediction), device),
    }
}

/// Adds the gradients of `grads` (one backward pass) to `accumulator`, keyed by `model`'s
/// parameters on its device: directly for one device, else each replica's gradients
/// moved to the model's device and summed.
pub fn accumulate_gradients<B, M>(
    accumulator: &mut GradientsAccumulator<M>,
    model: &M,
    mut grads: B::Gradients,
    replicas: Option<&[M]>,
    device: &B::Device,
) where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    match replicas {
        None => accumulator.accumulate(model, GradientsParams::from_grads(grads, model)),
        Some(replicas) => {
            for replica in replicas {
                let g =
                    GradientsParams::from_module(&mut grads, replica).to_device(device, replica);
                accumulator.accumulate(model, g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shard_sizes;

    #[test]
    fn shards_cover_the_batch_in_near_equal_parts() {
        assert_eq!(shard_sizes(8, 2), vec![4, 4]);
        assert_eq!(shard_sizes(7, 3), vec![3, 2, 2]);
        assert_eq!(shard_sizes(2, 4), vec![1, 1]);
        assert_eq!(shard_sizes(5, 1), vec![5]);
    }
}
