//! Multi-head attention for tract in one op: per sample and head, `softmax(Q·Kᵀ)·V` with
//! the scores in an aligned scratch block, read and written in the head-split layout, so
//! no transpose, packed copy or `[batch, heads, t, t]` score tensor is materialized.
//!
//! Why: the exported graphs spell attention as ONNX's Transpose → MatMul → Softmax →
//! MatMul → Transpose (the form every runtime and `burn-import` read). tract runs the two
//! MatMuls as general einsums: Q·Kᵀ has k = dh + 1 = 33, and A·V first moves V's key axis
//! last and packs it with a strided gather; per-node profiles of the sample graph
//! (one sample of 173 slots) put attention at about half of tract's time. Here both
//! products go through `matrixmultiply` on strided views of the head-split tensors and
//! the softmax runs in place on padded rows (tract-linalg's kernels, as in
//! [`super::tract_softmax`]). `aam bench` at n_asv 1024 × batch 8, 2 threads: tract
//! 11.6 → 13.2 samples/s without the ASV cache and 106 → 120 with it.
//!
//! [`fuse_head_attention`] finds the pattern in the ONNX graph before tract parses it,
//! in the form of current exports and in that of older ones (scores divided by a
//! constant and a key bias added before the softmax), and replaces it by one
//! `AamHeadAttention` node, which [`onnx_with_head_attention`] teaches tract to parse.
//! ONNX Runtime and the exported files are untouched.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::{GraphProto, NodeProto};
use tract_onnx::tract_hir::internal::*;

use super::tract_softmax::{padded_len, AlignedRows, RowSoftmax};

/// ONNX op type of a fused node (only between [`fuse_head_attention`] and tract).
pub(crate) const OP_TYPE: &str = "AamHeadAttention";

/// Attention over head-split tensors: inputs `q` f32 `[batch, tq, heads, e]`, `k` f32
/// `[batch, tk, heads, e]`, `v` f32 `[batch, tk, heads, dv]` and optionally `bias` f32
/// broadcastable to `[batch, heads, tq, tk]`; output f32 `[batch, tq, heads, dv]` with
/// `out[b, :, h, :] = softmax(score_scale · q[b, :, h, :] · k[b, :, h, :]ᵀ + bias[b, h])
/// · v[b, :, h, :]`, the softmax over keys. Current exports fold 1/√dh and the key mask
/// into q and k (one extra component per head: `score_scale` 1, no bias); exports before
/// that divide the scores by √dh and add a `[batch, 1, 1, tk]` key bias.
#[derive(Debug, Clone)]
pub(crate) struct HeadAttention {
    /// Factor on Q·Kᵀ (1/√dh for a graph that divides the scores by √dh).
    pub(crate) score_scale: f32,
}

// Compared and hashed by the bits of the scale, so the op is `Eq` as tract requires.
impl PartialEq for HeadAttention {
    fn eq(&self, other: &Self) -> bool {
        self.score_scale.to_bits() == other.score_scale.to_bits()
    }
}

impl Eq for HeadAttention {}

impl std::hash::Hash for HeadAttention {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.score_scale.to_bits().hash(state);
    }
}

impl Op for HeadAttention {
    fn name(&self) -> StaticName {
        "HeadAttention".into()
    }
    op_as_typed_op!();
}

impl EvalOp for HeadAttention {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(
            inputs.len() == 3 || inputs.len() == 4,
            "HeadAttention takes q, k, v and a bias"
        );
        let bias = inputs.get(3).map(|b| &**b);
        let out = attend(&inputs[0], &inputs[1], &inputs[2], bias, self.score_scale)?;
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for HeadAttention {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 3 || inputs.len() == 4,
            "HeadAttention takes q, k, v and a bias"
        );
        for fact in inputs {
            ensure!(fact.datum_type == f32::datum_type());
        }
        for fact in &inputs[..3] {
            ensure!(fact.rank() == 4);
        }
        let (q, v) = (&inputs[0].shape, &inputs[2].shape);
        Ok(tvec!(f32::fact([
            q[0].clone(),
            q[1].clone(),
            q[2].clone(),
            v[3].clone()
        ])))
    }
    as_op!();
}

