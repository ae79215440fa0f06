//! The `slabfront` command.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// slabfront: a CDN edge server (static origins and a caching reverse proxy).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded default serves the current
    /// directory on 127.0.0.1:8080.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a configuration and print every problem found: schema errors (the file is
    /// wrong wherever it is used) apart from problems on this machine (files and directories
    /// it names that are missing here).
    Check {
        /// Check the schema only, not the files and directories named (for a configuration
        /// meant for another machine).
        #[arg(long)]
        schema_only: bool,
    },
    /// Turn a CloudFront DistributionConfig (JSON, as `aws cloudfront
    /// get-distribution-config` prints it) into a slabfront configuration; settings without
    /// a counterpart become comments, each with a warning on stderr.
    Import {
        /// The DistributionConfig JSON file ("-" for standard input).
        file: PathBuf,
        /// Where to write the configuration (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The distribution's name (its primary domain); default: its first alias.
        #[arg(long)]
        name: Option<String>,
    },
    /// Run the server (the default).
    Run,
    /// Invalidate cached paths (CloudFront semantics: exact paths, or a trailing `*` for a
    /// prefix) through a running server's admin listener, and wait until it completes.
    Invalidate {
        /// The admin listener, e.g. http://127.0.0.1:9901
        #[arg(long, default_value = "http://127.0.0.1:9901")]
        admin: String,
        /// Bearer token (when `[admin] token` is set); also read from SLABFRONT_ADMIN_TOKEN.
        #[arg(long, env = "SLABFRONT_ADMIN_TOKEN")]
        token: Option<String>,
        /// The distribution (its name), when the server serves several.
        #[arg(long)]
        distribution: Option<String>,
        /// Paths such as /index.html or '/simple/*'.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// CloudFront Functions of the configuration.
    #[command(subcommand)]
    Function(FunctionCommand),
}

#[derive(Subcommand, Debug)]
enum FunctionCommand {
    /// Run a function on an event (CloudFront's event JSON, as `aws cloudfront test-function`
    /// takes it) and print the result, the compute used and the logs. Exits 1 when the
    /// function fails (the viewer would get a 503).
    Test {
        /// The `[[functions]]` name.
        name: String,
        /// The event: a JSON file with `version`, `context`, `viewer`, `request` (and
        /// `response` for a viewer-response event).
        #[arg(long)]
        event: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slabfront: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<config::Config> {
    Ok(match path {
        Some(p) => config::Config::from_file(p)?,
        None => config::Config::embedded_default(),
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Check { schema_only }) => {
            let name = cli
                .config
                .as_ref()
                .map_or("(embedded default)".into(), |p| p.display().to_string());
            let cfg = match (&cli.config, schema_only) {
                (Some(p), true) => config::Config::from_file_schema_only(p)?,
                _ => load(cli.config.as_ref())?,
            };
            // Compiling reads code files: part of the machine checks.
            let problems = if schema_only {
                Vec::new()
            } else {
                slabfront::functions::Functions::check(&cfg)
            };
            if !problems.is_empty() {
                let mut text = format!(
                    "{} problem{} in functions",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                );
                for p in &problems {
                    text.push('\n');
                    text.push_str(&p.to_string());
                }
                anyhow::bail!("{name}: {text}");
            }
            if let Some(a) = cfg
                .admin
                .as_ref()
                .filter(|a| !schema_only && !a.access_keys.is_empty())
            {
                let n = slabfront::cfapi::check_state(a, &cfg)
                    .map_err(|e| anyhow::anyhow!("{name}: CloudFront API state: {e}"))?;
                let dir = a.state_dir(&cfg.cache.path);
                println!(
                    "{}: CloudFront API state is valid ({n} distribution{})",
                    dir.display(),
                    if n == 1 { "" } else { "s" }
                );
            }
            let n = cfg.distributions.len();
            let what = if schema_only { "schema" } else { "configuration" };
            let names: Vec<&str> = cfg.distributions.iter().map(|d| d.name.as_str()).collect();
            match n {
                1 if cfg.distributions[0].implicit => println!("{name}: {what} is valid"),
                _ => println!(
                    "{name}: {what} is valid ({n} distribution{}: {})",
                    if n == 1 { "" } else { "s" },
                    names.join(", ")
                ),
            }
            Ok(())
        }
        Some(Command::Import { file, output, name }) => import(&file, output.as_deref(), name),
        Some(Command::Invalidate {
            admin,
            token,
            distribution,
            paths,
        }) => {
            let id =
                slabfront::admin::invalidate_cli(&admin, token.as_deref(), distribution.as_deref(), &paths)?;
            println!("invalidation {id}: Completed");
            Ok(())
        }
        Some(Command::Function(FunctionCommand::Test { name, event })) => {
            let cfg = load(cli.config.as_ref())?;
            let text = std::fs::read_to_string(&event)
                .with_context(|| format!("cannot read {}", event.display()))?;
            let result =
                slabfront::functions::test_event::run(&cfg, &name, &text).map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&result.json)?);
            if !result.ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Command::Run) | None => serve(load(cli.config.as_ref())?, cli.config.clone()),
    }
}

