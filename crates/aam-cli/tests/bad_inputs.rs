//! The bad-input catalogue (`tests/bad_inputs/cases.toml`): every case builds its
//! small input files in a fresh directory, runs the `aam` binary on them and checks
//! the exit status (1 for a refused input, never a panic or a signal), that each
//! expected text appears in the error, that the process did not panic, and that a
//! refused run left every file in the case directory as it was (none added, none
//! changed). A few
//! cases are inputs that must be *accepted* (BOM/CRLF files, F16/BF16 weights).
//!
//! Every failing case is reported, not just the first; see `tests/bad_inputs/README.md`
//! for the file generators a case can use.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

#[derive(Deserialize)]
struct Catalogue {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Unique, kebab-case; the case's directory name.
    name: String,
    /// What is wrong with the input, in words.
    #[allow(dead_code)] // documentation of the case
    why: String,
    /// `aam` arguments; `{dir}` is the case directory, `{repo}` the repository root,
    /// `{shared}` the shared datasets (`../shared/data`).
    args: Vec<String>,
    /// Files to build in the case directory, by relative path (built in name order,
    /// so a `copy_dir` comes before the files written into it).
    #[serde(default)]
    files: BTreeMap<String, FileSpec>,
    /// Texts the standard error must contain.
    #[serde(default)]
    expect: Vec<String>,
    /// Texts the standard output must contain.
    #[serde(default)]
    stdout: Vec<String>,
    /// Exit status (1: refused; 0: accepted; 2: refused by the argument parser).
    #[serde(default = "refused")]
    status: i32,
    /// Paths (relative to the case directory) that must not exist afterwards: a refused
    /// run writes nothing.
    #[serde(default)]
    absent: Vec<String>,
}

fn refused() -> i32 {
    1
}

/// How one input file is built; exactly one source per file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    /// Literal text; `{{X*N}}` is replaced by `X` repeated N times.
    text: Option<String>,
    /// A file of the repository (`shared:` prefix: of the shared datasets), optionally
    /// cut to its first `truncate` bytes.
    copy: Option<String>,
    truncate: Option<usize>,
    /// A directory of the repository, copied whole.
    copy_dir: Option<String>,
    /// A `.npy` array.
    npy: Option<NpySpec>,
    /// A safetensors file derived from another.
    safetensors: Option<SafetensorsSpec>,
    /// A safetensors file from a literal header.
    raw_safetensors: Option<RawSafetensors>,
    /// A BIOM 2.1 HDF5 table (possibly inconsistent).
    biom_hdf5: Option<BiomHdf5>,
    /// A `.npy` from a literal header dictionary.
    raw_npy: Option<RawNpy>,
    /// An edited JSON file (e.g. a checkpoint's `config.json`).
    json: Option<JsonSpec>,
    /// An exported `model.onnx` whose `aam_config` metadata was edited.
    onnx_config: Option<OnnxConfigSpec>,
}

/// A `.npy` (format 1.0) whose header dictionary is given verbatim, e.g. one declaring
/// a shape far larger than its data.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNpy {
    /// The header dictionary, e.g. `{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }`.
    header: String,
    /// Zero bytes after the header.
    data_bytes: usize,
}

/// The JSON file `from` with `set` applied.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSpec {
    from: String,
    /// `[JSON pointer, value]` pairs, e.g. `["/model/max_bp", 1e12]`.
    set: Vec<(String, serde_json::Value)>,
}

/// `from`'s graph with one more `metadata_props` entry appended: `aam_config` holding
/// `config`. Protobuf merges a repeated field written twice, and the loader keeps a
/// key's last value, so this is the graph with an edited configuration, the graph itself
/// unchanged.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnnxConfigSpec {
    from: String,
    config: JsonSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NpySpec {
    /// Start from this float matrix (`copy` path syntax) …
    from: Option<String>,
    /// … or from these values with `shape` …
    values: Option<Vec<f64>>,
    shape: Option<Vec<usize>>,
    /// … or `shape` filled with this value.
    fill: Option<f64>,
    /// `[flat index, value]` entries to set.
    #[serde(default)]
    set_flat: Vec<(usize, f64)>,
    /// `[row, column, value]` entries to set (2-D arrays).
    #[serde(default)]
    set: Vec<(usize, usize, f64)>,
    /// Multiply every value.
    scale: Option<f64>,
    /// Keep only the first N columns (2-D arrays).
    keep_columns: Option<usize>,
    /// Reshape before writing (same number of values).
    reshape: Option<Vec<usize>>,
    /// `f8` (default), `f4` or `i8`.
    #[serde(default = "f8")]
    dtype: String,
}

