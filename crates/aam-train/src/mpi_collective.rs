//! [`Collective`] over MPI (the `mpi` crate over the system's MPI library, cargo feature
//! `mpi`): `MPI_Allreduce`, `MPI_Allgatherv` and `MPI_Bcast` on `MPI_COMM_WORLD`, for a
//! group that `mpirun` or `srun` started (`docs/multi-device.md`, "Several machines").
//!
//! MPI's default error handler ends the whole job on a transport error, and the launcher
//! ends every rank when one exits before the others and names it: so a dead peer never
//! leaves the others waiting. A rank that hangs while alive is not detected.

use anyhow::{bail, Result};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use crate::collective::{check_counts, Collective};
use crate::process_group::ProcessGroup;

/// Elements per MPI call: MPI counts are C `int`s, so longer buffers go in pieces.
const PIECE: usize = 1 << 30;

/// The MPI world of this process; MPI is finalised when it is dropped (once, at the end
/// of the process: MPI cannot be initialised again).
pub struct MpiCollective {
    world: SimpleCommunicator,
    group: ProcessGroup,
    // Declared last: dropped (MPI_Finalize) after the communicator.
    _universe: Universe,
}

impl MpiCollective {
    /// Initialises MPI (threads: only the calling thread makes MPI calls) and joins
    /// `MPI_COMM_WORLD`. Errors: MPI was already initialised in this process.
    pub fn initialize() -> Result<Self> {
        let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled) else {
            bail!("MPI was already initialised in this process");
        };
        let world = universe.world();
        let group = ProcessGroup {
            rank: world.rank() as u32,
            world_size: world.size() as u32,
        };
        if group.world_size > 1 {
            // A panic would finalise MPI while the other ranks wait in a collective: end
            // the whole group instead, after the panic's message.
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                previous(info);
                SimpleCommunicator::world().abort(101);
            }));
        }
        Ok(MpiCollective {
            world,
            group,
            _universe: universe,
        })
    }
}

impl Collective for MpiCollective {
    fn group(&self) -> ProcessGroup {
        self.group
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        for piece in values.chunks_mut(PIECE) {
            let send = piece.to_vec();
            self.world
                .all_reduce_into(&send[..], piece, SystemOperation::sum());
        }
        Ok(())
    }

    fn all_gather(&self, local: &[f32], counts: &[usize]) -> Result<Vec<f32>> {
        check_counts(self.group, local, counts)?;
        let total = counts
            .iter()
            .try_fold(0usize, |a, &c| a.checked_add(c))
            .filter(|&t| t <= i32::MAX as usize)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "an all-gather of {counts:?} values exceeds MPI's count limit ({}); lower --batch-size",
                    i32::MAX
                )
            })?;
        let mut out = vec![0f32; total];
        let counts_c: Vec<Count> = counts.iter().map(|&c| c as Count).collect();
        let displs: Vec<Count> = counts_c
            .iter()
            .scan(0, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(d)
            })
            .collect();
        {
            let mut partition = PartitionMut::new(&mut out[..], counts_c, &displs[..]);
            self.world.all_gather_varcount_into(local, &mut partition);
        }
        Ok(out)
    }

    fn broadcast_from_rank0(&self, bytes: Vec<u8>) -> Result<Vec<u8>> {
        let root = self.world.process_at_rank(0);
        let mut len = [bytes.len() as u64];
        root.broadcast_into(&mut len[..]);
        let len = usize::try_from(len[0])?;
        let mut buf = if self.group.rank == 0 {
            bytes
        } else {
            vec![0u8; len]
        };
        for piece in buf.chunks_mut(PIECE) {
            root.broadcast_into(piece);
        }
        Ok(buf)
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
