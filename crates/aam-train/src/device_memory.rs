//! Memory of a CUDA device as its driver reports it (`cuMemGetInfo` through `cudarc`),
//! for `--auto-batch-size` with `--device cuda` (feature `cuda`).
//!
//! The driver reports the memory in use on the whole device, by every process, which is
//! what an out-of-memory error depends on. Burn's CUDA backend keeps the pages of its
//! memory pool between operations, so the memory in use after a step is close to the
//! step's peak; a thread also polls the driver during the step, every millisecond, and
//! the larger of the two is the step's peak.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cudarc::driver::CudaContext;

const MIB: f64 = 1024.0 * 1024.0;

/// One CUDA device's memory, read through its primary context (the one Burn's CUDA
/// backend runs in).
pub struct CudaMemory {
    ctx: Arc<CudaContext>,
    ordinal: usize,
}

impl CudaMemory {
    /// Opens GPU `ordinal` (the `--devices` index, in CUDA's numbering; 0 by default).
    ///
    /// Errors: no CUDA driver library on this machine, a driver that fails to
    /// initialise, or no GPU with that index.
    pub fn open(ordinal: usize) -> Result<Self> {
        // SAFETY: only tries to dlopen libcuda under its usual names; cudarc panics
        // instead of returning an error when the library is absent.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            bail!("--auto-batch-size with --device cuda: no CUDA driver (libcuda.so cannot be loaded); install the NVIDIA driver, or pass --batch-size");
        }
        let ctx = catch_unwind(AssertUnwindSafe(|| CudaContext::new(ordinal)))
            .map_err(|_| anyhow!("the CUDA driver library is incomplete (cudarc panicked loading it)"))?
            .map_err(|e| anyhow!("GPU {ordinal}: the CUDA driver cannot open it ({e}); check --devices against nvidia-smi -L (the same numbering with CUDA_DEVICE_ORDER=PCI_BUS_ID)"))?;
        Ok(Self { ctx, ordinal })
    }

    /// `(in use, free)` on the device now, MiB (every process's allocations).
    ///
    /// Errors: the driver's error, naming the GPU.
    pub fn used_and_free_mib(&self) -> Result<(f64, f64)> {
        let (free, total) = self.read()?;
        Ok(((total - free) as f64 / MIB, free as f64 / MIB))
    }

    /// Peak memory in use on the device while `step` runs, MiB: the largest of the
    /// readings polled every millisecond during the step and the one after it. `step`
    /// must wait for the device to finish its work (Burn's `B::sync`) before it returns.
    ///
    /// Errors: `step`'s error or panic (the CUDA backend panics when the device runs
    /// out of memory), or the driver's.
    pub fn peak_during(&self, step: impl FnOnce() -> Result<()>) -> Result<f64> {
        let done = AtomicBool::new(false);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|scope| -> Result<()> {
            let poller = scope.spawn(|| -> Result<()> {
                loop {
                    // `done` tested before the reading: once the step is over, one more
                    // reading is taken, so the last one follows the step.
                    let finished = done.load(Ordering::Acquire);
                    let (free, total) = self.read()?;
                    peak.fetch_max(total - free, Ordering::Relaxed);
                    if finished {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            // The CUDA backend panics when the device runs out of memory: caught here,
            // so that the poller stops and the run ends with an error naming the fix.
            let stepped = catch_unwind(AssertUnwindSafe(step)).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("no message");
                bail!(
                    "a trial step failed on GPU {} ({what}); if it ran out of memory, lower --memory-budget-mib (default: what is in use plus 80% of what is free) or pass --batch-size",
                    self.ordinal
                )
            });
            let polled = poller
                .join()
                .map_err(|_| anyhow!("the GPU memory poller panicked"))?;
            stepped?;
            polled
        })?;
        Ok(peak.into_inner() as f64 / MIB)
    }

    /// `(free, total)` bytes, as the driver reports them.
    fn read(&self) -> Result<(usize, usize)> {
        self.ctx
            .mem_get_info()
            .with_context(|| format!("GPU {}: cannot read its memory in use", self.ordinal))
    }

    /// The GPU's index.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
}
