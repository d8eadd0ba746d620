//! Metadata TSV: any bytes as `metadata.tsv`, then every column resolved as a target
//! (inferred, forced numeric, forced categorical) for the file's samples and one sample
//! it does not have.

use aam_data::{Metadata, TargetKind};

/// Loads `data` as metadata and resolves every column.
pub fn run(data: &[u8]) {
    let path = crate::scratch::write("metadata.tsv", data);
    let Ok(meta) = Metadata::load(&path) else { return };
    let mut samples = meta.sample_ids.clone();
    samples.push("not-in-the-metadata".into());
    for column in meta.columns.clone() {
        assert!(meta.column_index(&column).is_ok());
        for kind in [None, Some(TargetKind::Numeric), Some(TargetKind::Categorical)] {
            let Ok(target) = meta.target(&column, &samples, kind) else { continue };
            assert_eq!(target.values.len(), samples.len());
            assert!(target.absent_samples.contains(&"not-in-the-metadata".to_string()));
            match target.kind {
                TargetKind::Numeric => assert!(target.values.iter().flatten().all(|v| v.is_finite()), "a non-finite numeric target"),
                TargetKind::Categorical => {
                    assert!(target.classes.windows(2).all(|w| w[0] < w[1]), "classes not sorted and unique");
                    for v in target.values.iter().flatten() {
                        assert!(v.fract() == 0.0 && *v >= 0.0 && (*v as usize) < target.classes.len(), "class index {v} out of range");
                    }
                }
            }
            let _ = target.class_counts();
        }
    }
}
