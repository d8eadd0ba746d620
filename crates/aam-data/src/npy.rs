//! The size a `.npy` header declares, checked against the file before a reader
//! allocates for it: `ndarray-npy` reserves the declared size up front, so a 100-byte
//! file whose header says `(1099511627776, 1, 91)` would abort the process on an 800 TB
//! allocation instead of failing to read.
//!
//! Format: NumPy's `.npy` specification (magic `\x93NUMPY`, version, a little-endian
//! header length of 2 bytes in version 1 and 4 in versions 2–3, then a Python dict
//! literal with `descr`, `fortran_order` and `shape`).

use std::io::Read;
use std::path::Path;

use crate::error::{DataError, Result};

/// Checks that the data `path`'s header declares (shape × item size) fits in the file.
///
/// Errors ([`DataError::Format`] naming the file): a header length over 1 MiB or past
/// the end of the file, a shape whose byte size overflows 64 bits, or more data declared
/// than the file holds. A header this check cannot parse is left to the reader, which
/// reports its own fault.
pub fn check_npy_size(path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut prefix = [0u8; 12];
    let mut got = 0;
    while got < prefix.len() {
        match file.read(&mut prefix[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(DataError::io(path, e)),
        }
    }
    if got < 10 || &prefix[..6] != b"\x93NUMPY" {
        return Ok(());
    }
    let (len_bytes, header_len) = match prefix[6] {
        1 => (2, u64::from(u16::from_le_bytes([prefix[8], prefix[9]]))),
        2 | 3 if got == 12 => (
            4,
            u64::from(u32::from_le_bytes([
                prefix[8], prefix[9], prefix[10], prefix[11],
            ])),
        ),
        _ => return Ok(()),
    };
    let data_start = 8 + len_bytes + header_len;
    // `ndarray-npy` allocates the header length before reading it: a 4-byte length of
    // 3 GB in an 86-byte file (found by fuzzing) is refused here. NumPy itself reads
    // headers of at most 10,000 bytes by default; 1 MiB leaves room for any real one.
    if header_len > 1 << 20 || data_start > file_len {
        return Err(DataError::format(
            path,
            format!(
                "the .npy header declares a {header_len}-byte header in a {file_len}-byte file; the file is truncated or corrupt (save it again with numpy.save)"
            ),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    let mut rest = Vec::new();
    rest.extend_from_slice(&prefix[8 + len_bytes as usize..got]);
    let have = rest.len().min(header.len());
    header[..have].copy_from_slice(&rest[..have]);
    file.read_exact(&mut header[have..])
        .map_err(|e| DataError::io(path, e))?;
    let header = String::from_utf8_lossy(&header);
    let (Some(shape), Some(item)) = (declared_shape(&header), item_size(&header)) else {
        return Ok(());
    };
    let shown = format!("{shape:?}");
    let bytes = shape
        .iter()
        .try_fold(item, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            DataError::format(
                path,
                format!("the .npy header declares shape {shown}, whose size overflows 64 bits; the file is corrupt"),
            )
        })?;
    let data = file_len - data_start;
    if bytes > data {
        return Err(DataError::format(
            path,
            format!(
                "the .npy header declares shape {shown} ({bytes} bytes of data) but the file holds {data}; the file is truncated or corrupt (save it again with numpy.save)"
            ),
        ));
    }
    Ok(())
}

/// The integers of the header's `'shape': (…)` tuple.
fn declared_shape(header: &str) -> Option<Vec<u64>> {
    let at = header.find("'shape'")?;
    let open = at + header[at..].find('(')?;
    let close = open + header[open..].find(')')?;
    header[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse().ok())
        .collect()
}

/// The item size in bytes of the header's `'descr'` (e.g. `'<f8'` → 8).
fn item_size(header: &str) -> Option<u64> {
    let at = header.find("'descr'")?;
    let rest = &header[at + "'descr'".len()..];
    let open = rest.find('\'')?;
    let close = open + 1 + rest[open + 1..].find('\'')?;
    let descr = &rest[open + 1..close];
    let digits: String = descr.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
        assert_eq!(declared_shape(h), Some(vec![3, 4]));
        assert_eq!(item_size(h), Some(8));
        assert_eq!(declared_shape("{'shape': (7,), }"), Some(vec![7]));
        assert_eq!(declared_shape("{'shape': (), }"), Some(vec![]));
        assert_eq!(item_size("{'descr': '|u1', }"), Some(1));
    }
}
