//! Which samples go into which batch, in which order: the shuffled batches of each
//! epoch (chunk by chunk when streaming) and the read order of validation.

use std::collections::BTreeMap;

use aam_data::SampleStream;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Batches of `samples` (in the given order) of at most `batch_size`, merging a
/// trailing batch of one into the previous one (pairwise losses need two samples).
pub fn batches(samples: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = samples
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    if out.len() > 1 && out.last().is_some_and(|b| b.len() == 1) {
        let last = out.pop().expect("non-empty");
        out.last_mut().expect("non-empty").extend(last);
    }
    out
}

/// `train` shuffled for `epoch`, reproducibly from `seed`.
fn epoch_order(train: &[usize], seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = train.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_0000_0000);
    rng.set_stream(epoch as u64);
    order.shuffle(&mut rng);
    order
}

/// The batches of an epoch over `train`: [`batches`] of the shuffled samples in memory;
/// with a stream, the chunks in a shuffled order, each chunk's samples shuffled and cut
/// into its own batches, so that a batch reads one chunk. Chunks holding a single
/// training sample (a pairwise loss needs two) pool those samples into batches of their
/// own at the end; a pool of one sample joins the smallest batch. Every batch holds at
/// most `batch_size + 1` samples ([`batches`] merges a trailing sample), `batch_size + 2`
/// when a lone pooled sample has to join such a batch.
pub fn epoch_batches(
    train: &[usize],
    stream: Option<&SampleStream>,
    batch_size: usize,
    seed: u64,
    epoch: usize,
) -> Vec<Vec<usize>> {
    let order = epoch_order(train, seed, epoch);
    let Some(stream) = stream else {
        return batches(&order, batch_size);
    };
    let mut by_chunk: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for s in order {
        by_chunk.entry(stream.chunk_of(s)).or_default().push(s);
    }
    let mut groups: Vec<Vec<usize>> = by_chunk.into_values().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC4_0000_0000);
    rng.set_stream(epoch as u64);
    groups.shuffle(&mut rng);
    let (singles, groups): (Vec<Vec<usize>>, Vec<Vec<usize>>) =
        groups.into_iter().partition(|g| g.len() == 1);
    let mut out: Vec<Vec<usize>> = groups.iter().flat_map(|g| batches(g, batch_size)).collect();
    let pool: Vec<usize> = singles.into_iter().flatten().collect();
    match pool.as_slice() {
        [] => {}
        [lone] => match out.iter_mut().min_by_key(|b| b.len()) {
            Some(smallest) => smallest.push(*lone),
            None => out.push(vec![*lone]),
        },
        _ => out.extend(batches(&pool, batch_size)),
    }
    out
}

/// Samples in the order their batches are read: chunk by chunk with a stream (stable
/// within a chunk), as given otherwise.
pub(crate) fn read_order(samples: &[usize], stream: Option<&SampleStream>) -> Vec<usize> {
    let mut order = samples.to_vec();
    if let Some(stream) = stream {
        order.sort_by_key(|&s| stream.chunk_of(s));
    }
    order
}