/// `slabfront import`: warnings to stderr, the configuration to the file or stdout.
fn import(
    file: &std::path::Path,
    output: Option<&std::path::Path>,
    name: Option<String>,
) -> anyhow::Result<()> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let imported = config::cloudfront::from_json(&text, &config::cloudfront::Options { name })
        .with_context(|| format!("{}", file.display()))?;
    for w in &imported.warnings {
        eprintln!("slabfront import: warning: {w}");
    }
    match output {
        Some(p) => {
            std::fs::write(p, &imported.toml).with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!(
                "slabfront import: wrote {} ({} warning{})",
                p.display(),
                imported.warnings.len(),
                if imported.warnings.len() == 1 { "" } else { "s" }
            );
        }
        None => std::io::stdout().write_all(imported.toml.as_bytes())?,
    }
    Ok(())
}

/// SIGHUP: read and validate the configuration again; switch to it when valid (with the
/// CloudFront API's distributions, when it is on: its own thread applies it).
fn reload(
    server: &std::sync::Mutex<slabfront::Server>,
    api: Option<&std::sync::Arc<slabfront::cfapi::Api>>,
    path: Option<&std::path::Path>,
) {
    slabfront::notify::reloading();
    let loaded = match path {
        Some(p) => config::Config::from_file(p),
        None => Ok(config::Config::embedded_default()),
    };
    match loaded {
        Err(e) => tracing::error!(
            "reload refused, the running configuration stays: {}",
            e.to_string().replace('\n', "; ")
        ),
        Ok(cfg) => match api {
            Some(api) => api.reload_file(cfg),
            None => {
                let mut server = server.lock().unwrap_or_else(|e| e.into_inner());
                match server.reload(cfg) {
                    Ok(()) => tracing::info!(listeners = ?server.addrs, "configuration reloaded"),
                    Err(e) => tracing::error!(error = %e, "reload failed, the running configuration stays"),
                }
            }
        },
    }
    slabfront::notify::notify("READY=1");
}

