//! A model's gradients as one flat float buffer and back: what the processes of a training
//! group all-reduce (sum) once per step (`docs/multi-device.md`, "Several machines").
//!
//! Parameters are laid out in module order (the order [`Module::visit`] walks them), not by
//! parameter ID: IDs are drawn at random in each process, so two processes would list them
//! differently (Burn's own `GradientsParams::all_reduce` sorts by ID).

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;

/// `model`'s gradients in `grads` as one buffer (float32): every float parameter's
/// gradient, flattened row-major, in module order (zeros where a parameter has none), then
/// one presence flag per parameter (1 where it has a gradient, else 0).
///
/// After a sum over the ranks, a parameter whose flag is still 0 had no gradient on any
/// rank, and [`from_buffer`] leaves it without one, as a single process would: the
/// optimizer then skips it rather than stepping on a zero gradient.
pub fn to_buffer<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> Vec<f32> {
    struct Flatten<'a> {
        grads: &'a GradientsParams,
        values: Vec<f32>,
        present: Vec<f32>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            match self.grads.get::<B::InnerBackend, D>(param.id) {
                Some(grad) => {
                    let data = grad.into_data().convert::<f32>();
                    self.values
                        .extend_from_slice(data.as_slice::<f32>().expect("converted to f32"));
                    self.present.push(1.0);
                }
                None => {
                    let n = param.val().shape().num_elements();
                    self.values.extend(std::iter::repeat_n(0.0, n));
                    self.present.push(0.0);
                }
            }
        }
    }
    let mut visitor = Flatten {
        grads,
        values: Vec::new(),
        present: Vec::new(),
    };
    model.visit(&mut visitor);
    visitor.values.extend(visitor.present);
    visitor.values
}

/// The gradients of `model` read back from `buffer` (laid out as [`to_buffer`] writes it,
/// typically summed over the ranks), on each parameter's device and in its dtype; a
/// parameter whose presence flag is 0 gets no gradient.
///
/// Errors: `buffer`'s length is not this model's (the ranks hold different models), naming
/// both lengths.
pub fn from_buffer<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    buffer: &[f32],
) -> Result<GradientsParams, String> {
    struct Count {
        values: usize,
        params: usize,
    }
    impl<B: Backend> ModuleVisitor<B> for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.values += param.val().shape().num_elements();
            self.params += 1;
        }
    }
    let mut count = Count {
        values: 0,
        params: 0,
    };
    model.visit(&mut count);
    let expected = count.values + count.params;
    if buffer.len() != expected {
        return Err(format!(
            "the gradient buffer holds {} values where this model has {expected} ({} gradient values and {} presence flags): every rank must train the same model",
            buffer.len(),
            count.values,
            count.params
        ));
    }
    struct Unflatten<'a> {
        values: &'a [f32],
        present: &'a [f32],
        grads: GradientsParams,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Unflatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            let shape = value.shape();
            let (mine, rest) = self.values.split_at(shape.num_elements());
            self.values = rest;
            let (flag, rest) = self.present.split_first().expect("counted above");
            self.present = rest;
            if *flag > 0.0 {
                // The parameter's dtype: the buffer is f32 whatever the model trains in.
                let grad = Tensor::<B::InnerBackend, D>::from_data(
                    TensorData::new(mine.to_vec(), shape),
                    (&value.device(), value.dtype()),
                );
                self.grads.register(param.id, grad);
            }
        }
    }
    let (values, present) = buffer.split_at(count.values);
    let mut visitor = Unflatten {
        values,
        present,
        grads: GradientsParams::new(),
    };
    model.visit(&mut visitor);
    Ok(visitor.grads)
}

#[cfg(test)]
mod tests {
    use super::{from_buffer, to_buffer};
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::prelude::*;

    type B = burn::backend::Autodiff<burn::backend::NdArray<f32>>;

    #[derive(Module, Debug)]
    struct TwoLayers<B: Backend> {
        first: Linear<B>,
        second: Linear<B>,
    }

    fn model(device: &burn::tensor::Device<B>) -> TwoLayers<B> {
        TwoLayers {
            first: LinearConfig::new(3, 2).init(device),
            second: LinearConfig::new(2, 1).init(device),
        }
    }

    fn grads_of(m: &TwoLayers<B>, input: [f32; 3]) -> GradientsParams {
        let x = Tensor::<B, 2>::from_floats([input], &Default::default());
        let y = m.second.forward(m.first.forward(x)).sum();
        GradientsParams::from_grads(y.backward(), m)
    }

    fn values<const D: usize>(g: &GradientsParams, p: &Param<Tensor<B, D>>) -> Vec<f32> {
        g.get::<burn::backend::NdArray<f32>, D>(p.id)
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap()
    }

    /// The buffer lays out first.weight [3, 2], first.bias [2], second.weight [2, 1],
    /// second.bias [1], then 4 flags; two ranks' buffers summed read back as the sum of
    /// their gradients.
    #[test]
    fn module_order_and_sum_over_ranks() {
        let device = Default::default();
        let m = model(&device);
        let (a, b) = (
            grads_of(&m, [1.0, 2.0, 3.0]),
            grads_of(&m, [-1.0, 0.5, 4.0]),
        );
        let buf_a = to_buffer(&m, &a);
        assert_eq!(buf_a.len(), 6 + 2 + 2 + 1 + 4);
        let expected: Vec<f32> = [
            values(&a, &m.first.weight),
            values(&a, m.first.bias.as_ref().unwrap()),
            values(&a, &m.second.weight),
            values(&a, m.second.bias.as_ref().unwrap()),
            vec![1.0; 4],
        ]
        .concat();
        assert_eq!(buf_a, expected);
        // d(sum)/d(second.bias) = 1 for one sample.
        assert_eq!(buf_a[10], 1.0);

        let buf_b = to_buffer(&m, &b);
        let summed: Vec<f32> = buf_a.iter().zip(&buf_b).map(|(x, y)| x + y).collect();
        let back = from_buffer(&m, &summed).unwrap();
        let w: Vec<f32> = values(&a, &m.first.weight)
            .iter()
            .zip(values(&b, &m.first.weight))
            .map(|(x, y)| x + y)
            .collect();
        assert_eq!(values(&back, &m.first.weight), w);
        assert_eq!(values(&back, m.second.bias.as_ref().unwrap()), vec![2.0]);
    }

    /// A parameter without a gradient on every rank stays without one; a buffer of another
    /// model is refused.
    #[test]
    fn absent_gradients_stay_absent_and_other_models_are_refused() {
        let device = Default::default();
        let m = model(&device);
        let mut g = grads_of(&m, [1.0, 2.0, 3.0]);
        let _ = g.remove::<burn::backend::NdArray<f32>, 2>(m.first.weight.id);
        let buf = to_buffer(&m, &g);
        assert_eq!(&buf[..6], &[0.0; 6]);
        assert_eq!(&buf[11..], &[0.0, 1.0, 1.0, 1.0]);
        let back = from_buffer(&m, &buf).unwrap();
        assert!(back
            .get::<burn::backend::NdArray<f32>, 2>(m.first.weight.id)
            .is_none());
        assert_eq!(back.len(), 3);
        let err = from_buffer(&m, &buf[1..]).unwrap_err();
        assert!(err.contains("14 values where this model has 15"), "{err}");
    }
}
