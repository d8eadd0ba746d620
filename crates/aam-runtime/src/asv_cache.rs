//! Caching ASV embeddings. An ASV's embedding depends only on its sequence (the ASV
//! encoder sees one ASV at a time), never on the sample it is in, so each unique
//! sequence is encoded once per call, and optionally kept across calls in an LRU cache.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use ndarray::ArrayView1;

/// One ASV's token row without its trailing padding (tokens are < 256).
pub(crate) type AsvKey = Box<[u8]>;

/// One ASV's embedding `[D]`.
pub(crate) type AsvEmbedding = Arc<[f32]>;

/// The key of a token row (`None` for an all-padding slot, which holds no ASV).
pub(crate) fn asv_key(row: ArrayView1<'_, i64>) -> Option<AsvKey> {
    let end = row.iter().rposition(|&t| t != 0)? + 1;
    Some(row.iter().take(end).map(|&t| t as u8).collect())
}

/// Settings of the ASV-embedding path (split graphs `asv_encoder.onnx` +
/// `sample_model.onnx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsvCacheOptions {
    /// ASV embeddings kept across calls (least recently used evicted first); 0 keeps
    /// them only for the duration of one call. Each entry takes `4 · D` bytes plus the
    /// sequence.
    pub capacity: usize,
    /// Most ASVs encoded in one run of the ASV encoder, which bounds the memory of the
    /// nucleotide attention scores to `chunk_rows · heads · (max_bp + 1)² · 4` bytes.
    /// 0: [`AUTO_CHUNK_ROWS_TRACT`] on tract, [`AUTO_CHUNK_ROWS_ORT`] on ONNX Runtime.
    pub chunk_rows: usize,
}

/// ASVs per ASV-encoder run on tract when `chunk_rows` is 0: small chunks keep the
/// activations in cache; the fastest of 1–256 measured with `aam bench` (default
/// architecture, `ibd-2538`, 2 threads: 3.7–3.9 samples/s at 4 vs 2.6 at 256).
pub const AUTO_CHUNK_ROWS_TRACT: usize = 4;
/// ASVs per ASV-encoder run on ONNX Runtime when `chunk_rows` is 0 (measured as above:
/// 8.3–8.8 samples/s at 16 vs 6.9 at 256).
pub const AUTO_CHUNK_ROWS_ORT: usize = 16;

impl AsvCacheOptions {
    /// Embeddings kept within a call only (capacity 0), default chunk size: what a model
    /// loaded without explicit cache settings uses.
    pub fn per_call() -> Self {
        AsvCacheOptions {
            capacity: 0,
            ..AsvCacheOptions::default()
        }
    }
}

impl Default for AsvCacheOptions {
    fn default() -> Self {
        AsvCacheOptions {
            capacity: 100_000,
            chunk_rows: 0,
        }
    }
}

/// Counts of the ASV-embedding path since the model was loaded. Within one call each
/// unique ASV is looked up once: `asv_slots − hits − misses` slots were repeats inside a
/// call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AsvCacheStats {
    /// ASV slots (non-empty) given to the sample model.
    pub asv_slots: u64,
    /// Unique ASVs of a call found in the LRU cache (not encoded).
    pub hits: u64,
    /// Unique ASVs of a call encoded by the ASV encoder.
    pub misses: u64,
    /// Entries in the LRU cache now.
    pub entries: usize,
    /// Capacity of the LRU cache (0: per call only).
    pub capacity: usize,
}

