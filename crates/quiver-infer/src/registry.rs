//! The model registry file: which models exist, where, with which checksum,
//! and what their inputs and outputs mean.
//!
//! ```yaml
//! models:
//!   - name: ml_momentum_mlp
//!     path: ml_momentum_mlp.onnx          # relative to this file
//!     sha256: "52ed601b…"                  # verified before every load
//!     version: "1.0.0"
//!     framework: sklearn                   # sklearn | lightgbm | xgboost | pytorch | onnx
//!     input: {features: 9, dtype: f32}
//!     features: [sma_5, sma_20, …]         # optional names, one per input column
//!     output: {kind: classifier, classes: [-1, 0, 1]}   # or {kind: regressor, threshold: 2.0}
//!     regime: trending                     # optional
//!     active: true                         # default true
//! ```
//!
//! Like the strategies file, the whole file is checked and every problem is
//! reported with its line and path; a file with any problem is refused whole,
//! so a half-understood registry never drives trading.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use saphyr::{AnnotatedMapping, LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::error::{RegistryError, RegistryIssue};

type Node<'y> = MarkedYaml<'y>;
type Mapping<'y> = AnnotatedMapping<'y, MarkedYaml<'y>>;

const TOP_FIELDS: &[&str] = &["models"];
/// A `models:` list inside a strategies file sits next to its `strategies:`.
const EMBEDDED_TOP_FIELDS: &[&str] = &["models", "strategies"];
const MODEL_FIELDS: &[&str] = &[
    "name",
    "path",
    "sha256",
    "version",
    "framework",
    "input",
    "features",
    "output",
    "regime",
    "active",
];
const INPUT_FIELDS: &[&str] = &["features", "dtype"];
const OUTPUT_FIELDS: &[&str] = &["kind", "classes", "threshold", "tensor"];
/// Widest input a registry may declare; guards buffer sizing against typos.
pub const MAX_FEATURES: usize = 4096;
/// Most classes a classifier may declare.
pub const MAX_CLASSES: usize = 256;

/// The framework a model was trained with (informational; every model is ONNX).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framework {
    Sklearn,
    LightGbm,
    XgBoost,
    PyTorch,
    Onnx,
}

impl Framework {
    pub const NAMES: &'static [&'static str] =
        &["sklearn", "lightgbm", "xgboost", "pytorch", "onnx"];

    pub const fn as_str(self) -> &'static str {
        match self {
            Framework::Sklearn => "sklearn",
            Framework::LightGbm => "lightgbm",
            Framework::XgBoost => "xgboost",
            Framework::PyTorch => "pytorch",
            Framework::Onnx => "onnx",
        }
    }

    fn parse(text: &str) -> Option<Framework> {
        Some(match text {
            "sklearn" => Framework::Sklearn,
            "lightgbm" => Framework::LightGbm,
            "xgboost" => Framework::XgBoost,
            "pytorch" => Framework::PyTorch,
            "onnx" => Framework::Onnx,
            _ => return None,
        })
    }
}

/// Element type of the model input. Only `f32` today: features are `f64` in
/// the store and are narrowed once, when a row is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    F32,
}

impl Dtype {
    pub const fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
        }
    }
}

/// What the model's output means.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputSpec {
    /// Probabilities per class, in this class order (e.g. `[-1, 0, 1]` for
    /// SELL/HOLD/BUY). The class is the argmax of the probabilities mapped
    /// through this list, never the model's own label output.
    Classifier {
        classes: Vec<i64>,
        /// Name of the probability tensor; default: the first float output.
        tensor: Option<String>,
    },
    /// One value per row, turned into a side by comparing with `threshold`.
    Regressor {
        threshold: f64,
        tensor: Option<String>,
    },
}

impl OutputSpec {
    /// Values per row the predictor writes.
    pub fn width(&self) -> usize {
        match self {
            OutputSpec::Classifier { classes, .. } => classes.len(),
            OutputSpec::Regressor { .. } => 1,
        }
    }

