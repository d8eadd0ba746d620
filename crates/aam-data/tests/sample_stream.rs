//! `SampleStream` (`aam pretrain/train --streaming`): a batch read chunk by chunk equals
//! the batch the in-memory dataset builds from the whole table, for the same samples,
//! epochs, token-limit policies and augmentations, whichever chunks the samples are in;
//! chunks are read only when a batch needs them and at most two are kept.

mod common;
use common::{moving_pictures_with_unifrac, shared};

use aam_data::{Augmentation, Dataset, SampleStream, TokenLimitPolicy};

#[test]
fn streamed_batches_equal_the_in_memory_ones() {
    let path = shared("moving-pictures", "table.biom");
    let (table, m) = moving_pictures_with_unifrac();
    // A selection in another order than the file's (what alignment and missing targets
    // leave): every sample but each fifth, reversed.
    let keep: Vec<usize> = (0..table.n_samples())
        .rev()
        .filter(|s| s % 5 != 2)
        .collect();
    let ids: Vec<String> = keep.iter().map(|&s| table.sample_ids[s].clone()).collect();
    let (m, missing) = m.align(&ids, false).unwrap();
    assert!(missing.is_empty());
    let targets: Vec<f32> = (0..ids.len()).map(|i| i as f32 * 0.25 - 3.0).collect();
    let augmentations: [Augmentation; 2] = [
        "subset=0.6,noise=0.2".parse().unwrap(),
        "rarefy=500,substitution=0.05".parse().unwrap(),
    ];
    for policy in [
        TokenLimitPolicy::First,
        TokenLimitPolicy::Abundance,
        TokenLimitPolicy::Random,
    ] {
        let build = |t| {
            Dataset::new(
                t,
                150,
                24,
                policy,
                9,
                Some(m.clone()),
                Some(targets.clone()),
            )
            .unwrap()
        };
        let in_memory = build(table.select_samples(&keep));
        for chunk_samples in [1, 7, 1000] {
            let stream = SampleStream::open(&path, chunk_samples)
                .unwrap()
                .select(&ids)
                .unwrap();
            let on_ids = build(stream.id_table());
            assert_eq!(on_ids.table.sample_ids, ids);
            assert_eq!(on_ids.table.nnz(), 0, "the dataset holds no counts");
            for (k, samples) in [vec![0, 1, 2, 3], vec![20, 3, 11, 0, 26], vec![5, 6]]
                .iter()
                .enumerate()
            {
                let epoch = k as u64;
                assert_eq!(
                    stream.batch(&on_ids, samples, None, epoch, None).unwrap(),
                    in_memory.batch(samples, None, epoch),
                    "{policy:?}, chunks of {chunk_samples}, samples {samples:?}"
                );
                assert_eq!(
                    stream
                        .batch(&on_ids, samples, Some(32), epoch, None)
                        .unwrap(),
                    in_memory.batch(samples, Some(32), epoch),
                    "padded to 32"
                );
                for a in &augmentations {
                    assert_eq!(
                        stream
                            .batch(&on_ids, samples, None, epoch, Some((a, 4)))
                            .unwrap(),
                        in_memory.augmented_batch(samples, None, epoch, a, 4),
                        "{a:?}"
                    );
                }
            }
            for s in 0..ids.len() {
                assert_eq!(stream.sample_nnz(s), in_memory.table.sample_nnz(s));
            }
        }
    }
}

#[test]
fn chunks_are_read_when_needed_and_two_are_kept() {
    let path = shared("moving-pictures", "table.biom");
    let stream = SampleStream::open(&path, 10).unwrap();
    let ds = Dataset::new(
        stream.id_table(),
        150,
        16,
        TokenLimitPolicy::First,
        0,
        None,
        None,
    )
    .unwrap();
    assert_eq!(stream.chunks_read(), 0, "opening reads no chunk");
    assert_eq!((stream.chunk_of(9), stream.chunk_of(10)), (0, 1));
    stream.batch(&ds, &[0, 9], None, 0, None).unwrap();
    assert_eq!(stream.chunks_read(), 1);
    stream.batch(&ds, &[10, 3], None, 0, None).unwrap();
    assert_eq!(stream.chunks_read(), 2, "chunk 0 is still cached");
    stream.batch(&ds, &[25, 1], None, 0, None).unwrap();
    assert_eq!(stream.chunks_read(), 3, "chunk 2 read; 1 leaves the cache");
    stream.batch(&ds, &[11], None, 0, None).unwrap();
    assert_eq!(stream.chunks_read(), 4, "chunk 1 read again");
    // A batch over three chunks, back to its first: chunks 0 and 1 cached, 2 read, and
    // chunk 0 held for the batch though 2 pushed it out of the cache (fetched per
    // sample, it would be read again for sample 2; data workers interleave that way).
    stream.batch(&ds, &[0, 12, 21, 2], None, 0, None).unwrap();
    assert_eq!(stream.chunks_read(), 5, "only chunk 2 read");
}

#[test]
fn a_dataset_not_built_on_the_stream_and_an_unknown_sample_are_refused() {
    let path = shared("moving-pictures", "table.biom");
    let (table, _) = aam_data::load_table(&path).unwrap();
    let whole = Dataset::new(
        table.select_samples(&[0, 1, 2]),
        150,
        16,
        TokenLimitPolicy::First,
        0,
        None,
        None,
    )
    .unwrap();
    let stream = SampleStream::open(&path, 10).unwrap();
    let err = stream.batch(&whole, &[0, 1], None, 0, None).unwrap_err();
    assert!(err.to_string().contains("id_table"), "{err}");
    let err = SampleStream::open(&path, 10)
        .unwrap()
        .select(&["no-such-sample".to_string()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-such-sample") && err.contains("table.biom"),
        "{err}"
    );
}
