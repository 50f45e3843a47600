//! Reading the layers — defaults, file, environment, flags — into one
//! settings tree, remembering where every value came from.

use super::*;

#[derive(Debug, Default)]
pub(super) struct Origins(BTreeMap<String, Origin>);

impl Origins {
    pub(super) fn of(&self, key: &str) -> Origin {
        self.0
            .get(key)
            .or_else(|| key.split_once('[').and_then(|(list, _)| self.0.get(list)))
            .cloned()
            .unwrap_or(Origin::Default)
    }
}

/// What a setting holds, judged by its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Bool,
    /// Every integer setting is unsigned.
    Count,
    Number,
    List,
    Table,
}

impl Kind {
    pub(super) fn of(default: &Value) -> Kind {
        match default {
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_f64() => Kind::Number,
            Value::Number(_) => Kind::Count,
            Value::Array(_) => Kind::List,
            Value::Object(_) => Kind::Table,
            Value::String(_) | Value::Null => Kind::Text,
        }
    }
}

/// One setting's new value from one layer.
pub(super) struct Assignment {
    path: Vec<String>,
    value: Value,
    origin: Origin,
    /// Where a list's items are, when the layer says.
    item_origins: Vec<Origin>,
}

/// The settings tree as the layers are applied, and every problem found so
/// far. A value with a problem is not applied, so the rest can still be
/// checked against valid neighbours; nothing is returned unless there are
/// no problems at all.
pub(super) struct Layers {
    defaults: Value,
    tree: Value,
    origins: Origins,
    issues: Vec<SettingsIssue>,
}

impl Layers {
    pub(super) fn new() -> Result<Layers, SettingsError> {
        let defaults =
            serde_json::to_value(Settings::default()).map_err(|e| SettingsError::Invalid {
                issues: vec![SettingsIssue {
                    origin: Origin::Default,
                    key: yaml::ROOT.to_owned(),
                    message: e.to_string(),
                }],
            })?;
        Ok(Layers {
            tree: defaults.clone(),
            defaults,
            origins: Origins::default(),
            issues: Vec::new(),
        })
    }

    /// Reads the settings file at `path`. Only a file that cannot be read or
    /// parsed at all ends loading here; problems with its values are
    /// collected with the rest.
    pub(super) fn file(&mut self, path: &Path) -> Result<(), SettingsError> {
        let shown = path.display().to_string();
        let limit = quiver_config::files::CONFIG_FILE_LIMIT;
        let text = quiver_config::files::read_regular_text(path, limit).map_err(|source| {
            SettingsError::Io {
                path: shown.clone(),
                source,
            }
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut assignments = Vec::new();
        let schema = &self.defaults;
        let issues = match ext.as_str() {
            "yaml" | "yml" => {
                let source = yaml::Source::new(&text, shown)?;
                let docs = source.documents()?;
                let mut reader = source.reader();
                if let Some(doc) = reader.single_document(&docs) {
                    read_table(&mut reader, doc, "", schema, &mut assignments);
                }
                reader.finish()
            }
            "toml" => {
                let tree = toml_tree::load(&text).map_err(|e| SettingsError::TomlSyntax {
                    file: shown.clone(),
                    line: e.line,
                    col: e.col,
                    message: e.message,
                })?;
                let mut reader = Reader::new(shown);
                read_table(&mut reader, &tree, "", schema, &mut assignments);
                reader.finish()
            }
            _ => return Err(SettingsError::Format { path: shown }),
        };
        self.issues
            .extend(issues.into_iter().map(|issue| SettingsIssue {
                origin: Origin::File {
                    file: issue.file,
                    line: issue.line,
                },
                key: issue.path,
                message: issue.message,
            }));
        for assignment in assignments {
            self.apply(assignment);
        }
        Ok(())
    }

    /// Sets the setting at `path` from `text`, an environment variable's or a
    /// flag's value, converted to the type the setting has.
    pub(super) fn text(&mut self, path: Vec<String>, text: &str, origin: Origin) {
        match self.text_value(&path, text) {
            Ok(value) => self.apply(Assignment {
                path,
                value,
                origin,
                item_origins: Vec::new(),
            }),
            Err(message) => self.issues.push(SettingsIssue {
                origin,
                key: path.join("."),
                message,
            }),
        }
    }

    pub(super) fn text_value(&self, path: &[String], text: &str) -> Result<Value, String> {
        let mut slot = &self.defaults;
        for (depth, part) in path.iter().enumerate() {
            if !slot.is_object() {
                return Err(format!(
                    "{} is a setting, not a table",
                    path[..depth].join(".")
                ));
            }
            slot = slot
                .get(part)
                .ok_or_else(|| yaml::unknown_message("setting", part, &names(slot)))?;
        }
        Ok(match Kind::of(slot) {
            Kind::Table => return Err("is a table; set one of its keys".to_owned()),
            Kind::Text => Value::String(text.to_owned()),
            Kind::Bool => Value::Bool(match text.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => return Err(yaml::expected_message("a boolean", &yaml::quote(text))),
            }),
            Kind::Count => {
                let v: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| yaml::expected_message("an integer", &yaml::quote(text)))?;
                if let Some(message) = yaml::range_message(v, 0, i64::MAX) {
                    return Err(message);
                }
                Value::from(v)
            }
            Kind::Number => {
                let v: f64 = text
                    .trim()
                    .parse()
                    .map_err(|_| yaml::expected_message("a number", &yaml::quote(text)))?;
                if !v.is_finite() {
                    return Err(yaml::non_finite_message(&yaml::quote(text)));
                }
                Value::from(v)
            }
            Kind::List => Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
        })
    }

