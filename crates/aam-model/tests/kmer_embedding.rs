//! The k-mer embedding (`ModelConfig::kmer_size`): windows and means computed by hand,
//! and its place in the ASV encoder (added to the pooled embedding, weights saved and
//! loaded under `…asv_encoder.kmer_embedding.weight`).

use aam_model::kmer_embedding::KmerEmbedding;
use aam_model::{AamModel, CpuBackend, ModelConfig, SequenceEncoder, WeightMap, WeightSink};
use burn::prelude::*;
use burn::tensor::TensorData;

type B = CpuBackend;

fn rows(values: Vec<i64>, n: usize) -> Tensor<B, 2, Int> {
    let l = values.len() / n;
    Tensor::from_data(TensorData::new(values, [n, l]), &Default::default())
}

/// D 8, max bp 10, token limit 4, 2 heads everywhere, no dropout, 3-mers.
fn small_config() -> ModelConfig {
    ModelConfig {
        embedding_dim: 8,
        max_bp: 10,
        token_limit: 4,
        asv_num_heads: 2,
        sample_num_heads: 2,
        encoder_num_heads: 2,
        count_num_heads: 2,
        target_num_heads: 2,
        dropout: 0.0,
        kmer_size: 3,
        ..ModelConfig::default()
    }
}

#[test]
fn windows_skip_start_mask_and_padding_and_index_first_base_most_significant() {
    let k = KmerEmbedding::<B>::new(2, 3, &Default::default());
    // START A C G T MASK A C PAD
    let (index, valid) = k.windows(rows(vec![5, 1, 2, 3, 4, 6, 1, 2, 0], 1));
    let valid: Vec<f32> = valid.into_data().to_vec().unwrap();
    assert_eq!(valid, [0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
    let index: Vec<i64> = index.into_data().iter::<i64>().collect();
    // AC = 0·4 + 1, CG = 1·4 + 2, GT = 2·4 + 3.
    assert_eq!([index[1], index[2], index[3], index[6]], [1, 6, 11, 1]);
}

#[test]
fn forward_is_the_sum_over_complete_windows_over_their_root_count_and_zero_without_one() {
    let k = KmerEmbedding::<B>::new(2, 3, &Default::default());
    let table: Vec<f32> = k.embedding.weight.val().into_data().to_vec().unwrap();
    let e = |i: usize| &table[i * 3..i * 3 + 3];
    let got: Vec<f32> = k
        .forward(rows(
            vec![5, 1, 2, 3, 4, 6, 1, 2, 0, 5, 1, 0, 0, 0, 0, 0, 0, 0],
            2,
        ))
        .into_data()
        .to_vec()
        .unwrap();
    for j in 0..3 {
        let want = (2.0 * e(1)[j] + e(6)[j] + e(11)[j]) / 2.0; // √4 windows
        assert!((got[j] - want).abs() < 1e-6, "{got:?}");
        assert_eq!(got[3 + j], 0.0, "a row with one nucleotide has no 2-mer");
    }
}

#[test]
fn the_encoder_adds_the_kmer_mean_and_round_trips_its_weights() {
    let device = Default::default();
    let config = small_config();
    let with = SequenceEncoder::<B>::new(&config, &device);
    let tokens: Vec<i64> = vec![
        5, 1, 2, 3, 4, 1, 2, 3, 0, 0, 0, 5, 4, 4, 3, 0, 0, 0, 0, 0, 0, 0,
    ];
    let t = rows(tokens, 2);
    // Parameters are initialised lazily: the copy is taken after a forward pass so both
    // hold the same weights.
    let a = with.sample_encoder.asv_encoder.embed_rows(t.clone());
    let mut without = with.clone();
    without.sample_encoder.asv_encoder.kmer_embedding = None;
    let b = without.sample_encoder.asv_encoder.embed_rows(t.clone());
    let bag = with
        .sample_encoder
        .asv_encoder
        .kmer_embedding
        .as_ref()
        .unwrap()
        .forward(t.clone());
    let diff: f32 = (a.clone() - b - bag).abs().max().into_scalar();
    assert!(diff < 1e-6, "{diff}");
    let mut sink = WeightSink::default();
    with.save_weights(&mut sink);
    let bytes = sink.to_safetensors(None).unwrap();
    let dir = std::env::temp_dir().join(format!("aam-kmer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let w = WeightMap::load(&path).unwrap();
    assert!(w
        .get("sample_encoder.asv_encoder.kmer_embedding.weight", &[64, 8])
        .is_ok());
    // An edited configuration's k beyond 8 is an error, not a 4^k overflow.
    let err =
        KmerEmbedding::<B>::load(&w, "sample_encoder.asv_encoder", 40, 8, &device).unwrap_err();
    assert!(err.to_string().contains("kmer_size 40"), "{err}");
    let loaded = SequenceEncoder::<B>::load_weights(&w, &config, &device).unwrap();
    let c = loaded.sample_encoder.asv_encoder.embed_rows(t);
    let diff: f32 = (a - c).abs().max().into_scalar();
    assert_eq!(diff, 0.0);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn in_training_with_masked_nucleotides_the_kmer_embedding_reads_the_unmasked_tokens() {
    let device = Default::default();
    let config = small_config();
    let model = SequenceEncoder::<B>::new(&config, &device);
    let encoder = &model.sample_encoder.asv_encoder;
    // One sample of three ASV slots; the first and third hold the same ASV, masked alike
    // (masks are drawn per distinct ASV), so the encoder's merged-row path runs too. The
    // second is another ASV (it differs at positions 3 and 6) whose masked row equals
    // theirs: it must keep its own k-mers.
    let clean: Vec<i64> = vec![
        5, 1, 2, 3, 4, 1, 2, 3, 0, 0, 0, //
        5, 1, 2, 4, 4, 1, 1, 3, 0, 0, 0, //
        5, 1, 2, 3, 4, 1, 2, 3, 0, 0, 0,
    ];
    let mut masked = clean.clone();
    for i in [3, 6, 14, 17, 25, 28] {
        masked[i] = 6;
    }
    let three =
        |v: Vec<i64>| Tensor::<B, 3, Int>::from_data(TensorData::new(v, [1, 3, 11]), &device);
    let plain = encoder.forward(three(masked.clone())).embeddings;
    let training = encoder
        .forward_masked(three(masked.clone()), Some(three(clean.clone())))
        .embeddings;
    let kmers = encoder.kmer_embedding.as_ref().unwrap();
    let bag_clean = kmers.forward(rows(clean, 3)).reshape([1, 3, 8]);
    let bag_masked = kmers.forward(rows(masked.clone(), 3)).reshape([1, 3, 8]);
    // Masking changes the k-mers (so this test can fail) ...
    let moved: f32 = (bag_clean.clone() - bag_masked.clone())
        .abs()
        .max()
        .into_scalar();
    assert!(moved > 1e-3, "{moved}");
    // ... and only the k-mer term differs: the transformer still reads the masked tokens.
    let diff: f32 = (training - (plain.clone() - bag_masked + bag_clean))
        .abs()
        .max()
        .into_scalar();
    assert!(diff < 1e-5, "{diff}");
    let same = encoder
        .forward_masked(three(masked.clone()), None)
        .embeddings;
    let diff: f32 = (same - plain).abs().max().into_scalar();
    assert_eq!(diff, 0.0);
}
