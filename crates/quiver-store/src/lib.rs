//! Strategy configurations in PostgreSQL, the production store beside the
//! YAML file (seeds 000, 001, 004).
//!
//! One row of `strategy_configurations` is one row of a strategies file: `id`,
//! `strategy_type`, `parameters` (JSONB), `active_brokers`, `instruments`,
//! `enabled`, `validator_type`, and in `options` (JSONB) whatever else a file
//! row may hold (`validator` as a mapping, `validators`, `priority`,
//! `budget_us_per_tick`); `position` keeps the file's order. The file-level
//! sections (`models`, `lifecycle`, `history_budget_mib`, `paper`, `risk`, `costs`) are rows of
//! `strategy_set_options`. A trigger on both tables notifies the channel
//! [`NOTIFY_CHANNEL`] on every change.
//!
//! Rows are validated exactly as a file is: [`ConfigStore::load`] renders
//! them as a strategies document (one row per line) and reads it with the
//! file's reader, so every rule, range and message is the same; only the
//! location changes, from `file:line` to the row's id. An import validates
//! the whole file first and replaces the table in one transaction, so the
//! store never holds half of a file.

use std::path::Path;

use quiver_config::yaml::{value, Node, Source, Value};
use quiver_config::Config;
use serde_json::{Map, Value as Json};
use tokio_postgres::{Client, NoTls};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The channel the tables' trigger notifies.
pub const NOTIFY_CHANNEL: &str = "quiver_strategy_configurations";

/// How messages name the table rows are read from.
pub const TABLE: &str = "strategy_configurations";

/// Columns of a row, in the order a rendered row lists them.
const COLUMNS: [&str; 6] = [
    "id",
    "strategy_type",
    "parameters",
    "brokers",
    "instruments",
    "enabled",
];

/// File-level sections kept in `strategy_set_options`, in file order.
const SET_OPTIONS: [&str; 6] = [
    "models",
    "lifecycle",
    "history_budget_mib",
    "paper",
    "risk",
    "costs",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("connecting to {url}: {source}")]
    Connect {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("{context}: {source}")]
    Db {
        context: &'static str,
        source: tokio_postgres::Error,
    },
    #[error("migrating the schema: {0}")]
    Migrate(#[from] refinery::Error),
    /// What the reader found wrong, every problem on a line of its own,
    /// located by file line or row id.
    #[error("{0}")]
    Invalid(String),
}

fn db(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |source| StoreError::Db { context, source }
}

/// A connection to the store.
pub struct ConfigStore {
    client: Client,
    url: String,
}

/// What [`ConfigStore::load`] read: the validated set, and the document it
/// was validated as (what `quiver db export` writes).
pub struct Loaded {
    pub config: Config,
    pub text: String,
}

