//! `--auto-batch-size`: the largest batch whose training step fits a memory budget,
//! found by doubling then bisecting, and the gradient accumulation that reaches a target
//! effective batch size.
//!
//! Each candidate runs one real training step (forward, losses, backward) on the
//! training samples with the most ASVs, the worst case of the run, and its memory is
//! measured ([`MemorySource`]): on the CPU the process's peak resident memory (Linux
//! `VmHWM`, reset before the step); on a GPU the device's memory in use as the CUDA
//! driver reports it (through `cudarc`, polled during the step; feature `cuda`). The
//! optimizer state (two tensors per parameter for Adam/AdamW) is small next to the
//! activations of this model and is covered by the safety margin.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use aam_data::process_memory::{available_mib, current_rss_mib};
use aam_data::process_memory::{peak_rss_mib, reset_peak_rss};

/// Settings of the batch-size search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AutoBatchSize {
    /// Memory that may be in use in all, MiB: the process's resident memory
    /// ([`MemorySource::Host`]) or the GPU's memory in use by every process
    /// ([`MemorySource::Cuda`]); `None`: what is in use now plus 80% of what is free.
    pub budget_mib: Option<f64>,
    /// Samples per optimizer step to reach with gradient accumulation; `None` keeps
    /// `--grad-accum`.
    pub target_effective_batch_size: Option<usize>,
    /// Whose memory the budget is for.
    #[serde(default)]
    pub memory: MemorySource,
}

/// Whose memory `--auto-batch-size` measures a training step against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MemorySource {
    /// This process's resident memory (Linux `VmRSS`/`VmHWM`, free memory from
    /// `MemAvailable`): training on the CPU.
    #[default]
    Host,
    /// The memory in use on CUDA device `ordinal` (every process's, as `cuMemGetInfo`
    /// reports it): training on that GPU. Needs the `cuda` feature.
    Cuda {
        /// The GPU's index, as `--devices` numbers them (CUDA's numbering, the same as
        /// `nvidia-smi -L` with `CUDA_DEVICE_ORDER=PCI_BUS_ID`).
        ordinal: usize,
    },
}

/// A [`MemorySource`] opened for measuring.
pub enum MemoryMeter {
    /// See [`MemorySource::Host`].
    Host,
    /// See [`MemorySource::Cuda`].
    #[cfg(feature = "cuda")]
    Cuda(crate::device_memory::CudaMemory),
}

impl MemoryMeter {
    /// Opens `source`.
    ///
    /// Errors: a GPU asked of a build without the `cuda` feature, no CUDA driver, or
    /// no GPU with that index.
    pub fn open(source: MemorySource) -> Result<Self> {
        match source {
            MemorySource::Host => Ok(Self::Host),
            #[cfg(feature = "cuda")]
            MemorySource::Cuda { ordinal } => Ok(Self::Cuda(
                crate::device_memory::CudaMemory::open(ordinal)?,
            )),
            #[cfg(not(feature = "cuda"))]
            MemorySource::Cuda { ordinal } => bail!(
                "--auto-batch-size on GPU {ordinal}: this aam was built without CUDA support; rebuild with `--features cuda`"
            ),
        }
    }

    /// What is measured, for messages: `host memory` or `GPU 0 memory`.
    pub fn name(&self) -> String {
        match self {
            Self::Host => "host memory".into(),
            #[cfg(feature = "cuda")]
            Self::Cuda(gpu) => format!("GPU {} memory", gpu.ordinal()),
        }
    }

    /// Memory in use now, MiB (0 where the system does not report it).
    pub fn in_use_mib(&self) -> Result<f64> {
        match self {
            Self::Host => Ok(current_rss_mib().unwrap_or(0.0)),
            #[cfg(feature = "cuda")]
            Self::Cuda(gpu) => Ok(gpu.used_and_free_mib()?.0),
        }
    }

    /// The default budget: the memory in use now plus 80% of what is free, MiB.
    ///
    /// Errors: the system reports neither: pass `--memory-budget-mib`.
    pub fn default_budget_mib(&self) -> Result<f64> {
        match self {
            Self::Host => default_budget_mib(),
            #[cfg(feature = "cuda")]
            Self::Cuda(gpu) => {
                let (used, free) = gpu.used_and_free_mib()?;
                Ok(used + 0.8 * free)
            }
        }
    }

    /// Whether a step whose peak was `peak` fits `budget`, with `before` in use when
    /// the search began (all MiB). Host: the peak within [`SAFETY`] of the budget. GPU:
    /// the step's own memory within [`SAFETY`] of the budget's headroom, since what was
    /// in use before includes other processes' memory, which the margin is not for (a
    /// GPU 82% full with another job would otherwise fit nothing).
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))] // `before`: GPU only
    pub fn fits(&self, peak: f64, before: f64, budget: f64) -> bool {
        match self {
            Self::Host => peak <= SAFETY * budget,
            #[cfg(feature = "cuda")]
            Self::Cuda(_) => peak - before <= SAFETY * (budget - before),
        }
    }

    /// Peak memory in use while `step` runs, MiB; `step` waits for the device to
    /// finish before it returns.
    ///
    /// Errors: `step`'s error, or no memory report.
    pub fn peak_during(&self, step: impl FnOnce() -> Result<()>) -> Result<f64> {
        match self {
            Self::Host => peak_during(step),
            #[cfg(feature = "cuda")]
            Self::Cuda(gpu) => gpu.peak_during(step),
        }
    }
}

/// Share of the budget a measured step may use: measurements vary between batches
/// (a batch's width follows its longest sample) and the allocator keeps some slack.
pub const SAFETY: f64 = 0.85;

