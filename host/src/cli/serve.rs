//! `weft serve --config weftd.toml`: runs the daemon ([`weft_host::serve::Daemon`]), its admin
//! API and the registry sync until SIGTERM or SIGINT, then stops every pipeline after its current batch.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use weft_host::serve::{Daemon, DaemonConfig, api};
use weft_runtime::{Runtime, RuntimeOptions};

pub fn serve(config: &Path, grace: Duration, options: RuntimeOptions) -> anyhow::Result<ExitCode> {
    let daemon_config = DaemonConfig::load(config)?;
    let listen = daemon_config.listen;
    let runtime = Runtime::new(options)?;
    let daemon = Daemon::start(daemon_config, runtime.clone())?;
    // Reports lineage to [registry] and follows [cluster]; stopped before the pipelines are.
    let sync = weft_host::serve::registry_sync::RegistrySync::start(&daemon)?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        // The HTTP side is light; the pipelines have threads of their own.
        .worker_threads(2)
        .thread_name("weft-http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let listener = tokio
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("listening on {listen}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let stop = watch_signals(runtime)?;
    eprintln!(
        "weft serve: listening on http://{local}, {} pipeline(s) from {}",
        daemon.list().len(),
        daemon.config().pipelines.display()
    );
    let app = api::app(daemon.clone(), api::AdminAuth::from_config(daemon.config()));
    let served = tokio.block_on(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // The sender lives in the signal thread for the whole run.
                let _ = stop.await;
            })
            .await
    });
    eprintln!("weft serve: stopping every pipeline after its current batch");
    drop(sync);
    daemon.shutdown(grace);
    tokio.shutdown_timeout(Duration::from_secs(1));
    served.context("serving HTTP")?;
    eprintln!("weft serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// First SIGINT or SIGTERM: resolve the returned future (stop serving, then stop each
/// pipeline after its current batch). Second: interrupt the plugin calls under way, so a
/// processor that loops cannot hold the shutdown until its deadline. Third: exit at once.
fn watch_signals(runtime: Runtime) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing the signal handler")?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    std::thread::Builder::new()
        .name("weft-signals".into())
        .spawn(move || {
            for (count, _signal) in signals.forever().enumerate() {
                match count {
                    0 => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    1 => {
                        eprintln!("weft serve: stopping now: interrupting the running processors");
                        runtime.interrupt();
                    }
                    _ => std::process::exit(130),
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(rx)
}