    pub(super) fn apply(&mut self, assignment: Assignment) {
        let Assignment {
            path,
            value,
            origin,
            item_origins,
        } = assignment;
        let key = path.join(".");
        if let Some(message) = self.out_of_range(&path, &value) {
            self.issues.push(SettingsIssue {
                origin,
                key,
                message,
            });
            return;
        }
        if let Some(slot) = self.tree.pointer_mut(&pointer(&path)) {
            *slot = value;
        }
        let items = format!("{key}[");
        self.origins.0.retain(|k, _| !k.starts_with(&items));
        for (i, item) in item_origins.into_iter().enumerate() {
            self.origins.0.insert(yaml::item(&key, i), item);
        }
        self.origins.0.insert(key, origin);
    }

    /// Why an integer does not fit its setting (a `u32` one), if it does
    /// not. The settings' types are the authority, so the value is tried in
    /// them rather than checked against a second list of bounds.
    pub(super) fn out_of_range(&self, path: &[String], value: &Value) -> Option<String> {
        let v = value.as_i64()?;
        let mut trial = self.defaults.clone();
        *trial.pointer_mut(&pointer(path))? = value.clone();
        let err = serde_json::from_value::<Settings>(trial).err()?;
        Some(yaml::range_message(v, 0, i64::from(u32::MAX)).unwrap_or_else(|| err.to_string()))
    }

    pub(super) fn finish(mut self) -> Result<Settings, SettingsError> {
        match serde_json::from_value::<Settings>(self.tree) {
            Ok(settings) if self.issues.is_empty() => {
                let issues = settings.check(&self.origins);
                if issues.is_empty() {
                    return Ok(settings);
                }
                self.issues = issues;
            }
            // Values with problems were not applied, so the rest is still
            // worth checking.
            Ok(settings) => self.issues.extend(settings.check(&self.origins)),
            Err(e) => self.issues.push(SettingsIssue {
                origin: Origin::Default,
                key: yaml::ROOT.to_owned(),
                message: e.to_string(),
            }),
        }
        self.issues.sort_by(|a, b| a.origin.cmp(&b.origin));
        Err(SettingsError::Invalid {
            issues: self.issues,
        })
    }
}

/// The JSON pointer of the setting at `path`; setting names hold neither `/`
/// nor `~`, so they need no escaping.
pub(super) fn pointer(path: &[String]) -> String {
    path.iter().map(|part| format!("/{part}")).collect()
}

/// The settings a table holds, for "expected ..." hints.
pub(super) fn names(table: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = table
        .as_object()
        .map(|table| table.keys().map(String::as_str).collect())
        .unwrap_or_default();
    names.sort_unstable();
    names
}

/// Collects the settings a file's table `node` sets, checked against
/// `schema`, the table's defaults.
pub(super) fn read_table(
    reader: &mut Reader,
    node: &Node<'_>,
    path: &str,
    schema: &Value,
    out: &mut Vec<Assignment>,
) {
    // A table whose keys are all commented out keeps its defaults.
    if matches!(value(node), yaml::Value::Null) {
        return;
    }
    let Some(map) = reader.mapping(node, path) else {
        return;
    };
    for entry in reader.entries(map, path) {
        let key = child(path, entry.name);
        match schema.get(entry.name) {
            None => reader.unknown(&entry, path, "setting", &names(schema)),
            Some(table @ Value::Object(_)) => read_table(reader, entry.value, &key, table, out),
            Some(default) => out.extend(read_value(reader, entry.value, &key, default)),
        }
    }
}

/// The value of setting `key` from a file, of the type its `default` has.
pub(super) fn read_value(
    reader: &mut Reader,
    node: &Node<'_>,
    key: &str,
    default: &Value,
) -> Option<Assignment> {
    let at = |node: &Node<'_>, reader: &Reader| Origin::File {
        file: reader.file().to_owned(),
        line: line(node),
    };
    let mut item_origins = Vec::new();
    let value = match Kind::of(default) {
        Kind::Text => Value::String(reader.string(node, key)?.to_owned()),
        Kind::Bool => Value::Bool(reader.bool(node, key)?),
        Kind::Count => Value::from(reader.int_in(node, key, 0, i64::MAX)?),
        Kind::Number => Value::from(reader.float(node, key)?),
        Kind::List => {
            let items = reader.sequence(node, key)?;
            let mut values = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(text) = reader.string(item, &yaml::item(key, i)) {
                    values.push(Value::String(text.to_owned()));
                    item_origins.push(at(item, reader));
                }
            }
            if values.len() != items.len() {
                return None;
            }
            Value::Array(values)
        }
        // `read_table` walks into tables itself.
        Kind::Table => return None,
    };
    Some(Assignment {
        path: key.split('.').map(str::to_owned).collect(),
        value,
        origin: at(node, reader),
        item_origins,
    })
}