/// The cross-call LRU cache and the counters.
pub(crate) struct AsvCache {
    lru: Option<Mutex<LruCache<AsvKey, AsvEmbedding>>>,
    capacity: usize,
    slots: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl AsvCache {
    pub(crate) fn new(capacity: usize) -> Self {
        AsvCache {
            lru: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
            capacity,
            slots: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(
        m: &Mutex<LruCache<AsvKey, AsvEmbedding>>,
    ) -> MutexGuard<'_, LruCache<AsvKey, AsvEmbedding>> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` ASV slots given to the sample model.
    pub(crate) fn count_slots(&self, n: usize) {
        self.slots.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Looks the keys not yet in `call` up in the LRU cache (copying hits into `call`);
    /// returns the keys that must be encoded, each once.
    pub(crate) fn missing<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k AsvKey>,
        call: &mut HashMap<AsvKey, AsvEmbedding>,
    ) -> Vec<AsvKey> {
        let mut missing = Vec::new();
        let mut pending = std::collections::HashSet::new();
        let mut lru = self.lru.as_ref().map(Self::lock);
        let (mut hits, mut misses) = (0, 0);
        for key in keys {
            if call.contains_key(key) || pending.contains(key) {
                continue;
            }
            if let Some(e) = lru.as_mut().and_then(|l| l.get(key)) {
                call.insert(key.clone(), e.clone());
                hits += 1;
                continue;
            }
            misses += 1;
            pending.insert(key.clone());
            missing.push(key.clone());
        }
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(misses, Ordering::Relaxed);
        missing
    }

    /// Stores freshly encoded embeddings in `call` and the LRU cache.
    pub(crate) fn store(
        &self,
        encoded: Vec<(AsvKey, AsvEmbedding)>,
        call: &mut HashMap<AsvKey, AsvEmbedding>,
    ) {
        let mut lru = self.lru.as_ref().map(Self::lock);
        for (key, emb) in encoded {
            if let Some(l) = lru.as_mut() {
                l.put(key.clone(), emb.clone());
            }
            call.insert(key, emb);
        }
    }

    pub(crate) fn stats(&self) -> AsvCacheStats {
        AsvCacheStats {
            asv_slots: self.slots.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.lru.as_ref().map_or(0, |l| Self::lock(l).len()),
            capacity: self.capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    fn key(v: &[u8]) -> AsvKey {
        v.to_vec().into_boxed_slice()
    }

    #[test]
    fn keys_drop_trailing_padding_and_empty_slots_have_none() {
        assert_eq!(
            asv_key(arr1(&[5, 1, 2, 0, 0]).view()),
            Some(key(&[5, 1, 2]))
        );
        assert_eq!(
            asv_key(arr1(&[5, 1, 0, 3, 0]).view()),
            Some(key(&[5, 1, 0, 3]))
        );
        assert_eq!(asv_key(arr1(&[0, 0, 0]).view()), None);
    }

    #[test]
    fn each_key_is_missing_once_then_hits_within_and_across_calls() {
        let cache = AsvCache::new(2);
        let (a, b, c) = (key(&[5, 1]), key(&[5, 2]), key(&[5, 3]));
        let mut call = HashMap::new();
        let missing = cache.missing([&a, &b, &a, &a], &mut call);
        assert_eq!(missing, vec![a.clone(), b.clone()]);
        let emb = |x: f32| -> AsvEmbedding { Arc::from(vec![x, x]) };
        cache.store(
            vec![(a.clone(), emb(1.0)), (b.clone(), emb(2.0))],
            &mut call,
        );
        assert!(
            cache.missing([&a, &b], &mut call).is_empty(),
            "already in the call"
        );
        cache.count_slots(4);
        assert_eq!(
            cache.stats(),
            AsvCacheStats {
                asv_slots: 4,
                hits: 0,
                misses: 2,
                entries: 2,
                capacity: 2
            }
        );
        // A new call: a and b come from the LRU cache (read in that order, so a is now the
        // least recently used); c is encoded and evicts a.
        let mut call2 = HashMap::new();
        assert!(cache.missing([&a, &b], &mut call2).is_empty());
        assert_eq!(&*call2[&a], &[1.0, 1.0]);
        assert_eq!(cache.missing([&c], &mut call2), vec![c.clone()]);
        cache.store(vec![(c.clone(), emb(3.0))], &mut call2);
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.entries), (2, 3, 2));
        // a was used least recently, so it was evicted.
        assert_eq!(cache.missing([&a], &mut HashMap::new()), vec![a.clone()]);
    }

    #[test]
    fn capacity_zero_keeps_nothing_across_calls() {
        let cache = AsvCache::new(0);
        let a = key(&[5, 1]);
        let mut call = HashMap::new();
        assert_eq!(cache.missing([&a], &mut call).len(), 1);
        cache.store(vec![(a.clone(), Arc::from(vec![0.5]))], &mut call);
        assert!(cache.missing([&a], &mut call).is_empty());
        assert_eq!(cache.missing([&a], &mut HashMap::new()).len(), 1);
        assert_eq!(cache.stats().entries, 0);
    }
}
