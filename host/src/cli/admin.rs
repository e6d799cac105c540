//! `weft status` and `weft pipelines ...`: a running `weft serve` from the command line,
//! through its admin API. Errors print the daemon's own message (and every validation error).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use weft_host::serve::api::{ErrorBody, PutResponse, Readiness};
use weft_host::serve::{PipelineDetail, PipelineStatus};

/// Where the daemon's admin API is.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Base URL of the daemon's admin API (its `listen` address).
    #[arg(
        long = "admin",
        env = "WEFT_ADMIN_URL",
        default_value = "http://127.0.0.1:7070",
        global = true
    )]
    pub url: String,
    /// Bearer token for changes (one of the daemon's `admin_tokens`).
    #[arg(long, env = "WEFT_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PipelinesCommand {
    /// Name and state of every pipeline.
    List,
    /// One pipeline: status, stages with their counters, source lag, config as loaded.
    Show {
        name: String,
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Create or replace a pipeline from a pipeline file (validated first; the running
    /// version is swapped at a batch boundary).
    Apply { name: String, file: PathBuf },
    /// Stop a pipeline after its current batch and remove its file.
    Delete { name: String },
    /// Pause after the current batch.
    Pause { name: String },
    /// Resume a paused pipeline.
    Resume { name: String },
    /// Rebuild a pipeline, resolving registry references again.
    Restart { name: String },
}

/// A client of one daemon.
struct Admin {
    http: Client,
    base: String,
    token: Option<String>,
}

impl Admin {
    fn new(args: &AdminArgs) -> anyhow::Result<Self> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A put builds plugins; a pause waits for the batch in flight.
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: args.url.trim_end_matches('/').to_string(),
            token: args.admin_token.clone(),
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends, and decodes a success; an error answer becomes its message (and list).
    fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> anyhow::Result<(StatusCode, T)> {
        let response = req
            .send()
            .with_context(|| format!("no answer from weft serve at {}", self.base))?;
        let status = response.status();
        if status.is_success() {
            let value = response
                .json()
                .with_context(|| format!("unexpected answer from {}", self.base))?;
            return Ok((status, value));
        }
        bail!(error_message(status, response))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        Ok(self.send(self.request(Method::GET, path))?.1)
    }

    fn write<T: DeserializeOwned>(&self, method: Method, path: &str) -> anyhow::Result<T> {
        Ok(self.send(self.request(method, path))?.1)
    }
}

/// The daemon's error message, each validation error on a line of its own.
fn error_message(status: StatusCode, response: Response) -> String {
    let text = response.text().unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => {
            let mut message = body.message;
            for error in body.errors {
                message.push_str("\n  ");
                message.push_str(&error.replace('\n', "\n  "));
            }
            message
        }
        Err(_) => format!("HTTP {status}: {}", text.trim()),
    }
}

