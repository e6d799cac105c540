//! `weft-registry`: serves the registry; prints the bound address on stdout once listening.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use weft_registry::config::{Cli, Settings};
use weft_registry::{AppState, app};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = Settings::resolve(Cli::parse())?;
    if settings.tokens.is_empty() {
        tracing::warn!("no token configured: the registry is read-only (pass --token)");
    }
    let listen = settings.listen;
    let state = AppState::open(settings.clone())
        .with_context(|| format!("opening the data directory {:?}", settings.data_dir))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr()?;
    // Scripts and tests read the address from stdout (useful with port 0).
    println!("listening on http://{bound}");
    std::io::stdout().flush()?;
    tracing::info!(%bound, data_dir = ?settings.data_dir, "weft-registry started");
    let store = state.store.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown())
        .await?;
    store.flush()?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
