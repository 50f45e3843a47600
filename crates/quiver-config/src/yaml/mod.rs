//! Positioned YAML, shared by every reader of a YAML file: the strategies
//! file, the model registry and the service settings.
//!
//! [`Source`] loads text into saphyr nodes that keep their positions and do
//! not lose repeated keys. A [`Reader`] then takes values out of the nodes
//! with typed accessors. An accessor that finds the wrong shape records an
//! [`Issue`] (file, line, path, message) and returns `None`, so a checker
//! carries on and one pass finds everything that is wrong with a file. The
//! messages are worded here and nowhere else, so the same mistake reads the
//! same in every file.
//!
//! Paths name where a value is, e.g. `strategies[3] (id "mom-7").parameters.lookback_periods`;
//! [`child`] and [`item`] build them, and [`ROOT`] names the document itself.

mod source;

use std::fmt;

use saphyr::{AnnotatedMapping, MarkedYaml, Scalar, YamlData};

use self::source::{error_position, last_line, load, prepare, renamed_parts, Position, Prepared};

/// A node of the tree, with its position.
pub type Node<'y> = MarkedYaml<'y>;
/// A mapping's entries, in document order.
pub type Mapping<'y> = AnnotatedMapping<'y, MarkedYaml<'y>>;

/// How issues about the document as a whole name their location.
pub const ROOT: &str = "(root)";

/// Text that is not YAML: there is no tree to check, so this is the only error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: YAML syntax error: {message}")]
pub struct SyntaxError {
    pub file: String,
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
}

/// One problem with a value of a YAML-valid file, displayed as
/// `{file}:{line}: {path}: {message}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {path}: {message}")]
pub struct Issue {
    /// The file as its reader was told to name it.
    pub file: String,
    /// 1-based line of the offending value (of the containing mapping for a
    /// missing field).
    pub line: usize,
    /// Where the value is, e.g. `strategies[3] (id "mom-7").parameters.threshold`.
    pub path: String,
    pub message: String,
}

/// Most issues an [`IssueLines`] displays: a file with thousands of problems
/// (a generated file, a paste gone wrong) is refused after one pass either
/// way, and the first screenful is what gets fixed first.
pub const SHOWN_ISSUES: usize = 100;

/// Displays issues one per line, without a trailing newline, so a list of
/// them prints like any other error; past [`SHOWN_ISSUES`], a last line
/// counts the rest.
pub struct IssueLines<'a, T = Issue>(pub &'a [T]);

impl<T: fmt::Display> fmt::Display for IssueLines<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().take(SHOWN_ISSUES).enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{issue}")?;
        }
        if let Some(rest) = self.0.len().checked_sub(SHOWN_ISSUES).filter(|n| *n > 0) {
            write!(f, "\nand {rest} more ({} in all)", self.0.len())?;
        }
        Ok(())
    }
}

/// A file's text, prepared for loading.
pub struct Source {
    file: String,
    text: String,
    prepared: Prepared,
    /// The number of the text's last line.
    last_line: usize,
}

impl Source {
    /// Checks that `text` is YAML; `file` names it in every message.
    pub fn new(text: &str, file: impl Into<String>) -> Result<Source, SyntaxError> {
        let file = file.into();
        match prepare(text) {
            Ok(prepared) => Ok(Source {
                file,
                text: text.to_owned(),
                prepared,
                last_line: last_line(text).0,
            }),
            Err(at) => Err(syntax_error(&file, at)),
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// The YAML documents of the text, borrowing from it. [`Source::new`]
    /// already loaded it once, but an error is still passed on rather than
    /// assumed away.
    pub fn documents(&self) -> Result<Vec<Node<'_>>, SyntaxError> {
        load(&self.text, self.prepared.duplicate_mark)
            .map_err(|e| syntax_error(&self.file, error_position(&e, &self.text)))
    }

    /// A reader for this text's nodes.
    pub fn reader(&self) -> Reader {
        Reader {
            file: self.file.clone(),
            duplicate_mark: self.prepared.duplicate_mark,
            last_line: self.last_line,
            issues: Vec::new(),
        }
    }
}

fn syntax_error(file: &str, at: Position) -> SyntaxError {
    SyntaxError {
        file: file.to_owned(),
        line: at.line,
        col: at.col,
        message: at.message,
    }
}

/// Where a node starts: 1-based line and 0-based column, the column used only
/// to put issues in document order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    /// Where issues about an empty document go.
    pub const START: Pos = Pos { line: 1, col: 0 };
}

