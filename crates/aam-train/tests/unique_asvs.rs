//! The ASV encoder encodes each distinct ASV row of a batch once and gathers it to its
//! slots (`AsvEncoder::forward`); the loss and every gradient must equal those of
//! encoding every slot (`AsvEncoder::forward_every_slot`), within 1e-5: a classifier with
//! the nucleotide head, on a batch where ASVs repeat across samples, with the trainer's
//! masking, the class, count, nucleotide and UniFrac losses, one SGD step of lr 1 (so the
//! step is minus the gradient), compared weight by weight.

mod common;

use aam_model::sample_encoder::asv_mask;
use aam_model::{AamModel, CpuAutodiff, CpuFlexAutodiff, ModelConfig, SequencePredictor, WeightSink};
use aam_train::{losses, masking};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use ndarray::Array3;

const MAX_BP: usize = 40;

fn config() -> ModelConfig {
    ModelConfig {
        embedding_dim: 32,
        max_bp: MAX_BP,
        token_limit: 6,
        dropout: 0.0,
        out_dim: 3,
        is_classifier: true,
        predict_nucleotides: true,
        // One layer of two heads per stack.
        ..common::tiny_config()
    }
}

/// 4 samples × 6 slots drawn from 5 distinct ASVs (lengths 25–40), so most ASVs repeat
/// across samples; the last slots of two samples are padding.
fn tokens() -> Array3<i64> {
    let asvs: Vec<Vec<i64>> = (0..5u64)
        .map(|a| {
            let len = 25 + 3 * a as usize;
            std::iter::once(5)
                .chain((0..len).map(|k| ((k as u64 * 7 + a * 13 + (k as u64 * a) % 5) % 4 + 1) as i64))
                .collect()
        })
        .collect();
    let layout: [&[usize]; 4] = [&[0, 1, 2, 3, 4, 1], &[1, 0, 3], &[2, 2, 4, 0, 1, 3], &[4, 3]];
    let mut t = Array3::<i64>::zeros((4, 6, MAX_BP + 1));
    for (i, slots) in layout.iter().enumerate() {
        for (j, &a) in slots.iter().enumerate() {
            for (k, &v) in asvs[a].iter().enumerate() {
                t[[i, j, k]] = v;
            }
        }
    }
    t
}

fn int3<B: Backend>(a: &Array3<i64>, device: &B::Device) -> Tensor<B, 3, Int> {
    let (b, s, l) = a.dim();
    Tensor::from_data(TensorData::new(a.iter().copied().collect::<Vec<_>>(), [b, s, l]), device)
}

/// The loss of one training step and minus the gradient of every weight, by key.
fn step<B: AutodiffBackend>(every_slot: bool) -> (f32, Vec<(String, Vec<f32>)>) {
    let device = Default::default();
    let c = config();
    // The same random weights for both paths.
    <aam_model::CpuBackend as Backend>::seed(&Default::default(), 3);
    let mut sink = WeightSink::default();
    SequencePredictor::<aam_model::CpuBackend>::new(&c, &Default::default()).save(&mut sink);
    let model = SequencePredictor::<B>::load_weights(&sink.into_map(), &c, &device).unwrap();

    let raw = tokens();
    let masked = masking::mask_nucleotides(&raw, 0.15, 9);
    let input = int3::<B>(&masked.tokens, &device);
    let (target, count, logits, embeddings) = if every_slot {
        // SequencePredictor::forward, written out with the every-slot ASV encoder.
        let se = &model.base_model.sample_encoder;
        let mask = asv_mask(input.clone());
        let asv = se.asv_encoder.forward_every_slot(input);
        let s = se.contextualize(asv.embeddings, mask.clone(), None);
        let h = model
            .base_model
            .encoder_transformer
            .forward(s.clone(), mask.clone());
        let embeddings = model.base_model.attention_pooling.forward(h, mask.clone());
        let count = model
            .count_head
            .forward(model.count_encoder.forward(s.clone(), mask.clone()));
        (model.target(s, mask), count, asv.nuc_logits.unwrap(), embeddings)
    } else {
        let o = model.forward_all(input, None);
        (
            o.target_prediction.unwrap(),
            o.count_prediction.unwrap(),
            o.nuc_predictions.unwrap(),
            o.embeddings,
        )
    };
    let (b, s, _) = raw.dim();
    let slots = Tensor::<B, 2>::from_data(
        TensorData::new(
            raw.outer_iter()
                .flat_map(|x| x.outer_iter().map(|r| f32::from(r[0] != 0)).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            [b, s],
        ),
        &device,
    );
    let counts = slots.clone().mul_scalar(5.0) + slots.clone().cumsum(1);
    let classes = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 2, 1, 2], [4]), &device);
    let distances = Tensor::<B, 2>::full([b, b], 0.3, &device)
        * Tensor::<B, 2>::eye(b, &device).neg().add_scalar(1.0);
    let loss = losses::classification_loss(target, classes, None)
        + losses::count_loss(count, counts, slots)
        + losses::nucleotide_loss(
            logits,
            int3::<B>(&masked.targets, &device),
            Tensor::from_data(
                TensorData::new(masked.mask.iter().copied().collect::<Vec<_>>(), [b, s, MAX_BP + 1]),
                &device,
            ),
        )
        + losses::unifrac_loss(embeddings, distances, 10.0);
    let value = loss.clone().into_scalar().elem::<f32>();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let stepped = SgdConfig::new().init().step(1.0, model.clone(), grads);
    let (mut before, mut after) = (WeightSink::default(), WeightSink::default());
    model.save_weights(&mut before);
    stepped.save_weights(&mut after);
    let diffs = before
        .entries
        .into_iter()
        .zip(after.entries)
        .map(|((key, _, w0), (key1, _, w1))| {
            assert_eq!(key, key1);
            (key, w1.iter().zip(&w0).map(|(a, b)| a - b).collect())
        })
        .collect();
    (value, diffs)
}

fn check<B: AutodiffBackend>() {
    let (loss_merged, merged) = step::<B>(false);
    let (loss_every, every) = step::<B>(true);
    assert!(loss_merged.is_finite() && loss_merged > 0.0);
    assert!(
        (loss_merged - loss_every).abs() <= 1e-5,
        "loss: merged {loss_merged}, every slot {loss_every}"
    );
    let mut moved = 0;
    for ((k, a), (_, b)) in merged.iter().zip(&every) {
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{k}: gradients differ by {worst}");
        moved += usize::from(a.iter().any(|&x| x != 0.0));
    }
    // The comparison means something only if the gradients reach the ASV encoder.
    assert!(
        merged
            .iter()
            .any(|(k, g)| k.contains("asv_encoder.transformer") && g.iter().any(|&x| x != 0.0)),
        "no gradient reached the ASV encoder"
    );
    assert!(moved > merged.len() / 2, "{moved} of {} weights moved", merged.len());
}

#[test]
fn repeated_asvs_give_the_gradients_of_encoding_every_slot() {
    check::<CpuAutodiff>();
    check::<CpuFlexAutodiff>();
}
