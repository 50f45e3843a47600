//! `quiver db`: the strategy config store in PostgreSQL, and reading a
//! strategies set from it wherever a command takes `--config`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use quiver_store::{ConfigStore, StoreError};

use crate::edge::{invalid, Failure, Outcome};

#[derive(clap::Args, Debug)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DbCommand {
    /// Create or upgrade the schema (strategy_configurations, strategy_set_options, the
    /// change-notification trigger).
    Init(UrlArg),
    /// Replace every row with a strategies file, validated whole first.
    Import {
        file: PathBuf,
        #[command(flatten)]
        url: UrlArg,
    },
    /// Write the rows as a strategies file (validated as one).
    Export {
        /// Where to write; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        url: UrlArg,
    },
}

#[derive(clap::Args, Debug)]
struct UrlArg {
    /// The database, e.g. postgres://quiver@127.0.0.1:5432/quiver.
    #[arg(long, env = "QUIVER_DATABASE_URL")]
    url: String,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::from)
}

fn store_failure(err: StoreError) -> Failure {
    match err {
        StoreError::Invalid(message) => invalid(message),
        err => Failure::from(anyhow::Error::new(err)),
    }
}

pub fn run(args: &DbArgs) -> Outcome {
    let rt = runtime()?;
    rt.block_on(async {
        match &args.command {
            DbCommand::Init(UrlArg { url }) => {
                let mut store = ConfigStore::connect(url).await.map_err(store_failure)?;
                let applied = store.init().await.map_err(store_failure)?;
                if applied.is_empty() {
                    eprintln!("quiver db init: {}: the schema is current", store.url());
                } else {
                    eprintln!(
                        "quiver db init: {}: applied {}",
                        store.url(),
                        applied.join(", ")
                    );
                }
            }
            DbCommand::Import { file, url } => {
                let text = quiver_store::read_file(file).map_err(store_failure)?;
                let mut store = ConfigStore::connect(&url.url)
                    .await
                    .map_err(store_failure)?;
                let rows = store.import(&text, file).await.map_err(store_failure)?;
                eprintln!(
                    "quiver db import: {} rows from {} into {}",
                    rows,
                    file.display(),
                    store.url()
                );
            }
            DbCommand::Export { out, url } => {
                let store = ConfigStore::connect(&url.url)
                    .await
                    .map_err(store_failure)?;
                let loaded = store.load().await.map_err(store_failure)?;
                match out {
                    Some(path) => std::fs::write(path, &loaded.text)
                        .with_context(|| format!("writing {}", path.display()))?,
                    None => std::io::stdout()
                        .write_all(loaded.text.as_bytes())
                        .context("writing standard output")?,
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The strategies set `--config` names, from a file or from the store (a
/// `postgres://` URL), with the path relative paths in it are resolved
/// against: the file's, or for the store the working directory.
pub fn load_config(config: &Path) -> Result<(quiver_config::Config, PathBuf), Failure> {
    let (cfg, path, _) = load_config_text(config)?;
    Ok((cfg, path))
}

/// [`load_config`], with the text the set was read as.
pub fn load_config_text(
    config: &Path,
) -> Result<(quiver_config::Config, PathBuf, String), Failure> {
    let name = config.to_string_lossy();
    if !quiver_store::is_store_url(&name) {
        let (cfg, text) = quiver_config::load_config_with_text(config).map_err(invalid)?;
        return Ok((cfg, config.to_owned(), text));
    }
    let rt = runtime()?;
    let loaded = rt.block_on(async {
        let store = ConfigStore::connect(&name).await?;
        store.load().await
    });
    let loaded = loaded.map_err(store_failure)?;
    Ok((
        loaded.config,
        PathBuf::from(quiver_store::TABLE),
        loaded.text,
    ))
}