/// Element strides of `bias` over `[batch, heads, tq, tk]` (0 along a broadcast axis),
/// with numpy broadcasting.
fn bias_strides(bias: &Tensor, full: [usize; 4]) -> TractResult<[usize; 4]> {
    let shape = bias.shape();
    ensure!(
        shape.len() <= 4,
        "HeadAttention: bias of rank {}",
        shape.len()
    );
    let mut dims = [1usize; 4];
    dims[4 - shape.len()..].copy_from_slice(shape);
    let mut strides = [0usize; 4];
    let mut step = 1;
    for axis in (0..4).rev() {
        ensure!(
            dims[axis] == 1 || dims[axis] == full[axis],
            "HeadAttention: bias {shape:?} does not broadcast to {full:?}"
        );
        strides[axis] = if dims[axis] == 1 { 0 } else { step };
        step *= dims[axis];
    }
    Ok(strides)
}

/// The computation of [`HeadAttention`] on plain tensors.
fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    score_scale: f32,
) -> TractResult<Tensor> {
    let (&[b, tq, h, e], &[kb, tk, kh, ke], &[vb, vt, vh, dv]) = (q.shape(), k.shape(), v.shape())
    else {
        bail!("HeadAttention needs rank-4 q, k and v");
    };
    ensure!(
        (kb, kh, ke) == (b, h, e) && (vb, vt, vh) == (b, tk, h),
        "HeadAttention: q {:?}, k {:?} and v {:?} do not fit",
        q.shape(),
        k.shape(),
        v.shape()
    );
    let bias = match bias {
        Some(t) => {
            let strides = bias_strides(t, [b, h, tq, tk])?;
            Some((t.try_as_plain_ram()?, strides))
        }
        None => None,
    };
    let bias = match &bias {
        Some((ram, strides)) => Some((ram.as_slice::<f32>()?, *strides)),
        None => None,
    };
    let mut out = Tensor::zero::<f32>(&[b, tq, h, dv])?;
    if out.len() == 0 || tk == 0 {
        return Ok(out);
    }
    let (q, k, v) = (
        q.try_as_plain_ram()?,
        k.try_as_plain_ram()?,
        v.try_as_plain_ram()?,
    );
    let (q, k, v) = (
        q.as_slice::<f32>()?,
        k.as_slice::<f32>()?,
        v.as_slice::<f32>()?,
    );
    let mut out_ram = out.try_as_plain_ram_mut()?;
    let o = out_ram.as_slice_mut::<f32>()?;
    let softmax = RowSoftmax::new()?;
    let row = padded_len(tk);
    let mut scores = AlignedRows::new(tq, row);
    let scores = scores.as_mut_slice();
    for bi in 0..b {
        for hi in 0..h {
            // Head hi of sample bi: rows `heads · width` apart, starting at column hi · width.
            let q_h =
                ArrayView2::from_shape((tq, e).strides((h * e, 1)), &q[(bi * tq * h + hi) * e..])?;
            let k_t =
                ArrayView2::from_shape((e, tk).strides((1, h * e)), &k[(bi * tk * h + hi) * e..])?;
            let v_h = ArrayView2::from_shape(
                (tk, dv).strides((h * dv, 1)),
                &v[(bi * tk * h + hi) * dv..],
            )?;
            let mut s = ArrayViewMut2::from_shape((tq, tk).strides((row, 1)), &mut scores[..])?;
            general_mat_mul(score_scale, &q_h, &k_t, 0.0, &mut s);
            for (i, r) in scores.chunks_exact_mut(row).enumerate() {
                if let Some((bias, st)) = bias {
                    let start = bi * st[0] + hi * st[1] + i * st[2];
                    for (j, x) in r[..tk].iter_mut().enumerate() {
                        *x += bias[start + j * st[3]];
                    }
                }
                softmax.padded_row(r, tk)?;
            }
            let s = ArrayView2::from_shape((tq, tk).strides((row, 1)), &scores[..])?;
            let mut o_h = ArrayViewMut2::from_shape(
                (tq, dv).strides((h * dv, 1)),
                &mut o[(bi * tq * h + hi) * dv..],
            )?;
            general_mat_mul(1.0, &s, &v_h, 0.0, &mut o_h);
        }
    }
    drop(out_ram);
    Ok(out)
}

