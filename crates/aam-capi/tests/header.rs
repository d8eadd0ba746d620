//! The committed `include/aam.h` is exactly what cbindgen generates from this crate
//! (`AAM_UPDATE_HEADER=1 cargo test -p aam-capi --test header` rewrites it).

#[test]
fn committed_header_is_current() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/aam.h"));
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../include/aam.h");
    if std::env::var_os("AAM_UPDATE_HEADER").is_some() {
        std::fs::write(committed_path, generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/aam.h is not what cbindgen generates from crates/aam-capi; run AAM_UPDATE_HEADER=1 cargo test --workspace --test header and commit it"
    );
}
