//! Writing a feature table as BIOM 2.1 HDF5: tests, fuzz seeds and tools that subset a
//! table write the same layout that [`super::load_table`] reads.

use std::path::Path;

use hdf5_pure::{FileBuilder, GroupBuilder};

use crate::error::{DataError, Result};
use crate::table::FeatureTable;

/// How the IDs and matrices of a written BIOM 2.1 file are laid out; both layouts occur in
/// files that the `biom-format` package and QIIME 2 write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hdf5Layout {
    /// Write the CSC `sample/matrix` beside the CSR `observation/matrix` (always written).
    /// `biom-format` writes both; a reader must cope with the CSR alone.
    pub sample_matrix: bool,
    /// Sample and observation IDs as fixed-length ASCII strings instead of variable-length
    /// UTF-8 strings (older writers).
    pub fixed_length_ids: bool,
}

impl Default for Hdf5Layout {
    /// Both matrices and variable-length IDs, as `biom-format` 2.1 writes them.
    fn default() -> Self {
        Hdf5Layout {
            sample_matrix: true,
            fixed_length_ids: false,
        }
    }
}

/// The bytes of `table` as a BIOM 2.1 HDF5 file laid out as `layout`: groups
/// `observation/{ids,matrix/{indptr,indices,data}}` (CSR, `i64` indices, `f64` counts) and
/// `sample/{ids,matrix/…}` (CSC). Layout from the BIOM 2.1 format specification.
///
/// Errors: [`DataError::Format`] (naming `<memory>`) when an ID cannot be stored as
/// fixed-length ASCII or the HDF5 encoder fails.
pub fn hdf5_bytes(table: &FeatureTable, layout: Hdf5Layout) -> Result<Vec<u8>> {
    let failed = |e: &dyn std::fmt::Display| DataError::Format {
        path: "<memory>".into(),
        message: format!("cannot encode the table as BIOM 2.1 HDF5: {e}"),
    };
    // CSR by observation: the transpose of the table's CSC by sample.
    let mut rows: Vec<Vec<(i64, f64)>> = vec![Vec::new(); table.n_asv()];
    for s in 0..table.n_samples() {
        for (o, c) in table.sample(s) {
            rows[o as usize].push((s as i64, c));
        }
    }
    let (mut indptr, mut indices, mut data) = (vec![0i64], Vec::new(), Vec::new());
    for row in rows {
        for (s, c) in row {
            indices.push(s);
            data.push(c);
        }
        indptr.push(indices.len() as i64);
    }
    let put_ids = |g: &mut GroupBuilder, ids: &[String]| -> Result<()> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        if layout.fixed_length_ids {
            g.create_dataset("ids")
                .with_ascii_strings(&refs)
                .map_err(|e| failed(&e))?;
        } else {
            g.create_dataset("ids").with_vlen_strings(&refs);
        }
        Ok(())
    };
    let mut b = FileBuilder::new();
    let mut obs = b.create_group("observation");
    put_ids(&mut obs, &table.observation_ids)?;
    let mut m = obs.create_group("matrix");
    m.create_dataset("indptr").with_i64_data(&indptr);
    m.create_dataset("indices").with_i64_data(&indices);
    m.create_dataset("data").with_f64_data(&data);
    obs.add_group(m.finish());
    b.add_group(obs.finish());
    let mut smp = b.create_group("sample");
    put_ids(&mut smp, &table.sample_ids)?;
    if layout.sample_matrix {
        let mut m = smp.create_group("matrix");
        let indptr: Vec<i64> = table.indptr.iter().map(|&v| v as i64).collect();
        let indices: Vec<i64> = table.indices.iter().map(|&v| i64::from(v)).collect();
        m.create_dataset("indptr").with_i64_data(&indptr);
        m.create_dataset("indices").with_i64_data(&indices);
        m.create_dataset("data").with_f64_data(&table.values);
        smp.add_group(m.finish());
    }
    b.add_group(smp.finish());
    b.finish().map_err(|e| failed(&e))
}

/// Writes `table` to `path` as BIOM 2.1 HDF5 (see [`hdf5_bytes`]), replacing the file.
///
/// Errors: those of [`hdf5_bytes`]; [`DataError::Io`] naming `path` when it cannot be written.
pub fn write_hdf5(path: &Path, table: &FeatureTable, layout: Hdf5Layout) -> Result<()> {
    let bytes = hdf5_bytes(table, layout)?;
    std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))
}
