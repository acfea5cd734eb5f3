//! Server commands: COMMAND, CONFIG, INFO (in `info`), TIME, SHUTDOWN.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use shardis_engine::command::{introspect, Flags};
use shardis_engine::{error, Command, ServerCmd, REGISTRY};
use shardis_resp::Reply;

use super::{bulk, help, text};
use crate::config::{rewrite, Config};
use crate::conn::session::Session;

/// The server commands that answer at once; None for the others.
pub fn run_sync(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::CommandAll => {
            Reply::Array(REGISTRY.commands().iter().map(introspect::info).collect())
        }
        ServerCmd::CommandCount => Reply::Int(REGISTRY.commands().len() as i64),
        ServerCmd::CommandInfo => {
            if args.len() == 2 {
                Reply::Array(REGISTRY.commands().iter().map(introspect::info).collect())
            } else {
                Reply::Array(
                    args[2..]
                        .iter()
                        .map(|n| REGISTRY.get(n).map_or(Reply::NilArray, introspect::info))
                        .collect(),
                )
            }
        }
        ServerCmd::CommandDocs => {
            let docs = |c: &Command| (bulk(&c.name), introspect::docs(c));
            if args.len() == 2 {
                Reply::Map(REGISTRY.commands().iter().map(docs).collect())
            } else {
                Reply::Map(
                    args[2..]
                        .iter()
                        .filter_map(|n| REGISTRY.get(n))
                        .map(docs)
                        .collect(),
                )
            }
        }
        ServerCmd::CommandList => command_list(args),
        ServerCmd::CommandGetKeys => command_getkeys(args, false),
        ServerCmd::CommandGetKeysAndFlags => command_getkeys(args, true),
        ServerCmd::CommandHelp => help(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
            ],
        ),
        ServerCmd::ConfigGet => {
            let patterns: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
            let pairs = s.core.config.borrow().matching(&patterns);
            Reply::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (bulk(&k), bulk(&v)))
                    .collect(),
            )
        }
        ServerCmd::ConfigHelp => help(
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
            ],
        ),
        ServerCmd::ConfigRewrite => config_rewrite(s),
        ServerCmd::Time => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Reply::Array(vec![
                Reply::bulk_int(now.as_secs() as i64),
                Reply::bulk_int(now.subsec_micros() as i64),
            ])
        }
        ServerCmd::LastSave => Reply::Int(crate::persist::last_save() as i64),
        ServerCmd::Role => crate::replica::role(),
        _ => return None,
    })
}

/// The server commands that look at every core.
pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::ConfigSet => super::config_set::config_set(s, args).await,
        ServerCmd::ConfigResetStat => {
            s.core
                .broadcast(|core| {
                    core.shard.borrow_mut().reset_stats();
                    core.stats.set(Default::default());
                    core.records.borrow_mut().reset_stats();
                })
                .await;
            Reply::Ok
        }
        ServerCmd::Info => super::info::info(s, args).await,
        ServerCmd::Save => save(s, args).await,
        ServerCmd::BgSave => bgsave(s, args),
        ServerCmd::BgRewriteAof => match crate::persist::aof::bgrewriteaof(&s.core) {
            Ok(started) => Reply::Simple(started.into()),
            Err(e) => Reply::err(e),
        },
        ServerCmd::Shutdown => return shutdown(s, args).await,
        _ => return None,
    })
}

/// SAVE: a snapshot of every shard, replied once it is on disk (other clients are served
/// meanwhile: no fork, no blocking).
async fn save(s: &mut Session, _args: &[Bytes]) -> Reply {
    match crate::persist::save::save(&s.core, s.tx).await {
        Ok(()) => Reply::Ok,
        Err(crate::persist::save::SaveError::InProgress) => {
            Reply::err("ERR Background save already in progress")
        }
        Err(crate::persist::save::SaveError::Failed(_)) => Reply::err("ERR"),
    }
}

/// BGSAVE [SCHEDULE]: the same, replied at once; during an append-only log rewrite,
/// SCHEDULE has core 0's clock start it once the rewrite is over.
fn bgsave(s: &mut Session, args: &[Bytes]) -> Reply {
    let schedule = match args.get(1) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"schedule") && args.len() == 2 => true,
        Some(_) => return error::syntax(),
    };
    if crate::persist::aof::rewriting() {
        if schedule {
            crate::persist::save::schedule();
            return Reply::Simple("Background saving scheduled".into());
        }
        return Reply::err("ERR An AOF log rewriting in progress: can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.");
    }
    if crate::persist::in_progress() {
        return Reply::err("ERR Background save already in progress");
    }
    let core = s.core.clone();
    crate::core::spawn::spawn(async move {
        let _ = crate::persist::save::save(&core, None).await;
    });
    Reply::Simple("Background saving started".into())
}

