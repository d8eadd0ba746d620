//! The shipped model's ONNX graph, turned into Burn code by burn-import (build.rs) and run
//! on Burn's ndarray backend, gives the outputs aam's tract runtime gives (fixtures
//! written and checked by `crates/aam-cli/tests/shipped_model.rs`), within 1e-4, with an
//! all-padding sample and all-padding ASV rows in the batch.

use aam_burn_import_roundtrip::model::Model;
use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::{Array2, Array3, ArrayD};

type B = NdArray<f32>;

fn fixture<T: ndarray_npy::ReadableElement, D: ndarray::Dimension>(
    name: &str,
) -> ndarray::Array<T, D> {
    ndarray_npy::read_npy(format!(
        "{}/fixtures/{name}.npy",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixtures/{name}.npy: {e}"))
}

fn check<const N: usize>(name: &str, got: Tensor<B, N>, want: ArrayD<f32>) {
    assert_eq!(got.dims().to_vec(), want.shape().to_vec(), "{name}: shape");
    let got = got.into_data().to_vec::<f32>().unwrap();
    assert!(
        got.iter().all(|v| v.is_finite()),
        "{name}: non-finite output"
    );
    let diff = got
        .iter()
        .zip(want.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("{name}: burn-import vs aam max |diff| = {diff:e}");
    assert!(diff <= 1e-4, "{name}: max |diff| {diff}");
}

#[test]
fn burn_import_code_reproduces_aam_outputs() {
    let tokens: Array3<i64> = fixture("tokens");
    let (b, s, l) = tokens.dim();
    assert!(
        tokens
            .slice(ndarray::s![b - 1, .., ..])
            .iter()
            .all(|&t| t == 0),
        "last sample is all padding"
    );
    let device = Default::default();
    let model: Model<B> = Model::default();
    let input = Tensor::<B, 3, Int>::from_data(
        TensorData::new(tokens.iter().copied().collect::<Vec<_>>(), [b, s, l]),
        &device,
    );
    let (embeddings, target_prediction, class_probabilities, count_prediction) =
        model.forward(input);
    check(
        "embeddings",
        embeddings,
        fixture::<f32, ndarray::Ix2>("embeddings").into_dyn(),
    );
    let target: Array2<f32> = fixture("target_prediction");
    check("target_prediction", target_prediction, target.into_dyn());
    check(
        "class_probabilities",
        class_probabilities,
        fixture::<f32, ndarray::Ix2>("class_probabilities").into_dyn(),
    );
    check(
        "count_prediction",
        count_prediction,
        fixture::<f32, ndarray::Ix3>("count_prediction").into_dyn(),
    );
}