    pub fn tensor(&self) -> Option<&str> {
        match self {
            OutputSpec::Classifier { tensor, .. } | OutputSpec::Regressor { tensor, .. } => {
                tensor.as_deref()
            }
        }
    }

    pub fn is_classifier(&self) -> bool {
        matches!(self, OutputSpec::Classifier { .. })
    }
}

/// One model of the registry, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    /// The path as written in the registry.
    pub path_text: String,
    /// `path_text` resolved against the registry file's directory.
    pub path: PathBuf,
    /// Lowercase hex.
    pub sha256: String,
    pub version: String,
    pub framework: Framework,
    pub n_features: usize,
    pub dtype: Dtype,
    /// Names of the input columns, when the registry gives them.
    pub feature_names: Option<Vec<String>>,
    pub output: OutputSpec,
    pub regime: Option<String>,
    pub active: bool,
    /// Line of the entry in the registry file.
    pub line: usize,
}

impl ModelSpec {
    /// The class with the highest probability and that probability, from one
    /// row of classifier output. Ties go to the earliest class in the list,
    /// so the result never depends on the backend's own tie-breaking. `None`
    /// for a regressor, a row of the wrong width, or any non-finite value.
    pub fn class_of(&self, probabilities: &[f32]) -> Option<(i64, f32)> {
        let OutputSpec::Classifier { classes, .. } = &self.output else {
            return None;
        };
        argmax_class(classes, probabilities)
    }
}

/// See [`ModelSpec::class_of`].
pub fn argmax_class(classes: &[i64], probabilities: &[f32]) -> Option<(i64, f32)> {
    if probabilities.len() != classes.len() || probabilities.iter().any(|p| !p.is_finite()) {
        return None;
    }
    let mut best = 0;
    for (i, p) in probabilities.iter().enumerate() {
        if *p > probabilities[best] {
            best = i;
        }
    }
    Some((classes[best], probabilities[best]))
}

/// A validated registry file.
#[derive(Clone, Debug, PartialEq)]
pub struct Registry {
    pub path: PathBuf,
    /// In file order; names are unique.
    pub models: Vec<ModelSpec>,
}

impl Registry {
    /// Reads and validates `path`; model paths resolve against its directory.
    pub fn load(path: &Path) -> Result<Registry, RegistryError> {
        Registry::read(path, false)
    }

