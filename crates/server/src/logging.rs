//! Logging through `tracing`, with Redis's `loglevel` (debug, verbose, notice, warning) and
//! `logfile` ("" = standard output) parameters; the level can change at run time.

use std::sync::OnceLock;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::reload;
use tracing_subscriber::{fmt, prelude::*, Registry};

static HANDLE: OnceLock<reload::Handle<LevelFilter, Registry>> = OnceLock::new();

fn level(name: &str) -> LevelFilter {
    match name {
        "debug" => LevelFilter::DEBUG,
        "verbose" => LevelFilter::DEBUG,
        "warning" => LevelFilter::WARN,
        _ => LevelFilter::INFO,
    }
}

/// Installs the subscriber. Errors only if the log file cannot be opened.
pub fn init(loglevel: &str, logfile: &str) -> Result<(), String> {
    let (filter, handle) = reload::Layer::new(level(loglevel));
    let _ = HANDLE.set(handle);
    let registry = tracing_subscriber::registry().with(filter);
    if logfile.is_empty() {
        let _ = registry
            .with(fmt::layer().with_writer(std::io::stdout).with_target(false))
            .try_init();
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logfile)
            .map_err(|e| format!("can't open the log file '{logfile}': {e}"))?;
        let _ = registry
            .with(
                fmt::layer()
                    .with_writer(std::sync::Mutex::new(file))
                    .with_ansi(false)
                    .with_target(false),
            )
            .try_init();
    }
    Ok(())
}

/// CONFIG SET loglevel.
pub fn set_level(loglevel: &str) {
    if let Some(h) = HANDLE.get() {
        let _ = h.modify(|f| *f = level(loglevel));
    }
}
