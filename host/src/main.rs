//! `freeway`: the gateway binary.
//!
//! Logs go to stderr (`FREEWAY_LOG` sets the filter, e.g. `debug` or `freeway=debug`;
//! `FREEWAY_LOG_FORMAT=json` for JSON lines). When ready, `serve` prints one line to stdout:
//! `freeway listening on http://ADDR`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: a request allocates and frees many small buffers
/// (headers, JSON, plugin call arguments), where glibc's malloc and free took ~9% of the
/// gateway's CPU (`perf`, tests/bench/README.md); with mimalloc a pooled request costs ~17 µs
/// less. Built without transparent huge pages (`no_thp`), which would fault in 2 MiB at a time
/// and double the idle RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use freeway::cli::keys::KeysCommand;
use freeway::pipeline::Gateway;
use freeway::{cli, pipeline, reload, server};

#[derive(Parser)]
#[command(
    name = "freeway",
    version,
    about = "OpenAI-compatible LLM gateway with WebAssembly provider, router and filter plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway.
    Serve {
        #[arg(short, long, default_value = "config/gateway.toml")]
        config: PathBuf,
        /// Listen here instead of `server.listen` (e.g. 127.0.0.1:0 for any free port).
        #[arg(short, long)]
        listen: Option<SocketAddr>,
    },
    /// Validate the config and every plugin it uses (including their settings), then exit.
    Check {
        #[arg(short, long, default_value = "config/gateway.toml")]
        config: PathBuf,
    },
    /// Virtual keys: create, list, update, revoke (in the config's store).
    Keys {
        #[arg(short, long, default_value = "config/gateway.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        command: Box<KeysCommand>,
    },
    /// Plugin authoring: scaffold a project, check a .wasm, run golden cases against it.
    Plugin {
        #[command(subcommand)]
        command: cli::plugin::PluginCommand,
    },
    /// Usage and cost from the ledger, grouped.
    Usage {
        #[arg(short, long, default_value = "config/gateway.toml")]
        config: PathBuf,
        /// key, provider, model or day.
        #[arg(long, default_value = "key")]
        by: String,
        /// How far back: 24h, 7d, 30m.
        #[arg(long, default_value = "24h")]
        since: String,
        #[arg(long)]
        json: bool,
    },
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FREEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // --help and --version are not failures; usage errors exit 2.
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let command = match cli.command {
        Command::Plugin { command } => {
            // An author's command: warnings only, unless FREEWAY_LOG says otherwise.
            init_logging("warn");
            return cli::plugin::run(command);
        }
        other => other,
    };
    init_logging("info");
    let offline = match command {
        Command::Keys { config, command } => Some(cli::keys::run(&config, *command)),
        Command::Usage {
            config,
            by,
            since,
            json,
        } => Some(cli::usage::run(&config, &by, &since, json)),
        other => {
            return run_gateway(other);
        }
    };
    match offline {
        Some(Err(error)) => {
            eprintln!("freeway: {error:#}");
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}

/// `serve` and `check`: build the gateway; `serve` then runs it.
///
/// This runtime is the control runtime: it accepts connections, reloads, runs health checks,
/// holds the Redis connection and waits for signals; requests are served on the worker threads
/// (`server::Workers`). Two threads, so a reload's seconds of plugin checks never hold up
/// accepting or Redis.
fn run_gateway(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("freeway-control")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("freeway: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let (config, listen, check_only) = match command {
        Command::Serve { config, listen } => (config, listen, false),
        Command::Check { config } => (config, None, true),
        Command::Keys { .. } | Command::Usage { .. } | Command::Plugin { .. } => {
            return ExitCode::from(2);
        }
    };
    let gateway = match runtime.block_on(reload::build_gateway(&config)) {
        Ok(gateway) => gateway,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("freeway: {error:#}");
            return ExitCode::from(1);
        }
    };
    // Loading plugins allocated and freed a lot on this thread, which now only waits: hand
    // those pages back to the OS now rather than at its next allocation.
    // SAFETY: mi_collect only walks this thread's own heap.
    unsafe { libmimalloc_sys::mi_collect(true) };
    if check_only {
        reload::shut_down(&gateway);
        println!("config and plugins OK: {}", config.display());
        return ExitCode::SUCCESS;
    }
    let served = runtime.block_on(serve(gateway.clone(), config, listen));
    // After the drain: save what must survive, write what the ledger holds.
    reload::shut_down(&gateway);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("freeway: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Listen (public and, when configured, admin), watch for changes, run health checks, and
/// serve until SIGINT or SIGTERM; then drain.
async fn serve(
    gateway: Arc<Gateway>,
    config_path: PathBuf,
    listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let snapshot = gateway.snapshot.load_full();
    let addr = listen.unwrap_or(snapshot.config.listen);
    reload::check_exposure(&snapshot.config, addr, gateway.keys.required())?;
    let listener = server::bind(addr).await?;
    let workers = Arc::new(server::Workers::start(
        snapshot.config.worker_threads,
        snapshot.config.idle_spin,
        &gateway.metrics,
    )?);
    let shutdown = shutdown_signal();
    let reloader = reload::Reloader::new(gateway.clone(), config_path);
    // The watcher lives as long as the server; without it the gateway still serves.
    if let Err(error) = reload::watch(reloader.clone()) {
        tracing::error!("cannot watch for changes, hot reload is off: {error:#}");
    }
    pipeline::health::spawn(gateway.clone());
    reload::spawn_key_watcher(gateway.clone());
    let handlers = Arc::new(server::Handlers::new(gateway, reloader));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let admin = match snapshot.config.admin.listen {
        Some(admin_addr) => {
            let admin_listener = server::bind(admin_addr).await?;
            let admin_local = admin_listener.local_addr()?;
            let mut stop = stop_rx.clone();
            let handlers = handlers.clone();
            let workers = workers.clone();
            Some((
                admin_local,
                tokio::spawn(async move {
                    server::serve(
                        handlers,
                        admin_listener,
                        server::Role::Admin,
                        workers,
                        async move {
                            let _ = stop.wait_for(|stopped| *stopped).await;
                        },
                    )
                    .await
                }),
            ))
        }
        None => None,
    };
    let local = listener.local_addr()?;
    tracing::info!(address = %local, workers = workers.threads(), "listening");
    println!("freeway listening on http://{local}");
    if let Some((admin_local, _)) = &admin {
        tracing::info!(address = %admin_local, "admin API listening");
        println!("freeway admin listening on http://{admin_local}");
    }
    let _ = std::io::stdout().flush();
    drop(snapshot);
    let draining = handlers.clone();
    let feed_owner = handlers.gateway.clone();
    let served = server::serve(
        handlers,
        listener,
        server::Role::Public,
        workers,
        async move {
            shutdown.await;
            // Tell load balancers first (health checks fail), keep serving while they notice,
            // then stop accepting and let what is in flight finish.
            draining
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let delay = draining.gateway.snapshot.load().config.drain_delay;
            if !delay.is_zero() {
                tracing::info!(
                    "draining: /healthz answers 503 for {} s while requests are still served",
                    delay.as_secs()
                );
                tokio::time::sleep(delay).await;
            }
            let _ = stop_tx.send(true);
            // Open dashboards' live feeds never end by themselves: end them, or they hold the drain.
            feed_owner.feed.close();
        },
    )
    .await;
    if let Some((_, task)) = admin {
        let _ = task.await;
    }
    served
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
