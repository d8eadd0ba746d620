//! All-reduce (sum) of `FLOATS` f32 values, `ITERS` times, over `MPI_COMM_WORLD`; rank 1
//! exits with status 3 at iteration `DIE_AFTER`. Prints each rank's mean time per all-reduce
//! (the first, which sets up the connections, left out).
//!
//! Usage: `mpirun -np 2 collective-engine-mpi FLOATS ITERS DIE_AFTER` (see ../README.md).
use mpi::collective::SystemOperation;
use mpi::traits::*;
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n: usize = a[1].parse().unwrap();
    let iters: usize = a[2].parse().unwrap();
    let die_after: usize = a[3].parse().unwrap();
    let universe = mpi::initialize().unwrap();
    let world = universe.world();
    let rank = world.rank();
    let x = vec![(rank + 1) as f32; n];
    let mut y = vec![0f32; n];
    let mut total = 0.0;
    for i in 0..iters {
        if i == die_after && rank == 1 {
            eprintln!("rank {rank}: dying at iteration {i}");
            std::process::exit(3);
        }
        let t = Instant::now();
        world.all_reduce_into(&x[..], &mut y[..], SystemOperation::sum());
        let dt = t.elapsed().as_secs_f64();
        if i > 0 {
            total += dt;
        }
        if i < 2 || i + 1 == iters {
            eprintln!(
                "rank {rank}: iter {i} {:.3} ms y[0]={} y[n-1]={}",
                dt * 1e3,
                y[0],
                y[n - 1]
            );
        }
    }
    eprintln!(
        "rank {rank}: mean {:.3} ms per all-reduce of {} MB",
        total * 1e3 / (iters - 1) as f64,
        n * 4 / 1_000_000
    );
}
