//! One rank's share of the pairwise UniFrac loss when the global batch is split over the
//! processes of a training group (`docs/multi-device.md`, "Several machines"): built so that
//! summing the ranks' gradients (one all-reduce) gives the gradient of the single-process
//! loss on the whole global batch, every pair of it included.

use burn::prelude::*;

/// The global batch's sample embeddings `[global_batch, D]` (float) as every rank sees
/// them after an all-gather, with this rank's rows `offset..offset + local_batch` replaced
/// by `local` `[local_batch, D]`, which keep their gradient; every other rank's rows are
/// constants (detached).
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
pub fn with_local_rows<B: Backend>(
    gathered: Tensor<B, 2>,
    local: Tensor<B, 2>,
    offset: usize,
) -> Tensor<B, 2> {
    let [global, width] = gathered.dims();
    let [rows, local_width] = local.dims();
    assert!(
        width == local_width && offset + rows <= global,
        "local embeddings [{rows}, {local_width}] at row {offset} do not fit the gathered [{global}, {width}]"
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
    #[should_panic(expected = "do not fit")]
    fn local_rows_past_the_end_are_refused() {
        let device = Default::default();
        let gathered = Tensor::<B, 2>::zeros([4, 2], &device);
        let _ = with_local_rows(gathered, Tensor::zeros([2, 2], &device), 3);
    }
}