fn serve(cfg: config::Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    if cfg.distributions.iter().all(|d| !d.enabled) {
        anyhow::bail!("every distribution is disabled (enabled = false): there is nothing to serve");
    }
    for d in cfg.distributions.iter().filter(|d| !d.implicit) {
        tracing::info!(distribution = %d.name, aliases = ?d.aliases, enabled = d.enabled, "distribution");
    }
    // Signals are taken by this thread before the workers start, so none of them ever runs a
    // handler: SIGHUP reloads, SIGUSR1 reopens the access log, SIGTERM/SIGINT stop.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
        .context("installing signal handlers")?;
    // Every connection is a descriptor: take the whole hard limit.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the open-file limit");
    }
    // The CloudFront API's distributions are served from the start, beside the file's.
    // On with at least one access key; without, nothing changes for the admin listener.
    let api = match cfg.admin.as_ref().filter(|a| !a.access_keys.is_empty()) {
        Some(a) => Some(slabfront::cfapi::Api::open(a, &cfg).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let server = slabfront::Server::start(&api.as_ref().map_or_else(|| cfg.clone(), |a| a.merged()))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        workers = server.workers,
        driver = server.driver.as_str(),
        listeners = ?server.addrs,
        tls_listeners = ?server.tls_addrs,
        origins = ?cfg.origins.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        "slabfront started"
    );
    // Set on SIGTERM `server.drain_delay` before the listeners close: `/healthz` says 503
    // while this node still serves, so a load balancer withdraws it first.
    let withdrawing = server.draining();
    let withdrawing = if cfg.server.drain_delay.0.is_zero() {
        withdrawing
    } else {
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))
    };
    let admin_addr = match &cfg.admin {
        Some(a) => {
            let addr: std::net::SocketAddr = a.listen.parse().context("admin.listen")?;
            let admin = slabfront::admin::Admin {
                token: a.token.clone(),
                shared: server.shared.clone(),
                distributions: server.distribution_names(),
                draining: withdrawing.clone(),
                metrics: server.metrics.clone(),
                log_sink: server.log_sink.clone(),
                stats: server.stats.clone(),
                cluster: server.cluster.clone(),
                cloudfront: api.clone(),
            };
            let bound = slabfront::admin::start(addr, admin)
                .with_context(|| format!("cannot bind the admin listener on {addr}"))?;
            tracing::info!(admin = %bound, "admin listener up");
            Some(bound)
        }
        None => None,
    };
    let server = std::sync::Arc::new(std::sync::Mutex::new(server));
    if let Some(api) = &api {
        api.attach(server.clone())
            .context("starting the CloudFront API's deployer")?;
    }
    let lock = || server.lock().unwrap_or_else(|e| e.into_inner());
    // Everything printed at once: a reader that takes only the first line still gets it all.
    let mut text = String::new();
    let (addrs, tls_addrs) = {
        let s = lock();
        (s.addrs.clone(), s.tls_addrs.clone())
    };
    for a in &addrs {
        text.push_str(&format!("slabfront listening on http://{a}/\n"));
    }
    for a in &tls_addrs {
        text.push_str(&format!("slabfront listening on https://{a}/\n"));
    }
    if let Some(a) = admin_addr {
        text.push_str(&format!("slabfront admin on http://{a}/\n"));
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    slabfront::notify::notify("READY=1");
    if let Some(every) = slabfront::notify::watchdog_interval() {
        let draining = lock().draining();
        std::thread::Builder::new()
            .name("slabfront-watchdog".into())
            .spawn(move || {
                while !draining.load(std::sync::atomic::Ordering::Acquire) {
                    slabfront::notify::notify("WATCHDOG=1");
                    std::thread::sleep(every / 2);
                }
            })
            .context("starting the watchdog thread")?;
    }
    for sig in signals.forever() {
        match sig {
            SIGHUP => reload(&server, api.as_ref(), config_path.as_deref()),
            SIGUSR1 => {
                if let Some(sink) = &lock().log_sink {
                    tracing::info!("reopening the access log");
                    sink.reopen();
                }
            }
            _ => {
                withdrawing.store(true, std::sync::atomic::Ordering::Release);
                let delay = cfg.server.drain_delay.0;
                if !delay.is_zero() {
                    tracing::info!(
                        signal = sig,
                        ?delay,
                        "stopping: /healthz answers 503 before the listeners close"
                    );
                    std::thread::sleep(delay);
                }
                tracing::info!(
                    signal = sig,
                    "stopping: no new connections, draining in-flight responses"
                );
                break;
            }
        }
    }
    slabfront::notify::notify("STOPPING=1");
    lock().stop();
    lock().join();
    tracing::info!("stopped");
    Ok(())
}
