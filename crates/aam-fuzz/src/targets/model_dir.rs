//! A model directory whose configuration is any bytes: the shipped model's graphs
//! (`model.onnx`, `asv_encoder.onnx`, `sample_model.onnx`) with the input as their
//! `aam_config` metadata, loaded both ways (the single graph and the split graphs) and,
//! when it loads, asked to predict a two-sample table. The configuration sizes every
//! buffer of input preparation (max bp, token limit, classes), so an edited one must be
//! refused against the graphs, never believed: an abort on a huge allocation, a panic or
//! a prediction of another shape than the configuration promises is a finding.
//!
//! The metadata is replaced by appending a second `metadata_props` entry (protobuf merges
//! repeated fields, and the loader keeps a key's last value), the graphs unchanged.

use std::path::Path;
use std::sync::OnceLock;

use aam_data::FeatureTable;
use aam_runtime::{LoadOptions, Model, PredictOptions};

/// The three shipped graphs, read once.
fn graphs() -> &'static [Vec<u8>; 3] {
    static GRAPHS: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    GRAPHS.get_or_init(|| {
        let dir = crate::shipped::model_dir();
        ["model.onnx", "asv_encoder.onnx", "sample_model.onnx"]
            .map(|f| std::fs::read(dir.join(f)).expect("the shipped model's graphs"))
    })
}

/// `graph` with `aam_config` set to `config` (appended as protobuf field 14).
pub fn with_config(graph: &[u8], config: &[u8]) -> Vec<u8> {
    fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![number << 3 | 2];
        let mut n = bytes.len();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(bytes);
        out
    }
    let mut entry = field(1, b"aam_config");
    entry.extend(field(2, config));
    let mut out = graph.to_vec();
    out.extend(field(14, &entry));
    out
}

/// Two samples of two ASVs each, with reads.
fn table() -> FeatureTable {
    let asvs = ["TACGTAGGGGGCAAGCGTTATCCGGATTTACTGGGTGTAAAGGGAGCGTAG", "TACGGAGGATCCGAGCGTTATCCGGATTTATTGGGTTTAAAGGGAGCGTAG"];
    FeatureTable::from_triplets(
        Path::new("fuzz.tsv"),
        vec!["S1".into(), "S2".into()],
        asvs.iter().map(|s| s.to_string()).collect(),
        vec![(0, 0, 10.0), (0, 1, 3.0), (1, 0, 1.0), (1, 1, 7.0)],
    )
    .expect("a valid table")
}

/// Loads the shipped graphs with `data` as their configuration and predicts.
pub fn run(data: &[u8]) {
    let [model, asv, sample] = graphs();
    let model = with_config(model, data);
    let origin = Path::new("fuzz/model.onnx");
    let single = Model::from_bytes(&model, origin);
    let split = Model::from_split_bytes(&model, &with_config(asv, data), &with_config(sample, data), origin, &LoadOptions::default());
    for loaded in [single, split] {
        let Ok(m) = loaded else { continue };
        let Ok(p) = m.predict_table(table(), "fuzz.tsv", PredictOptions::default()) else { continue };
        let c = &m.config().model;
        assert_eq!(p.samples.len(), 2, "a prediction per sample");
        for s in &p.samples {
            if !s.embedding.is_empty() {
                assert_eq!(s.embedding.len(), c.embedding_dim, "embedding of another width than the configuration's");
            }
            if !s.probabilities.is_empty() {
                assert_eq!(s.probabilities.len(), c.out_dim, "probabilities of another count than the configuration's classes");
            }
        }
    }
}
