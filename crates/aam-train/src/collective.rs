//! What the processes of a training group exchange (`docs/multi-device.md`, "Several
//! machines"): a sum of float buffers (the gradients), a concatenation of every rank's
//! floats (the outputs the losses read) and rank 0's bytes (the resume point). One process
//! alone ([`SingleProcess`]) exchanges nothing; across processes MPI does it
//! (`aam_train::mpi_collective`, cargo feature `mpi`).

use anyhow::Result;

use crate::process_group::{claimed_group, resolve_group, ProcessGroup};

/// Variables an MPI launcher sets in every process it starts: OpenMPI's `mpirun`, PMIx
/// (`srun --mpi=pmix`, OpenMPI 5) and PMI (MPICH's `mpiexec`, `srun --mpi=pmi2`).
const LAUNCHER_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"];

/// The training group of this process: MPI's world when an MPI launcher started it (a
/// build with the `mpi` feature), else one process alone. `world_size` and `rank` (the
/// flags `--world-size` and `--rank`; else `WORLD_SIZE`/`RANK`, or SLURM's
/// `SLURM_NTASKS`/`SLURM_PROCID` in a task `srun` started) are checks against the
/// launcher's values ([`claimed_group`], [`resolve_group`]).
///
/// Errors: a claimed value is malformed or disagrees with the launcher's; more than one
/// process is claimed and no MPI launcher started this one; an MPI launcher started this
/// process in a group of several but this build has no `mpi` feature.
pub fn join_group(world_size: Option<u32>, rank: Option<u32>) -> Result<Box<dyn Collective>> {
    let env = |name: &str| std::env::var(name).ok();
    let claimed = claimed_group(world_size, rank, &env).map_err(anyhow::Error::msg)?;
    let launched = LAUNCHER_VARIABLES.iter().any(|v| env(v).is_some());
    // The group size the launcher states, where it states one.
    let launcher_size = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]
        .iter()
        .find_map(|v| env(v).and_then(|n| n.trim().parse::<u32>().ok()));
    #[cfg(feature = "mpi")]
    if launched {
        let mpi = crate::mpi_collective::MpiCollective::initialize()?;
        let size = mpi.group().world_size;
        if size == 1 && launcher_size.is_some_and(|n| n > 1) {
            anyhow::bail!("the launcher started {} processes, but MPI sees each alone: this aam is linked to another MPI library than the launcher's (start it with that library's own mpirun, e.g. OpenMPI's)", launcher_size.unwrap_or(0));
        }
        if let Err(e) = resolve_group(claimed.as_ref(), Some(mpi.group())) {
            // The other ranks already wait in MPI: end them too.
            eprintln!("error: rank {}: {e}", mpi.group().rank);
            mpi.abort(1);
        }
        return Ok(Box::new(mpi));
    }
    #[cfg(not(feature = "mpi"))]
    if launched {
        if launcher_size != Some(1) {
            anyhow::bail!("an MPI launcher started this process, but this aam was built without the `mpi` feature, so it would train alone and race the other processes for the output: build it with `cargo build --release -p aam-cli --features mpi` (OpenMPI's `libopenmpi-dev` installed)");
        }
    }
    resolve_group(claimed.as_ref(), None).map_err(anyhow::Error::msg)?;
    Ok(Box::new(SingleProcess))
}

/// The collective operations a training group needs. Every rank calls the same operations
/// in the same order with buffers laid out alike; a rank that fails ends the group through
/// [`Collective::abort`], never by leaving the others waiting.
pub trait Collective {
    /// This process's rank and the group's size.
    fn group(&self) -> ProcessGroup;
    /// Replaces `values` (float32) by their element-wise sum over the ranks. Errors: the
    /// transport's.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()>;
    /// Every rank's `local` (float32; lengths may differ between ranks, `counts[r]` is rank
    /// r's, `counts.len()` the world size) concatenated in rank order. Errors: `counts`
    /// does not have one entry per rank or this rank's entry is not `local.len()`; the
    /// transport's.
    fn all_gather(&self, local: &[f32], counts: &[usize]) -> Result<Vec<f32>>;
    /// Rank 0's `bytes` on every rank (what the others pass is ignored). Errors: the
    /// transport's.
    fn broadcast_from_rank0(&self, bytes: Vec<u8>) -> Result<Vec<u8>>;
    /// Ends every process of the group with exit status `code` (a rank whose training
    /// failed calls it after printing its error, so that no peer waits for it).
    fn abort(&self, code: i32) -> !;
}

/// A group of one: every operation returns its input.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn group(&self) -> ProcessGroup {
        ProcessGroup {
            rank: 0,
            world_size: 1,
        }
    }
    fn all_reduce_sum(&self, _values: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn all_gather(&self, local: &[f32], counts: &[usize]) -> Result<Vec<f32>> {
        check_counts(self.group(), local, counts)?;
        Ok(local.to_vec())
    }
    fn broadcast_from_rank0(&self, bytes: Vec<u8>) -> Result<Vec<u8>> {
        Ok(bytes)
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// Checks that `counts` has one entry per rank of `group` and that this rank's is
/// `local.len()` (what [`Collective::all_gather`] requires).
pub fn check_counts(group: ProcessGroup, local: &[f32], counts: &[usize]) -> Result<()> {
    if counts.len() != group.world_size as usize {
        anyhow::bail!(
            "an all-gather was given {} counts for a group of {} processes (a bug: please report it)",
            counts.len(),
            group.world_size
        );
    }
    if counts[group.rank as usize] != local.len() {
        anyhow::bail!(
            "rank {} sends {} values to an all-gather that expects {} from it (a bug: please report it)",
            group.rank,
            local.len(),
            counts[group.rank as usize]
        );
    }
    Ok(())
}