fn command_list(args: &[Bytes]) -> Reply {
    let names = REGISTRY
        .commands()
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()));
    let filtered: Vec<Reply> = match args.len() {
        2 => names.map(|c| bulk(&c.name)).collect(),
        5 if args[2].eq_ignore_ascii_case(b"filterby") => {
            let what = args[3].to_ascii_lowercase();
            let value = &args[4];
            match what.as_slice() {
                b"module" => Vec::new(),
                b"aclcat" => {
                    let cat = text(value).to_ascii_lowercase();
                    names
                        .filter(|c| c.acl_categories.contains(&cat.as_str()))
                        .map(|c| bulk(&c.name))
                        .collect()
                }
                b"pattern" => names
                    .filter(|c| shardis_engine::glob::matches(value, c.name.as_bytes(), true))
                    .map(|c| bulk(&c.name))
                    .collect(),
                _ => return error::syntax(),
            }
        }
        _ => return error::syntax(),
    };
    Reply::Array(filtered)
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS <full-command>, checked in Redis's order: the command
/// exists, has keys at all, has a valid argument count, and its arguments name keys.
fn command_getkeys(args: &[Bytes], with_flags: bool) -> Reply {
    let target = &args[2..];
    let cmd = match REGISTRY.lookup_call(target) {
        Ok(c) | Err((Some(c), _)) => c,
        Err((None, _)) => return Reply::err("ERR Invalid command specified"),
    };
    let has_keys = cmd.getkeys.is_some()
        || cmd
            .facts
            .key_specs
            .iter()
            .any(|s| !s.flags.contains(&"not_key"));
    if !has_keys {
        return Reply::err("ERR The command has no key arguments");
    }
    if !cmd.arity_ok(target.len()) {
        return Reply::err("ERR Invalid number of arguments specified for command");
    }
    let keys = match cmd.keys_and_flags(target) {
        Some(keys) if !keys.is_empty() => keys,
        _ if cmd.flags.has(Flags::NO_MANDATORY_KEYS) => Vec::new(),
        _ => return Reply::err("ERR Invalid arguments specified for command"),
    };
    Reply::Array(
        keys.into_iter()
            .map(|(i, flags)| {
                let key = Reply::Bulk(target[i].clone());
                if with_flags {
                    Reply::Array(vec![key, introspect::key_flags(flags)])
                } else {
                    key
                }
            })
            .collect(),
    )
}

/// CONFIG REWRITE: the configuration file updated with the values in force (and the ACL
/// users as `user` lines), comments and order kept.
fn config_rewrite(s: &Session) -> Reply {
    let config = s.core.config.borrow();
    let Some(path) = config.file.clone() else {
        return Reply::err("ERR The server is running without a config file");
    };
    let users: Vec<String> = s
        .core
        .acl
        .borrow()
        .users()
        .map(|u| {
            let u = u.borrow();
            format!(
                "user {} {}",
                String::from_utf8_lossy(&u.name),
                String::from_utf8_lossy(&u.describe())
            )
        })
        .collect();
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return rewrite_failed(&e),
    };
    let new = rewrite::apply(&old, Config::directive_name, config.rewrite_entries(users));
    match rewrite::write_file(&path, &new) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            Reply::Ok
        }
        Err(e) => rewrite_failed(&e),
    }
}

fn rewrite_failed(e: &std::io::Error) -> Reply {
    tracing::warn!("CONFIG REWRITE failed: {e}");
    Reply::error(format!(
        "ERR Rewriting config file: {}",
        super::acl::strerror(e)
    ))
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: saves first with SAVE, or without NOSAVE
/// when `save` rules exist; a failed save stops the shutdown unless FORCE.
pub async fn shutdown(s: &mut Session, args: &[Bytes]) -> Option<Reply> {
    let (mut save, mut nosave, mut force) = (false, false, false);
    for a in &args[1..] {
        let lower = a.to_ascii_lowercase();
        match lower.as_slice() {
            b"now" => {}
            b"nosave" => nosave = true,
            b"save" => save = true,
            b"force" => force = true,
            b"abort" => return Some(Reply::err("ERR No shutdown in progress.")),
            _ => return Some(error::syntax()),
        }
    }
    if save && nosave {
        return Some(error::syntax());
    }
    tracing::warn!("User requested shutdown...");
    let rules = !s.core.config.borrow().get("save").trim().is_empty();
    // While loading nothing is saved, SAVE or not (Redis): the data set is partial.
    let loading = crate::persist::loading::active();
    if !loading && (save || (rules && !nosave)) {
        tracing::info!("Saving the final RDB snapshot before exiting.");
        if let Err(e) = crate::persist::save::save(&s.core, None).await {
            tracing::warn!("Error trying to save the DB, can't exit: {e:?}");
            if !force {
                return Some(Reply::err("ERR Errors trying to SHUTDOWN. Check logs."));
            }
        }
    }
    crate::core::request_shutdown();
    s.client.borrow_mut().closing = true;
    None
}
