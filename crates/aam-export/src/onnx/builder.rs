//! A small ONNX graph builder over `onnx-protobuf`: nodes with unique names scoped by
//! the state-dict key path, f32 initializers stored as little-endian `raw_data`, and
//! cached int64 / f32 constants.

use std::collections::HashMap;

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::Dimension;
use onnx_protobuf::type_proto;
use onnx_protobuf::{
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// One dimension of a graph input or output: a named dynamic axis or a fixed size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A dynamic axis with this `dim_param` name (`batch`, `n_asv`).
    Named(&'static str),
    /// A fixed size.
    Fixed(usize),
}

/// An attribute of a node.
pub enum Attr {
    /// `INT`.
    Int(&'static str, i64),
    /// `INTS`.
    Ints(&'static str, Vec<i64>),
    /// `FLOAT`.
    Float(&'static str, f32),
}

impl Attr {
    fn into_proto(self) -> AttributeProto {
        let mut a = AttributeProto::new();
        match self {
            Attr::Int(name, v) => {
                a.name = name.into();
                a.type_ = AttributeType::INT.into();
                a.i = v;
            }
            Attr::Ints(name, v) => {
                a.name = name.into();
                a.type_ = AttributeType::INTS.into();
                a.ints = v;
            }
            Attr::Float(name, v) => {
                a.name = name.into();
                a.type_ = AttributeType::FLOAT.into();
                a.f = v;
            }
        }
        a
    }
}

/// Accumulates nodes and initializers of one graph.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    used_names: HashMap<String, usize>,
    i64_consts: HashMap<Vec<i64>, String>,
    f32_consts: HashMap<u32, String>,
}

impl GraphBuilder {
    /// A unique value / node name starting with `hint`.
    fn unique(&mut self, hint: &str) -> String {
        let n = self.used_names.entry(hint.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            hint.to_string()
        } else {
            format!("{hint}_{}", *n - 1)
        }
    }

    /// Adds node `op` with one output named after `name` (made unique) and returns
    /// the output's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<Attr>, name: &str) -> String {
        let out = self.unique(name);
        let mut node = NodeProto::new();
        node.op_type = op.into();
        node.name = out.clone();
        node.input = inputs.iter().map(|s| s.to_string()).collect();
        node.output = vec![out.clone()];
        node.attribute = attrs.into_iter().map(Attr::into_proto).collect();
        self.nodes.push(node);
        out
    }

    /// Adds an f32 initializer `name` of shape `dims` (row-major `data`).
    pub fn weight(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let name = self.unique(name);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.data_type = DataType::FLOAT as i32;
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(t);
        name
    }

    /// A 1-D int64 constant (cached: one initializer per distinct value).
    pub fn const_i64(&mut self, values: &[i64]) -> String {
        if let Some(n) = self.i64_consts.get(values) {
            return n.clone();
        }
        let hint = format!(
            "const_i64_{}",
            values
                .iter()
                .map(|v| v.to_string().replace('-', "m"))
                .collect::<Vec<_>>()
                .join("_")
        );
        let name = self.unique(&hint);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.data_type = DataType::INT64 as i32;
        t.dims = vec![values.len() as i64];
        t.int64_data = values.to_vec();
        self.initializers.push(t);
        self.i64_consts.insert(values.to_vec(), name.clone());
        name
    }

    /// A scalar (rank-0) int64 constant.
    pub fn scalar_i64(&mut self, value: i64) -> String {
        let name = self.unique(&format!(
            "scalar_i64_{}",
            value.to_string().replace('-', "m")
        ));
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.data_type = DataType::INT64 as i32;
        t.int64_data = vec![value];
        self.initializers.push(t);
        name
    }

    /// A scalar (rank-0) f32 constant (cached by bit pattern).
    pub fn scalar_f32(&mut self, value: f32) -> String {
        if let Some(n) = self.f32_consts.get(&value.to_bits()) {
            return n.clone();
        }
        let name = self.unique(&format!("scalar_f32_{}", self.f32_consts.len()));
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.data_type = DataType::FLOAT as i32;
        t.float_data = vec![value];
        self.initializers.push(t);
        self.f32_consts.insert(value.to_bits(), name.clone());
        name
    }

    /// Declares graph input `name`.
    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> String {
        let name = self.unique(name);
        self.inputs.push(value_info(&name, elem, dims));
        name
    }

    /// Declares value `value` as graph output `name` (an Identity node renames it).
    pub fn output(&mut self, value: &str, name: &str, elem: DataType, dims: &[Dim]) {
        let out = self.op("Identity", &[value], vec![], name);
        assert_eq!(out, name, "graph output names are unique");
        self.outputs.push(value_info(name, elem, dims));
    }

    /// The finished graph.
    pub fn finish(self, name: &str) -> GraphProto {
        let mut g = GraphProto::new();
        g.name = name.into();
        g.node = self.nodes;
        g.initializer = self.initializers;
        g.input = self.inputs;
        g.output = self.outputs;
        g
    }
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    shape.dim = dims
        .iter()
        .map(|d| {
            let mut dim = Dimension::new();
            match d {
                Dim::Named(n) => dim.set_dim_param(n.to_string()),
                Dim::Fixed(v) => dim.set_dim_value(*v as i64),
            }
            dim
        })
        .collect();
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = elem as i32;
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.set_tensor_type(tensor);
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}