impl ConfigStore {
    /// Connects to `url` (`postgres://user@host:port/db`); the connection is
    /// driven by a task on the current tokio runtime.
    pub async fn connect(url: &str) -> Result<ConfigStore, StoreError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(url),
                source,
            })?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                eprintln!("quiver-store: connection closed: {err}");
            }
        });
        Ok(ConfigStore {
            client,
            url: redact(url),
        })
    }

    /// The URL without its password, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates or upgrades the schema; returns the migrations applied now
    /// (none when it is current).
    pub async fn init(&mut self) -> Result<Vec<String>, StoreError> {
        let report = embedded::migrations::runner()
            .run_async(&mut self.client)
            .await?;
        Ok(report
            .applied_migrations()
            .iter()
            .map(|m| m.to_string())
            .collect())
    }

    /// Replaces every row with the strategies file `text` read from `file`,
    /// validated whole first; returns the rows written. Model paths relative
    /// to the file are stored absolute, since the store has no directory.
    pub async fn import(&mut self, text: &str, file: &Path) -> Result<usize, StoreError> {
        let name = file.display().to_string();
        quiver_config::parse_config(text, &name).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut document = Document::of_yaml(text, &name)?;
        let base = file.parent().unwrap_or(Path::new(""));
        for (key, value) in &mut document.options {
            if key == "models" {
                absolutize_models(value, base);
            }
        }
        let tx = self
            .client
            .transaction()
            .await
            .map_err(db("starting the import"))?;
        tx.batch_execute("DELETE FROM strategy_configurations; DELETE FROM strategy_set_options;")
            .await
            .map_err(db("clearing the tables"))?;
        for (key, value) in &document.options {
            tx.execute(
                "INSERT INTO strategy_set_options (key, value) VALUES ($1, $2)",
                &[key, value],
            )
            .await
            .map_err(db("writing strategy_set_options"))?;
        }
        for (position, row) in document.rows.iter().enumerate() {
            let text_of = |key: &str| row.get(key).and_then(Json::as_str).map(str::to_owned);
            let brokers: Vec<String> = row
                .get("brokers")
                .and_then(Json::as_array)
                .map(|b| {
                    b.iter()
                        .filter_map(|b| b.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let instruments: Vec<i64> = row
                .get("instruments")
                .and_then(Json::as_array)
                .map(|i| i.iter().filter_map(Json::as_i64).collect())
                .unwrap_or_default();
            let validator_type = row
                .get("validator")
                .and_then(Json::as_str)
                .map(str::to_owned);
            let mut options = Map::new();
            for (key, value) in row {
                let column = COLUMNS.contains(&key.as_str())
                    || (key == "validator" && validator_type.is_some());
                if !column {
                    options.insert(key.clone(), value.clone());
                }
            }
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO strategy_configurations \
                 (id, strategy_type, parameters, active_brokers, instruments, enabled, validator_type, options, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &text_of("id").unwrap_or_default(),
                    &text_of("strategy_type").unwrap_or_default(),
                    &row.get("parameters").cloned().unwrap_or(Json::Object(Map::new())),
                    &brokers,
                    &instruments,
                    &row.get("enabled").and_then(Json::as_bool).unwrap_or(true),
                    &validator_type,
                    &Json::Object(options),
                    &position,
                ],
            )
            .await
            .map_err(db("writing strategy_configurations"))?;
        }
        tx.commit().await.map_err(db("committing the import"))?;
        Ok(document.rows.len())
    }

    /// Reads every row and validates the set as a strategies file would be,
    /// with problems located by row id.
    pub async fn load(&self) -> Result<Loaded, StoreError> {
        let document = self.document().await?;
        let (text, lines) = document.render();
        match quiver_config::parse_config(&text, TABLE) {
            Ok(config) => Ok(Loaded { config, text }),
            Err(err) => Err(StoreError::Invalid(relocate(&err.to_string(), &lines))),
        }
    }

    async fn document(&self) -> Result<Document, StoreError> {
        let options = self
            .client
            .query("SELECT key, value FROM strategy_set_options", &[])
            .await
            .map_err(db("reading strategy_set_options"))?;
        let mut document = Document::default();
        for key in SET_OPTIONS {
            if let Some(row) = options.iter().find(|r| r.get::<_, String>(0) == key) {
                document.options.push((key.to_owned(), row.get(1)));
            }
        }
        let rows = self
            .client
            .query(
                "SELECT id, strategy_type, parameters, active_brokers, instruments, enabled, validator_type, options \
                 FROM strategy_configurations ORDER BY position, id",
                &[],
            )
            .await
            .map_err(db("reading strategy_configurations"))?;
        for row in rows {
            let mut out = Map::new();
            out.insert("id".into(), Json::String(row.get(0)));
            out.insert("strategy_type".into(), Json::String(row.get(1)));
            let parameters: Json = row.get(2);
            if parameters.as_object().is_none_or(|p| !p.is_empty()) {
                out.insert("parameters".into(), parameters);
            }
            let brokers: Vec<String> = row.get(3);
            out.insert("brokers".into(), Json::from(brokers));
            let instruments: Vec<i64> = row.get(4);
            out.insert("instruments".into(), Json::from(instruments));
            let enabled: bool = row.get(5);
            if !enabled {
                out.insert("enabled".into(), Json::Bool(false));
            }
            if let Some(validator) = row.get::<_, Option<String>>(6) {
                out.insert("validator".into(), Json::String(validator));
            }
            if let Json::Object(options) = row.get::<_, Json>(7) {
                out.extend(options);
            }
            document.rows.push(out);
        }
        Ok(document)
    }
}

/// `url` with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A strategies file as the store holds it: the sections, then the rows.
#[derive(Debug, Default, PartialEq)]
struct Document {
    options: Vec<(String, Json)>,
    rows: Vec<Map<String, Json>>,
}

/// Where a line of a rendered document came from.
#[derive(Debug, Clone, PartialEq)]
enum Origin {
    Option(String),
    Row(String),
    Other,
}

impl Document {
    /// The sections and rows of a valid strategies file.
    fn of_yaml(text: &str, file: &str) -> Result<Document, StoreError> {
        let invalid = |e: &dyn std::fmt::Display| StoreError::Invalid(e.to_string());
        let source = Source::new(text, file).map_err(|e| invalid(&e))?;
        let docs = source.documents().map_err(|e| invalid(&e))?;
        let mut document = Document::default();
        let Some(Value::Map(top)) = docs.first().map(value) else {
            return Err(StoreError::Invalid(format!(
                "{file}: not a strategies file"
            )));
        };
        for (key, node) in top.iter() {
            let Value::Str(key) = value(key) else {
                continue;
            };
            if key == "strategies" {
                if let Value::List(rows) = value(node) {
                    for row in rows {
                        if let Json::Object(row) = to_json(row) {
                            document.rows.push(row);
                        }
                    }
                }
            } else {
                document.options.push((key.to_owned(), to_json(node)));
            }
        }
        Ok(document)
    }

    /// The document as YAML (JSON flow values, one row per line), and where
    /// each line came from.
    fn render(&self) -> (String, Vec<Origin>) {
        let mut text = String::new();
        let mut lines = Vec::new();
        for (key, value) in &self.options {
            text += &format!("{key}: {value}\n");
            lines.push(Origin::Option(key.clone()));
        }
        text += "strategies:\n";
        lines.push(Origin::Other);
        if self.rows.is_empty() {
            text += "  []\n";
            lines.push(Origin::Other);
        }
        for row in &self.rows {
            text += &format!("  - {}\n", Json::Object(row.clone()));
            let id = row
                .get("id")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned();
            lines.push(Origin::Row(id));
        }
        (text, lines)
    }
}

/// Model paths in a `models:` section (the registry's path, or each inline
/// model's `path`) joined to `base` when relative.
fn absolutize_models(models: &mut Json, base: &Path) {
    let absolute = |path: &str| -> String {
        let joined = base.join(path);
        std::fs::canonicalize(&joined)
            .unwrap_or(joined)
            .display()
            .to_string()
    };
    match models {
        Json::String(path) if Path::new(path.as_str()).is_relative() => {
            *path = absolute(path);
        }
        Json::Array(entries) => {
            for entry in entries {
                if let Some(Json::String(path)) = entry.get_mut("path") {
                    if Path::new(path.as_str()).is_relative() {
                        *path = absolute(path);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The YAML value of `node` as JSON (the tree of a file already validated).
fn to_json(node: &Node<'_>) -> Json {
    match value(node) {
        Value::Int(v) => Json::from(v),
        Value::Float(v) => serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number),
        Value::Bool(v) => Json::Bool(v),
        Value::Str(v) => Json::String(v.to_owned()),
        Value::Null | Value::Other(_) => Json::Null,
        Value::List(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(map) => {
            let mut out = Map::new();
            for (key, value) in map.iter() {
                let key = match self::value(key) {
                    Value::Str(k) => k.to_owned(),
                    Value::Int(k) => k.to_string(),
                    _ => continue,
                };
                out.insert(key, to_json(value));
            }
            Json::Object(out)
        }
    }
}

/// The reader's messages about a rendered document, `TABLE:line:` replaced
/// by the row (or section) the line holds.
fn relocate(message: &str, lines: &[Origin]) -> String {
    let prefix = format!("{TABLE}:");
    message
        .lines()
        .map(|line| {
            let Some(rest) = line.strip_prefix(&prefix) else {
                return line.to_owned();
            };
            let (number, tail) = rest.split_once(':').unwrap_or((rest, ""));
            let origin = number
                .parse::<usize>()
                .ok()
                .and_then(|n| lines.get(n.saturating_sub(1)));
            match origin {
                Some(Origin::Row(id)) => format!("{TABLE} row {id:?}:{tail}"),
                Some(Origin::Option(key)) => format!("strategy_set_options key {key:?}:{tail}"),
                _ => format!("{TABLE}:{tail}"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the strategies file at `path` for [`ConfigStore::import`].
pub fn read_file(path: &Path) -> Result<String, StoreError> {
    quiver_config::files::read_regular_text(path, quiver_config::files::CONFIG_FILE_LIMIT)
        .map_err(|err| StoreError::Invalid(format!("{}: {err}", path.display())))
}

/// Whether `config` names the store rather than a file.
pub fn is_store_url(config: &str) -> bool {
    config.starts_with("postgres://") || config.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "lifecycle: {quarantine_after: 3}\nstrategies:\n  - id: a\n    strategy_type: momentum\n    parameters: {lookback_periods: 5}\n    brokers: [paper]\n    instruments: [1, 2]\n    priority: critical\n  - id: b\n    strategy_type: rsi\n    enabled: false\n    brokers: [paper, zerodha]\n    instruments: [3]\n";

    #[test]
    fn a_file_renders_back_to_the_same_set() {
        let document = Document::of_yaml(FILE, "f.yaml").unwrap();
        assert_eq!(document.rows.len(), 2);
        let (text, lines) = document.render();
        let again = quiver_config::parse_config(&text, TABLE).unwrap();
        let original = quiver_config::parse_config(FILE, "f.yaml").unwrap();
        let placeless = |c: &Config| {
            c.strategies
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.line = 0;
                    r
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(placeless(&again), placeless(&original));
        assert_eq!(again.lifecycle, original.lifecycle);
        assert_eq!(lines[0], Origin::Option("lifecycle".into()));
        assert_eq!(lines[2], Origin::Row("a".into()));
    }

    #[test]
    fn the_desk_sections_survive_the_store_s_json() {
        // JSON keys are strings: an instrument's costs come back keyed "1".
        let file = format!(
            "paper: {{fill: limit, slippage_bps: 0.25, strategies: {{a: {{signals: target}}}}}}\n\
             risk: {{max_strategy_exposure: 1000.5, tags: {{banks: [1, 2]}}, max_tag_exposure: {{banks: 300}}}}\n\
             costs: {{taker_fee_bps: 2, instruments: {{1: {{taker_fee_bps: 4}}}}}}\n{FILE}"
        );
        let document = Document::of_yaml(&file, "f.yaml").unwrap();
        let (text, _) = document.render();
        let again = quiver_config::parse_config(&text, TABLE).unwrap();
        let original = quiver_config::parse_config(&file, "f.yaml").unwrap();
        assert_ne!(original.desk, quiver_paper::DeskSpec::default());
        assert_eq!(again.desk, original.desk);
    }

    #[test]
    fn messages_name_the_row_instead_of_the_line() {
        let lines = vec![Origin::Other, Origin::Row("mom-1".into())];
        assert_eq!(
            relocate(
                "strategy_configurations:2: strategies[0] (id \"mom-1\").parameters.speed: unknown parameter",
                &lines
            ),
            "strategy_configurations row \"mom-1\": strategies[0] (id \"mom-1\").parameters.speed: unknown parameter"
        );
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://quiver:secret@127.0.0.1:5432/db"),
            "postgres://quiver:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact("postgres://quiver@h/db"), "postgres://quiver@h/db");
    }
}
