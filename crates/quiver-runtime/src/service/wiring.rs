//! Which source and sink a run uses, chosen from the settings: one type for
//! any source ([`AnySource`]) and one for any sink ([`AnySink`]), so the
//! service is compiled once, not once per source × sink pair.

use std::path::Path;

use quiver_core::Tick;
use quiver_io::live::{
    Ack, Acker, JsonlSink, LagProbe, LiveError, NoAck, NoLag, PreloadRequest, PublishReport,
    ReplaySource, SignalBatch, SignalSink, SourceLag, Stop, SyntheticSource, TickBatch, TickSource,
};
use quiver_io::redis::{RedisAcker, RedisLagProbe, RedisSignalSink, RedisTickSource};

use crate::settings::{Settings, SinkKind, SourceKind};

/// Why the source or sink the settings name could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// Settings or a file the user named (exit code 2 at the edge).
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Connect {
        context: &'static str,
        source: LiveError,
    },
    #[error("creating {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
}

/// The tick source the settings name (`quiver.source`).
pub enum AnySource {
    Synthetic(SyntheticSource),
    Replay(ReplaySource),
    Redis(RedisTickSource),
}

/// The signal sink the settings name (`quiver.sink`).
pub enum AnySink {
    Jsonl(JsonlSink),
    Redis(Box<RedisSignalSink>),
}

pub enum AnyAcker {
    None(NoAck),
    Redis(RedisAcker),
}

pub enum AnyProbe {
    None(NoLag),
    Redis(RedisLagProbe),
}

impl AnySource {
    pub async fn open(settings: &Settings) -> Result<AnySource, WiringError> {
        Ok(
            match settings.source_kind().map_err(WiringError::Invalid)? {
                SourceKind::Synthetic => {
                    let s = &settings.quiver.synthetic;
                    AnySource::Synthetic(SyntheticSource::new(s.instruments, s.seed, s.rate))
                }
                SourceKind::Replay(path) => {
                    let reader = quiver_io::open_ticks(&path)
                        .map_err(|err| WiringError::Invalid(err.to_string()))?;
                    AnySource::Replay(ReplaySource::new(reader, settings.quiver.replay.speed))
                }
                SourceKind::Redis => AnySource::Redis(
                    RedisTickSource::connect(settings.redis_source_config())
                        .await
                        .map_err(|source| WiringError::Connect {
                            context: "connecting the redis tick source",
                            source,
                        })?,
                ),
            },
        )
    }
}

impl AnySink {
    pub async fn open(settings: &Settings) -> Result<AnySink, WiringError> {
        Ok(match settings.sink_kind().map_err(WiringError::Invalid)? {
            SinkKind::Stdout => AnySink::Jsonl(JsonlSink::stdout()),
            SinkKind::Jsonl(path) => {
                AnySink::Jsonl(JsonlSink::new(path.display().to_string(), create(&path)?))
            }
            SinkKind::Redis => AnySink::Redis(Box::new(
                RedisSignalSink::connect(settings.redis_sink_config())
                    .await
                    .map_err(|source| WiringError::Connect {
                        context: "connecting the redis signal sink",
                        source,
                    })?,
            )),
        })
    }
}

fn create(path: &Path) -> Result<Box<dyn std::io::Write + Send>, WiringError> {
    let file = std::fs::File::create(path).map_err(|source| WiringError::Create {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Box::new(file))
}

impl TickSource for AnySource {
    type Acker = AnyAcker;
    type Probe = AnyProbe;

    fn describe(&self) -> String {
        match self {
            AnySource::Synthetic(s) => s.describe(),
            AnySource::Replay(s) => s.describe(),
            AnySource::Redis(s) => s.describe(),
        }
    }

    async fn acker(&mut self) -> Result<AnyAcker, LiveError> {
        Ok(match self {
            AnySource::Synthetic(s) => AnyAcker::None(s.acker().await?),
            AnySource::Replay(s) => AnyAcker::None(s.acker().await?),
            AnySource::Redis(s) => AnyAcker::Redis(s.acker().await?),
        })
    }

    async fn lag_probe(&mut self) -> Result<Option<AnyProbe>, LiveError> {
        Ok(match self {
            AnySource::Synthetic(s) => s.lag_probe().await?.map(AnyProbe::None),
            AnySource::Replay(s) => s.lag_probe().await?.map(AnyProbe::None),
            AnySource::Redis(s) => s.lag_probe().await?.map(AnyProbe::Redis),
        })
    }

    async fn preload(&mut self, request: &PreloadRequest) -> Result<Vec<Tick>, LiveError> {
        match self {
            AnySource::Synthetic(s) => s.preload(request).await,
            AnySource::Replay(s) => s.preload(request).await,
            AnySource::Redis(s) => s.preload(request).await,
        }
    }

    async fn next_batch(
        &mut self,
        max: usize,
        stop: &mut Stop,
    ) -> Result<Option<TickBatch>, LiveError> {
        match self {
            AnySource::Synthetic(s) => s.next_batch(max, stop).await,
            AnySource::Replay(s) => s.next_batch(max, stop).await,
            AnySource::Redis(s) => s.next_batch(max, stop).await,
        }
    }
}

impl Acker for AnyAcker {
    async fn ack(&mut self, ack: &Ack) -> Result<(), LiveError> {
        match self {
            AnyAcker::None(a) => a.ack(ack).await,
            AnyAcker::Redis(a) => a.ack(ack).await,
        }
    }
}

impl LagProbe for AnyProbe {
    async fn lag(&mut self) -> Result<SourceLag, LiveError> {
        match self {
            AnyProbe::None(p) => p.lag().await,
            AnyProbe::Redis(p) => p.lag().await,
        }
    }
}

impl SignalSink for AnySink {
    fn describe(&self) -> String {
        match self {
            AnySink::Jsonl(s) => s.describe(),
            AnySink::Redis(s) => s.describe(),
        }
    }

    async fn publish(&mut self, batch: &SignalBatch) -> Result<PublishReport, LiveError> {
        match self {
            AnySink::Jsonl(s) => s.publish(batch).await,
            AnySink::Redis(s) => s.publish(batch).await,
        }
    }

    async fn flush(&mut self) -> Result<(), LiveError> {
        match self {
            AnySink::Jsonl(s) => s.flush().await,
            AnySink::Redis(s) => s.flush().await,
        }
    }
}