fn f8() -> String {
    "f8".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SafetensorsSpec {
    /// Source file (`copy` path syntax).
    from: String,
    /// Convert to `F16`, `BF16` or `I64` (every tensor, or only `tensor`).
    dtype: Option<String>,
    /// The tensor the edits apply to (default: the first in name order).
    tensor: Option<String>,
    /// Leave `tensor` out.
    #[serde(default)]
    drop: bool,
    /// Store `tensor` flattened without its last value (a wrong shape).
    #[serde(default)]
    cut: bool,
    /// Set `tensor`'s first value to NaN.
    #[serde(default)]
    nan: bool,
    /// Also store `tensor` under this name (e.g. with a `module.` prefix).
    duplicate_as: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSafetensors {
    /// The JSON header, verbatim.
    header: String,
    /// Zero bytes after the header.
    data_bytes: usize,
    /// The header length written in the first 8 bytes (default: the real one).
    header_len: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BiomHdf5 {
    samples: Vec<String>,
    asvs: Vec<String>,
    indptr: Vec<i64>,
    indices: Vec<i64>,
    /// Counts (f64) …
    #[serde(default)]
    data: Vec<f64>,
    /// … or, a wrong dtype, strings.
    data_strings: Option<Vec<String>>,
    /// Leave out the `observation` group.
    #[serde(default)]
    no_observation_group: bool,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared_root() -> PathBuf {
    repo_root().join("../shared/data")
}

fn source(path: &str) -> PathBuf {
    match path.strip_prefix("shared:") {
        Some(p) => shared_root().join(p),
        None => repo_root().join(path),
    }
}

fn substitute(text: &str, dir: &Path) -> String {
    text.replace("{dir}", &dir.display().to_string())
        .replace("{repo}", &repo_root().display().to_string())
        .replace("{shared}", &shared_root().display().to_string())
}

/// `{{X*N}}` → X repeated N times.
fn expand_repeats(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("unclosed {{") + start;
        let (unit, n) = rest[start + 2..end].rsplit_once('*').expect("{{X*N}}");
        out.push_str(&unit.repeat(n.parse().expect("N in {{X*N}}")));
        rest = &rest[end + 2..];
    }
    out + rest
}

/// Every file under `dir` (recursively, directories included) with its length and
/// modification time.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<std::time::SystemTime>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
            if meta.is_dir() {
                stack.push(e.path());
                out.insert(rel, (0, None));
            } else {
                out.insert(rel, (meta.len(), meta.modified().ok()));
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn build(dir: &Path, rel: &str, spec: &FileSpec) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let bytes: Vec<u8> = if let Some(t) = &spec.text {
        expand_repeats(&substitute(t, dir)).into_bytes()
    } else if let Some(c) = &spec.copy {
        let mut b = std::fs::read(source(c)).unwrap_or_else(|e| panic!("{c}: {e}"));
        if let Some(n) = spec.truncate {
            b.truncate(n);
        }
        b
    } else if let Some(d) = &spec.copy_dir {
        copy_dir(&source(d), &path);
        return;
    } else if let Some(n) = &spec.npy {
        return write_npy(&path, n);
    } else if let Some(s) = &spec.safetensors {
        derived_safetensors(s)
    } else if let Some(r) = &spec.raw_safetensors {
        let len = r.header_len.unwrap_or(r.header.len() as u64);
        let mut b = len.to_le_bytes().to_vec();
        b.extend_from_slice(r.header.as_bytes());
        b.resize(b.len() + r.data_bytes, 0);
        b
    } else if let Some(h) = &spec.biom_hdf5 {
        biom_hdf5(h)
    } else if let Some(r) = &spec.raw_npy {
        // Magic, version 1.0, header length (u16), the header padded with spaces to a
        // multiple of 64 bytes and ended by a newline.
        let mut header = r.header.clone();
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.resize(b.len() + r.data_bytes, 0);
        b
    } else if let Some(j) = &spec.json {
        edited_json(j).to_string().into_bytes()
    } else if let Some(o) = &spec.onnx_config {
        onnx_with_config(o)
    } else {
        panic!("{rel}: no source")
    };
    std::fs::write(&path, bytes).unwrap();
}

fn edited_json(j: &JsonSpec) -> serde_json::Value {
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(source(&j.from)).unwrap()).unwrap();
    for (pointer, value) in &j.set {
        *json
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{}: no {pointer}", j.from)) = value.clone();
    }
    json
}

fn onnx_with_config(o: &OnnxConfigSpec) -> Vec<u8> {
    let config = edited_json(&o.config);
    let graph = std::fs::read(source(&o.from)).unwrap();
    aam_fuzz::targets::model_dir::with_config(&graph, config.to_string().as_bytes())
}

fn write_npy(path: &Path, n: &NpySpec) {
    let mut a: ArrayD<f64> = match (&n.from, &n.values) {
        (None, None) => {
            let shape = n.shape.clone().expect("npy: `shape` with `fill`");
            let fill = n.fill.expect("npy: give `from`, `values` or `fill`");
            ArrayD::from_elem(IxDyn(&shape), fill)
        }
        (Some(f), None) => {
            // The shared matrices are float32.
            let m: ndarray::Array2<f32> = ndarray_npy::read_npy(source(f)).unwrap();
            m.mapv(f64::from).into_dyn()
        }
        (None, Some(v)) => {
            let shape = n.shape.clone().unwrap_or(vec![v.len()]);
            ArrayD::from_shape_vec(IxDyn(&shape), v.clone()).unwrap()
        }
        _ => panic!("npy: give `from` or `values`"),
    };
    for &(i, j, v) in &n.set {
        a[[i, j]] = v;
    }
    for &(k, v) in &n.set_flat {
        *a.iter_mut().nth(k).expect("set_flat index") = v;
    }
    if let Some(s) = n.scale {
        a.mapv_inplace(|x| x * s);
    }
    if let Some(k) = n.keep_columns {
        a = a.slice_axis(ndarray::Axis(1), (0..k).into()).to_owned();
    }
    if let Some(r) = &n.reshape {
        let v: Vec<f64> = a.iter().copied().collect();
        a = ArrayD::from_shape_vec(IxDyn(r), v).unwrap();
    }
    match n.dtype.as_str() {
        "f8" => ndarray_npy::write_npy(path, &a).unwrap(),
        "f4" => ndarray_npy::write_npy(path, &a.mapv(|x| x as f32)).unwrap(),
        "i8" => ndarray_npy::write_npy(path, &a.mapv(|x| x as i64)).unwrap(),
        other => panic!("npy dtype {other}"),
    }
}

fn derived_safetensors(s: &SafetensorsSpec) -> Vec<u8> {
    let bytes = std::fs::read(source(&s.from)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    let target = s.tensor.clone().unwrap_or(names[0].to_string());
    let mut out: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for name in names {
        let view = st.tensor(name).unwrap();
        assert_eq!(view.dtype(), Dtype::F32, "{name}: F32 sources only");
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mine = *name == target;
        if mine && s.drop {
            continue;
        }
        let mut shape = view.shape().to_vec();
        let mut values = values;
        if mine && s.cut {
            values.pop();
            shape = vec![values.len()];
        }
        if mine && s.nan {
            values[0] = f32::NAN;
        }
        let convert = s.dtype.as_deref().filter(|_| s.tensor.is_none() || mine);
        let (dtype, raw): (Dtype, Vec<u8>) = match convert {
            None => (
                Dtype::F32,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            Some("F16") => (
                Dtype::F16,
                values
                    .iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
            Some("BF16") => (
                Dtype::BF16,
                values
                    .iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
            Some("I64") => (
                Dtype::I64,
                values
                    .iter()
                    .flat_map(|&v| (v as i64).to_le_bytes())
                    .collect(),
            ),
            Some(other) => panic!("safetensors dtype {other}"),
        };
        if let Some(copy) = s.duplicate_as.as_ref().filter(|_| mine) {
            out.push((copy.clone(), dtype, shape.clone(), raw.clone()));
        }
        out.push((name.to_string(), dtype, shape, raw));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = out
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, meta.metadata().clone()).unwrap()
}

fn biom_hdf5(h: &BiomHdf5) -> Vec<u8> {
    let mut b = hdf5_pure::FileBuilder::new();
    let mut sample = b.create_group("sample");
    let refs: Vec<&str> = h.samples.iter().map(String::as_str).collect();
    sample.create_dataset("ids").with_vlen_strings(&refs);
    let mut matrix = sample.create_group("matrix");
    match &h.data_strings {
        Some(s) => {
            let refs: Vec<&str> = s.iter().map(String::as_str).collect();
            matrix.create_dataset("data").with_vlen_strings(&refs);
        }
        None => {
            matrix.create_dataset("data").with_f64_data(&h.data);
        }
    }
    matrix.create_dataset("indices").with_i64_data(&h.indices);
    matrix.create_dataset("indptr").with_i64_data(&h.indptr);
    sample.add_group(matrix.finish());
    b.add_group(sample.finish());
    if !h.no_observation_group {
        let mut obs = b.create_group("observation");
        let refs: Vec<&str> = h.asvs.iter().map(String::as_str).collect();
        obs.create_dataset("ids").with_vlen_strings(&refs);
        b.add_group(obs.finish());
    }
    b.finish().unwrap()
}

/// Runs one case; `Err` lists what did not hold.
fn run_case(case: &Case, root: &Path) -> Result<(), String> {
    let dir = root.join(&case.name);
    std::fs::create_dir_all(&dir).unwrap();
    for (rel, spec) in &case.files {
        build(&dir, rel, spec);
    }
    let args: Vec<String> = case.args.iter().map(|a| substitute(a, &dir)).collect();
    let before = files_under(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_aam"))
        .args(&args)
        .current_dir(&dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run aam");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if std::env::var_os("AAM_BAD_INPUT_SHOW").is_some() {
        // Reviewing the messages: `AAM_BAD_INPUT_SHOW=1 cargo test … -- --nocapture`.
        eprintln!("== {} ({:?})\n{stderr}", case.name, out.status.code());
    }
    let mut problems = Vec::new();
    if out.status.code() != Some(case.status) {
        problems.push(format!(
            "exit status {:?}, expected {}",
            out.status.code(),
            case.status
        ));
    }
    if stderr.contains("panicked") {
        problems.push("panicked".into());
    }
    for e in &case.expect {
        if !stderr.contains(&substitute(e, &dir)) {
            problems.push(format!("stderr lacks {e:?}"));
        }
    }
    for e in &case.stdout {
        if !stdout.contains(&substitute(e, &dir)) {
            problems.push(format!("stdout lacks {e:?}"));
        }
    }
    for a in &case.absent {
        if dir.join(a).exists() {
            problems.push(format!("{a} exists after the run"));
        }
    }
    // A refused run writes nothing: no file appears, none changes.
    if case.status != 0 {
        let after = files_under(&dir);
        for (path, stamp) in &after {
            match before.get(path) {
                None => problems.push(format!("refused, but wrote {}", path.display())),
                Some(old) if old != stamp => {
                    problems.push(format!("refused, but changed {}", path.display()))
                }
                _ => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let tail: String = stderr
            .lines()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n      ");
        Err(format!(
            "{}: {}\n    aam {}\n    stderr: {tail}",
            case.name,
            problems.join("; "),
            args.join(" ")
        ))
    }
}

#[test]
fn every_bad_input_gets_its_own_message_and_no_panic() {
    let text = std::fs::read_to_string(repo_root().join("tests/bad_inputs/cases.toml")).unwrap();
    let catalogue: Catalogue = toml::from_str(&text).unwrap();
    let cases = catalogue.case;
    assert!(
        cases.len() >= 60,
        "{} cases; the catalogue keeps at least 60",
        cases.len()
    );
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    for c in &cases {
        assert!(
            c.status != 1 || !c.expect.is_empty(),
            "{}: a refused input names its message",
            c.name
        );
    }
    // Only these cases (a name fragment from AAM_BAD_INPUT) when debugging one.
    let only = std::env::var("AAM_BAD_INPUT").unwrap_or_default();
    let root = tempfile::tempdir().unwrap();
    // Two workers: each case is one short `aam` process.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                if !case.name.contains(&only) {
                    continue;
                }
                if let Err(e) = run_case(case, root.path()) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}