/// The inference-time face of [`HeadAttention`], for tract's ONNX parser.
#[derive(Debug, Clone, Hash)]
struct HeadAttentionNode(HeadAttention);

impl Expansion for HeadAttentionNode {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.0.clone(), inputs)
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        if inputs.len() != 4 {
            check_input_arity(inputs, 3)?;
        }
        check_output_arity(outputs, 1)?;
        for proxy in inputs.iter().chain(outputs) {
            s.equals(&proxy.datum_type, f32::datum_type())?;
        }
        for proxy in inputs[..3].iter().chain(outputs) {
            s.equals(&proxy.rank, 4)?;
        }
        for axis in 0..3 {
            s.equals(&outputs[0].shape[axis], &inputs[0].shape[axis])?;
        }
        s.equals(&outputs[0].shape[3], &inputs[2].shape[3])?;
        Ok(())
    }
}

fn parse_node(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let score_scale = node.get_attr_opt::<f32>(SCORE_SCALE)?.unwrap_or(1.0);
    Ok((
        expand(HeadAttentionNode(HeadAttention { score_scale })),
        vec![],
    ))
}

/// Attribute of a fused node: the factor on Q·Kᵀ.
const SCORE_SCALE: &str = "score_scale";

/// tract's ONNX parser, also reading the `AamHeadAttention` nodes of
/// [`fuse_head_attention`].
pub(crate) fn onnx_with_head_attention() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    onnx.op_register.insert(OP_TYPE, parse_node);
    onnx
}

/// Replaces each attention of `graph` spelled
/// `Transpose(Q, [0,2,1,3]) · Transpose(K, [0,2,3,1]) [÷ scalar] [+ bias] →
/// Softmax(axis −1) · Transpose(V, [0,2,1,3]) → Transpose([0,2,1,3])` by one
/// `AamHeadAttention(Q, K, V[, bias])` node, where every value in between has no other
/// reader (and is no graph output) and the divisor is a constant. Returns how many were
/// fused; a graph of another shape is left as it is.
pub(crate) fn fuse_head_attention(graph: &mut GraphProto) -> usize {
    let mut fused = 0;
    while let Some((remove, node)) = find_attention(graph) {
        let at = *remove.iter().max().expect("nodes of the pattern");
        graph.node[at] = node;
        let mut i = 0;
        graph.node.retain(|_| {
            i += 1;
            i - 1 == at || !remove.contains(&(i - 1))
        });
        fused += 1;
    }
    fused
}

/// The value of `name` when it is a constant f32 scalar: an initializer, or the output of
/// a `Constant` node.
fn constant_scalar(graph: &GraphProto, name: &str) -> Option<f32> {
    let tensor = graph
        .initializer
        .iter()
        .find(|t| t.name == name)
        .or_else(|| {
            let node = graph.node.iter().find(|n| {
                n.op_type == "Constant" && n.output.first().map(String::as_str) == Some(name)
            })?;
            node.attribute
                .iter()
                .find(|a| a.name == "value")?
                .t
                .as_ref()
        })?;
    let float = tract_onnx::pb::tensor_proto::DataType::Float as i32;
    if tensor.data_type != float || tensor.dims.iter().product::<i64>() != 1 {
        return None;
    }
    match (tensor.float_data.as_slice(), tensor.raw_data.as_slice()) {
        ([x], _) => Some(*x),
        ([], raw) if raw.len() == 4 => Some(f32::from_le_bytes(raw.try_into().ok()?)),
        _ => None,
    }
}

