//! Trains a tiny classifier of `exposure_type` on the example table from Rust, as
//! `aam train` would, and prints its validation metrics.
//!
//! ```text
//! cargo run -p aam-train --example train_tiny [OUTPUT_DIR]
//! ```

use aam_train::fine_tune_job::FineTuneJob;
use aam_train::job_inputs::JobInputs;

fn main() -> anyhow::Result<()> {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/circadian-ihc");
    let output = std::env::args()
        .nth(1)
        .map_or_else(|| std::env::temp_dir().join("aam-train-tiny"), Into::into);

    let mut inputs = JobInputs::new(data.join("table.biom"), &output);
    inputs.metadata = Some(data.join("metadata.tsv"));
    inputs.unifrac_matrix = Some(data.join("unifrac_unweighted.h5"));
    inputs.group_column = Some("host_subject_id".into());
    inputs.overwrite = true;

    let mut job = FineTuneJob::new(inputs, "exposure_type");
    // A model small enough to train in seconds on a CPU.
    job.model.embedding_dim = 16;
    job.model.max_bp = 90;
    job.model.token_limit = 32;
    job.data.max_bp = 90;
    job.data.token_limit = 32;
    job.options.epochs = 2;
    job.options.lr = 1e-3;
    job.options.progress = false;

    let run = job.prepare()?;
    let devices = [Default::default()];
    let report =
        job.fit::<aam_model::CpuFlexAutodiff>(&run, &devices, &mut aam_train::NoTracking)?;
    let last = report.epochs.last().expect("two epochs");
    println!(
        "validation after {} epochs: {:?}",
        last.epoch, last.validation
    );
    println!("checkpoint in {}", output.display());
    Ok(())
}
