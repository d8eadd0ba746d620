//! Seed inputs for every target, cut from the real datasets in `../shared/data` (a few
//! samples and ASVs of each table, 4 × 4 blocks of each UniFrac matrix, the first rows
//! and columns of each metadata file) and from the shipped model, written in every form
//! each loader reads. `scripts/fuzz.sh` writes them as the starting corpora; the replay
//! test runs every target on them.

use std::path::{Path, PathBuf};

use aam_data::{load_distance_matrix, load_table, FeatureTable};
use hdf5_pure::FileBuilder;
use ndarray::Array2;
use ndarray_npy::WriteNpyExt;

/// A named seed input.
pub type Seed = (String, Vec<u8>);

/// The shared datasets, each with a table, an unweighted UniFrac matrix and metadata.
pub const DATASETS: [&str; 3] = ["moving-pictures", "circadian-ihc", "ibd-2538"];

/// `../shared/data` beside the checkout (`AAM_SHARED_DATA` overrides it).
pub fn shared_data() -> PathBuf {
    std::env::var_os("AAM_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// The seeds of target `name` (empty for an unknown name). Datasets that are not there
/// are skipped; the shipped model and the repository's small files always are.
pub fn seeds(name: &str) -> Vec<Seed> {
    let data = shared_data();
    let present: Vec<(&str, PathBuf)> =
        DATASETS.iter().map(|d| (*d, data.join(d))).filter(|(_, p)| p.join("table.biom").exists()).collect();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    match name {
        "biom_table" => {
            for (d, dir) in &present {
                let t = small_table(&dir.join("table.biom"), 3, 6);
                out.push((format!("{d}.h5.biom"), biom_hdf5(&t)));
                out.push((format!("{d}.json.biom"), biom_json(&t).into_bytes()));
                out.push((format!("{d}.tsv"), biom_tsv(&t).into_bytes()));
            }
            out.push(("tiny_table.tsv".into(), read(&repo.join("tests/capi/tiny_table.tsv"))));
        }
        "distance_matrix" => {
            for (d, dir) in &present {
                let (ids, m) = small_matrix(&dir.join("unifrac_unweighted.h5"), &dir.join("table.biom"));
                let ids: Vec<String> = ids.iter().enumerate().map(|(i, _)| format!("S{i}")).collect();
                out.push((format!("{d}.h5"), with_selector(0, ssu_h5(&ids, &m))));
                out.push((format!("{d}.npy"), with_selector(1, npy(&m))));
                out.push((format!("{d}.csv"), with_selector(2, labelled(&ids, &m, ',').into_bytes())));
                out.push((format!("{d}.tsv"), with_selector(3, labelled(&ids, &m, '\t').into_bytes())));
            }
        }
        "qiime2_artifact" => {
            // The real artifacts of moving-pictures, as QIIME 2 wrote them.
            let dir = data.join("moving-pictures/qiime2");
            for name in ["table.qza", "rep-seqs.qza", "unweighted_unifrac_distance_matrix.qza", "faith_pd_vector.qza", "taxonomy.qza"] {
                if dir.join(name).exists() {
                    out.push((name.to_string(), read(&dir.join(name))));
                }
            }
        }
        "metadata_tsv" => {
            for (d, dir) in &present {
                out.push((format!("{d}.tsv"), small_metadata(&dir.join("metadata.tsv"), 6, 8).into_bytes()));
            }
        }
        "safetensors_weights" => {
            out.push(("shipped.safetensors".into(), read(&crate::shipped::model_dir().join("model.safetensors"))));
        }
        "onnx_model" => {
            out.push(("shipped.onnx".into(), read(&crate::shipped::model_dir().join("model.onnx"))));
            out.push(("identity.onnx".into(), read(&repo.join("tests/bad_inputs/files/identity.onnx"))));
        }
        "c_abi" => {
            // Valid shapes with u8 and i64 tokens (width byte 1: the model's token width).
            let tokens: Vec<u8> = (0..40u8).map(|k| if k == 0 { 5 } else { 1 + k % 4 }).collect();
            out.push(("tokens_u8".into(), [&[0u8, 0, 2, 2, 1][..], &tokens].concat()));
            out.push(("tokens_i64".into(), [&[0u8, 2, 1, 3, 1][..], &tokens].concat()));
            out.push(("too_many_asvs".into(), [&[0u8, 0, 1, 255, 1][..], &tokens].concat()));
            out.push(("load_identity".into(), [&[1u8][..], &read(&repo.join("tests/bad_inputs/files/identity.onnx"))].concat()));
            out.push(("predict_tiny_table".into(), [&[2u8][..], &read(&repo.join("tests/capi/tiny_table.tsv"))].concat()));
        }
        "serve_http" => {
            // Byte 0 even: the KServe v2 endpoint; odd: the samples endpoint.
            let width = crate::shipped::config().model.max_bp + 1;
            let row = |r: usize| -> Vec<String> {
                (0..width).map(|k| if k == 0 { 5 } else if k <= 40 + r { 1 + (k + r) % 4 } else { 0 }).map(|t| t.to_string()).collect()
            };
            let tokens = [row(0), row(1)].concat().join(",");
            let infer = |shape: &str| format!(r#"{{"inputs":[{{"name":"tokens","shape":{shape},"datatype":"INT64","data":[{tokens}]}}]}}"#);
            out.push(("infer".into(), [&[0u8][..], infer(&format!("[1,2,{width}]")).as_bytes()].concat()));
            // The shape that once overflowed batch · n_asv · width.
            out.push(("infer_huge_batch".into(), [&[0u8][..], infer(&format!("[4611686018427387904,1,{width}]")).as_bytes()].concat()));
            let asv = "TACGTAGGGGGCAAGCGTTATCCGGATTTACTGGGTGTAAAGGGAGCGTAGACGGCAGCGCAAGTCTGAAGTGAAAT";
            let predict = format!(
                r#"{{"samples":[{{"id":"S1","asvs":[{{"sequence":"{asv}","count":12}},{{"sequence":"{}","count":3}}]}},{{"id":"S2","asvs":[]}}]}}"#,
                &asv[..60]
            );
            out.push(("predict".into(), [&[1u8][..], predict.as_bytes()].concat()));
            out.push(("predict_huge_count".into(), [&[1u8][..], predict.replace("12", "1e300").as_bytes()].concat()));
        }
        "model_dir" => {
            let config = read(&crate::shipped::model_dir().join("config.json"));
            out.push(("shipped_config.json".into(), config.clone()));
            let text = String::from_utf8(config).expect("UTF-8 config.json");
            // The hostile edits the loader must refuse: sizes far beyond any model, and
            // sizes within bounds that the graphs do not take.
            for (name, from, to) in [
                ("max_bp_huge", "\"max_bp\": 90", "\"max_bp\": 1000000000000"),
                ("token_limit_huge", "\"token_limit\": 128", "\"token_limit\": 4611686018427387904"),
                ("max_bp_not_the_graphs", "\"max_bp\": 90", "\"max_bp\": 150"),
                ("classes_not_the_graphs", "\"out_dim\": 2", "\"out_dim\": 5"),
            ] {
                assert!(text.contains(from), "the shipped config.json has {from}");
                out.push((format!("{name}.json"), text.replace(from, to).into_bytes()));
            }
        }
        _ => {}
    }
    out
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read seed source {}: {e}", path.display()))
}

fn with_selector(selector: u8, bytes: Vec<u8>) -> Vec<u8> {
    [vec![selector], bytes].concat()
}

/// The first `samples` samples of a table with their `asvs` most abundant ASVs (ties in
/// table order), ASVs in table order.
pub fn small_table(path: &Path, samples: usize, asvs: usize) -> FeatureTable {
    let (t, _) = load_table(path).unwrap_or_else(|e| panic!("{e}"));
    let keep_samples = samples.min(t.n_samples());
    let mut kept: Vec<u32> = Vec::new();
    for s in 0..keep_samples {
        let mut entries: Vec<(u32, f64)> = t.sample(s).collect();
        entries.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        kept.extend(entries.iter().take(asvs).map(|e| e.0));
    }
    kept.sort_unstable();
    kept.dedup();
    let mut triplets = Vec::new();
    for s in 0..keep_samples {
        for (o, c) in t.sample(s) {
            if let Ok(k) = kept.binary_search(&o) {
                triplets.push((s as u32, k as u32, c));
            }
        }
    }
    FeatureTable::from_triplets(
        path,
        t.sample_ids[..keep_samples].to_vec(),
        kept.iter().map(|&o| t.observation_ids[o as usize].clone()).collect(),
        triplets,
    )
    .expect("a subset of a valid table is valid")
}

/// BIOM 2.1 HDF5 with both the CSC `sample/matrix` and the CSR `observation/matrix`.
pub fn biom_hdf5(t: &FeatureTable) -> Vec<u8> {
    aam_data::biom::hdf5_bytes(t, aam_data::biom::Hdf5Layout::default())
        .expect("an HDF5 file of a valid table")
}

/// BIOM 1.0 JSON, sparse (IDs of the real datasets need no escaping).
pub fn biom_json(t: &FeatureTable) -> String {
    let mut data = Vec::new();
    for s in 0..t.n_samples() {
        for (o, c) in t.sample(s) {
            data.push(format!("[{o},{s},{c:?}]"));
        }
    }
    let ids = |v: &[String]| v.iter().map(|id| format!("{{\"id\":\"{id}\",\"metadata\":null}}")).collect::<Vec<_>>().join(",");
    format!(
        "{{\"id\":null,\"format\":\"Biological Observation Matrix 1.0.0\",\"type\":\"OTU table\",\"matrix_type\":\"sparse\",\"matrix_element_type\":\"float\",\"shape\":[{},{}],\"data\":[{}],\"rows\":[{}],\"columns\":[{}]}}",
        t.n_asv(),
        t.n_samples(),
        data.join(","),
        ids(&t.observation_ids),
        ids(&t.sample_ids)
    )
}

/// Classic TSV with the `# Constructed from biom file` line and `#OTU ID` header.
pub fn biom_tsv(t: &FeatureTable) -> String {
    let mut dense = vec![vec![0.0; t.n_samples()]; t.n_asv()];
    for s in 0..t.n_samples() {
        for (o, c) in t.sample(s) {
            dense[o as usize][s] = c;
        }
    }
    let mut out = format!("# Constructed from biom file\n#OTU ID\t{}\n", t.sample_ids.join("\t"));
    for (id, row) in t.observation_ids.iter().zip(dense) {
        let cells: Vec<String> = row.iter().map(|c| format!("{c:?}")).collect();
        out.push_str(&format!("{id}\t{}\n", cells.join("\t")));
    }
    out
}

/// The 4 × 4 block of the first four samples of `table` in a UniFrac matrix.
pub fn small_matrix(matrix: &Path, table: &Path) -> (Vec<String>, Array2<f64>) {
    let (t, _) = load_table(table).unwrap_or_else(|e| panic!("{e}"));
    let m = load_distance_matrix(matrix, None, &t.sample_ids).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<String> = m.ids[..4].to_vec();
    (ids, Array2::from_shape_fn((4, 4), |(i, j)| m.get(i, j)))
}

/// ssu's layout: `matrix` float32 `[n, n]`, `order` variable-length strings.
pub fn ssu_h5(ids: &[String], m: &Array2<f64>) -> Vec<u8> {
    let values: Vec<f32> = m.iter().map(|&v| v as f32).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let n = ids.len() as u64;
    let mut b = FileBuilder::new();
    b.create_dataset("matrix").with_f32_data(&values).with_shape(&[n, n]);
    b.create_dataset("order").with_vlen_strings(&refs);
    b.finish().expect("an ssu HDF5 file")
}

/// A float64 `.npy`.
pub fn npy(m: &Array2<f64>) -> Vec<u8> {
    let mut out = Vec::new();
    m.write_npy(&mut out).expect("an in-memory .npy");
    out
}

/// A labelled matrix: a header of sample IDs after an empty corner cell, then one row per
/// sample starting with its ID.
pub fn labelled(ids: &[String], m: &Array2<f64>, sep: char) -> String {
    let s = sep.to_string();
    let mut out = format!("{s}{}\n", ids.join(&s));
    for (i, id) in ids.iter().enumerate() {
        let row: Vec<String> = m.row(i).iter().map(|v| format!("{v:?}")).collect();
        out.push_str(&format!("{id}{s}{}\n", row.join(&s)));
    }
    out
}

/// The first `rows` samples and `columns` columns of a metadata TSV, as written.
pub fn small_metadata(path: &Path, rows: usize, columns: usize) -> String {
    let text = String::from_utf8_lossy(&read(path)).into_owned();
    text.lines()
        .take(rows + 1)
        .map(|l| l.split('\t').take(columns).collect::<Vec<_>>().join("\t") + "\n")
        .collect()
}
