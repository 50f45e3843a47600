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
//!     deadline_ms: 250                     # optional: each call's deadline
//!     active: true                         # default true
//! ```
//!
//! Like the strategies file, the whole file is checked and every problem is
//! reported with its line and path; a file with any problem is refused whole,
//! so a half-understood registry never drives trading.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quiver_config::yaml::{self, child, describe, pos, value, Node, Pos, Reader, Value};

use crate::error::RegistryError;

const TOP_FIELDS: &[&str] = &["models"];
/// A `models:` list inside a strategies file sits among the file's other
/// fields.
const EMBEDDED_TOP_FIELDS: &[&str] = &quiver_config::TOP_FIELDS;
const MODEL_FIELDS: [&str; 11] = [
    "name",
    "path",
    "sha256",
    "version",
    "framework",
    "input",
    "features",
    "output",
    "regime",
    "deadline_ms",
    "active",
];
const INPUT_FIELDS: [&str; 2] = ["features", "dtype"];
const OUTPUT_FIELDS: [&str; 4] = ["kind", "classes", "threshold", "tensor"];
const OUTPUT_KINDS: &[&str] = &["classifier", "regressor"];
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
    /// Where `path` is written in the registry file, for messages about the
    /// model file: its line and its path, e.g. `models[1] (name "mlp").path`.
    pub path_line: usize,
    pub path_field: String,
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
    /// Deadline of every inference call (`deadline_ms`); `None`: the
    /// mode's default (see [`crate::deadline`]).
    pub deadline: Option<Duration>,
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
        let limit = quiver_config::files::CONFIG_FILE_LIMIT;
        let text = quiver_config::files::read_regular_text(path, limit).map_err(|e| {
            RegistryError::Io {
                path: path.to_owned(),
                message: e.to_string(),
            }
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
        let source = yaml::Source::new(text, path.display().to_string())?;
        let docs = source.documents()?;
        let dir = path.parent().unwrap_or_else(|| Path::new("")).to_owned();
        let mut checker = Checker {
            dir,
            top_fields,
            yaml: source.reader(),
        };
        let models = checker.document(&docs);
        let issues = checker.yaml.finish();
        if issues.is_empty() {
            Ok(Registry {
                path: path.to_owned(),
                models,
            })
        } else {
            Err(RegistryError::Invalid {
                path: path.to_owned(),
                issues,
            })
        }
    }

    pub fn get(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }
}

/// The string value of `node`, if it is one.
fn as_str<'n>(node: &'n Node<'_>) -> Option<&'n str> {
    match value(node) {
        Value::Str(text) => Some(text),
        _ => None,
    }
}

/// The `name` of a model entry and where it is written, when it is a string.
fn name_field<'n>(node: &'n Node<'_>) -> Option<(&'n str, Pos)> {
    let Value::Map(map) = value(node) else {
        return None;
    };
    map.iter()
        .find(|(k, _)| as_str(k) == Some("name"))
        .and_then(|(_, v)| Some((as_str(v)?, pos(v))))
}

struct Checker {
    dir: PathBuf,
    top_fields: &'static [&'static str],
    yaml: Reader,
}

impl Checker {
    /// A string that says something: blank text is as good as none for a
    /// name or a path.
    fn text(&mut self, node: &Node<'_>, path: &str) -> Option<String> {
        let text = self.yaml.string(node, path)?;
        if text.trim().is_empty() {
            self.yaml.issue(pos(node), path, yaml::EMPTY_MESSAGE);
            None
        } else {
            Some(text.to_owned())
        }
    }

