//! Distance matrices: the first byte picks the form (ssu `.h5`, `.npy`, labelled `.csv`
//! or `.tsv`), the rest is the file. A `.npy` carries no sample IDs: it is read against
//! a table of the four samples `S0`..`S3`, so only a 4 × 4 matrix is accepted.

use aam_data::distance::SYMMETRY_TOLERANCE;
use aam_data::load_distance_matrix;

/// The table's samples for `.npy` matrices and for alignment.
pub const TABLE_SAMPLES: [&str; 4] = ["S0", "S1", "S2", "S3"];

/// The extension that the first byte of an input selects.
pub fn extension(selector: u8) -> &'static str {
    ["h5", "npy", "csv", "tsv"][usize::from(selector % 4)]
}

/// Loads the matrix, validates it as UniFrac and as a plain distance, aligns it to the
/// table; checks what an accepted matrix promises.
pub fn run(data: &[u8]) {
    let Some((&selector, file)) = data.split_first() else { return };
    let path = crate::scratch::write(&format!("matrix.{}", extension(selector)), file);
    let table: Vec<String> = TABLE_SAMPLES.iter().map(|s| s.to_string()).collect();
    let Ok(m) = load_distance_matrix(&path, None, &table) else { return };
    let n = m.n();
    assert_eq!(m.ids.len(), n);
    assert_eq!(m.values.len(), n * n, "a non-square matrix was accepted");
    let _ = m.validate(false);
    if m.validate(true).is_ok() {
        for i in 0..n {
            assert_eq!(m.get(i, i).abs() <= SYMMETRY_TOLERANCE, true, "a non-hollow matrix passed validation");
            for j in 0..n {
                let v = m.get(i, j);
                assert!(v.is_finite() && (0.0..=1.0).contains(&v), "d({i},{j}) = {v} passed validation");
                assert!((v - m.get(j, i)).abs() <= SYMMETRY_TOLERANCE, "an asymmetric matrix passed validation");
            }
        }
    }
    if let Ok((aligned, missing)) = m.align(&table, true) {
        assert_eq!(aligned.ids.len() + missing.len(), table.len());
        let all: Vec<usize> = (0..aligned.n()).collect();
        let block = aligned.block(&all);
        assert_eq!(block.dim(), (aligned.n(), aligned.n()));
        for (a, id) in aligned.ids.iter().enumerate() {
            let r = m.ids.iter().position(|x| x == id).expect("an aligned sample is in the matrix");
            assert_eq!(aligned.get(a, a).to_bits(), m.get(r, r).to_bits());
        }
    }
}