/// `weft status`: a table of every pipeline, and whether the daemon is ready.
pub fn status(args: &AdminArgs, json: bool) -> anyhow::Result<ExitCode> {
    let admin = Admin::new(args)?;
    let pipelines: Vec<PipelineStatus> = admin.get("/v1/pipelines")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&pipelines)?);
        return Ok(ExitCode::SUCCESS);
    }
    // `/ready` answers 503 with the same body when something is not running.
    let readiness: Option<Readiness> = admin
        .request(Method::GET, "/ready")
        .send()
        .ok()
        .and_then(|r| r.json().ok());
    print!("{}", status_table(&pipelines));
    match readiness {
        Some(r) if r.ready => println!("\nready: every pipeline is where it was asked to be"),
        Some(r) => println!("\nnot ready: {}", r.not_ready.join(", ")),
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft pipelines ...`
pub fn pipelines(args: &AdminArgs, command: PipelinesCommand) -> anyhow::Result<ExitCode> {
    let admin = Admin::new(args)?;
    match command {
        PipelinesCommand::List => {
            let pipelines: Vec<PipelineStatus> = admin.get("/v1/pipelines")?;
            if pipelines.is_empty() {
                println!("no pipelines at {}", admin.base);
            }
            for p in pipelines {
                println!("{:<24} {}", p.name, p.state.as_str());
            }
        }
        PipelinesCommand::Show { name, json } => {
            let detail: serde_json::Value = admin.get(&path(&name)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
            } else {
                let detail: PipelineDetail = serde_json::from_value(detail)
                    .with_context(|| format!("unexpected answer from {}", admin.base))?;
                print!("{}", detail_text(&detail));
            }
        }
        PipelinesCommand::Apply { name, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let req = admin
                .request(Method::PUT, &path(&name)?)
                .header(reqwest::header::CONTENT_TYPE, "application/toml")
                .body(text);
            let (_, put): (_, PutResponse) = admin
                .send(req)
                .with_context(|| format!("applying {} as {name}", file.display()))?;
            let outcome = serde_json::to_value(put.outcome)?;
            println!("{}: {}", put.name, outcome.as_str().unwrap_or_default());
        }
        PipelinesCommand::Delete { name } => {
            let _: serde_json::Value = admin.write(Method::DELETE, &path(&name)?)?;
            println!("{name}: deleted");
        }
        PipelinesCommand::Pause { name } => control(&admin, &name, "pause")?,
        PipelinesCommand::Resume { name } => control(&admin, &name, "resume")?,
        PipelinesCommand::Restart { name } => control(&admin, &name, "restart")?,
    }
    Ok(ExitCode::SUCCESS)
}

fn control(admin: &Admin, name: &str, action: &str) -> anyhow::Result<()> {
    let req = admin.request(Method::POST, &format!("{}/{action}", path(name)?));
    let (code, status): (_, PipelineStatus) = admin.send(req)?;
    if code == StatusCode::ACCEPTED {
        // The pipeline is still in its batch: the daemon applies it at the boundary.
        println!(
            "{}: {} ({action} requested, applied at the next batch boundary)",
            status.name,
            status.state.as_str()
        );
    } else {
        println!("{}: {}", status.name, status.state.as_str());
    }
    Ok(())
}

/// `/v1/pipelines/NAME`, for a name the daemon could have: anything else (a `/`, a `..`)
/// would address another route, so it is refused here.
fn path(name: &str) -> anyhow::Result<String> {
    if !weft_host::serve::valid_name(name) {
        bail!(
            "invalid pipeline name {name:?}: use letters, digits, '-', '_' and '.', at most 100 characters, not starting with '.'"
        );
    }
    Ok(format!("/v1/pipelines/{name}"))
}

/// The `weft status` table.
pub fn status_table(pipelines: &[PipelineStatus]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "UPTIME".into(),
        "IN".into(),
        "OUT".into(),
        "DEAD".into(),
        "STAGES".into(),
        "LAST ERROR".into(),
    ]];
    for p in pipelines {
        rows.push([
            p.name.clone(),
            p.state.as_str().to_string(),
            duration(p.uptime_s),
            p.events_in.to_string(),
            p.events_out.to_string(),
            p.dead_letters.to_string(),
            if p.stages.is_empty() {
                "-".into()
            } else {
                p.stages
                    .iter()
                    .map(|s| short_stage(s))
                    .collect::<Vec<_>>()
                    .join(" → ")
            },
            p.last_error
                .as_deref()
                .map(|e| one_line(e, 60))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            // Counts align right, text left; the last column is not padded.
            let width = widths[c];
            let cell = match c {
                3..=5 => format!("{cell:>width$}"),
                7 => cell.clone(),
                _ => format!("{cell:<width$}"),
            };
            line.push_str(&cell);
            if c < 7 {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if pipelines.is_empty() {
        out.push_str("(no pipelines)\n");
    }
    out
}

/// `pipelines show` as text.
fn detail_text(d: &PipelineDetail) -> String {
    let s = &d.status;
    let mut out = format!(
        "{}  {}  for {}  (file {})\n",
        s.name,
        s.state.as_str(),
        duration(s.uptime_s),
        d.file
    );
    out += &format!(
        "  events    in {} · out {} · dead letters {} · restarts {}\n",
        s.events_in, s.events_out, s.dead_letters, s.restarts
    );
    if let Some(commit) = &d.last_commit {
        out += &format!("  committed {commit}\n");
    }
    if let Some(error) = &s.last_error {
        out += &format!("  error     {}\n", error.replace('\n', "\n            "));
    }
    for st in &d.stages {
        out += &format!(
            "  stage {}   {} (sha256 {})  in {} · out {} · rejected {} · traps {} · busy {:.3}s\n",
            st.stage,
            st.processor,
            st.sha256.get(..12).unwrap_or(&st.sha256),
            st.events_in,
            st.events_out,
            st.rejected,
            st.traps,
            st.busy_s
        );
    }
    for lag in &d.source_lag {
        out += &format!("  lag       {}[{}] {}\n", lag.topic, lag.partition, lag.lag);
    }
    out
}

/// `name@version@sha256` with the digest cut to 12 characters, as `docker ps` cuts ids.
fn short_stage(stage: &str) -> String {
    match stage.rsplit_once('@') {
        Some((id, digest)) if digest.len() > 12 && id.contains('@') => {
            format!("{id}@{}", &digest[..12])
        }
        _ => stage.to_string(),
    }
}

/// The first line of `text`, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max && !text.contains('\n') {
        return line.to_string();
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// `45s`, `12m03s`, `5h07m`, `3d04h`.
fn duration(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_host::serve::State;

    fn status(name: &str, state: State, stages: &[&str], error: Option<&str>) -> PipelineStatus {
        PipelineStatus {
            name: name.into(),
            state,
            uptime_s: 7380.4,
            stages: stages.iter().map(|s| s.to_string()).collect(),
            pins: stages.iter().map(|s| s.to_string()).collect(),
            reader_schema_id: None,
            upgrade: None,
            canary: None,
            last_error: error.map(str::to_string),
            restarts: 0,
            events_in: 120431,
            events_out: 80287,
            dead_letters: 12,
        }
    }

    #[test]
    fn the_status_table_aligns_and_shortens() {
        let digest = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b";
        let table = status_table(&[
            status(
                "titles",
                State::Running,
                &[
                    &format!("filter@0.1.0@{digest}"),
                    &format!("mask@1.2.0@{digest}"),
                ],
                None,
            ),
            status(
                "orders-eu",
                State::Failed,
                &[],
                Some("sink kafka orders-out: broker transport failure\nmore detail"),
            ),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[0].starts_with("NAME       STATE    UPTIME"),
            "{table}"
        );
        assert!(
            lines[1].contains("filter@0.1.0@1a2b3c4d5e6f → mask@1.2.0@1a2b3c4d5e6f"),
            "{table}"
        );
        assert!(lines[1].contains("2h03m"), "{table}");
        assert!(lines[1].ends_with("  -"), "{table}");
        assert!(lines[2].starts_with("orders-eu  FAILED"), "{table}");
        assert!(lines[2].ends_with("broker transport failure…"), "{table}");
        // The IN column ends at the same place on every line.
        let end = |l: &str| l.find("120431").map(|i| i + 6);
        assert_eq!(end(lines[1]), end(lines[2]));
        assert_eq!(
            status_table(&[]),
            "NAME  STATE  UPTIME  IN  OUT  DEAD  STAGES  LAST ERROR\n(no pipelines)\n"
        );
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(59.9), "59s");
        assert_eq!(duration(723.0), "12m03s");
        assert_eq!(duration(18_420.0), "5h07m");
        assert_eq!(duration(273_600.0), "3d04h");
        assert_eq!(duration(f64::NAN), "0s");
    }

    #[test]
    fn names_that_would_leave_the_route_are_refused() {
        assert_eq!(
            path("orders-eu.v2").expect("valid"),
            "/v1/pipelines/orders-eu.v2"
        );
        for bad in ["..", "a/b", "x?y", ""] {
            assert!(path(bad).is_err(), "{bad}");
        }
    }
}