    fn document(&mut self, docs: &[Node<'_>]) -> Vec<ModelSpec> {
        let Some(doc) = self.yaml.single_document(docs) else {
            self.yaml.required(None, "models", "", Pos::START);
            return Vec::new();
        };
        let Some(map) = self.yaml.mapping(doc, "") else {
            return Vec::new();
        };
        let mut models = None;
        for entry in self.yaml.entries(map, "") {
            if entry.name == "models" {
                models = Some(entry.value);
            } else if !self.top_fields.contains(&entry.name) {
                self.yaml.unknown(&entry, "", "field", self.top_fields);
            }
        }
        let Some(models) = self.yaml.required(models, "models", "", pos(doc)) else {
            return Vec::new();
        };
        // `models:` with nothing under it: a registry with no models.
        if matches!(value(models), Value::Null) {
            return Vec::new();
        }
        let Some(items) = self.yaml.sequence(models, "models") else {
            return Vec::new();
        };
        let mut names = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let Some((name, at)) = name_field(item) else {
                continue;
            };
            if !names.insert(name) {
                self.yaml.issue(
                    at,
                    &format!("{}.name", label(i, Some(name))),
                    format!("duplicate model name {name:?}"),
                );
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
        let before = self.yaml.issue_count();
        let at = pos(node);
        let map = self.yaml.mapping(node, &yaml::item("models", i))?;
        let path = label(i, name_field(node).map(|(name, _)| name));
        let path = path.as_str();
        let [name, file, sha256, version, framework, input, features, output, regime, deadline, active] =
            self.yaml.fields(map, path, &MODEL_FIELDS);
        let at_field = |name: &str| child(path, name);

        let name = self
            .yaml
            .required(name, "name", path, at)
            .and_then(|n| self.text(n, &at_field("name")));
        let path_line = file.map_or(at.line, |n| pos(n).line);
        let file = self
            .yaml
            .required(file, "path", path, at)
            .and_then(|n| self.text(n, &at_field("path")));
        let sha256 = self
            .yaml
            .required(sha256, "sha256", path, at)
            .and_then(|n| self.sha256(n, &at_field("sha256")));
        let version = self
            .yaml
            .required(version, "version", path, at)
            .and_then(|n| match value(n) {
                Value::Int(v) => Some(v.to_string()),
                Value::Float(v) => Some(v.to_string()),
                _ => self.text(n, &at_field("version")),
            });
        let framework = self
            .yaml
            .required(framework, "framework", path, at)
            .and_then(|n| {
                self.yaml
                    .one_of(n, &at_field("framework"), "framework", Framework::NAMES)
            })
            .and_then(Framework::parse);
        let input = self
            .yaml
            .required(input, "input", path, at)
            .and_then(|n| self.input(n, &at_field("input")));
        let feature_names = features.and_then(|n| self.feature_names(n, &at_field("features")));
        if let (Some((n_features, _)), Some((names, names_at))) = (&input, &feature_names) {
            if names.len() != *n_features {
                self.yaml.issue(
                    *names_at,
                    &at_field("features"),
                    format!(
                        "lists {} names but input.features is {n_features}",
                        names.len()
                    ),
                );
            }
        }
        let output = self
            .yaml
            .required(output, "output", path, at)
            .and_then(|n| self.output(n, &at_field("output")));
        let regime = regime.and_then(|n| self.text(n, &at_field("regime")));
        let max_ms = crate::deadline::MAX_DEADLINE.as_millis() as i64;
        let deadline = deadline.map(|n| {
            self.yaml
                .int_in(n, &at_field("deadline_ms"), 1, max_ms)
                .map(|ms| Duration::from_millis(ms.unsigned_abs()))
        });
        let active = match active {
            None => Some(true),
            Some(n) => self.yaml.bool(n, &at_field("active")),
        };
        if self.yaml.issue_count() != before {
            return None;
        }
        let (name, file, sha256, version, framework, (n_features, dtype), output, active) = (
            name?, file?, sha256?, version?, framework?, input?, output?, active?,
        );
        // A refused value was an issue, and returned above.
        let deadline = deadline.flatten();
        Some(ModelSpec {
            path: self.dir.join(&file),
            path_text: file,
            path_line,
            path_field: at_field("path"),
            name,
            sha256,
            version,
            framework,
            n_features,
            dtype,
            feature_names: feature_names.map(|(names, _)| names),
            output,
            regime,
            deadline,
            active,
            line: at.line,
        })
    }

    fn sha256(&mut self, node: &Node<'_>, path: &str) -> Option<String> {
        match value(node) {
            Value::Str(text) if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(text.to_ascii_lowercase())
            }
            Value::Str(text) => {
                self.yaml.issue(
                    pos(node),
                    path,
                    format!("must be 64 hex digits, got {}", yaml::quote(text)),
                );
                None
            }
            // An unquoted digest of digits only is read as a number, and its
            // leading zeros are gone: the fix is quoting, so say so.
            _ => {
                self.yaml
                    .expected(node, path, "a quoted string of 64 hex digits");
                None
            }
        }
    }

    fn input(&mut self, node: &Node<'_>, path: &str) -> Option<(usize, Dtype)> {
        let map = self.yaml.mapping(node, path)?;
        let [features, dtype] = self.yaml.fields(map, path, &INPUT_FIELDS);
        let features = self
            .yaml
            .required(features, "features", path, pos(node))
            .and_then(|n| {
                self.yaml
                    .int_in(n, &child(path, "features"), 1, MAX_FEATURES as i64)
            })
            .and_then(|v| usize::try_from(v).ok());
        let dtype = match dtype {
            None => Some(Dtype::F32),
            Some(n) => match as_str(n) {
                Some("f32" | "float32" | "float") => Some(Dtype::F32),
                _ => {
                    self.yaml.issue(
                        pos(n),
                        &child(path, "dtype"),
                        format!("unsupported dtype {} (expected f32)", describe(n)),
                    );
                    None
                }
            },
        };
        Some((features?, dtype?))
    }

    fn feature_names(&mut self, node: &Node<'_>, path: &str) -> Option<(Vec<String>, Pos)> {
        let items = self.yaml.sequence(node, path)?;
        let names: Vec<Option<String>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.text(item, &yaml::item(path, i)))
            .collect();
        let names = names.into_iter().collect::<Option<Vec<_>>>()?;
        Some((names, pos(node)))
    }

