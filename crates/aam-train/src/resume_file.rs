//! `resume.bin`: everything `--resume` continues from, in one file written atomically.
//!
//! A run killed at any moment (SIGKILL, power loss) must resume to the weights of an
//! uninterrupted run. With the loop state, the model record and the optimizer record
//! in three files, a kill between two of the renames left a state of one epoch beside
//! the weights of the next. One file, renamed into place after an fsync, is either the
//! previous epoch's or the new one's.
//!
//! Layout: the magic `AAMRESUME1`, then `train_state.json`'s JSON, the Burn record of the
//! model and the Burn record of the optimizer, each preceded by its length (u64,
//! little-endian). `train_state.json` is still written beside it, after it, for people
//! and tools; the copy inside `resume.bin` is the one `--resume` trusts.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::checkpoint::TrainState;

/// File name of the resume bundle in a checkpoint directory.
pub const RESUME_FILE: &str = "resume.bin";
const MAGIC: &[u8] = b"AAMRESUME1";

/// What a run resumes from: the loop state and the Burn records (bytes of
/// `BinBytesRecorder<FullPrecisionSettings>`) of the model and its optimizer.
pub struct ResumePoint {
    /// Loop state after the last completed epoch.
    pub state: TrainState,
    /// Model record.
    pub model: Vec<u8>,
    /// Optimizer record (its parameter IDs match the model record's).
    pub optimizer: Vec<u8>,
}

/// Writes `dir/resume.bin` atomically (temp file, fsync, rename), then the readable
/// copy `dir/train_state.json`.
///
/// Errors: serialisation or I/O failures, naming the file.
pub fn write(dir: &Path, state: &TrainState, model: &[u8], optimizer: &[u8]) -> Result<()> {
    let bytes = encode(state, model, optimizer)?;
    aam_data::files::write_atomic(&dir.join(RESUME_FILE), &bytes)?;
    aam_data::files::write_json(&dir.join("train_state.json"), state)
}

/// The bytes of `resume.bin` for this loop state and these records (the layout in the
/// module docs); [`decode`] reads them back. Errors: the state cannot be serialised.
pub fn encode(state: &TrainState, model: &[u8], optimizer: &[u8]) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(state)?;
    let mut bytes =
        Vec::with_capacity(MAGIC.len() + 24 + json.len() + model.len() + optimizer.len());
    bytes.extend_from_slice(MAGIC);
    for part in [&json[..], model, optimizer] {
        bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
        bytes.extend_from_slice(part);
    }
    Ok(bytes)
}

/// Reads what `dir` resumes from: `resume.bin`, or the three files of checkpoints
/// written before it existed (`train_state.json`, `last_model.bin`, `optimizer.bin`).
///
/// Errors: nothing to resume; a damaged `resume.bin` (naming it).
pub fn read(dir: &Path) -> Result<ResumePoint> {
    let path = dir.join(RESUME_FILE);
    if !path.exists() {
        let legacy = |f: &str| -> Result<Vec<u8>> {
            let p = dir.join(f);
            std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
        };
        let state = aam_data::files::read_json(&dir.join("train_state.json"))?;
        return Ok(ResumePoint {
            state,
            model: legacy("last_model.bin")?,
            optimizer: legacy("optimizer.bin")?,
        });
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    decode(&bytes).with_context(|| {
        format!(
            "{} is damaged; start the run again with --overwrite",
            path.display()
        )
    })
}

/// The loop state `dir` resumes from (see [`read`]), without the records.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    Ok(read(dir)?.state)
}

/// Whether `dir` holds something to resume.
pub fn exists(dir: &Path) -> bool {
    dir.join(RESUME_FILE).exists() || dir.join("train_state.json").exists()
}

/// The resume point in `bytes` (as [`encode`] writes them). Errors: no `AAMRESUME1`
/// header, a truncated part, or a loop state that is not valid JSON.
pub fn decode(bytes: &[u8]) -> Result<ResumePoint> {
    let Some(mut rest) = bytes.strip_prefix(MAGIC) else {
        bail!("not a resume file (no AAMRESUME1 header)");
    };
    let mut part = || -> Result<Vec<u8>> {
        let Some((len, tail)) = rest.split_first_chunk::<8>() else {
            bail!("truncated");
        };
        let len = usize::try_from(u64::from_le_bytes(*len))?;
        if len > tail.len() {
            bail!("truncated: a part of {len} bytes with {} left", tail.len());
        }
        let (head, tail) = tail.split_at(len);
        rest = tail;
        Ok(head.to_vec())
    };
    let state = serde_json::from_slice(&part()?).context("its loop state is not valid")?;
    let model = part()?;
    let optimizer = part()?;
    Ok(ResumePoint {
        state,
        model,
        optimizer,
    })
}

/// Keeps the lines of `dir/metrics.jsonl` of epochs up to `epoch` (rewritten atomically):
/// an epoch logged by a run killed before it committed that epoch is logged again when
/// the resumed run reaches it, not twice.
///
/// Errors: I/O failures.
pub fn trim_metrics(dir: &Path, epoch: usize) -> Result<()> {
    let path = dir.join("metrics.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(()); // no log yet
    };
    let keep: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("epoch")?.as_u64())
                .is_some_and(|e| e as usize <= epoch)
        })
        .collect();
    if keep.len() == text.lines().count() {
        return Ok(());
    }
    let mut out = keep.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    aam_data::files::write_atomic(&path, out.as_bytes())
}

/// Removes the temporary files (`.name.tmp`) that a run killed while writing left in
/// `dir`; the files they were to replace are intact.
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(epoch: usize) -> TrainState {
        TrainState {
            epoch,
            step: 3 * epoch,
            seed: 7,
            best_val_loss: 0.5,
            best_score: None,
            best_epoch: epoch,
            bad_epochs: 0,
            schedule: crate::schedule::Schedule::new(
                crate::schedule::ScheduleKind::Constant,
                1e-3,
                10,
                Some(0),
            ),
            batch_size: Some(8),
            grad_accum: Some(1),
            loss_scaler: None,
        }
    }

    #[test]
    fn round_trip_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &state(2), b"model bytes", b"optimizer").unwrap();
        let r = read(dir.path()).unwrap();
        assert_eq!((r.state.epoch, r.state.step), (2, 6));
        assert_eq!(r.model, b"model bytes");
        assert_eq!(r.optimizer, b"optimizer");
        let copy: TrainState =
            aam_data::files::read_json(&dir.path().join("train_state.json")).unwrap();
        assert_eq!(copy.epoch, 2);
        // Cut anywhere inside, the file is refused, never half-read.
        let bytes = std::fs::read(dir.path().join(RESUME_FILE)).unwrap();
        for cut in [5, MAGIC.len() + 4, bytes.len() - 3] {
            std::fs::write(dir.path().join(RESUME_FILE), &bytes[..cut]).unwrap();
            let err = format!("{:#}", read(dir.path()).err().unwrap());
            assert!(err.contains("is damaged"), "{err}");
        }
    }

    #[test]
    fn metrics_of_uncommitted_epochs_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("metrics.jsonl");
        std::fs::write(&log, "{\"epoch\":1}\n{\"epoch\":2}\n{\"epoch\":3}\n").unwrap();
        trim_metrics(dir.path(), 2).unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "{\"epoch\":1}\n{\"epoch\":2}\n"
        );
    }
}
