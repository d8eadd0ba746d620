//! Processes all-reduce (sum) a float tensor through burn-collective's global orchestrator
//! (rank 0 runs it on `port`; rank R serves tensors on `port + 1 + R`), `iters` times, and
//! rank 1 exits with status 3 at iteration `die_after`.
//!
//! Usage: `collective-engine-burn RANK WORLD PORT FLOATS ITERS DIE_AFTER ring|tree|centralized`
//! (one process per rank; see ../README.md).
use burn::backend::Flex;
use burn::prelude::*;
use burn_collective::{
    all_reduce, finish_collective, register, CollectiveConfig, PeerId, ReduceOperation,
};
use std::time::Instant;

type B = Flex;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let rank: u32 = a[1].parse().unwrap();
    let world: u32 = a[2].parse().unwrap();
    let port: u16 = a[3].parse().unwrap();
    let n: usize = a[4].parse().unwrap();
    let iters: usize = a[5].parse().unwrap();
    let die_after: usize = a[6].parse().unwrap();
    if rank == 0 {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(burn_collective::start_global_orchestrator(port));
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let data_port = port + 1 + rank as u16;
    let config = CollectiveConfig::default()
        .with_num_devices(1)
        .with_num_nodes(world)
        .with_global_address(format!("ws://127.0.0.1:{port}").parse().unwrap())
        .with_node_address(format!("ws://127.0.0.1:{data_port}").parse().unwrap())
        .with_data_service_port(data_port)
        .with_global_all_reduce_strategy(match a[7].as_str() {
            "ring" => burn_collective::AllReduceStrategy::Ring,
            "tree" => burn_collective::AllReduceStrategy::Tree(2),
            _ => burn_collective::AllReduceStrategy::Centralized,
        });
    let device = Default::default();
    let id = PeerId::from(rank);
    let t0 = Instant::now();
    register::<B>(id, device, config).expect("register");
    eprintln!("rank {rank}: registered in {:?}", t0.elapsed());
    let x = Tensor::<B, 1>::ones([n], &Default::default()).mul_scalar((rank + 1) as f32);
    for i in 0..iters {
        if i == die_after && rank == 1 {
            eprintln!("rank {rank}: dying at iteration {i}");
            std::process::exit(3);
        }
        let t = Instant::now();
        let r = all_reduce::<B>(
            id,
            x.clone().into_primitive().tensor(),
            ReduceOperation::Sum,
        );
        match r {
            Ok(p) => {
                let y = Tensor::<B, 1>::from_primitive(burn::tensor::TensorPrimitive::Float(p));
                let v: Vec<f32> = y.into_data().to_vec().unwrap();
                eprintln!(
                    "rank {rank}: iter {i} {:?} first {} last {}",
                    t.elapsed(),
                    v[0],
                    v[n - 1]
                );
            }
            Err(e) => {
                eprintln!("rank {rank}: iter {i} error {e:?}");
                std::process::exit(2);
            }
        }
    }
    finish_collective::<B>(id).expect("finish");
    eprintln!("rank {rank}: done");
}