    fn output(&mut self, node: &Node<'_>, path: &str) -> Option<OutputSpec> {
        let map = self.yaml.mapping(node, path)?;
        let [kind, classes, threshold, tensor] = self.yaml.fields(map, path, &OUTPUT_FIELDS);
        let tensor = tensor.and_then(|n| self.text(n, &child(path, "tensor")));
        let kind = self.yaml.required(kind, "kind", path, pos(node))?;
        match self
            .yaml
            .one_of(kind, &child(path, "kind"), "output kind", OUTPUT_KINDS)?
        {
            "classifier" => {
                if let Some(n) = threshold {
                    self.yaml.issue(
                        pos(n),
                        &child(path, "threshold"),
                        "only a regressor has a threshold",
                    );
                }
                let classes_node = self.yaml.required(classes, "classes", path, pos(node))?;
                let classes = self.classes(classes_node, &child(path, "classes"))?;
                Some(OutputSpec::Classifier { classes, tensor })
            }
            _ => {
                if let Some(n) = classes {
                    self.yaml.issue(
                        pos(n),
                        &child(path, "classes"),
                        "only a classifier has classes",
                    );
                }
                let t = self
                    .yaml
                    .required(threshold, "threshold", path, pos(node))?;
                let threshold = self.yaml.float(t, &child(path, "threshold"))?;
                if !(threshold.is_finite() && threshold > 0.0) {
                    // A threshold <= 0 would signal on every row, even a 0.
                    self.yaml.issue(
                        pos(t),
                        &child(path, "threshold"),
                        format!("must be > 0, got {threshold}"),
                    );
                    return None;
                }
                Some(OutputSpec::Regressor { threshold, tensor })
            }
        }
    }