/// Where `node` starts. saphyr's lines are 1-based already; a node built
/// without a position (line 0) is put on the first line rather than on one
/// that does not exist.
pub fn pos(node: &Node<'_>) -> Pos {
    Pos {
        line: node.span.start.line().max(1),
        col: node.span.start.col(),
    }
}

/// The line `node` starts on.
pub fn line(node: &Node<'_>) -> usize {
    pos(node).line
}

/// The path of key `name` of the mapping at `path`.
pub fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The path of item `index` of the list at `path`.
pub fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// A node's value as a schema sees it, so checks match on meaning rather than
/// on saphyr's representation.
#[derive(Clone, Copy, Debug)]
pub enum Value<'n, 'y> {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'n str),
    Null,
    List(&'n [Node<'y>]),
    Map(&'n Mapping<'y>),
    /// Anything no schema accepts (custom tags, values a core tag could not
    /// parse), described for the message.
    Other(&'static str),
}

pub fn value<'n, 'y>(node: &'n Node<'y>) -> Value<'n, 'y> {
    match &node.data {
        YamlData::Value(Scalar::Integer(v)) => Value::Int(*v),
        YamlData::Value(Scalar::FloatingPoint(v)) => Value::Float(v.0),
        YamlData::Value(Scalar::Boolean(v)) => Value::Bool(*v),
        YamlData::Value(Scalar::String(v)) => Value::Str(v),
        YamlData::Value(Scalar::Null) => Value::Null,
        YamlData::Sequence(items) => Value::List(items),
        YamlData::Mapping(map) => Value::Map(map),
        YamlData::Tagged(..) => Value::Other("a tagged value"),
        _ => Value::Other("an invalid value"),
    }
}

/// How a message shows the value it rejects: strings quoted, so `"0.01"` is
/// visibly not the number 0.01; floats with a fraction, so `20.0` is visibly
/// not an integer. The same as parameter messages show values.
pub fn describe(node: &Node<'_>) -> String {
    match value(node) {
        Value::Int(v) => v.to_string(),
        Value::Float(v) => format!("{v:?}"),
        Value::Bool(v) => v.to_string(),
        Value::Str(v) => quote(v),
        Value::Null => "null".to_owned(),
        Value::List(_) => "a list".to_owned(),
        Value::Map(_) => "a mapping".to_owned(),
        Value::Other(what) => what.to_owned(),
    }
}

/// `text` quoted as messages show it, shortened when long.
pub fn quote(text: &str) -> String {
    quiver_strategy::params::quote_truncated(text)
}

/// `expected {what}, got {got}`: a value of the wrong type.
pub fn expected_message(what: &str, got: &str) -> String {
    format!("expected {what}, got {got}")
}

/// `unknown {noun} "name" (expected a, b, c)`: a key or a name that is not
/// one of `expected`.
pub fn unknown_message(noun: &str, name: &str, expected: &[&str]) -> String {
    format!(
        "unknown {noun} {} (expected {})",
        quote(name),
        expected.join(", ")
    )
}

/// `missing field "name"`.
pub fn missing_message(field: &str) -> String {
    format!("missing field {field:?}")
}

/// A string or list that must hold something.
pub const EMPTY_MESSAGE: &str = "must not be empty";

/// An integer outside `min..=max`, worded like a parameter's range.
pub fn range_message(value: i64, min: i64, max: i64) -> Option<String> {
    if value < min {
        Some(format!("must be >= {min}, got {value}"))
    } else if value > max {
        Some(format!("must be <= {max}, got {value}"))
    } else {
        None
    }
}

/// A float that is NaN or infinite.
pub fn non_finite_message(got: &str) -> String {
    format!("must be a finite number, got {got}")
}

