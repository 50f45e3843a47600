//! A TOML settings file as the positioned tree a YAML one loads into, so both
//! formats are checked by one walk and their mistakes are worded alike.

use quiver_config::yaml::{Mapping, Node};
use saphyr::{Marker, Scalar, YamlData};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Text that is not TOML, positioned.
pub(super) struct TomlSyntax {
    pub(super) line: usize,
    /// 1-based, in characters.
    pub(super) col: usize,
    pub(super) message: String,
}

/// The document of `text` as a mapping node.
pub(super) fn load(text: &str) -> Result<Node<'static>, TomlSyntax> {
    let lines = Lines::new(text);
    let table = DeTable::parse(text).map_err(|e| {
        let (line, col) = lines.locate_error(e.span().map_or(0, |span| span.start));
        TomlSyntax {
            line,
            col: col + 1,
            message: e.message().trim().to_owned(),
        }
    })?;
    let start = table.span().start;
    Ok(lines.node(YamlData::Mapping(lines.table(table.get_ref())), start))
}

/// Line starts of a text, to turn byte offsets into lines and columns.
struct Lines<'t> {
    text: &'t str,
    /// Byte offset of each line's first character; the first is 0.
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Lines<'t> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { text, starts }
    }

    /// 1-based line and 0-based column (in characters) of byte `offset`.
    fn locate(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&start| start <= offset).max(1);
        let start = self.starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |before| before.chars().count());
        (line, col)
    }

    /// [`Lines::locate`] for an error. An error at the end of a text that ends
    /// with a line break (an unexpected end) would be on the line after the
    /// last, which the file does not have: it is put after the last line's
    /// text instead.
    fn locate_error(&self, offset: usize) -> (usize, usize) {
        let (line, col) = self.locate(offset);
        let end = self.text.len();
        if line < 2 || offset < end || self.starts.last() != Some(&end) {
            return (line, col);
        }
        let last = self
            .text
            .get(self.starts[line - 2]..end - 1)
            .map_or(0, |text| text.trim_end_matches('\r').chars().count());
        (line - 1, last)
    }

    fn node(&self, data: YamlData<'static, Node<'static>>, offset: usize) -> Node<'static> {
        let (line, col) = self.locate(offset);
        let mut node = Node::from(data);
        // Only lines and columns are read from positions; the byte offset
        // stands in for saphyr's character index.
        node.span.start = Marker::new(offset, line, col);
        node
    }

    fn table(&self, table: &DeTable<'_>) -> Mapping<'static> {
        let mut map = Mapping::new();
        for (key, value) in table.iter() {
            let key_node = self.node(
                YamlData::Value(Scalar::String(key.get_ref().to_string().into())),
                key.span().start,
            );
            map.insert(key_node, self.value(value));
        }
        map
    }

    fn value(&self, value: &Spanned<DeValue<'_>>) -> Node<'static> {
        let data = match value.get_ref() {
            DeValue::String(text) => YamlData::Value(Scalar::String(text.to_string().into())),
            DeValue::Integer(v) => match i64::from_str_radix(v.as_str(), v.radix()) {
                Ok(v) => YamlData::Value(Scalar::Integer(v)),
                // Wider than any setting: shown as an invalid value.
                Err(_) => YamlData::BadValue,
            },
            DeValue::Float(v) => match v.as_str().parse::<f64>() {
                Ok(v) => YamlData::Value(Scalar::FloatingPoint(v.into())),
                Err(_) => YamlData::BadValue,
            },
            DeValue::Boolean(v) => YamlData::Value(Scalar::Boolean(*v)),
            // A TOML date or time means what its text says (`open = 09:15:00`,
            // `holidays = [2026-01-26]`); the setting's own check reads it.
            DeValue::Datetime(v) => YamlData::Value(Scalar::String(v.to_string().into())),
            DeValue::Array(items) => {
                YamlData::Sequence(items.iter().map(|item| self.value(item)).collect())
            }
            DeValue::Table(table) => YamlData::Mapping(self.table(table)),
        };
        self.node(data, value.span().start)
    }
}