/// The largest batch size in `min..=max` for which `fits` holds, assuming `fits` holds
/// up to some size and fails above it: `min`, `2·min`, `4·min`, … until one fails or
/// `max` is reached, then bisection between the last that fit and the first that failed.
/// Each size is tried at most once; `tried` lists them in order with the answer.
///
/// Errors: `fits(min)` is false (nothing fits: the message names the budget to raise),
/// or an error of `fits`.
pub fn search(
    min: usize,
    max: usize,
    mut fits: impl FnMut(usize) -> Result<bool>,
) -> Result<(usize, Vec<(usize, bool)>)> {
    let max = max.max(min);
    let mut tried = Vec::new();
    let mut probe = |b: usize, tried: &mut Vec<(usize, bool)>| -> Result<bool> {
        let ok = fits(b)?;
        tried.push((b, ok));
        Ok(ok)
    };
    if !probe(min, &mut tried)? {
        bail!(
            "a training step with the smallest batch ({min} samples) does not fit the \
             memory budget; raise --memory-budget-mib, or lower --token-limit or the \
             model size"
        );
    }
    let (mut good, mut bad) = (min, None);
    while bad.is_none() && good < max {
        let next = (good * 2).min(max);
        if probe(next, &mut tried)? {
            good = next;
        } else {
            bad = Some(next);
        }
    }
    if let Some(mut bad) = bad {
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            if probe(mid, &mut tried)? {
                good = mid;
            } else {
                bad = mid;
            }
        }
    }
    Ok((good, tried))
}

/// Gradient accumulation steps that make `batch_size`-sample batches reach at least
/// `target` samples per optimizer step: `ceil(target / batch_size)`, at least 1.
pub fn grad_accum_for(target: usize, batch_size: usize) -> usize {
    target.div_ceil(batch_size.max(1)).max(1)
}

/// The default budget: the memory in use now plus 80% of what is available, MiB.
///
/// Errors: the system reports neither (not Linux): pass `--memory-budget-mib`.
pub fn default_budget_mib() -> Result<f64> {
    match (current_rss_mib(), available_mib()) {
        (Some(rss), Some(free)) => Ok(rss + 0.8 * free),
        _ => bail!("this system reports no free memory (/proc/meminfo); pass --memory-budget-mib"),
    }
}

/// Peak resident memory of the process while `step` runs, MiB (Linux `VmHWM`, reset
/// before it). Errors: `step`'s error, or no memory report on this system.
pub fn peak_during(step: impl FnOnce() -> Result<()>) -> Result<f64> {
    reset_peak_rss();
    step()?;
    match peak_rss_mib() {
        Some(m) => Ok(m),
        None => bail!("this system does not report peak memory (/proc/self/status VmHWM); pass --batch-size instead of --auto-batch-size"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `search` against a step whose memory is `a + b·batch` MiB, and a budget.
    fn find(min: usize, max: usize, limit: usize) -> (usize, Vec<(usize, bool)>) {
        search(min, max, |b| Ok(b <= limit)).unwrap()
    }

    #[test]
    fn grows_then_bisects_to_the_largest_fitting_size() {
        let (b, tried) = find(2, 1000, 37);
        assert_eq!(b, 37);
        let sizes: Vec<usize> = tried.iter().map(|t| t.0).collect();
        // 2, 4, 8, 16, 32 fit; 64 fails; bisect 48, 40, 36, 38, 37.
        assert_eq!(sizes, vec![2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37]);
    }

    #[test]
    fn stops_at_the_largest_useful_size() {
        assert_eq!(find(2, 26, 1000).0, 26);
        assert_eq!(find(2, 26, 1000).1.len(), 5, "2, 4, 8, 16, 26");
        assert_eq!(find(2, 2, 1000).0, 2);
        assert_eq!(find(3, 40, 5).0, 5);
    }

    #[test]
    fn nothing_fitting_is_an_error_naming_the_budget() {
        let err = search(2, 100, |_| Ok(false)).unwrap_err().to_string();
        assert!(err.contains("--memory-budget-mib"), "{err}");
    }

    #[test]
    fn a_gpu_budget_needs_the_cuda_feature() {
        let opened = MemoryMeter::open(MemorySource::Cuda { ordinal: 1 });
        if cfg!(feature = "cuda") {
            return; // opened or refused by the driver: machine-dependent
        }
        let err = opened.err().unwrap().to_string();
        assert!(
            err.contains("GPU 1") && err.contains("--features cuda"),
            "{err}"
        );
        assert_eq!(
            MemoryMeter::open(MemorySource::Host).unwrap().name(),
            "host memory"
        );
    }

    #[test]
    fn an_older_setting_without_a_memory_source_measures_the_host() {
        let auto: AutoBatchSize =
            serde_json::from_str(r#"{"budget_mib":100.0,"target_effective_batch_size":null}"#)
                .unwrap();
        assert_eq!(auto.memory, MemorySource::Host);
    }

    #[test]
    fn accumulation_reaches_the_target() {
        assert_eq!(grad_accum_for(256, 37), 7);
        assert_eq!(grad_accum_for(256, 256), 1);
        assert_eq!(grad_accum_for(10, 64), 1);
    }

    #[test]
    fn memory_is_reported_on_linux() {
        if cfg!(target_os = "linux")
            && crate::allocator::run_test_alone("batch_size::tests::memory_is_reported_on_linux")
        {
            let rss = current_rss_mib().unwrap();
            let peak = peak_during(|| {
                let v = vec![7u8; 32 << 20];
                assert_eq!(v[12345], 7);
                Ok(())
            })
            .unwrap();
            assert!(peak >= rss + 30.0, "peak {peak} MiB, RSS before {rss} MiB");
            assert!(default_budget_mib().unwrap() > rss);
        }
    }
}
