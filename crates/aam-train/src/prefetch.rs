//! The data pipeline: batches built on worker threads, a bounded number ahead of the
//! training step, handed over in order.
//!
//! Building a batch (token limit, token rows, UniFrac block, nucleotide masking) is plain
//! CPU work on host memory, independent of the model; on worker threads it overlaps the
//! forward and backward pass instead of adding to it. Items are handed over in index
//! order whatever the number of workers, so a seeded run gives the same batches, and the
//! same weights, with any `workers`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How many threads build batches and how far ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefetchOptions {
    /// Worker threads building batches; 0 builds each batch on the training thread
    /// when it is needed (no overlap).
    pub workers: usize,
    /// Batches built and waiting in the queues, over all workers (rounded up to a
    /// multiple of `workers`, at least one per worker). With one more batch per worker
    /// waiting to be queued, the pipeline holds at most
    /// `workers · (⌈depth / workers⌉ + 1)` batches.
    pub depth: usize,
}

impl Default for PrefetchOptions {
    fn default() -> Self {
        PrefetchOptions {
            workers: 1,
            depth: 2,
        }
    }
}

/// Time the consumer spent waiting for items that were not ready yet.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PrefetchStats {
    /// Waiting time, including building on the consumer's thread when `workers == 0`.
    pub wait: Duration,
    /// Items consumed.
    pub items: usize,
}

/// Calls `make(k)` for `k` in `0..n` on `options.workers` threads (worker `w` builds
/// `k ≡ w mod workers`), at most `options.depth` items ahead, and hands each result to
/// `consume(k, item)` on the calling thread in the order `k = 0, 1, …`.
///
/// Stops at the first error of `consume` and returns it; the workers then stop after
/// the item they are building. Errors: `consume`'s error, or `on_panic(k)` when `make`
/// panicked for item `k` (the panic does not cross this call).
pub fn run_in_order<T, E>(
    n: usize,
    options: PrefetchOptions,
    make: impl Fn(usize) -> T + Sync,
    mut consume: impl FnMut(usize, T) -> Result<(), E>,
    on_panic: impl Fn(usize) -> E,
) -> Result<PrefetchStats, E>
where
    T: Send,
{
    let mut stats = PrefetchStats::default();
    if options.workers == 0 {
        for k in 0..n {
            let started = Instant::now();
            let item = catch_unwind(AssertUnwindSafe(|| make(k))).map_err(|_| on_panic(k))?;
            stats.wait += started.elapsed();
            stats.items += 1;
            consume(k, item)?;
        }
        return Ok(stats);
    }
    let workers = options.workers.min(n.max(1));
    let per_worker = options.depth.div_ceil(workers).max(1);
    let make = &make;
    std::thread::scope(|scope| {
        let receivers: Vec<Receiver<Option<T>>> = (0..workers)
            .map(|w| {
                let (sender, receiver) = sync_channel::<Option<T>>(per_worker);
                scope.spawn(move || {
                    for k in (w..n).step_by(workers) {
                        // A panic is sent as `None`; a closed channel means the consumer
                        // stopped, so the worker stops too.
                        let item = catch_unwind(AssertUnwindSafe(|| make(k))).ok();
                        let failed = item.is_none();
                        if sender.send(item).is_err() || failed {
                            return;
                        }
                    }
                });
                receiver
            })
            .collect();
        for k in 0..n {
            let started = Instant::now();
            let item = receivers[k % workers].recv().ok().flatten();
            stats.wait += started.elapsed();
            let item = item.ok_or_else(|| on_panic(k))?;
            stats.items += 1;
            consume(k, item)?;
        }
        Ok(stats)
        // `receivers` drop here, before the scope joins the workers: a worker blocked
        // on a full channel sees it closed and returns.
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn collect(n: usize, workers: usize, depth: usize) -> Vec<(usize, usize)> {
        let mut seen = Vec::new();
        let options = PrefetchOptions { workers, depth };
        run_in_order(
            n,
            options,
            |k| k * k,
            |k, v| {
                seen.push((k, v));
                Ok::<(), String>(())
            },
            |k| format!("item {k} panicked"),
        )
        .unwrap();
        seen
    }

    #[test]
    fn items_arrive_in_order_for_any_worker_count() {
        let expected: Vec<(usize, usize)> = (0..23).map(|k| (k, k * k)).collect();
        for workers in [0, 1, 2, 3, 8, 40] {
            for depth in [1, 2, 5] {
                assert_eq!(
                    collect(23, workers, depth),
                    expected,
                    "{workers} workers, depth {depth}"
                );
            }
        }
        assert!(collect(0, 2, 2).is_empty());
    }

    #[test]
    fn workers_stay_within_the_prefetch_depth() {
        // The consumer holds each item until `made` stops growing: with one worker and a
        // channel of 2, at most 2 built items wait plus 1 being built beyond the consumed ones.
        let made = AtomicUsize::new(0);
        let mut most_ahead = 0;
        run_in_order(
            30,
            PrefetchOptions {
                workers: 1,
                depth: 2,
            },
            |k| {
                made.fetch_add(1, Ordering::SeqCst);
                k
            },
            |k, _| {
                std::thread::sleep(Duration::from_millis(2));
                most_ahead = most_ahead.max(made.load(Ordering::SeqCst) - (k + 1));
                Ok::<(), ()>(())
            },
            |_| (),
        )
        .unwrap();
        assert!(most_ahead <= 3, "a worker ran {most_ahead} items ahead");
        assert!(most_ahead >= 1, "nothing was built ahead");
    }

    #[test]
    fn a_consumer_error_stops_the_run_and_the_workers() {
        let made = AtomicUsize::new(0);
        let result = run_in_order(
            1000,
            PrefetchOptions {
                workers: 2,
                depth: 2,
            },
            |k| {
                made.fetch_add(1, Ordering::SeqCst);
                k
            },
            |k, _| {
                if k == 5 {
                    Err(format!("stop at {k}"))
                } else {
                    Ok(())
                }
            },
            |k| format!("item {k} panicked"),
        );
        assert_eq!(result.unwrap_err(), "stop at 5");
        assert!(
            made.load(Ordering::SeqCst) < 20,
            "workers went on after the error"
        );
    }

    #[test]
    fn a_panicking_build_becomes_the_error_of_its_item() {
        for workers in [0, 1, 3] {
            let result = run_in_order(
                10,
                PrefetchOptions { workers, depth: 2 },
                |k| {
                    if k == 4 {
                        panic!("bad batch");
                    }
                    k
                },
                |_, _| Ok(()),
                |k| format!("item {k} panicked"),
            );
            assert_eq!(result.unwrap_err(), "item 4 panicked", "{workers} workers");
        }
    }
}