    /// [`Registry::load`], or with `embedded` the `models:` list of the
    /// strategies file at `path` ([`Registry::parse_embedded`]).
    pub fn read(path: &Path, embedded: bool) -> Result<Registry, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if embedded {
            Registry::parse_embedded(&text, path)
        } else {
            Registry::parse(&text, path)
        }
    }

    /// Validates registry `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Registry, RegistryError> {
        Registry::parse_with(text, path, TOP_FIELDS)
    }

    /// The `models:` list of a strategies file (`path`), which also holds
    /// `strategies:` (checked elsewhere).
    pub fn parse_embedded(text: &str, path: &Path) -> Result<Registry, RegistryError> {
        Registry::parse_with(text, path, EMBEDDED_TOP_FIELDS)
    }

    fn parse_with(
        text: &str,
        path: &Path,
        top_fields: &'static [&'static str],
    ) -> Result<Registry, RegistryError> {
        let docs = MarkedYaml::load_from_str(text).map_err(|e| RegistryError::Syntax {
            path: path.to_owned(),
            line: e.marker().line().max(1),
            col: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        let dir = path.parent().unwrap_or_else(|| Path::new("")).to_owned();
        let mut checker = Checker {
            dir,
            top_fields,
            issues: Vec::new(),
        };
        let models = match docs.as_slice() {
            [] => {
                checker.issue(1, "(root)", "empty file: expected a `models:` list".into());
                Vec::new()
            }
            [doc] => checker.root(doc),
            [_, second, ..] => {
                checker.issue(line(second), "(root)", "expected one YAML document".into());
                Vec::new()
            }
        };
        if checker.issues.is_empty() {
            Ok(Registry {
                path: path.to_owned(),
                models,
            })
        } else {
            checker.issues.sort_by_key(|i| i.line);
            Err(RegistryError::Invalid {
                path: path.to_owned(),
                issues: checker.issues,
            })
        }
    }

    pub fn get(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }
}

fn line(node: &Node<'_>) -> usize {
    node.span.start.line().max(1)
}

fn describe(node: &Node<'_>) -> String {
    match &node.data {
        YamlData::Value(Scalar::Integer(v)) => v.to_string(),
        YamlData::Value(Scalar::FloatingPoint(v)) => format!("{:?}", v.0),
        YamlData::Value(Scalar::Boolean(v)) => v.to_string(),
        YamlData::Value(Scalar::String(v)) => {
            let short: String = v.chars().take(60).collect();
            if short.len() < v.len() {
                format!("{short:?}…")
            } else {
                format!("{short:?}")
            }
        }
        YamlData::Value(Scalar::Null) => "null".into(),
        YamlData::Sequence(_) => "a list".into(),
        YamlData::Mapping(_) => "a mapping".into(),
        _ => "an unsupported value".into(),
    }
}

fn as_str<'n>(node: &'n Node<'_>) -> Option<&'n str> {
    match &node.data {
        YamlData::Value(Scalar::String(v)) => Some(v),
        _ => None,
    }
}

fn as_map<'n, 'y>(node: &'n Node<'y>) -> Option<&'n Mapping<'y>> {
    match &node.data {
        YamlData::Mapping(map) => Some(map),
        _ => None,
    }
}

struct Checker {
    dir: PathBuf,
    top_fields: &'static [&'static str],
    issues: Vec<RegistryIssue>,
}

/// The known keys of a mapping with their value nodes, unknown keys reported.
struct Fields<'n, 'y> {
    entries: Vec<(&'n str, &'n Node<'y>)>,
}

impl<'n, 'y> Fields<'n, 'y> {
    fn get(&self, name: &str) -> Option<&'n Node<'y>> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, node)| *node)
    }
}

impl Checker {
    fn issue(&mut self, line: usize, path: &str, message: String) {
        self.issues.push(RegistryIssue {
            line,
            path: path.to_owned(),
            message,
        });
    }

    fn fields<'n, 'y>(
        &mut self,
        map: &'n Mapping<'y>,
        path: &str,
        known: &[&str],
    ) -> Fields<'n, 'y> {
        let mut entries = Vec::new();
        for (key, value) in map.iter() {
            match as_str(key) {
                Some(name) if known.contains(&name) => entries.push((name, value)),
                _ => self.issue(
                    line(key),
                    path,
                    format!(
                        "unknown field {} (expected {})",
                        describe(key),
                        known.join(", ")
                    ),
                ),
            }
        }
        Fields { entries }
    }

    fn required<'n, 'y>(
        &mut self,
        fields: &Fields<'n, 'y>,
        name: &str,
        at: usize,
        path: &str,
    ) -> Option<&'n Node<'y>> {
        let node = fields.get(name);
        if node.is_none() {
            self.issue(at, path, format!("missing field `{name}`"));
        }
        node
    }

    fn string(&mut self, node: &Node<'_>, path: &str) -> Option<String> {
        match as_str(node) {
            Some(text) if !text.trim().is_empty() => Some(text.to_owned()),
            Some(_) => {
                self.issue(line(node), path, "must not be empty".into());
                None
            }
            None => {
                self.issue(
                    line(node),
                    path,
                    format!("expected a string, got {}", describe(node)),
                );
                None
            }
        }
    }

