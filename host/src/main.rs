//! `freeway`: the gateway binary.
//!
//! ```text
//! freeway serve [--config PATH] [--listen ADDR]   start the gateway
//! freeway check [--config PATH]                   validate config and plugins, then exit
//! ```
//! Logs go to stderr (`FREEWAY_LOG` sets the filter, e.g. `debug` or `freeway=debug`;
//! `FREEWAY_LOG_FORMAT=json` for JSON lines). When ready, `serve` prints one line to stdout:
//! `freeway listening on http://ADDR`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use freeway::{app, reload, server};

const USAGE: &str = "usage:
  freeway serve [--config PATH] [--listen ADDR]   start the gateway (default config: config/gateway.toml)
  freeway check [--config PATH]                   validate the config and plugins, then exit";

struct Args {
    command: String,
    config: PathBuf,
    listen: Option<SocketAddr>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let command = args.next().ok_or_else(|| USAGE.to_string())?;
    if command == "-h" || command == "--help" {
        return Err(USAGE.to_string());
    }
    if command != "serve" && command != "check" {
        return Err(format!("unknown command {command:?}\n{USAGE}"));
    }
    let mut parsed = Args {
        command,
        config: PathBuf::from("config/gateway.toml"),
        listen: None,
    };
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--config" | "-c" => parsed.config = PathBuf::from(value("--config")?),
            "--listen" | "-l" => {
                let text = value("--listen")?;
                parsed.listen = Some(text.parse().map_err(|_| {
                    format!("--listen {text:?} is not an address like 127.0.0.1:8080")
                })?);
            }
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FREEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    if std::env::var("FREEWAY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("freeway: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let gateway = match runtime.block_on(app::build_gateway(&args.config)) {
        Ok(gateway) => gateway,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("freeway: {error:#}");
            return ExitCode::from(1);
        }
    };
    if args.command == "check" {
        println!("config and plugins OK: {}", args.config.display());
        return ExitCode::SUCCESS;
    }
    let result = runtime.block_on(async move {
        let snapshot = gateway.snapshot.load_full();
        let addr = args.listen.unwrap_or(snapshot.config.listen);
        let listener = server::bind(addr).await?;
        let shutdown = shutdown_signal();
        let reloader = reload::Reloader::new(gateway.clone(), args.config.clone());
        // The watcher lives as long as the server; without it the gateway still serves.
        if let Err(error) = reload::watch(reloader.clone()) {
            tracing::error!("cannot watch for changes, hot reload is off: {error:#}");
        }
        freeway::health::spawn(gateway.clone());
        let services = Arc::new(server::Services { gateway, reloader });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let admin = match snapshot.config.admin.listen {
            Some(admin_addr) => {
                let admin_listener = server::bind(admin_addr).await?;
                let admin_local = admin_listener.local_addr()?;
                let mut stop = stop_rx.clone();
                let services = services.clone();
                Some((
                    admin_local,
                    tokio::spawn(async move {
                        server::serve(services, admin_listener, server::Role::Admin, async move {
                            let _ = stop.wait_for(|stopped| *stopped).await;
                        })
                        .await
                    }),
                ))
            }
            None => None,
        };
        let local = listener.local_addr()?;
        tracing::info!(address = %local, "listening");
        println!("freeway listening on http://{local}");
        if let Some((admin_local, _)) = &admin {
            tracing::info!(address = %admin_local, "admin API listening");
            println!("freeway admin listening on http://{admin_local}");
        }
        let _ = std::io::stdout().flush();
        drop(snapshot);
        let served = server::serve(services, listener, server::Role::Public, async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
        if let Some((_, task)) = admin {
            let _ = task.await;
        }
        served
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("freeway: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Registers the signal handlers now (before the "listening" line is printed, so a SIGTERM
/// right after start is never missed) and resolves on the first SIGINT or SIGTERM.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    async move {
        match (terminate, interrupt) {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
}
