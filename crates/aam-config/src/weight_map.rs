//! Weights by key path, in the reference (PyTorch state-dict) naming and layout: a
//! safetensors file read into named f32 tensors, Burn-free, so the ONNX export reads
//! the same map as the Burn model (`aam_model::weights` loads it into modules).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// Errors loading or saving weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    /// The weights file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a readable safetensors file, or holds an unsupported dtype.
    #[error("{0}")]
    Format(String),
    /// A parameter the configuration needs is absent.
    #[error("{origin}: weights lack '{key}'; the weights do not belong to this configuration (check encoder_type, predict_nucleotides and layer counts)")]
    Missing {
        /// Where the weights came from (file path).
        origin: String,
        /// Key.
        key: String,
    },
    /// A parameter has another shape than the configuration implies.
    #[error("{origin}: '{key}' has shape {found:?} but the configuration needs {expected:?}; check embedding_dim, vocab_size, max_bp, token_limit and intermediate_size")]
    Shape {
        /// Where the weights came from (file path).
        origin: String,
        /// Key.
        key: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the configuration implies.
        expected: Vec<usize>,
    },
    /// Keys in the file that no parameter of the configuration uses.
    #[error("{origin}: {count} weights are not used by this configuration, e.g. {examples}; the weights belong to another model shape")]
    Unused {
        /// Where the weights came from (file path).
        origin: String,
        /// How many.
        count: usize,
        /// Up to five names.
        examples: String,
    },
}

/// Named f32 tensors read from a safetensors file (F32, F64, F16 and BF16 are
/// converted to f32). Prefixes `_orig_mod.` (torch.compile) and `module.` (DDP) are
/// stripped.
#[derive(Debug, Clone)]
pub struct WeightMap {
    /// Where the tensors came from, for error messages (a file path).
    origin: String,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    used: std::cell::RefCell<HashSet<String>>,
}

impl Default for WeightMap {
    fn default() -> Self {
        WeightMap {
            origin: "the weights".into(),
            tensors: BTreeMap::new(),
            used: Default::default(),
        }
    }
}

fn strip_prefixes(mut k: &str) -> &str {
    loop {
        if let Some(r) = k.strip_prefix("_orig_mod.") {
            k = r;
        } else if let Some(r) = k.strip_prefix("module.") {
            k = r;
        } else {
            return k;
        }
    }
}

impl WeightMap {
    /// Parses safetensors bytes. `origin` names the source in error messages.
    ///
    /// Errors ([`WeightError::Format`]): not safetensors; a dtype other than F32, F64,
    /// F16, BF16; a NaN or infinite value (naming the tensor and index); two tensors
    /// whose names are equal once the prefixes are stripped.
    pub fn from_safetensors(bytes: &[u8], origin: &str) -> Result<Self, WeightError> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| WeightError::Format(format!("{origin}: not a safetensors file ({e})")))?;
        let mut tensors = BTreeMap::new();
        let mut stripped_from: BTreeMap<String, String> = BTreeMap::new();
        for (name, view) in st.tensors() {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                Dtype::F64 => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32).collect(),
                Dtype::F16 => data.chunks_exact(2).map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
                Dtype::BF16 => data.chunks_exact(2).map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16)).collect(),
                other => return Err(WeightError::Format(format!("{origin}: tensor '{name}' has dtype {other:?}; only floating-point weights are supported"))),
            };
            // A diverged or damaged checkpoint must not load into a model that then
            // predicts NaN for every sample.
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(WeightError::Format(format!(
                    "{origin}: tensor '{name}' holds {} at index {i}; the weights are corrupt or come from a training run that diverged: use an earlier checkpoint",
                    values[i]
                )));
            }
            let key = strip_prefixes(&name);
            if let Some(other) = stripped_from.insert(key.to_string(), name.to_string()) {
                let (a, b) = if other.as_str() < name.as_str() {
                    (other.as_str(), name.as_str())
                } else {
                    (name.as_str(), other.as_str())
                };
                return Err(WeightError::Format(format!(
                    "{origin}: tensors '{a}' and '{b}' are both '{key}' once the torch.compile/DataParallel prefixes (`_orig_mod.`, `module.`) are removed; keep one of them"
                )));
            }
            tensors.insert(key.to_string(), (view.shape().to_vec(), values));
        }
        Ok(WeightMap {
            origin: origin.to_string(),
            tensors,
            used: Default::default(),
        })
    }

    /// Reads a safetensors file.
    pub fn load(path: &Path) -> Result<Self, WeightError> {
        let bytes = std::fs::read(path).map_err(|source| WeightError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_safetensors(&bytes, &path.display().to_string())
    }

    /// Whether `key` exists.
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// All keys.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    /// The values of `key`, checked against `shape`; marks it used.
    pub fn get(&self, key: &str, shape: &[usize]) -> Result<&[f32], WeightError> {
        let (found, values) = self.tensors.get(key).ok_or_else(|| WeightError::Missing {
            origin: self.origin.clone(),
            key: key.to_string(),
        })?;
        if found.as_slice() != shape {
            return Err(WeightError::Shape {
                origin: self.origin.clone(),
                key: key.to_string(),
                found: found.clone(),
                expected: shape.to_vec(),
            });
        }
        self.used.borrow_mut().insert(key.to_string());
        Ok(values)
    }

    /// Errors when some key (under `prefix`) was never read.
    pub fn check_all_used(&self, prefix: &str) -> Result<(), WeightError> {
        let used = self.used.borrow();
        let unused: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| k.starts_with(prefix) && !used.contains(*k))
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        let examples = unused
            .iter()
            .take(5)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Err(WeightError::Unused {
            origin: self.origin.clone(),
            count: unused.len(),
            examples,
        })
    }

    /// Serialises every tensor as f32 to safetensors bytes with `metadata`.
    pub fn to_safetensors(
        &self,
        metadata: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Vec<u8>, WeightError> {
        write_safetensors(
            self.tensors
                .iter()
                .map(|(k, (s, v))| (k.as_str(), s.as_slice(), v.as_slice())),
            metadata,
        )
    }

    /// Inserts a tensor (used by tests and by checkpoint conversion).
    pub fn insert(&mut self, key: &str, shape: Vec<usize>, values: Vec<f32>) {
        self.tensors.insert(key.to_string(), (shape, values));
    }
}

/// IEEE half → f32 (safetensors F16 entries are converted, not rejected).
fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = (h >> 10) & 0x1f;
    let frac = u32::from(h & 0x3ff);
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        e => sign | ((u32::from(e) + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// Serialises `(key, shape, values)` f32 tensors to safetensors bytes with `metadata`.
///
/// Errors ([`WeightError::Format`]): a shape whose element count differs from the values.
pub fn write_safetensors<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a [usize], &'a [f32])>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, WeightError> {
    let bytes: Vec<(&str, Vec<u8>, &[usize])> = entries
        .into_iter()
        .map(|(k, s, v)| (k, v.iter().flat_map(|x| x.to_le_bytes()).collect(), s))
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (k, b, s) in &bytes {
        let view = TensorView::new(Dtype::F32, s.to_vec(), b)
            .map_err(|e| WeightError::Format(format!("tensor '{k}': {e}")))?;
        views.push((k.to_string(), view));
    }
    safetensors::serialize(views, metadata)
        .map_err(|e| WeightError::Format(format!("cannot serialise weights: {e}")))
}