    fn root(&mut self, doc: &Node<'_>) -> Vec<ModelSpec> {
        let Some(map) = as_map(doc) else {
            self.issue(
                line(doc),
                "(root)",
                format!("expected a mapping with `models:`, got {}", describe(doc)),
            );
            return Vec::new();
        };
        let fields = self.fields(map, "(root)", self.top_fields);
        let Some(models) = self.required(&fields, "models", line(doc), "(root)") else {
            return Vec::new();
        };
        // `models:` with nothing under it: a registry with no models.
        if matches!(models.data, YamlData::Value(Scalar::Null)) {
            return Vec::new();
        }
        let YamlData::Sequence(items) = &models.data else {
            self.issue(
                line(models),
                "models",
                format!("expected a list of models, got {}", describe(models)),
            );
            return Vec::new();
        };
        let mut names = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let name = as_map(item).and_then(|map| {
                map.iter()
                    .find(|(k, _)| as_str(k) == Some("name"))
                    .and_then(|(_, v)| as_str(v).map(|n| (n, line(v))))
            });
            if let Some((name, at)) = name {
                if !names.insert(name) {
                    self.issue(
                        at,
                        &format!("models[{i}] (name {name:?}).name"),
                        format!("duplicate model name {name:?}"),
                    );
                }
            }
        }
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.model(item, i))
            .collect()
    }

    /// Checks one entry; `None` when anything in it is wrong (issues recorded).
    fn model(&mut self, node: &Node<'_>, i: usize) -> Option<ModelSpec> {
        let before = self.issues.len();
        let at = line(node);
        let Some(map) = as_map(node) else {
            self.issue(
                at,
                &format!("models[{i}]"),
                format!("expected a mapping, got {}", describe(node)),
            );
            return None;
        };
        let named = map
            .iter()
            .find(|(k, _)| as_str(k) == Some("name"))
            .and_then(|(_, v)| as_str(v))
            .map(|n| format!("models[{i}] (name {n:?})"))
            .unwrap_or_else(|| format!("models[{i}]"));
        let path = named.as_str();
        let f = self.fields(map, path, MODEL_FIELDS);
        let at_field = |name: &str| format!("{path}.{name}");

        let name = self
            .required(&f, "name", at, path)
            .and_then(|n| self.string(n, &at_field("name")));
        let file = self
            .required(&f, "path", at, path)
            .and_then(|n| self.string(n, &at_field("path")));
        let sha256 = self
            .required(&f, "sha256", at, path)
            .and_then(|n| match as_str(n) {
                Some(text) if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Some(text.to_ascii_lowercase())
                }
                Some(text) => {
                    let shown: String = text.chars().take(70).collect();
                    self.issue(
                        line(n),
                        &at_field("sha256"),
                        format!("must be 64 hex digits, got {shown:?}"),
                    );
                    None
                }
                None => {
                    self.issue(
                        line(n),
                        &at_field("sha256"),
                        format!(
                            "expected a quoted string of 64 hex digits, got {}",
                            describe(n)
                        ),
                    );
                    None
                }
            });
        let version = self
            .required(&f, "version", at, path)
            .and_then(|n| match &n.data {
                YamlData::Value(Scalar::Integer(v)) => Some(v.to_string()),
                YamlData::Value(Scalar::FloatingPoint(v)) => Some(v.0.to_string()),
                _ => self.string(n, &at_field("version")),
            });
        let framework = self.required(&f, "framework", at, path).and_then(|n| {
            match as_str(n).and_then(Framework::parse) {
                Some(fw) => Some(fw),
                None => {
                    self.issue(
                        line(n),
                        &at_field("framework"),
                        format!(
                            "unknown framework {} (expected {})",
                            describe(n),
                            Framework::NAMES.join(", ")
                        ),
                    );
                    None
                }
            }
        });
        let input = self
            .required(&f, "input", at, path)
            .and_then(|n| self.input(n, &at_field("input")));
        let feature_names = f
            .get("features")
            .and_then(|n| self.feature_names(n, &at_field("features")));
        if let (Some((n_features, _)), Some((names, names_line))) = (&input, &feature_names) {
            if names.len() != *n_features {
                self.issue(
                    *names_line,
                    &at_field("features"),
                    format!(
                        "lists {} names but input.features is {n_features}",
                        names.len()
                    ),
                );
            }
        }
        let output = self
            .required(&f, "output", at, path)
            .and_then(|n| self.output(n, &at_field("output")));
        let regime = f
            .get("regime")
            .and_then(|n| self.string(n, &at_field("regime")));
        let active = match f.get("active") {
            None => Some(true),
            Some(n) => match &n.data {
                YamlData::Value(Scalar::Boolean(v)) => Some(*v),
                _ => {
                    self.issue(
                        line(n),
                        &at_field("active"),
                        format!("expected true or false, got {}", describe(n)),
                    );
                    None
                }
            },
        };
        if self.issues.len() != before {
            return None;
        }
        let (name, file, sha256, version, framework, (n_features, dtype), output, active) = (
            name?, file?, sha256?, version?, framework?, input?, output?, active?,
        );
        Some(ModelSpec {
            path: self.dir.join(&file),
            path_text: file,
            name,
            sha256,
            version,
            framework,
            n_features,
            dtype,
            feature_names: feature_names.map(|(names, _)| names),
            output,
            regime,
            active,
            line: at,
        })
    }

    fn input(&mut self, node: &Node<'_>, path: &str) -> Option<(usize, Dtype)> {
        let Some(map) = as_map(node) else {
            self.issue(
                line(node),
                path,
                format!(
                    "expected {{features: N, dtype: f32}}, got {}",
                    describe(node)
                ),
            );
            return None;
        };
        let f = self.fields(map, path, INPUT_FIELDS);
        let features = self
            .required(&f, "features", line(node), path)
            .and_then(|n| match &n.data {
                YamlData::Value(Scalar::Integer(v)) if (1..=MAX_FEATURES as i64).contains(v) => {
                    Some(*v as usize)
                }
                _ => {
                    self.issue(
                        line(n),
                        &format!("{path}.features"),
                        format!(
                            "must be an integer between 1 and {MAX_FEATURES}, got {}",
                            describe(n)
                        ),
                    );
                    None
                }
            });
        let dtype = match f.get("dtype") {
            None => Some(Dtype::F32),
            Some(n) => match as_str(n) {
                Some("f32" | "float32" | "float") => Some(Dtype::F32),
                _ => {
                    self.issue(
                        line(n),
                        &format!("{path}.dtype"),
                        format!("unsupported dtype {} (expected f32)", describe(n)),
                    );
                    None
                }
            },
        };
        Some((features?, dtype?))
    }

    fn feature_names(&mut self, node: &Node<'_>, path: &str) -> Option<(Vec<String>, usize)> {
        let YamlData::Sequence(items) = &node.data else {
            self.issue(
                line(node),
                path,
                format!("expected a list of names, got {}", describe(node)),
            );
            return None;
        };
        let mut names = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            names.push(self.string(item, &format!("{path}[{i}]"))?);
        }
        Some((names, line(node)))
    }

    fn output(&mut self, node: &Node<'_>, path: &str) -> Option<OutputSpec> {
        let Some(map) = as_map(node) else {
            self.issue(
                line(node),
                path,
                format!(
                    "expected {{kind: classifier, classes: [...]}} or {{kind: regressor, threshold: x}}, got {}",
                    describe(node)
                ),
            );
            return None;
        };
        let f = self.fields(map, path, OUTPUT_FIELDS);
        let tensor = f
            .get("tensor")
            .and_then(|n| self.string(n, &format!("{path}.tensor")));
        let kind_node = self.required(&f, "kind", line(node), path)?;
        match as_str(kind_node) {
            Some("classifier") => {
                if let Some(n) = f.get("threshold") {
                    self.issue(
                        line(n),
                        &format!("{path}.threshold"),
                        "only a regressor has a threshold".into(),
                    );
                }
                let classes_node = self.required(&f, "classes", line(node), path)?;
                let classes = self.classes(classes_node, &format!("{path}.classes"))?;
                Some(OutputSpec::Classifier { classes, tensor })
            }
            Some("regressor") => {
                if let Some(n) = f.get("classes") {
                    self.issue(
                        line(n),
                        &format!("{path}.classes"),
                        "only a classifier has classes".into(),
                    );
                }
                let t = self.required(&f, "threshold", line(node), path)?;
                let threshold = match &t.data {
                    YamlData::Value(Scalar::Integer(v)) => *v as f64,
                    YamlData::Value(Scalar::FloatingPoint(v)) => v.0,
                    _ => f64::NAN,
                };
                if !threshold.is_finite() {
                    self.issue(
                        line(t),
                        &format!("{path}.threshold"),
                        format!("expected a finite number, got {}", describe(t)),
                    );
                    return None;
                }
                Some(OutputSpec::Regressor { threshold, tensor })
            }
            _ => {
                self.issue(
                    line(kind_node),
                    &format!("{path}.kind"),
                    format!(
                        "unknown output kind {} (expected classifier, regressor)",
                        describe(kind_node)
                    ),
                );
                None
            }
        }
    }

    fn classes(&mut self, node: &Node<'_>, path: &str) -> Option<Vec<i64>> {
        let YamlData::Sequence(items) = &node.data else {
            self.issue(
                line(node),
                path,
                format!("expected a list of integer classes, got {}", describe(node)),
            );
            return None;
        };
        let mut classes = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match &item.data {
                YamlData::Value(Scalar::Integer(v)) if !classes.contains(v) => classes.push(*v),
                YamlData::Value(Scalar::Integer(v)) => {
                    self.issue(
                        line(item),
                        &format!("{path}[{i}]"),
                        format!("repeats class {v}"),
                    );
                    return None;
                }
                _ => {
                    self.issue(
                        line(item),
                        &format!("{path}[{i}]"),
                        format!("expected an integer class, got {}", describe(item)),
                    );
                    return None;
                }
            }
        }
        if !(2..=MAX_CLASSES).contains(&classes.len()) {
            self.issue(
                line(node),
                path,
                format!(
                    "a classifier needs between 2 and {MAX_CLASSES} classes, got {}",
                    classes.len()
                ),
            );
            return None;
        }
        Some(classes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
models:
  - name: mlp
    path: sub/mlp.onnx
    sha256: "52ED601BF70F76B230626EC73D944FDA873BAFA5096E130FC0F7BF41111E636E"
    version: "1.0.0"
    framework: sklearn
    input: {features: 3, dtype: f32}
    features: [a, b, c]
    output: {kind: classifier, classes: [-1, 0, 1]}
    regime: trending
  - name: ridge
    path: ridge.onnx
    sha256: "a1005038b3c428eb00000000000000000000000000000000000000000000beef"
    version: 2
    framework: onnx
    input: {features: 3}
    output: {kind: regressor, threshold: 2}
    active: false
"#;

    fn parse(text: &str) -> Result<Registry, RegistryError> {
        Registry::parse(text, Path::new("/reg/models.yaml"))
    }

    fn issues(text: &str) -> Vec<String> {
        match parse(text) {
            Err(RegistryError::Invalid { issues, .. }) => {
                issues.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_valid_registry() {
        let reg = parse(GOOD).unwrap();
        assert_eq!(reg.models.len(), 2);
        let mlp = reg.get("mlp").unwrap();
        assert_eq!(mlp.path, PathBuf::from("/reg/sub/mlp.onnx"));
        assert_eq!(&mlp.sha256[..8], "52ed601b", "lowercased");
        assert_eq!(mlp.n_features, 3);
        assert_eq!(mlp.output.width(), 3);
        assert_eq!(mlp.regime.as_deref(), Some("trending"));
        assert!(mlp.active);
        assert_eq!(mlp.line, 3);
        let ridge = reg.get("ridge").unwrap();
        assert_eq!(ridge.version, "2");
        assert!(!ridge.active);
        assert_eq!(
            ridge.output,
            OutputSpec::Regressor {
                threshold: 2.0,
                tensor: None
            }
        );
    }

    #[test]
    fn reports_every_problem_with_line_and_path() {
        let text = r#"models:
  - name: a
    path: a.onnx
    sha256: abc
    version: "1"
    framework: keras
    input: {features: 0}
    output: {kind: classifier, classes: [1, 1]}
    colour: red
  - name: a
    path: a2.onnx
    sha256: "0000000000000000000000000000000000000000000000000000000000000000"
    version: "1"
    framework: onnx
    input: {features: 2, dtype: f64}
    features: [x]
    output: {kind: regressor}
"#;
        assert_eq!(
            issues(text),
            vec![
                "4: models[0] (name \"a\").sha256: must be 64 hex digits, got \"abc\"",
                "6: models[0] (name \"a\").framework: unknown framework \"keras\" (expected sklearn, lightgbm, xgboost, pytorch, onnx)",
                "7: models[0] (name \"a\").input.features: must be an integer between 1 and 4096, got 0",
                "8: models[0] (name \"a\").output.classes[1]: repeats class 1",
                "9: models[0] (name \"a\"): unknown field \"colour\" (expected name, path, sha256, version, framework, input, features, output, regime, active)",
                "10: models[1] (name \"a\").name: duplicate model name \"a\"",
                "15: models[1] (name \"a\").input.dtype: unsupported dtype \"f64\" (expected f32)",
                "17: models[1] (name \"a\").output: missing field `threshold`",
            ]
        );
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with("/reg/models.yaml:4: models[0] (name \"a\").sha256"),
            "{err}"
        );
    }

    #[test]
    fn refuses_duplicates_and_mismatched_feature_names() {
        let text = GOOD
            .replace("name: ridge", "name: mlp")
            .replace("[a, b, c]", "[a, b]");
        assert_eq!(
            issues(&text),
            vec![
                "9: models[0] (name \"mlp\").features: lists 2 names but input.features is 3",
                "12: models[1] (name \"mlp\").name: duplicate model name \"mlp\"",
            ]
        );
    }

    #[test]
    fn syntax_errors_carry_file_line_and_column() {
        let err = parse("models: [\n  - a: 1\n").unwrap_err();
        assert!(
            matches!(err, RegistryError::Syntax { line: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("/reg/models.yaml:2:"), "{err}");
        assert_eq!(
            issues(""),
            vec!["1: (root): empty file: expected a `models:` list"]
        );
        assert_eq!(
            issues("models: 3\n"),
            vec!["1: models: expected a list of models, got 3"]
        );
    }

    #[test]
    fn unquoted_numeric_sha_is_refused_with_a_hint() {
        let text = GOOD.replace(
            "\"a1005038b3c428eb00000000000000000000000000000000000000000000beef\"",
            "12",
        );
        assert_eq!(
            issues(&text),
            vec!["14: models[1] (name \"ridge\").sha256: expected a quoted string of 64 hex digits, got 12"]
        );
    }

    #[test]
    fn argmax_takes_the_first_of_equal_maxima_and_refuses_nan() {
        let classes = [-1, 0, 1];
        assert_eq!(argmax_class(&classes, &[0.2, 0.5, 0.3]), Some((0, 0.5)));
        assert_eq!(argmax_class(&classes, &[0.4, 0.2, 0.4]), Some((-1, 0.4)));
        assert_eq!(argmax_class(&classes, &[0.4, f32::NAN, 0.4]), None);
        assert_eq!(argmax_class(&classes, &[0.5, 0.5]), None);
    }
}