/// Whether `node` is a plain ONNX `Transpose` of one value by `perm`.
fn is_transpose(node: &NodeProto, perm: &[i64]) -> bool {
    node.op_type == "Transpose"
        && node.domain.is_empty()
        && node.input.len() == 1
        && node.output.len() == 1
        && node.attribute.len() == 1
        && node.attribute[0].name == "perm"
        && node.attribute[0].ints == perm
}

/// Query, value and output head split / merge: `[n, t, H, d]` ↔ `[n, H, t, d]`.
const HEADS: [i64; 4] = [0, 2, 1, 3];
/// Key head split, transposed for Q·Kᵀ: `[n, t, H, d]` → `[n, H, d, t]`.
const KEY_HEADS: [i64; 4] = [0, 2, 3, 1];

/// The first attention pattern of `graph`: the indices of its seven nodes, and the node
/// that replaces them.
fn find_attention(graph: &GraphProto) -> Option<(Vec<usize>, NodeProto)> {
    let readers = |value: &str| {
        let nodes = graph
            .node
            .iter()
            .flat_map(|n| &n.input)
            .filter(|i| *i == value)
            .count();
        nodes + graph.output.iter().filter(|o| o.name == value).count()
    };
    // The node producing `value`, which nothing else reads.
    let sole_producer = |value: &str| {
        let i = graph
            .node
            .iter()
            .position(|n| n.output.iter().any(|o| o == value))?;
        (readers(value) == 1).then_some(i)
    };
    // The node reading `value`, which nothing else reads.
    let sole_reader = |value: &str| {
        let i = graph
            .node
            .iter()
            .position(|n| n.input.iter().any(|o| o == value))?;
        (readers(value) == 1).then_some(i)
    };
    // The Transpose by `perm` producing `value` (read only there), and its input.
    let transposed = |value: &str, perm: &[i64]| {
        let i = sole_producer(value)?;
        is_transpose(&graph.node[i], perm).then(|| (i, graph.node[i].input[0].clone()))
    };
    let matmul = |i: usize| {
        let n: &NodeProto = &graph.node[i];
        n.op_type == "MatMul" && n.domain.is_empty() && n.input.len() == 2 && n.output.len() == 1
    };
    graph.node.iter().enumerate().find_map(|(softmax, node)| {
        let last_axis = node.attribute.len() == 1
            && node.attribute[0].name == "axis"
            && (node.attribute[0].i == -1 || node.attribute[0].i == 3);
        if node.op_type != "Softmax" || !node.domain.is_empty() || !last_axis {
            return None;
        }
        // Back from the softmax: an optional bias Add, an optional Div by a constant, the
        // Q·Kᵀ MatMul.
        let mut removed = vec![softmax];
        let mut scores = node.input.first()?.clone();
        let mut bias = None;
        let mut score_scale = 1.0f32;
        let plain = |i: usize, op: &str| {
            let n: &NodeProto = &graph.node[i];
            n.op_type == op && n.domain.is_empty() && n.input.len() == 2 && n.output.len() == 1
        };
        let producer = sole_producer(&scores)?;
        if plain(producer, "Add") {
            let add = &graph.node[producer];
            // The scores side is the one coming from the Div or the MatMul.
            let from_scores =
                |value: &str| sole_producer(value).is_some_and(|i| plain(i, "Div") || matmul(i));
            let (chain, other) = if from_scores(&add.input[0]) {
                (0, 1)
            } else {
                (1, 0)
            };
            if !from_scores(&add.input[chain]) {
                return None;
            }
            bias = Some(add.input[other].clone());
            scores = add.input[chain].clone();
            removed.push(producer);
        }
        let producer = sole_producer(&scores)?;
        if plain(producer, "Div") {
            let div = &graph.node[producer];
            let divisor = constant_scalar(graph, &div.input[1])?;
            score_scale = 1.0 / divisor;
            scores = div.input[0].clone();
            removed.push(producer);
        }
        let qk = sole_producer(&scores).filter(|&i| matmul(i))?;
        let (tq, q) = transposed(&graph.node[qk].input[0], &HEADS)?;
        let (tk, k) = transposed(&graph.node[qk].input[1], &KEY_HEADS)?;
        let av = sole_reader(node.output.first()?).filter(|&i| matmul(i))?;
        if graph.node[av].input[0] != node.output[0] {
            return None;
        }
        let (tv, v) = transposed(&graph.node[av].input[1], &HEADS)?;
        let merge = sole_reader(&graph.node[av].output[0])?;
        if !is_transpose(&graph.node[merge], &HEADS) {
            return None;
        }
        let mut input = vec![q, k, v];
        input.extend(bias);
        let attribute = (score_scale != 1.0)
            .then(|| tract_onnx::pb::AttributeProto {
                name: SCORE_SCALE.into(),
                f: score_scale,
                r#type: tract_onnx::pb::attribute_proto::AttributeType::Float as i32,
                ..Default::default()
            })
            .into_iter()
            .collect();
        let fused = NodeProto {
            name: format!("{}/fused", node.name),
            op_type: OP_TYPE.into(),
            input,
            output: graph.node[merge].output.clone(),
            attribute,
            ..Default::default()
        };
        removed.extend([tq, tk, qk, tv, av, merge]);
        Some((removed, fused))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// `softmax(scale · q_h · k_hᵀ + key_bias) · v_h` per sample and head, in f64 with
    /// plain loops: the independent reference. `key_bias` is `[batch · tk]`.
    fn reference(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        key_bias: Option<&[f32]>,
        scale: f64,
    ) -> Vec<f64> {
        let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
        let (b, tq, h, e, tk, dv) = (qs[0], qs[1], qs[2], qs[3], ks[1], vs[3]);
        fn view(t: &Tensor) -> tract_ndarray::ArrayView4<'_, f32> {
            let v = t.to_plain_array_view::<f32>().unwrap();
            v.into_dimensionality().unwrap()
        }
        let (q, k, v) = (view(q), view(k), view(v));
        let mut out = vec![0f64; b * tq * h * dv];
        for bi in 0..b {
            for hi in 0..h {
                for i in 0..tq {
                    let scores: Vec<f64> = (0..tk)
                        .map(|j| {
                            let dot: f64 = (0..e)
                                .map(|c| q[[bi, i, hi, c]] as f64 * k[[bi, j, hi, c]] as f64)
                                .sum();
                            scale * dot + key_bias.map_or(0.0, |kb| kb[bi * tk + j] as f64)
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let sum: f64 = w.iter().sum();
                    for c in 0..dv {
                        let o = (0..tk).map(|j| w[j] / sum * v[[bi, j, hi, c]] as f64).sum();
                        out[((bi * tq + i) * h + hi) * dv + c] = o;
                    }
                }
            }
        }
        out
    }

    /// Deterministic values in [-1, 1), with the last component of every k row a key
    /// bias: 0, or -1e9 (a masked key) for every third key of sample 1; q's last
    /// component is 1, as in the exported graphs.
    fn tensor(shape: [usize; 4], seed: usize, role: char) -> Tensor {
        let data: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|i| {
                let (row, c) = (i / shape[3], i % shape[3]);
                let (bi, t) = (row / (shape[1] * shape[2]), row / shape[2] % shape[1]);
                match role {
                    'k' if c == shape[3] - 1 => {
                        if bi == 1 && t % 3 == 0 {
                            -1.0e9
                        } else {
                            0.0
                        }
                    }
                    'q' if c == shape[3] - 1 => 1.0,
                    _ => ((i * 7919 + seed * 104_729) % 2000) as f32 / 1000.0 - 1.0,
                }
            })
            .collect();
        Tensor::from_shape(&shape, &data).unwrap()
    }

    #[test]
    fn matches_an_f64_reference_for_any_key_count() {
        // Key counts below, at and above a multiple of 64; tq ≠ tk too. Each also with a
        // score scale and a `[batch, 1, 1, tk]` key bias (the form of older exports).
        for (tq, tk) in [(5, 5), (64, 64), (91, 91), (7, 151), (130, 130)] {
            let (b, h, e, dv) = (2, 3, 5, 4);
            let q = tensor([b, tq, h, e], 1, 'q');
            let k = tensor([b, tk, h, e], 2, 'k');
            let v = tensor([b, tk, h, dv], 3, 'v');
            let key_bias: Vec<f32> = (0..b * tk)
                .map(|i| {
                    if i % 4 == 1 {
                        -1.0e9
                    } else {
                        (i % 5) as f32 * 0.1
                    }
                })
                .collect();
            let bias = Tensor::from_shape(&[b, 1, 1, tk], &key_bias).unwrap();
            for (with_bias, scale) in [(false, 1.0f32), (true, 0.25)] {
                let got = attend(&q, &k, &v, with_bias.then_some(&bias), scale).unwrap();
                assert_eq!(got.shape(), [b, tq, h, dv]);
                let want = reference(&q, &k, &v, with_bias.then_some(&key_bias[..]), scale as f64);
                let got = got.to_plain_array_view::<f32>().unwrap();
                for (i, (&g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g as f64 - w).abs() < 1e-5,
                        "tq {tq}, tk {tk}, bias {with_bias}, entry {i}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_bias_that_does_not_broadcast_is_an_error() {
        let q = tensor([1, 4, 2, 3], 1, 'q');
        let k = tensor([1, 6, 2, 3], 2, 'k');
        let v = tensor([1, 6, 2, 3], 3, 'v');
        let bias = Tensor::zero::<f32>(&[1, 1, 1, 5]).unwrap();
        let err = attend(&q, &k, &v, Some(&bias), 1.0).unwrap_err();
        assert!(format!("{err}").contains("does not broadcast"), "{err}");
    }

    fn shipped(file: &str) -> tract_onnx::pb::ModelProto {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/circadian-exposure")
            .join(file);
        crate::onnx_file::parse_onnx(&std::fs::read(&path).unwrap(), Path::new(&path)).unwrap()
    }

    /// `proto` in the form of current exports: the softmax reads Q·Kᵀ directly (the
    /// shipped model's older export divides by √dh and adds the key bias in between).
    fn current_form(mut proto: tract_onnx::pb::ModelProto) -> tract_onnx::pb::ModelProto {
        let graph = proto.graph.as_mut().unwrap();
        let producer =
            |g: &GraphProto, value: &str| g.node.iter().position(|n| n.output[0] == value).unwrap();
        let softmaxes: Vec<usize> = (0..graph.node.len())
            .filter(|&i| {
                graph.node[i].op_type == "Softmax" && graph.node[i].name.contains("self_attn")
            })
            .collect();
        let mut drop = vec![];
        for i in softmaxes {
            let add = producer(graph, &graph.node[i].input[0]);
            let div = producer(graph, &graph.node[add].input[0]);
            assert_eq!(
                (
                    graph.node[add].op_type.as_str(),
                    graph.node[div].op_type.as_str()
                ),
                ("Add", "Div")
            );
            graph.node[i].input[0] = graph.node[div].input[0].clone();
            drop.extend([add, div]);
        }
        let mut i = 0;
        graph.node.retain(|_| {
            i += 1;
            !drop.contains(&(i - 1))
        });
        proto
    }

    /// The shipped model (one layer in each of its five stacks), in its own form and in
    /// the current export's: every attention of each graph is fused, and nothing else
    /// (the attention pooling's softmaxes stay).
    #[test]
    fn every_attention_of_the_shipped_graphs_is_fused() {
        for (file, attentions) in [
            ("model.onnx", 5),
            ("asv_encoder.onnx", 1),
            ("sample_model.onnx", 4),
        ] {
            for (form, mut proto, per_attention) in [
                ("own", shipped(file), 9),
                ("current", current_form(shipped(file)), 7),
            ] {
                let graph = proto.graph.as_mut().unwrap();
                let nodes = graph.node.len();
                let softmaxes =
                    |g: &GraphProto| g.node.iter().filter(|n| n.op_type == "Softmax").count();
                let pooling_and_heads = softmaxes(graph) - attentions;
                assert_eq!(fuse_head_attention(graph), attentions, "{file}, {form}");
                assert_eq!(
                    graph.node.len(),
                    nodes - (per_attention - 1) * attentions,
                    "{file}, {form}"
                );
                let fused = graph.node.iter().filter(|n| n.op_type == OP_TYPE).count();
                assert_eq!(fused, attentions, "{file}, {form}");
                assert_eq!(
                    softmaxes(graph),
                    pooling_and_heads,
                    "{file}, {form}: the pooling softmaxes stay"
                );
            }
        }
    }

    /// Runs `proto` (the ASV encoder, input `[4, 91]` tokens) through tract.
    fn run_asv_encoder(proto: &tract_onnx::pb::ModelProto, tokens: &Tensor) -> Tensor {
        let plan = onnx_with_head_attention()
            .model_for_proto_model(proto)
            .unwrap()
            .with_input_fact(0, i64::fact(tokens.shape()).into())
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let out = plan.run(tvec!(tokens.clone().into_tvalue())).unwrap();
        out[0].clone().into_tensor()
    }

    /// The fused ASV encoder equals tract's own unfused graph within 1e-5 on ASVs of
    /// several lengths (masked keys after each ASV's end) and an empty row, in the shipped
    /// model's form (scale and key bias as separate nodes) and in the current one.
    #[test]
    fn the_fused_asv_encoder_equals_tracts_own_graph() {
        let mut tokens = vec![0i64; 4 * 91];
        for (row, len) in [(0, 90), (1, 40), (2, 7)] {
            tokens[row * 91] = 5;
            for c in 1..=len {
                tokens[row * 91 + c] = 1 + ((c * 3 + row) % 4) as i64;
            }
        }
        let tokens = Tensor::from_shape(&[4, 91], &tokens).unwrap();
        for plain in [
            shipped("asv_encoder.onnx"),
            current_form(shipped("asv_encoder.onnx")),
        ] {
            let mut fused = plain.clone();
            assert_eq!(fuse_head_attention(fused.graph.as_mut().unwrap()), 1);
            let (a, b) = (
                run_asv_encoder(&plain, &tokens),
                run_asv_encoder(&fused, &tokens),
            );
            assert_eq!(a.shape(), [4, 32]);
            let (a, b) = (
                a.to_plain_array_view::<f32>().unwrap(),
                b.to_plain_array_view::<f32>().unwrap(),
            );
            let worst = a
                .iter()
                .zip(b.iter())
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(worst <= 1e-5, "max |fused - tract| = {worst}");
            assert!(
                a.iter().any(|&x| x != 0.0),
                "the embeddings are not all zero"
            );
        }
    }

    /// A pattern whose intermediate value is read elsewhere (here: the attention weights
    /// are also a graph output), or whose transposes differ, is left as it is.
    #[test]
    fn attention_whose_parts_are_read_elsewhere_is_left_alone() {
        let mut proto = shipped("asv_encoder.onnx");
        let graph = proto.graph.as_mut().unwrap();
        let softmax = graph
            .node
            .iter()
            .find(|n| n.op_type == "Softmax" && n.name.contains("self_attn"))
            .unwrap();
        let weights = tract_onnx::pb::ValueInfoProto {
            name: softmax.output[0].clone(),
            ..Default::default()
        };
        graph.output.push(weights);
        assert_eq!(fuse_head_attention(graph), 0);

        let mut proto = shipped("asv_encoder.onnx");
        let graph = proto.graph.as_mut().unwrap();
        let k_heads = graph
            .node
            .iter_mut()
            .find(|n| n.op_type == "Transpose" && n.attribute[0].ints == KEY_HEADS)
            .unwrap();
        k_heads.attribute[0].ints = vec![0, 2, 1, 3];
        assert_eq!(fuse_head_attention(graph), 0);
    }
}
