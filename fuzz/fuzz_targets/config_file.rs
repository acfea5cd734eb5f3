//! The configuration's parsers: a configuration file's text (`Config::load_text`, as
//! `redis-server file.conf` and `--name value` overrides read it) and CONFIG SET's pairs from
//! a client (`Config::validate_set`, then applying what it accepts). No line or value may
//! panic; a configuration that loads must give the engine's settings, CONFIG GET's listing
//! and CONFIG REWRITE's entries without panicking.
//!
//! Input layout: the first byte picks the mode; the rest is either a file's text, or CONFIG
//! SET's arguments separated by NUL bytes (names and values alternating). `include` lines are
//! skipped: they read other files, which only the operator names.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardis_server::config::Config;

fn exercise(c: &Config) {
    let _ = c.engine();
    let _ = c.hot();
    let _ = c.matching(&[b"*"]);
    let _ = c.rewrite_entries(Vec::new());
    let _ = c.ineffective();
    let _ = c.notify_flags();
    let _ = c.output_limit_replica();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut config = Config::default();
    if mode & 1 == 0 {
        if text.to_ascii_lowercase().contains("include") {
            return;
        }
        if config.load_text(text).is_ok() {
            exercise(&config);
        }
    } else {
        let words: Vec<&str> = text.split('\0').collect();
        let pairs: Vec<(String, String)> = words
            .chunks_exact(2)
            .map(|p| (p[0].to_string(), p[1].to_string()))
            .collect();
        if let Ok(values) = config.validate_set(&pairs, mode & 2 != 0) {
            let values: Vec<(&'static str, String)> =
                values.into_iter().map(|v| (v.name, v.value)).collect();
            config.apply(&values);
            exercise(&config);
        }
    }
});