/// One key of a mapping that survived the key checks.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'n, 'y> {
    pub name: &'n str,
    pub key: &'n Node<'y>,
    pub value: &'n Node<'y>,
}

/// Reads values out of a tree, collecting an [`Issue`] for every one that is
/// not what was asked for.
#[derive(Debug)]
pub struct Reader {
    file: String,
    /// Prefix of keys renamed because they repeat an earlier key (see `source`).
    duplicate_mark: Option<char>,
    /// The last line of the text. The loader places a value that is missing
    /// at the end of the input (the key of a bare `?`, say) after it, on a
    /// line the file does not have; issues about it are put on this one.
    last_line: usize,
    issues: Vec<(Pos, Issue)>,
}

impl Reader {
    /// A reader for nodes that did not come from a [`Source`] (so hold no
    /// renamed duplicates), e.g. a tree built from another format.
    pub fn new(file: impl Into<String>) -> Reader {
        Reader {
            file: file.into(),
            duplicate_mark: None,
            last_line: usize::MAX,
            issues: Vec::new(),
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Issues recorded so far; a checker compares counts to tell whether a
    /// part it just read was clean.
    pub fn issue_count(&self) -> usize {
        self.issues.len()
    }

    /// The issues in document order. Checkers read fields in the order their
    /// meaning needs, not the order they are written, so issues are sorted by
    /// position; the sort is stable, keeping issues about the same value in
    /// the order they were found.
    pub fn finish(mut self) -> Vec<Issue> {
        self.issues.sort_by_key(|(at, _)| *at);
        self.issues.into_iter().map(|(_, issue)| issue).collect()
    }

    /// Records an issue at `at`; an empty `path` is the document itself.
    pub fn issue(&mut self, at: Pos, path: &str, message: impl Into<String>) {
        let path = if path.is_empty() { ROOT } else { path };
        let issue = Issue {
            file: self.file.clone(),
            line: at.line.min(self.last_line),
            path: path.to_owned(),
            message: message.into(),
        };
        self.issues.push((at, issue));
    }

    /// Records that `node` is not `what` (e.g. "a list").
    pub fn expected(&mut self, node: &Node<'_>, path: &str, what: &str) {
        self.issue(pos(node), path, expected_message(what, &describe(node)));
    }

    /// Records that key `entry` of the mapping at `path` is not one of
    /// `expected`; `noun` says what the key is (field, parameter, setting).
    pub fn unknown(&mut self, entry: &Entry<'_, '_>, path: &str, noun: &str, expected: &[&str]) {
        self.issue(
            pos(entry.key),
            &child(path, entry.name),
            unknown_message(noun, entry.name, expected),
        );
    }

    /// `node`, or a `missing field` issue located at `owner`, the mapping that
    /// should have held it.
    pub fn required<'n, 'y>(
        &mut self,
        node: Option<&'n Node<'y>>,
        field: &str,
        path: &str,
        owner: Pos,
    ) -> Option<&'n Node<'y>> {
        if node.is_none() {
            self.issue(owner, path, missing_message(field));
        }
        node
    }

    /// The document of a file that holds one; `None` for an empty file, which
    /// the caller reports as its missing top-level field. Further documents
    /// are reported, and the first is still checked.
    pub fn single_document<'n, 'y>(&mut self, docs: &'n [Node<'y>]) -> Option<&'n Node<'y>> {
        if let Some(extra) = docs.get(1) {
            self.issue(
                pos(extra),
                "",
                format!("expected one YAML document, got {}", docs.len()),
            );
        }
        docs.first()
    }

    /// The string-keyed entries of `map`, reporting keys that are not strings
    /// and keys that repeat an earlier one.
    pub fn entries<'n, 'y>(&mut self, map: &'n Mapping<'y>, path: &str) -> Vec<Entry<'n, 'y>> {
        let mut entries = Vec::with_capacity(map.len());
        for (key, val) in map {
            let Value::Str(name) = value(key) else {
                self.expected(key, path, "a string key");
                continue;
            };
            if let Some((original, first)) = self
                .duplicate_mark
                .and_then(|mark| renamed_parts(name, mark))
            {
                self.issue(
                    pos(key),
                    &child(path, original),
                    format!("duplicate key {} (first at line {first})", quote(original)),
                );
                continue;
            }
            entries.push(Entry {
                name,
                key,
                value: val,
            });
        }
        entries
    }

    /// The values of `known` fields of `map`, in `known`'s order (so callers
    /// can destructure them), reporting every other key.
    pub fn fields<'n, 'y, const N: usize>(
        &mut self,
        map: &'n Mapping<'y>,
        path: &str,
        known: &[&str; N],
    ) -> [Option<&'n Node<'y>>; N] {
        let mut fields = [None; N];
        for entry in self.entries(map, path) {
            match known.iter().position(|f| *f == entry.name) {
                Some(at) => fields[at] = Some(entry.value),
                None => self.unknown(&entry, path, "field", known),
            }
        }
        fields
    }

    pub fn mapping<'n, 'y>(&mut self, node: &'n Node<'y>, path: &str) -> Option<&'n Mapping<'y>> {
        match value(node) {
            Value::Map(map) => Some(map),
            _ => {
                self.expected(node, path, "a mapping");
                None
            }
        }
    }

    pub fn sequence<'n, 'y>(&mut self, node: &'n Node<'y>, path: &str) -> Option<&'n [Node<'y>]> {
        match value(node) {
            Value::List(items) => Some(items),
            _ => {
                self.expected(node, path, "a list");
                None
            }
        }
    }

