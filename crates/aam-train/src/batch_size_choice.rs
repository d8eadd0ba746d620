//! `--auto-batch-size` applied to a run: the batch size and gradient accumulation it
//! trains with, found by [`search`] with the run's own training step measured by a
//! [`MemoryMeter`], or kept from the checkpoint of a resumed run.

use std::path::Path;

use aam_model::AamModel;
use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use crate::batch_size::{grad_accum_for, search, AutoBatchSize, MemoryMeter};
use crate::batch_tensors::{class_weight_tensor, host_batch, to_tensors};
use crate::checkpoint::TrainState;
use crate::options::TrainOptions;
use crate::resume_file;
use crate::step_loss::loss_terms;
use crate::train_data::TrainData;

/// `opts` with the batch size and gradient accumulation of `--auto-batch-size`: on a
/// resumed run those recorded in `dir`'s `train_state.json`, else the largest batch whose
/// training step (forward, losses, backward on the training samples with the most ASVs)
/// stays within [`SAFETY`](crate::batch_size::SAFETY) of the memory budget, and the accumulation that
/// reaches the target effective batch size. Prints the search when `opts.progress`.
///
/// Errors: nothing fits the budget, no memory report on this system, a failed step.
pub(crate) fn choose_batch_size<B, M>(
    model: &M,
    data: &TrainData,
    opts: &TrainOptions,
    auto: &AutoBatchSize,
    dir: &Path,
    resume: bool,
    device: &B::Device,
) -> Result<TrainOptions>
where
    B: AutodiffBackend,
    M: AamModel<B> + AutodiffModule<B>,
{
    let accumulate = |b: usize| {
        auto.target_effective_batch_size
            .map_or(opts.grad_accum, |t| grad_accum_for(t, b))
    };
    if resume {
        let path = dir.join("train_state.json");
        let state: TrainState = resume_file::read_state(dir)?;
        let Some(b) = state.batch_size else {
            bail!("{}: this checkpoint records no batch size (an older aam wrote it); resume it with the --batch-size and --grad-accum it started with instead of --auto-batch-size", path.display());
        };
        return Ok(TrainOptions {
            batch_size: b,
            grad_accum: state.grad_accum.unwrap_or_else(|| accumulate(b)),
            ..opts.clone()
        });
    }
    let meter = MemoryMeter::open(auto.memory)?;
    // Burn's GPU backends keep freed pages in their memory pool: release them so that
    // what is measured is this run's, not an earlier candidate's. Synced first: the
    // fusion backend queues the drops of the last step's tensors.
    let sync = || B::sync(device).map_err(|e| anyhow::anyhow!("the training device failed: {e:?}"));
    let release = || -> Result<()> {
        sync()?;
        B::memory_cleanup(device);
        // Host memory a trial freed is handed back, so the next trial's peak is its own.
        crate::allocator::return_freed_memory();
        sync()
    };
    release()?;
    let budget = match auto.budget_mib {
        Some(m) => m,
        None => meter.default_budget_mib()?,
    };
    if data.split.train.len() < 2 {
        bail!(
            "--auto-batch-size needs at least 2 training samples, the split has {}",
            data.split.train.len()
        );
    }
    let largest: Vec<usize> = match &data.stream {
        // Streamed: the training sample with the most ASVs, repeated (a batch of distinct
        // large samples would read, and hold, a chunk for each); its batch is at least as
        // wide as any real one.
        Some(stream) => {
            let top = data
                .split
                .train
                .iter()
                .copied()
                .max_by_key(|&s| stream.sample_nnz(s))
                .context("no training sample")?;
            vec![top; data.split.train.len()]
        }
        None => {
            let mut largest = data.split.train.clone();
            largest.sort_by_key(|&s| std::cmp::Reverse(data.dataset.table.sample_nnz(s)));
            largest
        }
    };
    let mask_ratio = (opts.weights.nucleotide > 0.0).then_some(opts.mask_ratio);
    let class_weights = class_weight_tensor::<B>(data, opts, device);
    // A size whose peak, extrapolated linearly from the largest size that fitted, is over
    // the budget is not run: doubling from just under the budget would ask for about
    // twice the memory there is.
    let in_use_before = meter.in_use_mib()?;
    let mut largest_fit: Option<(usize, f64)> = None;
    let (batch, tried) = search(2, largest.len(), |b| {
        if let Some((g, peak_g)) = largest_fit {
            let predicted = in_use_before + (peak_g - in_use_before).max(0.0) / g as f64 * b as f64;
            if predicted > budget {
                if opts.progress {
                    eprintln!("auto batch size: {b} samples → about {predicted:.0} MiB predicted, over the {budget:.0} MiB budget (not run)");
                }
                return Ok(false);
            }
        }
        release()?;
        let peak = meter.peak_during(|| {
            let host = host_batch(
                data,
                &largest[..b],
                0,
                mask_ratio.map(|r| (r, opts.seed)),
                None,
            )?;
            {
                // The step's tensors dropped before the sync, so that it waits for their
                // release too.
                let t = to_tensors::<B>(&host, data, device);
                let out = t.forward(model);
                let (loss, _) = loss_terms(&out, &t, data, opts, class_weights.as_ref());
                drop(loss.backward());
            }
            sync()
        })?;
        let fits = meter.fits(peak, in_use_before, budget);
        if fits && largest_fit.is_none_or(|(g, _)| b > g) {
            largest_fit = Some((b, peak));
        }
        if opts.progress {
            eprintln!(
                "auto batch size: {b} samples → peak {peak:.0} MiB of {budget:.0} MiB budget of {} ({})",
                meter.name(),
                if fits { "fits" } else { "too large" }
            );
        }
        Ok(fits)
    })?;
    let grad_accum = accumulate(batch);
    if opts.progress {
        eprintln!(
            "auto batch size: {batch} samples per batch, {grad_accum} batches per optimizer step (effective batch {}), after {} trial steps",
            batch * grad_accum,
            tried.len()
        );
    }
    Ok(TrainOptions {
        batch_size: batch,
        grad_accum,
        ..opts.clone()
    })
}

/// Errors when a resumed run is given another batch size or accumulation than the one
/// its `train_state.json` records (the schedule was laid out for those), naming both.
pub(crate) fn check_resumed_batch_size(dir: &Path, opts: &TrainOptions) -> Result<()> {
    let path = dir.join("train_state.json");
    let Ok(state) = resume_file::read_state(dir) else {
        return Ok(()); // unreadable: the resume itself reports it
    };
    let (b, g) = (state.batch_size, state.grad_accum.unwrap_or(1));
    match b {
        Some(b) if b != opts.batch_size || g != opts.grad_accum.max(1) => bail!(
            "{}: this run trains with --batch-size {b} --grad-accum {g}; resume it with those \
             (or with --auto-batch-size, which keeps them), not --batch-size {} --grad-accum {}",
            path.display(),
            opts.batch_size,
            opts.grad_accum.max(1)
        ),
        _ => Ok(()),
    }
}
