//! `quiver run`: the live service.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use quiver_io::live::Stop;
use quiver_runtime::service::ConfigSource;
use quiver_runtime::{AnySink, AnySource, Flag, Service, Settings, WiringError};

use crate::edge::{invalid, note, Outcome};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Strategies file (YAML).
    #[arg(long)]
    config: PathBuf,
    /// Service settings (.yaml, .yml or .toml); environment variables
    /// (QUIVER__*, STRATEGY__*) override it, and these flags override both.
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Tick source: synthetic, replay:FILE or redis.
    #[arg(long)]
    source: Option<String>,
    /// Replay speed: a multiple of the file's own pace (0 = unpaced).
    #[arg(long)]
    speed: Option<f64>,
    /// Synthetic ticks per second (0 = unpaced).
    #[arg(long)]
    rate: Option<f64>,
    /// Signal sink: stdout, jsonl:FILE or redis.
    #[arg(long)]
    sink: Option<String>,
    /// Redis URL.
    #[arg(long)]
    redis: Option<String>,
    /// HTTP address for /metrics, /health, /ready, /strategies ("off" disables).
    #[arg(long)]
    http: Option<String>,
    /// Run the strategies file's paper desk (paper:, risk:, costs:) beside the brokers and
    /// write its backtest report into this directory (trades.csv as the run goes, the rest on
    /// shutdown).
    #[arg(long, value_name = "DIR")]
    paper_report: Option<String>,
    /// Record every inbound tick into DIR as Parquet partitions (<instrument>/YYYYMMDD.parquet,
    /// dates in quiver.session.timezone), readable at least every second and finished on
    /// shutdown: `quiver replay --ticks DIR` replays the session.
    #[arg(long, value_name = "DIR")]
    record: Option<String>,
}

pub fn run(args: &RunArgs) -> Outcome {
    let flags: Vec<Flag> = [
        ("--source", "quiver.source", args.source.clone()),
        (
            "--speed",
            "quiver.replay.speed",
            args.speed.map(|v| v.to_string()),
        ),
        (
            "--rate",
            "quiver.synthetic.rate",
            args.rate.map(|v| v.to_string()),
        ),
        ("--sink", "quiver.sink", args.sink.clone()),
        ("--redis", "quiver.redis_url", args.redis.clone()),
        ("--http", "quiver.http_addr", args.http.clone()),
        (
            "--paper-report",
            "quiver.paper_report",
            args.paper_report.clone(),
        ),
        ("--record", "quiver.record", args.record.clone()),
    ]
    .into_iter()
    .filter_map(|(flag, key, value)| {
        Some(Flag {
            flag,
            key,
            value: value?,
        })
    })
    .collect();
    let settings = Settings::load_with_flags(args.settings.as_deref(), std::env::vars(), &flags)
        .map_err(|err| invalid(format!("error: {err}")))?;
    let (config, config_path, text) = crate::db_cmd::load_config_text(&args.config)?;
    let source = if quiver_store::is_store_url(&args.config.to_string_lossy()) {
        ConfigSource::Store(args.config.to_string_lossy().into_owned())
    } else {
        ConfigSource::File(args.config.clone())
    };
    // The file was checked against its budget as replay builds it; the
    // service's warm-up floor deepens every ring.
    let warmup = settings.strategy.warmup_ticks;
    if warmup > 0 {
        config.check_history_budget(warmup).map_err(|err| {
            invalid(format!(
                "error: {}: with strategy.warmup_ticks = {warmup}, {err}",
                args.config.display()
            ))
        })?;
    }
    eprintln!("quiver run: {}", config.summary());
    let mut options = settings
        .quiver
        .store_options()
        .map_err(|err| invalid(format!("error: {err}")))?;
    options.deadline = Some(settings.strategy.inference_deadline());
    let registry =
        (!settings.quiver.models.is_empty()).then(|| PathBuf::from(&settings.quiver.models));
    let models =
        quiver_runtime::models::Models::open(&config_path, &config, registry.as_deref(), options)
            .map_err(invalid)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("quiver-io")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(settings, &config, &models, (source, text)))
}

async fn serve(
    settings: Settings,
    config: &quiver_config::Config,
    models: &quiver_runtime::models::Models,
    (source, text): (ConfigSource, String),
) -> Outcome {
    let service = Service::new(config, models, settings.clone())
        .context("starting the service")?
        .with_reloads(source, config, &text, models);
    let telemetry = service.telemetry();
    let control = service.control();
    let reload = service.reload_handle();
    let (stop_switch, stop) = Stop::new();
    let stop_switch = std::sync::Arc::new(stop_switch);
    tokio::spawn(forward_signals(std::sync::Arc::clone(&stop_switch)));

    let (http_done, http_done_rx) = tokio::sync::oneshot::channel::<()>();
    let http = match settings.http_addr().map_err(anyhow::Error::msg)? {
        Some(addr) => {
            let limits = settings.quiver.http.limits();
            let admin = quiver_runtime::http::admin::Admin {
                control,
                token: Some(settings.quiver.admin_token.clone()).filter(|t| !t.is_empty()),
                reload,
            };
            let (bound, task) =
                quiver_runtime::http::serve(addr, telemetry, admin, limits, async {
                    let _ = http_done_rx.await;
                })
                .await
                .with_context(|| format!("binding the HTTP endpoints to {addr}"))?;
            note(&format!(
                "quiver run: http on http://{bound} (/metrics /health /ready /strategies /config, POST /strategies/ID/pause|resume|stop|reset, POST /reload)"
            ));
            Some(task)
        }
        None => None,
    };
    let result = async {
        let source = AnySource::open(&settings).await.map_err(wiring)?;
        let sink = AnySink::open(&settings).await.map_err(wiring)?;
        service
            .run(source, sink, stop)
            .await
            .map_err(|err| crate::edge::Failure::from(anyhow::Error::new(err)))
    }
    .await;
    let _ = http_done.send(());
    if let Some(task) = http {
        let _ = task.await;
    }
    let report = result?;
    note(&format!(
        "quiver run: stopped: {} ticks dispatched ({} preloaded, {} outside the session), {} signals published, {} duplicates suppressed, {} dead-lettered ({} of them withheld from a paused broker, {} refused by the paper desk), {} evaluations shed",
        report.ticks,
        report.preloaded,
        report.outside_session,
        report.signals_published,
        report.duplicates,
        report.dead_lettered + report.withheld + report.refused_by_desk,
        report.withheld,
        report.refused_by_desk,
        report.shed
    ));
    if !settings.quiver.paper_report.is_empty() {
        let page = std::path::Path::new(&settings.quiver.paper_report).join("report.html");
        note(&format!(
            "quiver run: paper trading report: {}",
            page.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// A source or sink the settings name that cannot be opened.
fn wiring(err: WiringError) -> crate::edge::Failure {
    match err {
        WiringError::Invalid(message) => invalid(message),
        err => anyhow::Error::new(err).into(),
    }
}

/// SIGTERM or SIGINT: stop reading, drain, exit 0. A second one exits at once.
async fn forward_signals(stop: std::sync::Arc<tokio::sync::watch::Sender<bool>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; SIGTERM will not drain");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    // Raise stop before saying so: a service whose stderr is gone (its
    // reader exited) must still drain, and `eprintln!` would panic there.
    let _ = stop.send(true);
    note(&format!("quiver run: {name}: draining"));
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    note("quiver run: second signal: exiting without draining (pending ticks are processed again on the next start)");
    std::process::exit(130);
}
