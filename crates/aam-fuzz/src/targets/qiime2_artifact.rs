//! QIIME 2 artifacts: any bytes as a `.qza` given to every reader of artifacts (feature
//! table, sequences, distance matrix, Faith PD, taxonomy); each reads the archive in memory and must
//! come back with its data or an error, whatever the archive's entries claim.

use aam_data::{load_distance_matrix, load_faith_pd, load_sequences, load_table, load_taxonomy};

/// Loads `data` as each kind of artifact and checks what an accepted one promises.
pub fn run(data: &[u8]) {
    let path = crate::scratch::write("artifact.qza", data);
    if let Ok((table, format)) = load_table(&path) {
        assert_eq!(format, aam_data::biom::detect_format(data));
        super::biom_table::check_invariants(&table);
    }
    if let Ok(s) = load_sequences(&path) {
        assert!(!s.sequences.is_empty(), "no sequences were accepted");
        for (id, seq) in &s.sequences {
            assert!(
                !id.is_empty() && !seq.is_empty(),
                "an empty feature ID or sequence"
            );
            assert!(
                seq.bytes().all(|c| c.is_ascii_uppercase()),
                "sequence of '{id}' not upper-case letters"
            );
        }
    }
    let ids: Vec<String> = (0..4).map(|i| format!("S{i}")).collect();
    if let Ok(m) = load_distance_matrix(&path, None, &ids) {
        assert_eq!(m.values.len(), m.n() * m.n());
    }
    if let Ok(t) = load_taxonomy(&path) {
        for (id, lineage) in &t.taxa {
            assert!(
                !id.is_empty() && !lineage.is_empty(),
                "an empty feature ID or lineage"
            );
            let _ = aam_data::taxonomy::lineage_at(lineage, aam_data::TaxonRank::Species);
        }
    }
    if let Ok(fp) = load_faith_pd(&path, &ids) {
        assert!(fp.values.values().all(|v| v.is_finite() && *v >= 0.0));
    }
}
