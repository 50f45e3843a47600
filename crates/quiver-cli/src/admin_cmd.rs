//! `quiver admin`: the operator's client for a running service's admin
//! API — list the strategies, pause, resume, stop or reset one.
//!
//! The requests are one-shot HTTP/1.1 exchanges with `Connection: close` on
//! loopback, small enough to write by hand rather than pull in a client.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::edge::{invalid, Outcome};

#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    /// Address of the service's HTTP endpoints.
    #[arg(long, default_value = "127.0.0.1:9464")]
    addr: String,
    /// Bearer token for mutations; defaults to $QUIVER__ADMIN_TOKEN.
    #[arg(long, env = "QUIVER__ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// One line per strategy: id, state, evaluations, signals, errors.
    List,
    /// One strategy's row and its latest lifecycle changes, as JSON.
    Show {
        id: String,
    },
    /// Stop evaluating a strategy until it is resumed.
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    /// Stop a strategy for good.
    Stop {
        id: String,
    },
    /// Clear a strategy's failures and state; a quarantined one goes back to work.
    Reset {
        id: String,
    },
    /// Reload the strategy set now (validated whole; refused, the running set keeps serving).
    Reload,
    /// The strategy set serving: source, version, the latest reload.
    Config,
}

const TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(args: &AdminArgs) -> Outcome {
    let (method, path) = match &args.action {
        Action::List => ("GET", "/strategies".to_owned()),
        Action::Show { id } => ("GET", format!("/strategies/{}", encode(id))),
        Action::Pause { id } => ("POST", format!("/strategies/{}/pause", encode(id))),
        Action::Resume { id } => ("POST", format!("/strategies/{}/resume", encode(id))),
        Action::Stop { id } => ("POST", format!("/strategies/{}/stop", encode(id))),
        Action::Reset { id } => ("POST", format!("/strategies/{}/reset", encode(id))),
        Action::Reload => ("POST", "/reload".to_owned()),
        Action::Config => ("GET", "/config".to_owned()),
    };
    let (status, body) = exchange(&args.addr, method, &path, args.token.as_deref())?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(body);
        return Err(invalid(format!("{method} {path}: {status}: {message}")));
    }
    match &args.action {
        Action::List => print_list(&body)?,
        Action::Show { .. } | Action::Config => println!("{body}"),
        Action::Reload => print_reload(&body)?,
        _ => print_transitions(&body)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_reload(body: &str) -> anyhow::Result<()> {
    let reply: serde_json::Value = serde_json::from_str(body).context("reply is not JSON")?;
    match reply["result"].as_str() {
        Some("applied") => println!(
            "reloaded: {}; version {} serving",
            reply["changes"].as_str().unwrap_or("?"),
            reply["version"].as_str().unwrap_or("?")
        ),
        _ => println!(
            "unchanged: version {} serving",
            reply["version"].as_str().unwrap_or("?")
        ),
    }
    Ok(())
}

fn print_list(body: &str) -> anyhow::Result<()> {
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(body).context("the service's /strategies is not a JSON list")?;
    println!(
        "{:<24} {:<12} {:>12} {:>10} {:>8}",
        "id", "state", "evaluations", "signals", "errors"
    );
    for row in rows {
        println!(
            "{:<24} {:<12} {:>12} {:>10} {:>8}",
            row["id"].as_str().unwrap_or("?"),
            row["state"].as_str().unwrap_or("?"),
            row["evaluations"],
            row["signals"],
            row["errors"],
        );
    }
    Ok(())
}

fn print_transitions(body: &str) -> anyhow::Result<()> {
    let reply: serde_json::Value = serde_json::from_str(body).context("reply is not JSON")?;
    let changes = reply["transitions"].as_array().cloned().unwrap_or_default();
    if changes.is_empty() {
        println!("no change: the strategy already was there");
    }
    for change in changes {
        println!(
            "{} -> {} ({})",
            change["from"].as_str().unwrap_or("?"),
            change["to"].as_str().unwrap_or("?"),
            change["cause"].as_str().unwrap_or("?"),
        );
    }
    Ok(())
}

/// Percent-encodes what is not a strategy-id character.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One request, the status code and body of its response.
fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let target = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} names no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)
        .with_context(|| format!("connecting to the service at {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream
        .take(16 << 20)
        .read_to_end(&mut response)
        .with_context(|| format!("reading the reply from {addr}"))?;
    let text = String::from_utf8_lossy(&response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("{addr} sent no complete HTTP response");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{addr} sent no status code"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// The body of a chunked response.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_and_chunks_joined() {
        assert_eq!(encode("mom-1.a_b"), "mom-1.a_b");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }
}