    fn classes(&mut self, node: &Node<'_>, path: &str) -> Option<Vec<i64>> {
        let items = self.yaml.sequence(node, path)?;
        let mut classes = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = yaml::item(path, i);
            let Some(class) = self.yaml.int(item, &item_path) else {
                ok = false;
                continue;
            };
            match classes.iter().position(|c| *c == class) {
                Some(first) => {
                    self.yaml.issue(
                        pos(item),
                        &item_path,
                        format!("duplicate class {class} (also at classes[{first}])"),
                    );
                    ok = false;
                }
                None => classes.push(class),
            }
        }
        if !ok {
            return None;
        }
        if !(2..=MAX_CLASSES).contains(&classes.len()) {
            self.yaml.issue(
                pos(node),
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

/// How paths name model `i`: with its name when it has one, because people
/// find entries by name, not by index.
fn label(i: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("models[{i}] (name {name:?})"),
        None => format!("models[{i}]"),
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
            // Without the file, which every issue names alike.
            Err(RegistryError::Invalid { issues, .. }) => issues
                .iter()
                .map(|i| format!("{}: {}: {}", i.line, i.path, i.message))
                .collect(),
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
    fn a_deadline_is_a_whole_number_of_milliseconds_up_to_an_hour() {
        let reg = parse(GOOD).unwrap();
        assert_eq!(reg.get("mlp").unwrap().deadline, None, "the mode's default");
        let with = |value: &str| {
            GOOD.replace(
                "    regime: trending\n",
                &format!("    regime: trending\n    deadline_ms: {value}\n"),
            )
        };
        let reg = parse(&with("250")).unwrap();
        assert_eq!(
            reg.get("mlp").unwrap().deadline,
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            issues(&with("0")),
            ["12: models[0] (name \"mlp\").deadline_ms: must be >= 1, got 0"]
        );
        assert_eq!(
            issues(&with("3600001")),
            ["12: models[0] (name \"mlp\").deadline_ms: must be <= 3600000, got 3600001"]
        );
        assert_eq!(
            issues(&with("1s")),
            ["12: models[0] (name \"mlp\").deadline_ms: expected an integer, got \"1s\""]
        );
    }

    #[test]
    fn a_regressor_threshold_must_be_positive() {
        for (threshold, shown) in [("0", "0"), ("-1.5", "-1.5")] {
            let text = GOOD.replace("threshold: 2}", &format!("threshold: {threshold}}}"));
            assert_eq!(
                issues(&text),
                [format!(
                    "18: models[1] (name \"ridge\").output.threshold: must be > 0, got {shown}"
                )]
            );
        }
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
                "7: models[0] (name \"a\").input.features: must be >= 1, got 0",
                "8: models[0] (name \"a\").output.classes[1]: duplicate class 1 (also at classes[0])",
                "9: models[0] (name \"a\").colour: unknown field \"colour\" (expected name, path, sha256, version, framework, input, features, output, regime, deadline_ms, active)",
                "10: models[1] (name \"a\").name: duplicate model name \"a\"",
                "15: models[1] (name \"a\").input.dtype: unsupported dtype \"f64\" (expected f32)",
                "17: models[1] (name \"a\").output: missing field \"threshold\"",
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
            matches!(
                err,
                RegistryError::Syntax(yaml::SyntaxError { line: 2, .. })
            ),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("/reg/models.yaml:2:"), "{err}");
        assert_eq!(issues(""), vec!["1: (root): missing field \"models\""]);
        assert_eq!(
            issues("models: 3\n"),
            vec!["1: models: expected a list, got 3"]
        );
    }

    #[test]
    fn shapes_and_repeated_keys_are_worded_like_the_strategies_file() {
        let text = GOOD
            .replace("input: {features: 3, dtype: f32}", "input: 3")
            .replace("active: false", "active: no\n    active: true")
            .replace("classes: [-1, 0, 1]", "classes: [-1, x, 1]");
        assert_eq!(
            issues(&text),
            vec![
                "8: models[0] (name \"mlp\").input: expected a mapping, got 3",
                "10: models[0] (name \"mlp\").output.classes[1]: expected an integer, got \"x\"",
                "19: models[1] (name \"ridge\").active: expected a boolean, got \"no\"",
                "20: models[1] (name \"ridge\").active: duplicate key \"active\" (first at line 19)",
            ]
        );
        assert_eq!(
            issues("- a\n"),
            vec!["1: (root): expected a mapping, got a list"]
        );
    }

    #[test]
    fn ten_thousand_repeated_keys_are_reported_together_quickly() {
        let repeats = "    regime: again\n".repeat(10_000);
        let text = GOOD.replace(
            "    regime: trending\n",
            &format!("    regime: trending\n{repeats}"),
        );
        let started = std::time::Instant::now();
        let err = parse(&text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let RegistryError::Invalid { issues, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(issues.len(), 10_000);
        assert!(issues
            .iter()
            .enumerate()
            .all(|(i, issue)| issue.line == 12 + i
                && issue.message == "duplicate key \"regime\" (first at line 11)"));
        let shown = err.to_string();
        assert_eq!(shown.lines().count(), 101);
        assert!(shown.ends_with("\nand 9900 more (10000 in all)"), "{shown}");
    }

    #[test]
    fn the_model_path_is_located() {
        let registry = parse(GOOD).unwrap();
        let mlp = registry.get("mlp").unwrap();
        assert_eq!(
            (mlp.path_line, mlp.path_field.as_str()),
            (4, "models[0] (name \"mlp\").path")
        );
        assert_eq!(mlp.path, Path::new("/reg/sub/mlp.onnx"));
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
