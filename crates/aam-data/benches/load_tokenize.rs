//! Loading and tokenizing the `ibd-2538` BIOM table (449 samples × 9,946 ASVs).
//!
//! Run: `cargo bench -p aam-data --bench load_tokenize`. Reads `../shared/data`.

use std::path::PathBuf;

use aam_data::{load_table, Dataset, TokenLimitPolicy};
use criterion::{criterion_group, criterion_main, Criterion};

fn table_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ibd-2538/table.biom")
}

fn bench(c: &mut Criterion) {
    let path = table_path();
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return;
    }
    let mut g = c.benchmark_group("ibd-2538");
    g.sample_size(10);
    g.bench_function("load_biom", |b| b.iter(|| load_table(&path).unwrap()));
    let (table, _) = load_table(&path).unwrap();
    g.bench_function("tokenize_and_batch_all", |b| {
        b.iter(|| {
            let ds = Dataset::new(
                table.clone(),
                150,
                1024,
                TokenLimitPolicy::First,
                0,
                None,
                None,
            )
            .unwrap();
            let all: Vec<usize> = (0..ds.table.n_samples()).collect();
            all.chunks(32)
                .map(|c| ds.batch(c, None, 0).tokens.len())
                .sum::<usize>()
        })
    });
    g.bench_function("load_tokenize_batch", |b| {
        b.iter(|| {
            let (t, _) = load_table(&path).unwrap();
            let ds = Dataset::new(t, 150, 1024, TokenLimitPolicy::First, 0, None, None).unwrap();
            let all: Vec<usize> = (0..ds.table.n_samples()).collect();
            all.chunks(32)
                .map(|c| ds.batch(c, None, 0).tokens.len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
