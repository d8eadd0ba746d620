//! Half-precision compute inside a transformer layer (`--mixed-precision`), the
//! counterpart of PyTorch `autocast`: the inputs of every matrix product are cast to
//! bf16/fp16 and the result back to f32 where precision matters (residual sums,
//! LayerNorm, softmax). Parameters stay f32 (the master weights); Burn's autodiff casts
//! each gradient back to its parameter's dtype, so the optimizer sees f32 gradients.
//!
//! Casting needs a backend with half-precision tensors: the CubeCL GPU backends and
//! Burn's Flex CPU backend (`CpuFlexAutodiff`); the ndarray backend has only f32/f64.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::module::linear;
use burn::tensor::FloatDType;

use crate::config::MixedPrecision;

/// The half dtype of `p` (`None` for f32 compute).
pub fn half_dtype(p: MixedPrecision) -> Option<FloatDType> {
    match p {
        MixedPrecision::None => None,
        MixedPrecision::Bf16 => Some(FloatDType::BF16),
        MixedPrecision::Fp16 => Some(FloatDType::F16),
    }
}

/// `x` in the compute format of `p` (unchanged for [`MixedPrecision::None`]).
pub fn to_compute<B: Backend, const D: usize>(x: Tensor<B, D>, p: MixedPrecision) -> Tensor<B, D> {
    match half_dtype(p) {
        Some(dt) => x.cast(dt),
        None => x,
    }
}

/// `x` back in f32 after a half-precision block (unchanged for [`MixedPrecision::None`]).
pub fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>, p: MixedPrecision) -> Tensor<B, D> {
    match p {
        MixedPrecision::None => x,
        _ => x.cast(FloatDType::F32),
    }
}

/// `x · W + b` with `x` already in the compute format of `p` and the f32 parameters
/// cast to it: `[.., d_in]` → `[.., d_out]`, in the compute format.
pub fn linear_in<B: Backend, const D: usize>(
    lin: &Linear<B>,
    x: Tensor<B, D>,
    p: MixedPrecision,
) -> Tensor<B, D> {
    if p.is_none() {
        return lin.forward(x);
    }
    linear(
        x,
        to_compute(lin.weight.val(), p),
        lin.bias.as_ref().map(|b| to_compute(b.val(), p)),
    )
}