    pub fn non_empty_sequence<'n, 'y>(
        &mut self,
        node: &'n Node<'y>,
        path: &str,
    ) -> Option<&'n [Node<'y>]> {
        match self.sequence(node, path)? {
            [] => {
                self.issue(pos(node), path, EMPTY_MESSAGE);
                None
            }
            items => Some(items),
        }
    }

    pub fn string<'n>(&mut self, node: &'n Node<'_>, path: &str) -> Option<&'n str> {
        match value(node) {
            Value::Str(s) => Some(s),
            _ => {
                self.expected(node, path, "a string");
                None
            }
        }
    }

    pub fn non_empty_string<'n>(&mut self, node: &'n Node<'_>, path: &str) -> Option<&'n str> {
        match self.string(node, path)? {
            "" => {
                self.issue(pos(node), path, EMPTY_MESSAGE);
                None
            }
            s => Some(s),
        }
    }

    /// A string that must be one of `names`; `noun` says what it names.
    pub fn one_of<'n>(
        &mut self,
        node: &'n Node<'_>,
        path: &str,
        noun: &str,
        names: &[&str],
    ) -> Option<&'n str> {
        let name = self.string(node, path)?;
        if names.contains(&name) {
            Some(name)
        } else {
            self.issue(pos(node), path, unknown_message(noun, name, names));
            None
        }
    }

    pub fn int(&mut self, node: &Node<'_>, path: &str) -> Option<i64> {
        match value(node) {
            Value::Int(v) => Some(v),
            _ => {
                self.expected(node, path, "an integer");
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn int_in(&mut self, node: &Node<'_>, path: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.int(node, path)?;
        match range_message(v, min, max) {
            Some(message) => {
                self.issue(pos(node), path, message);
                None
            }
            None => Some(v),
        }
    }

    /// A finite number; integers are numbers too.
    pub fn float(&mut self, node: &Node<'_>, path: &str) -> Option<f64> {
        let v = match value(node) {
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
            _ => {
                self.expected(node, path, "a number");
                return None;
            }
        };
        if v.is_finite() {
            Some(v)
        } else {
            self.issue(pos(node), path, non_finite_message(&describe(node)));
            None
        }
    }

    pub fn bool(&mut self, node: &Node<'_>, path: &str) -> Option<bool> {
        match value(node) {
            Value::Bool(v) => Some(v),
            _ => {
                self.expected(node, path, "a boolean");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The issues of reading `text`'s document with `read`, as printed.
    fn read(text: &str, read: impl FnOnce(&mut Reader, &Node<'_>)) -> Vec<String> {
        let source = Source::new(text, "f.yaml").unwrap();
        let docs = source.documents().unwrap();
        let mut reader = source.reader();
        if let Some(doc) = reader.single_document(&docs) {
            read(&mut reader, doc);
        }
        reader.finish().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn accessors_word_wrong_types_alike() {
        let text = "s: 1\ni: \"2\"\nf: x\nb: no\nl: {}\nm: []\nn: .inf\n";
        let issues = read(text, |r, doc| {
            let Some(map) = r.mapping(doc, "") else {
                return;
            };
            let fields = r.fields(map, "", &["s", "i", "f", "b", "l", "m", "n"]);
            let [s, i, f, b, l, m, n] = fields.map(Option::unwrap);
            assert_eq!(r.string(s, "s"), None);
            assert_eq!(r.int(i, "i"), None);
            assert_eq!(r.float(f, "f"), None);
            assert_eq!(r.bool(b, "b"), None);
            assert!(r.sequence(l, "l").is_none());
            assert!(r.mapping(m, "m").is_none());
            assert_eq!(r.float(n, "n"), None);
        });
        assert_eq!(
            issues,
            [
                "f.yaml:1: s: expected a string, got 1",
                "f.yaml:2: i: expected an integer, got \"2\"",
                "f.yaml:3: f: expected a number, got \"x\"",
                "f.yaml:4: b: expected a boolean, got \"no\"",
                "f.yaml:5: l: expected a list, got a mapping",
                "f.yaml:6: m: expected a mapping, got a list",
                "f.yaml:7: n: must be a finite number, got inf",
            ]
        );
    }

    #[test]
    fn keys_are_checked_in_one_pass() {
        let text = "a: 1\nb: 2\na: 3\n7: x\nc: 4\n";
        let issues = read(text, |r, doc| {
            let map = r.mapping(doc, "top").unwrap();
            let [a, c] = r.fields(map, "top", &["a", "c"]);
            assert!(a.is_some());
            let owner = pos(doc);
            r.required(None, "d", "top", owner);
            assert_eq!(r.int_in(c.unwrap(), "top.c", 5, 9), None);
        });
        assert_eq!(
            issues,
            [
                "f.yaml:1: top: missing field \"d\"",
                "f.yaml:2: top.b: unknown field \"b\" (expected a, c)",
                "f.yaml:3: top.a: duplicate key \"a\" (first at line 1)",
                "f.yaml:4: top: expected a string key, got 7",
                "f.yaml:5: top.c: must be >= 5, got 4",
            ]
        );
    }

    #[test]
    fn documents_and_syntax_errors() {
        assert_eq!(read("", |_, _| panic!("no document")), Vec::<String>::new());
        assert_eq!(
            read("a: 1\n---\nb: 2\n", |_, _| {}),
            ["f.yaml:3: (root): expected one YAML document, got 2"]
        );
        let err = Source::new("a: [1\nb: 2\n", "f.yaml").err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("f.yaml:2:2: YAML syntax error: illegal placement of ':' indicator".to_owned())
        );
    }

    #[test]
    fn a_value_missing_at_the_end_is_on_the_last_line() {
        // The loader puts the null key of a bare `?` after the text.
        for text in ["?\n", "?\r", "?\r\n"] {
            let issues = read(text, |r, doc| {
                let map = r.mapping(doc, "").unwrap();
                r.entries(map, "");
            });
            let last = text.trim_end().lines().count();
            assert_eq!(
                issues,
                [format!(
                    "f.yaml:{last}: (root): expected a string key, got null"
                )],
                "{text:?}"
            );
        }
    }

    #[test]
    fn one_of_names_the_choices() {
        let issues = read("k: [x, 3]\n", |r, doc| {
            let map = r.mapping(doc, "").unwrap();
            let [k] = r.fields(map, "", &["k"]);
            let items = r.non_empty_sequence(k.unwrap(), "k").unwrap();
            assert_eq!(
                r.one_of(&items[0], &item("k", 0), "kind", &["a", "b"]),
                None
            );
            assert_eq!(
                r.one_of(&items[1], &item("k", 1), "kind", &["a", "b"]),
                None
            );
        });
        assert_eq!(
            issues,
            [
                "f.yaml:1: k[0]: unknown kind \"x\" (expected a, b)",
                "f.yaml:1: k[1]: expected a string, got 3",
            ]
        );
    }
}
