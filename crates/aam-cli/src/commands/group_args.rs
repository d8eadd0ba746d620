//! `--world-size` and `--rank` of `aam pretrain` / `aam train`: one process of a training
//! group that an MPI launcher (`mpirun`, `srun`) started (`docs/multi-device.md`, "Several
//! machines").

use aam_train::collective::{join_group, Collective};
use aam_train::job_inputs::JobInputs;
use aam_train::{FitReport, Tracking, TrainOptions};
use anyhow::Result;
use clap::Args;

use super::tracking_args::{self, TrackingArgs};
use super::training_args::{report_done, InputArgs};

/// Flags of a training group across processes or machines.
#[derive(Args, Debug, Clone, Default)]
pub struct GroupArgs {
    /// Processes training together, as a check of the MPI launcher's count (`mpirun -np
    /// N aam …`, `srun`; a build with `--features mpi`). Default: `WORLD_SIZE`, or
    /// `SLURM_NTASKS` in a task `srun` started; else the launcher's.
    #[arg(long, value_name = "N")]
    pub world_size: Option<u32>,
    /// This process's rank (0 writes the checkpoint, metrics and tracking), as a check of
    /// the launcher's. Default: `RANK`, or `SLURM_PROCID` in a task `srun` started.
    #[arg(long, value_name = "R")]
    pub rank: Option<u32>,
}

/// This process's place in its training group.
pub struct Joined {
    /// The group's collective operations (one process alone: none).
    pub group: Box<dyn Collective>,
    /// A rank other than 0 writes its run into this folder (removed at exit), never into
    /// the output that rank 0 writes.
    _private: Option<tempfile::TempDir>,
}

impl Joined {
    /// Whether this process writes the output (rank 0, or a process alone).
    pub fn writes(&self) -> bool {
        self.group.group().rank == 0
    }

    /// Runs `fit` (this rank's training, given the tracking and the group) for `job`:
    /// rank 0 opens the tracking of `tracking` and reports the end of the run, the other
    /// ranks track nothing; the training curves are drawn into the job's output.
    ///
    /// Errors: the tracking's, `fit`'s.
    pub fn fit_and_report(
        &self,
        tracking: &TrackingArgs,
        input: &InputArgs,
        job: &JobInputs,
        fit: impl FnOnce(&mut Tracking, &dyn Collective) -> Result<FitReport>,
    ) -> Result<()> {
        let mut tracker = if self.writes() {
            tracking.open(&job.output, job.resume)?
        } else {
            Tracking::default()
        };
        let result = fit(&mut tracker, &*self.group);
        let report = tracking_args::finish(tracker, result, &job.output)?;
        if self.writes() {
            report_done(&report, input);
        }
        Ok(())
    }

    /// `result` of this rank's job; in a group of several, a rank whose job failed prints
    /// its error and ends every process (the others would wait for it otherwise).
    pub fn finish(self, result: Result<()>) -> Result<()> {
        let Joined { group, _private } = self;
        let g = group.group();
        if let (Err(e), true) = (&result, g.world_size > 1) {
            eprintln!("error: rank {} of {}: {e:#}", g.rank, g.world_size);
            // MPI_Abort ends the process without running destructors.
            drop(_private);
            group.abort(1);
        }
        result
    }
}

impl GroupArgs {
    /// Joins the group (MPI's world when a launcher started this process) and adapts the
    /// job to this rank: a rank other than 0 trains in a private temporary folder (rank
    /// 0's resume point reaches it from rank 0) and shows no progress.
    ///
    /// Errors: as [`join_group`]; the private folder cannot be created.
    pub fn join(&self, inputs: &mut JobInputs, options: &mut TrainOptions) -> Result<Joined> {
        let group = join_group(self.world_size, self.rank)?;
        let g = group.group();
        let private = if g.rank == 0 {
            None
        } else {
            let dir = match tempfile::Builder::new()
                .prefix(&format!("aam-rank-{}-", g.rank))
                .tempdir()
            {
                Ok(dir) => dir,
                Err(e) => {
                    // The other ranks already wait in MPI: end them too.
                    eprintln!("error: rank {}: cannot create its temporary folder: {e} (set TMPDIR to a writable folder)", g.rank);
                    group.abort(1);
                }
            };
            inputs.output = dir.path().join("run");
            inputs.resume = false;
            inputs.overwrite = true;
            options.progress = false;
            Some(dir)
        };
        Ok(Joined {
            group,
            _private: private,
        })
    }
}
