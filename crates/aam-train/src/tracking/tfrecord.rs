//! TFRecord framing, the container of TensorBoard event files.
//!
//! Each record is `length: u64 LE`, `masked_crc32c(length bytes): u32 LE`, `data`,
//! `masked_crc32c(data): u32 LE` (TensorFlow `tensorflow/core/lib/io/record_writer.cc`,
//! masking from `tensorflow/tsl/lib/hash/crc32c.h`).

use std::io::{self, Write};

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC-32C (Castagnoli) of `bytes`, rotated right by 15 bits plus `0xa282ead8`: the masked
/// form TFRecord stores, so that a CRC of data that itself holds CRCs stays well mixed.
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = CASTAGNOLI.checksum(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes one record holding `data` to `out`. Errors: those of `out`.
pub fn write_record(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let length = (data.len() as u64).to_le_bytes();
    out.write_all(&length)?;
    out.write_all(&masked_crc32c(&length).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C check value of the catalogue (RFC 3720, B.4): "123456789" → 0xE3069283.
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xE306_9283);
        // Masked by hand: rotr(0xE3069283, 15) = 0x2507C60D; + 0xA282EAD8 = 0xC78AB0E5.
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn record_layout() {
        let mut out = Vec::new();
        write_record(&mut out, b"abc").unwrap();
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[8..12], &masked_crc32c(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
        assert_eq!(&out[15..], &masked_crc32c(b"abc").to_le_bytes());
    }
}
