//! What an ONNX file declares: inputs, outputs, operators and opsets.
//!
//! Read before a backend sees the model, so that a model a backend cannot run
//! is refused at load with the operator named, and so that `quiver models
//! info` can print the signature without loading anything.

use std::collections::{BTreeSet, HashMap};

use tract_onnx::pb;
use tract_onnx::prelude::Framework as _;

/// Tree-ensemble operators: slow and partly wrong on tract (see [`TRACT_REFUSED`]).
pub const TREE_OPERATORS: &[&str] = &[
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "TreeEnsemble",
];

/// Operators tract is not trusted with: `TreeEnsembleRegressor`, `TreeEnsemble`
/// and `ZipMap` are unimplemented there, and its `TreeEnsembleClassifier` runs
/// about 100× slower than ONNX Runtime's and mislabels binary models.
pub const TRACT_REFUSED: &[&str] = &[
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "TreeEnsemble",
    "ZipMap",
];

/// Element type of a tensor, as ONNX numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    F32,
    F64,
    I64,
    I32,
    Str,
    Other(i32),
}

impl ElemType {
    fn from_onnx(code: i32) -> ElemType {
        match code {
            1 => ElemType::F32,
            11 => ElemType::F64,
            7 => ElemType::I64,
            6 => ElemType::I32,
            8 => ElemType::Str,
            other => ElemType::Other(other),
        }
    }

    pub fn as_str(self) -> String {
        match self {
            ElemType::F32 => "f32".into(),
            ElemType::F64 => "f64".into(),
            ElemType::I64 => "i64".into(),
            ElemType::I32 => "i32".into(),
            ElemType::Str => "string".into(),
            ElemType::Other(code) => format!("onnx-type-{code}"),
        }
    }
}

/// One graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// `None` for a non-tensor value (a map or sequence, e.g. ZipMap's output).
    pub elem: Option<ElemType>,
    /// Per dimension: a fixed size, or `None` for a symbolic one (the batch).
    pub shape: Option<Vec<Option<i64>>>,
}

impl TensorInfo {
    /// `f32[N,9]`-style rendering for people.
    pub fn render(&self) -> String {
        let elem = self
            .elem
            .map_or_else(|| "non-tensor".into(), ElemType::as_str);
        match &self.shape {
            None => elem,
            Some(dims) => {
                let dims: Vec<String> = dims
                    .iter()
                    .map(|d| d.map_or_else(|| "N".into(), |d| d.to_string()))
                    .collect();
                format!("{elem}[{}]", dims.join(","))
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    op: String,
    domain: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

/// The parts of an ONNX model quiver checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelGraph {
    /// Graph inputs that are not initializers (weights).
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    /// `(domain, version)`, as imported.
    pub opsets: Vec<(String, i64)>,
    nodes: Vec<Node>,
}

impl ModelGraph {
    /// Parses the protobuf; an error means the bytes are not an ONNX model.
    pub fn parse(bytes: &[u8]) -> Result<ModelGraph, String> {
        let proto: pb::ModelProto = tract_onnx::onnx()
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| format!("{e:#}"))?;
        let graph = proto
            .graph
            .ok_or_else(|| "the model has no graph".to_owned())?;
        let weights: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|v| !weights.contains(v.name.as_str()))
            .map(tensor_info)
            .collect();
        let outputs = graph.output.iter().map(tensor_info).collect();
        let nodes = graph
            .node
            .iter()
            .map(|n| Node {
                op: n.op_type.clone(),
                domain: n.domain.clone(),
                inputs: n.input.clone(),
                outputs: n.output.clone(),
            })
            .collect();
        let opsets = proto
            .opset_import
            .iter()
            .map(|o| (o.domain.clone(), o.version))
            .collect();
        Ok(ModelGraph {
            inputs,
            outputs,
            opsets,
            nodes,
        })
    }

    /// Every operator type in the graph, sorted, as `domain:Op` for
    /// non-default domains (e.g. `ai.onnx.ml:TreeEnsembleClassifier`).
    pub fn operators(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.nodes.iter().map(qualified).collect();
        set.into_iter().collect()
    }

    /// Operator types needed to compute `output` (nodes feeding other outputs
    /// only, such as a label branch, are left out), sorted.
    pub fn operators_for(&self, output: &str) -> Vec<String> {
        let producer: HashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.outputs.iter().map(move |o| (o.as_str(), i)))
            .collect();
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<&str> = vec![output];
        let mut ops = BTreeSet::new();
        while let Some(value) = stack.pop() {
            if let Some(&i) = producer.get(value) {
                if !seen[i] {
                    seen[i] = true;
                    ops.insert(qualified(&self.nodes[i]));
                    stack.extend(self.nodes[i].inputs.iter().map(String::as_str));
                }
            }
        }
        ops.into_iter().collect()
    }

    /// The output holding what the registry promises: `wanted` when named,
    /// otherwise the first f32 tensor output (the probabilities of a
    /// classifier exported with `zipmap=False`, the value of a regressor).
    pub fn select_output(&self, wanted: Option<&str>) -> Result<(usize, &TensorInfo), String> {
        if let Some(name) = wanted {
            return self
                .outputs
                .iter()
                .enumerate()
                .find(|(_, o)| o.name == name)
                .ok_or_else(|| {
                    format!(
                        "the model has no output {name:?} (outputs: {})",
                        self.render_outputs()
                    )
                });
        }
        self.outputs
            .iter()
            .enumerate()
            .find(|(_, o)| o.elem == Some(ElemType::F32))
            .ok_or_else(|| {
                let zipmap = self.nodes.iter().any(|n| n.op == "ZipMap");
                format!(
                    "the model has no f32 tensor output (outputs: {}){}",
                    self.render_outputs(),
                    if zipmap {
                        "; operator ZipMap turns probabilities into maps: export the classifier with zipmap=False"
                    } else {
                        ""
                    }
                )
            })
    }

    pub fn render_outputs(&self) -> String {
        let parts: Vec<String> = self
            .outputs
            .iter()
            .map(|o| format!("{} {}", o.name, o.render()))
            .collect();
        parts.join(", ")
    }
}

fn qualified(node: &Node) -> String {
    if node.domain.is_empty() || node.domain == "ai.onnx" {
        node.op.clone()
    } else {
        format!("{}:{}", node.domain, node.op)
    }
}

/// The bare operator name of a `domain:Op` string.
pub fn bare_operator(qualified: &str) -> &str {
    qualified.rsplit(':').next().unwrap_or(qualified)
}

fn tensor_info(value: &pb::ValueInfoProto) -> TensorInfo {
    let tensor = value.r#type.as_ref().and_then(|t| match &t.value {
        Some(pb::type_proto::Value::TensorType(tensor)) => Some(tensor),
        _ => None,
    });
    TensorInfo {
        name: value.name.clone(),
        elem: tensor.map(|t| ElemType::from_onnx(t.elem_type)),
        shape: tensor.and_then(|t| t.shape.as_ref()).map(|shape| {
            shape
                .dim
                .iter()
                .map(|d| match d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => Some(v),
                    _ => None,
                })
                .collect()
        }),
    }
}
