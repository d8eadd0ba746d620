//! Forward passes of the shipped model (`models/circadian-exposure`) on 8 real samples of
//! the shipped table, on tract: the single `model.onnx`, the split graphs without the LRU
//! cache (each unique ASV of a pass encoded once), and with a warm cache.
//!
//! Run: `cargo bench -p aam-runtime --bench forward`. The default architecture at n_asv up
//! to 1024, other backends and the PyTorch reference: `aam bench` (README).

use std::path::PathBuf;

use aam_runtime::{prepare_table, AsvCacheOptions, LoadOptions, Model};
use criterion::{criterion_group, criterion_main, Criterion};

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn bench(c: &mut Criterion) {
    let dir = repo("models/circadian-exposure");
    let modes = [
        (
            "single-graph",
            LoadOptions {
                single_graph: true,
                ..LoadOptions::default()
            },
        ),
        ("split-off", LoadOptions::default()),
        (
            "split-warm",
            LoadOptions {
                asv_cache: Some(AsvCacheOptions::default()),
                ..LoadOptions::default()
            },
        ),
    ];
    let (table, _) = aam_data::load_table(&repo("data/circadian-ihc/table.biom")).unwrap();
    let mut g = c.benchmark_group("shipped-model-batch-8");
    g.sample_size(10);
    for (name, options) in modes {
        let model = Model::load_with(&dir, &options).unwrap();
        let prepared = prepare_table(table.clone(), model.config(), "table.biom").unwrap();
        let tokens = prepared
            .dataset
            .batch(&[0, 1, 2, 3, 4, 5, 6, 7], None, 0)
            .tokens;
        g.bench_function(name, |b| b.iter(|| model.run(tokens.view()).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
