//! `quiver publish`: push a tick file into the tick streams.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use quiver_io::live::LiveError;
use quiver_io::redis::{connect, publish_ticks, PublishOptions};

use crate::edge::{invalid, Outcome};

#[derive(clap::Args)]
pub struct PublishArgs {
    /// Tick file: .csv or .jsonl.
    #[arg(long)]
    ticks: PathBuf,
    /// Redis URL, e.g. redis://127.0.0.1:6379/.
    #[arg(long)]
    redis: String,
    /// Tick stream (with --partitions > 1, STREAM.<p>).
    #[arg(long, default_value = "market.ticks")]
    stream: String,
    /// Partitions: instruments are spread over STREAM.0 .. STREAM.<P-1> by a stable hash.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    partitions: u32,
    /// Ticks per second (default: as fast as the server takes them).
    #[arg(long)]
    rate: Option<f64>,
}

pub fn run(args: &PublishArgs) -> Outcome {
    let ticks = quiver_io::open_ticks(&args.ticks).map_err(invalid)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let options = PublishOptions {
        stream: args.stream.clone(),
        partitions: args.partitions,
        rate: args.rate,
        chunk: 1_000,
    };
    let started = Instant::now();
    let published = runtime.block_on(async {
        let mut conn = connect(&args.redis, std::time::Duration::from_secs(10)).await?;
        publish_ticks(&mut conn, ticks, &options).await
    });
    match published {
        Ok(progress) => {
            eprintln!(
                "published {} ticks to {}{} in {:.2} s",
                progress.ticks,
                args.stream,
                if args.partitions > 1 {
                    format!(".0 .. {}.{}", args.stream, args.partitions - 1)
                } else {
                    String::new()
                },
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(
            err @ LiveError::Fatal {
                context: "reading ticks",
                ..
            },
        ) => Err(invalid(format!("error: {err}"))),
        Err(err) => Err(anyhow::Error::new(err).into()),
    }
}
