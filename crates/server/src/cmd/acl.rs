//! AUTH, the ACL subcommands, and the check every command passes before it runs ([`admit`]:
//! NOAUTH, then the user's permissions on the command, its keys and its channels), and the
//! same check for the commands a script runs ([`admit_script`], as the script's caller).
//!
//! Users are read from this core's copy; a change is decided on core 0 and applied by every
//! core in the order core 0 sends it ([`change_users`]), then the command answers.

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use shardis_engine::command::Flags;
use shardis_engine::{error, num, Command, ServerCmd, REGISTRY};
use shardis_resp::Reply;

use super::{bulk, text};
use crate::acl::commands::{category, UNIVERSE};
use crate::acl::file;
use crate::acl::log::{Context, Entry, Reason};
use crate::acl::user::{hex, Call, Channels, KeyAccess};
use crate::acl::{Acl, Change, Denial, User, UserRef};
use crate::conn::session::Session;
use crate::core::client::Client;
use crate::core::Core;

const NOAUTH: &str = "NOAUTH Authentication required.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";
/// ACL GENPASS's limit.
const GENPASS_MAX_BITS: i64 = 4096;

/// Whether the client may run `cmd` with `args`: authenticated if it must be, and allowed by
/// its user. A denial is logged (ACL LOG) and answered with Redis's NOPERM error.
pub fn admit(s: &Session, cmd: &'static Command, args: &[Bytes]) -> Result<(), Reply> {
    let c = s.client.borrow();
    if !c.authenticated && !cmd.flags.has(Flags::NO_AUTH) && s.core.acl.borrow().auth_required() {
        return Err(Reply::err(NOAUTH));
    }
    let user = c.user.borrow();
    if user.is_unrestricted() {
        return Ok(());
    }
    let Err(denial) = check_call(&user, cmd, args) else {
        return Ok(());
    };
    let context = if s.multi.is_some() {
        Context::Multi
    } else {
        Context::TopLevel
    };
    log_denial(&s.core, info(s, &c), &user.name, cmd, args, denial, context);
    Err(match denial {
        Denial::Command => Reply::error(format!(
            "NOPERM this user has no permissions to run the '{}' command",
            cmd.name
        )),
        Denial::Key(_) => Reply::err(
            "NOPERM this user has no permissions to access one of the keys used as arguments",
        ),
        Denial::Channel(_) => Reply::err(
            "NOPERM this user has no permissions to access one of the channels used as arguments",
        ),
    })
}

/// EXEC's second look at a queued command: the rules may have changed since it was queued.
pub fn admit_queued(s: &Session, cmd: &'static Command, args: &[Bytes]) -> Result<(), Reply> {
    let c = s.client.borrow();
    let user = c.user.borrow();
    let Err(denial) = check_call(&user, cmd, args) else {
        return Ok(());
    };
    log_denial(
        &s.core,
        info(s, &c),
        &user.name,
        cmd,
        args,
        denial,
        Context::Multi,
    );
    let reason = match denial {
        Denial::Command => "no permission to execute the command or subcommand",
        Denial::Key(_) => "no permission to touch the specified keys",
        Denial::Channel(_) => "no permission to access one of the channels used as arguments",
    };
    Err(Reply::error(format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}")))
}

/// A script's caller as ACL sees it, fixed when the script starts (as Redis gives the script
/// its caller's user): the user's rules then, and the client line its ACL LOG entries show.
pub struct ScriptCaller {
    user: User,
    client_info: String,
}

/// The caller of a script about to run, or None when its user may run anything (nothing to
/// check, nothing copied).
pub fn script_caller(s: &Session) -> Option<Arc<ScriptCaller>> {
    let c = s.client.borrow();
    let user = c.user.borrow();
    (!user.is_unrestricted()).then(|| {
        Arc::new(ScriptCaller {
            user: user.clone(),
            client_info: info(s, &c),
        })
    })
}

/// Whether a script's caller may run `cmd` with `args` (`redis.acl_check_cmd`).
pub fn script_allows(caller: &ScriptCaller, cmd: &Command, args: &[Bytes]) -> bool {
    check_call(&caller.user, cmd, args).is_ok()
}

/// A command a script runs (`redis.call`/`redis.pcall`), checked against its caller's user: a
/// denial is logged with the context "lua" and fails the call with Redis's scripting wording.
pub fn admit_script(
    core: &Rc<Core>,
    caller: &ScriptCaller,
    cmd: &Command,
    args: &[Bytes],
) -> Result<(), String> {
    let Err(denial) = check_call(&caller.user, cmd, args) else {
        return Ok(());
    };
    let info = caller.client_info.clone();
    log_denial(
        core,
        info,
        &caller.user.name,
        cmd,
        args,
        denial,
        Context::Lua,
    );
    let what = match denial {
        Denial::Command => "can't run this command or subcommand",
        Denial::Key(_) => {
            "can't access at least one of the keys mentioned in the command arguments"
        }
        Denial::Channel(_) => "can't publish to the channel mentioned in the command",
    };
    Err(format!("The user executing the script {what}"))
}

/// The client line of an ACL LOG entry.
fn info(s: &Session, c: &Client) -> String {
    c.info_line(s.core.now_ms())
}

/// Checks a call against a user: the command, the keys its key specs name (with the access
/// their flags give), the channels it publishes or subscribes to.
pub fn check_call(user: &User, cmd: &Command, args: &[Bytes]) -> Result<(), Denial> {
    if user.is_unrestricted() {
        return Ok(());
    }
    let keys = key_accesses(cmd, args);
    let channels = match cmd.name.as_str() {
        "publish" | "spublish" => Channels::Publish,
        "subscribe" | "ssubscribe" => Channels::Subscribe,
        "psubscribe" => Channels::PatternSubscribe,
        _ => Channels::None,
    };
    user.check(&Call {
        id: cmd.id,
        no_auth: cmd.flags.has(Flags::NO_AUTH),
        args,
        keys: &keys,
        channels,
    })
}

/// The key arguments of a call and what the command does with each, from its key specs
/// (SET and BITFIELD decide by their arguments, as Redis's key extractors do).
fn key_accesses(cmd: &Command, args: &[Bytes]) -> Vec<(usize, KeyAccess)> {
    let mut out = Vec::new();
    let mut idx = Vec::new();
    for spec in cmd.facts.key_specs {
        if spec.flags.contains(&"not_key") {
            continue;
        }
        idx.clear();
        spec.find(args.len(), args, &mut idx);
        let has = |f: &str| spec.flags.contains(&f);
        let mut access = KeyAccess {
            read: has("access"),
            write: has("insert") || has("delete") || has("update"),
        };
        if has("variable_flags") {
            access = variable_access(cmd, args);
        }
        out.extend(idx.iter().map(|&i| (i, access)));
    }
    out
}

/// SET reads its key only with GET; BITFIELD writes only with SET or INCRBY (or anything it
/// cannot parse).
fn variable_access(cmd: &Command, args: &[Bytes]) -> KeyAccess {
    let rw = KeyAccess {
        read: true,
        write: true,
    };
    match cmd.name.as_str() {
        "set" => {
            let get = args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            KeyAccess {
                read: get,
                write: true,
            }
        }
        "bitfield" => {
            let mut i = 2;
            while let Some(a) = args.get(i) {
                let left = args.len() - i - 1;
                if a.eq_ignore_ascii_case(b"get") && left >= 2 {
                    i += 3;
                } else if a.eq_ignore_ascii_case(b"overflow") && left >= 1 {
                    i += 2;
                } else {
                    return rw;
                }
            }
            KeyAccess {
                read: true,
                write: false,
            }
        }
        _ => rw,
    }
}

/// Sends a denial to the ACL log (kept by core 0).
fn log_denial(
    core: &Rc<Core>,
    client_info: String,
    username: &[u8],
    cmd: &Command,
    args: &[Bytes],
    denial: Denial,
    context: Context,
) {
    let (reason, object) = match denial {
        Denial::Command => (Reason::Command, cmd.name.as_bytes().to_vec()),
        Denial::Key(i) => (Reason::Key, arg_bytes(args, i)),
        Denial::Channel(i) => (Reason::Channel, arg_bytes(args, i)),
    };
    add_log_entry(core, client_info, username, reason, context, object);
}

fn arg_bytes(args: &[Bytes], i: usize) -> Vec<u8> {
    args.get(i).map(|a| a.to_vec()).unwrap_or_default()
}

fn add_log_entry(
    core: &Rc<Core>,
    client_info: String,
    username: &[u8],
    reason: Reason,
    context: Context,
    object: Vec<u8>,
) {
    let entry = Entry {
        count: 1,
        reason,
        context,
        object,
        username: username.to_vec(),
        ctime_ms: crate::core::wall_ms(),
        client_info,
    };
    core.post(
        0,
        Box::new(move |c0| {
            let max = c0.config.borrow().get_i64("acllog-max-len").max(0) as usize;
            c0.acl.borrow_mut().log.add(entry, max);
        }),
    );
}

/// Authenticates the client as `name` with `password` (AUTH, HELLO … AUTH); a failure is
/// logged with `command` (the command as typed) as its object.
pub fn authenticate(
    s: &Session,
    name: &[u8],
    password: &[u8],
    command: &[u8],
) -> Result<(), Reply> {
    let found = s.core.acl.borrow().authenticate(name, password);
    let mut c = s.client.borrow_mut();
    match found {
        Some(user) => {
            c.user = user;
            c.authenticated = true;
            Ok(())
        }
        None => {
            add_log_entry(
                &s.core,
                info(s, &c),
                name,
                Reason::Auth,
                if s.multi.is_some() {
                    Context::Multi
                } else {
                    Context::TopLevel
                },
                command.to_vec(),
            );
            Err(Reply::err(WRONGPASS))
        }
    }
}

/// Puts the client back to the default user (RESET), authenticated if that needs no password.
pub fn reset_auth(s: &Session) {
    let acl = s.core.acl.borrow();
    let mut c = s.client.borrow_mut();
    c.user = acl.default_user().clone();
    c.authenticated = acl.starts_authenticated();
}

/// The ACL commands that answer at once (from this core's copy of the users).
pub fn run_sync(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::Auth => auth(s, args),
        ServerCmd::AclCat => cat(args),
        ServerCmd::AclDryRun => dry_run(s, args),
        ServerCmd::AclGenPass => genpass(args),
        ServerCmd::AclGetUser => match s.core.acl.borrow().get(&args[2]) {
            Some(u) => getuser(&u.borrow()),
            None => Reply::Nil,
        },
        ServerCmd::AclList => Reply::Array(
            s.core
                .acl
                .borrow()
                .users()
                .map(|u| {
                    let u = u.borrow();
                    let mut line = b"user ".to_vec();
                    line.extend_from_slice(&u.name);
                    line.push(b' ');
                    line.extend_from_slice(&u.describe());
                    Reply::Bulk(line.into())
                })
                .collect(),
        ),
        ServerCmd::AclUsers => Reply::Array(
            s.core
                .acl
                .borrow()
                .users()
                .map(|u| Reply::Bulk(u.borrow().name.clone().into()))
                .collect(),
        ),
        ServerCmd::AclWhoami => Reply::Bulk(s.client.borrow().user.borrow().name.clone().into()),
        ServerCmd::AclSave => save(s),
        ServerCmd::AclHelp => super::help(
            "ACL",
            &[
                "CAT [<category>]",
                "    List all commands that belong to <category>, or all command categories",
                "    when no category is specified.",
                "DELUSER <username> [<username> ...]",
                "    Delete a list of users.",
                "DRYRUN <username> <command> [<arg> ...]",
                "    Returns whether the user can execute the given command without executing the command.",
                "GETUSER <username>",
                "    Get the user's details.",
                "GENPASS [<bits>]",
                "    Generate a secure 256-bit user password. The optional `bits` argument can",
                "    be used to specify a different size.",
                "LIST",
                "    Show users details in config file format.",
                "LOAD",
                "    Reload users from the ACL file.",
                "LOG [<count> | RESET]",
                "    Show the ACL log entries.",
                "SAVE",
                "    Save the current config to the ACL file.",
                "SETUSER <username> <attribute> [<attribute> ...]",
                "    Create or modify a user with the specified attributes.",
                "USERS",
                "    List all the registered usernames.",
                "WHOAMI",
                "    Return the current connection username.",
            ],
        ),
        _ => return None,
    })
}

/// The ACL commands that change users everywhere or read the log on core 0.
pub async fn run_async(s: &mut Session, which: ServerCmd, args: &[Bytes]) -> Option<Reply> {
    Some(match which {
        ServerCmd::AclSetUser => setuser(s, args).await,
        ServerCmd::AclDelUser => deluser(s, args).await,
        ServerCmd::AclLoad => load(s).await,
        ServerCmd::AclLog => log(s, args).await,
        _ => return None,
    })
}

/// AUTH [username] password
fn auth(s: &mut Session, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return error::syntax();
    }
    let (name, password): (&[u8], &[u8]) = if args.len() == 2 {
        if s.core.acl.borrow().default_user().borrow().nopass {
            return Reply::err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
        (b"default", &args[1])
    } else {
        (&args[1], &args[2])
    };
    match authenticate(s, name, password, &args[0]) {
        Ok(()) => Reply::Ok,
        Err(e) => e,
    }
}

/// ACL SETUSER username [rule ...]
async fn setuser(s: &mut Session, args: &[Bytes]) -> Reply {
    let name = args[2].to_vec();
    if crate::acl::user::has_spaces(&name) {
        return Reply::err("ERR Usernames can't contain spaces or null characters");
    }
    let words: Vec<Vec<u8>> = args[3..].iter().map(|a| a.to_vec()).collect();
    let rules = match file::merge_selectors(&words) {
        Ok(r) => r,
        Err(i) => {
            return Reply::error(format!(
                "ERR Unmatched parenthesis in acl selector starting at '{}'.",
                safe(&words[i])
            ))
        }
    };
    change_users(s, move |acl| {
        let all_channels = acl.all_channels_default;
        let mut user = match acl.get(&name) {
            Some(u) => u.borrow().clone(),
            None => User::new(&name, all_channels),
        };
        for rule in &rules {
            if let Err(e) = user.apply(rule, all_channels) {
                return Err(Reply::error(format!(
                    "ERR Error in ACL SETUSER modifier '{}': {}",
                    safe(rule),
                    e.message()
                )));
            }
        }
        Ok((Change::Set(user), Reply::Ok))
    })
    .await
}

/// ACL DELUSER username [username ...]
async fn deluser(s: &mut Session, args: &[Bytes]) -> Reply {
    let names: Vec<Vec<u8>> = args[2..].iter().map(|a| a.to_vec()).collect();
    if names.iter().any(|n| n == b"default") {
        return Reply::err("ERR The 'default' user cannot be removed");
    }
    change_users(s, move |acl| {
        let mut existing: Vec<Vec<u8>> = Vec::new();
        for n in names {
            if acl.get(&n).is_some() && !existing.contains(&n) {
                existing.push(n);
            }
        }
        let count = existing.len() as i64;
        Ok((Change::Delete(existing), Reply::Int(count)))
    })
    .await
}

/// ACL LOAD: the whole file or nothing.
async fn load(s: &mut Session) -> Reply {
    let path = s.core.config.borrow().get("aclfile").to_string();
    if path.is_empty() {
        return Reply::err(NO_ACL_FILE);
    }
    change_users(s, move |acl| {
        let text = std::fs::read(&path).map_err(|e| {
            Reply::error(format!(
                "ERR Error loading ACLs, opening file '{path}': {}",
                strerror(&e)
            ))
        })?;
        let users = file::parse(&path, &text, acl.all_channels_default)
            .map_err(|e| Reply::error(format!("ERR {e}")))?;
        Ok((Change::Replace(users), Reply::Ok))
    })
    .await
}

/// ACL SAVE: this core's users, to a temporary file renamed over the ACL file.
fn save(s: &Session) -> Reply {
    let path = s.core.config.borrow().get("aclfile").to_string();
    if path.is_empty() {
        return Reply::err(NO_ACL_FILE);
    }
    let content = {
        let acl = s.core.acl.borrow();
        let users: Vec<std::cell::Ref<'_, User>> = acl.users().map(|u| u.borrow()).collect();
        file::render(&users.iter().map(|u| &**u).collect::<Vec<_>>())
    };
    let tmp = format!(
        "{path}.tmp-{}-{}",
        std::process::id(),
        crate::core::wall_ms()
    );
    let written = std::fs::write(&tmp, &content).and_then(|()| std::fs::rename(&tmp, &path));
    match written {
        Ok(()) => Reply::Ok,
        Err(e) => {
            tracing::warn!("Writing ACL file for ACL SAVE: {}", strerror(&e));
            let _ = std::fs::remove_file(&tmp);
            Reply::err("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
        }
    }
}

/// Decides a change on core 0 (so that all changes are ordered), has every core apply it in
/// that order, and answers once all have.
async fn change_users<F>(s: &Session, decide: F) -> Reply
where
    F: FnOnce(&Acl) -> Result<(Change, Reply), Reply> + Send + 'static,
{
    let core = s.core.clone();
    let me = s.client.borrow().id;
    let mut answers = Vec::with_capacity(core.shards);
    let mut acks = Vec::with_capacity(core.shards);
    for _ in 0..core.shards {
        let (answer, rx) = core.answer_channel::<()>();
        answers.push(answer);
        acks.push(rx);
    }
    let decided = core
        .run_on(0, move |c0| {
            let decision = decide(&c0.acl.borrow());
            let (change, reply) = decision?;
            for (shard, answer) in answers.into_iter().enumerate() {
                let change = change.clone();
                c0.post(
                    shard,
                    Box::new(move |c| {
                        apply_change(c, change, me);
                        c.answer(answer, ());
                    }),
                );
            }
            Ok(reply)
        })
        .await;
    match decided {
        Some(Ok(reply)) => {
            for ack in acks {
                let _ = ack.await;
            }
            reply
        }
        Some(Err(reply)) => reply,
        None => Reply::err("ERR core 0 did not answer"),
    }
}

/// Applies a change on one core and acts on its clients: those of removed users are
/// disconnected (the one that asked after its reply), as are Pub/Sub clients subscribed to
/// channels their user may no longer use.
pub fn apply_change(core: &Rc<Core>, change: Change, requester: u64) {
    let applied = core.acl.borrow_mut().apply(change);
    let default = core.acl.borrow().default_user().clone();
    for (id, client) in core.clients.borrow().iter() {
        let mut c = client.borrow_mut();
        if applied.removed.iter().any(|u| Rc::ptr_eq(u, &c.user)) {
            c.user = default.clone();
            c.authenticated = false;
            if *id == requester {
                c.closing = true;
            } else {
                c.kill();
            }
            continue;
        }
        let narrowed = applied
            .channels_narrowed
            .as_ref()
            .is_some_and(|u: &UserRef| Rc::ptr_eq(u, &c.user));
        if narrowed && c.subs.active() && !subscriptions_allowed(&c) {
            c.kill();
        }
    }
}

fn subscriptions_allowed(c: &Client) -> bool {
    let user = c.user.borrow();
    c.subs.patterns.iter().all(|p| user.allows_channel(p, true))
        && c.subs
            .channels
            .iter()
            .all(|ch| user.allows_channel(ch, false))
        && c.subs
            .shard_channels
            .iter()
            .all(|ch| user.allows_channel(ch, false))
}

/// What CONFIG SET of an ACL parameter does beyond storing it: `requirepass` becomes the
/// default user's password everywhere, `acl-pubsub-default` applies to users created next.
pub async fn after_config_set(s: &Session, values: &[(&'static str, String)]) {
    for (name, value) in values {
        match *name {
            "requirepass" => {
                let password = value.clone().into_bytes();
                change_users(s, move |acl| {
                    let mut default = acl.default_user().borrow().clone();
                    crate::acl::set_requirepass(&mut default, &password, acl.all_channels_default);
                    Ok((Change::Set(default), Reply::Ok))
                })
                .await;
            }
            "acl-pubsub-default" => {
                let all = value == "allchannels";
                s.core
                    .broadcast(move |core| core.acl.borrow_mut().all_channels_default = all)
                    .await;
            }
            _ => {}
        }
    }
}

/// ACL GETUSER's map.
fn getuser(u: &User) -> Reply {
    let selector_fields = |sel: &crate::acl::user::Selector| {
        vec![
            (bulk("commands"), bulk(&sel.commands_text())),
            (bulk("keys"), Reply::Bulk(sel.keys_text().into())),
            (bulk("channels"), Reply::Bulk(sel.channels_text().into())),
        ]
    };
    let mut map = vec![
        (
            bulk("flags"),
            Reply::Set(u.flag_names().into_iter().map(bulk).collect()),
        ),
        (
            bulk("passwords"),
            Reply::Array(u.passwords.iter().map(|p| bulk(&hex(p))).collect()),
        ),
    ];
    if let Some(root) = u.selectors.first() {
        map.extend(selector_fields(root));
    }
    map.push((
        bulk("selectors"),
        Reply::Array(
            u.selectors
                .iter()
                .skip(1)
                .map(|s| Reply::Map(selector_fields(s)))
                .collect(),
        ),
    ));
    Reply::Map(map)
}

/// ACL CAT [category]
/// CAT, GENPASS and LOG take one optional argument; Redis answers more with the subcommand
/// syntax error (their arity is open-ended).
fn too_many(args: &[Bytes]) -> Option<Reply> {
    (args.len() > 3).then(|| error::subcommand_syntax(args))
}

fn cat(args: &[Bytes]) -> Reply {
    if let Some(e) = too_many(args) {
        return e;
    }
    let Some(name) = args.get(2) else {
        return Reply::Array(
            shardis_engine::command::ACL_CATEGORIES
                .iter()
                .map(|c| bulk(c))
                .collect(),
        );
    };
    let Some(bit) = category(name) else {
        let shown = &name[..name.len().min(128)];
        return Reply::error(format!("ERR Unknown category '{}'", text(shown)));
    };
    Reply::Array(
        UNIVERSE
            .in_category(bit)
            .filter_map(|id| UNIVERSE.get(id))
            .filter(|k| k.implemented)
            .map(|k| bulk(&k.name))
            .collect(),
    )
}

/// ACL GENPASS [bits]
fn genpass(args: &[Bytes]) -> Reply {
    if let Some(e) = too_many(args) {
        return e;
    }
    let bits = match args.get(2) {
        None => 256,
        Some(a) => match num::parse_i64(a) {
            Some(n) => n,
            None => return error::not_integer(),
        },
    };
    if bits <= 0 || bits > GENPASS_MAX_BITS {
        return Reply::error(format!("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to {GENPASS_MAX_BITS}"));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut random = vec![0u8; chars.div_ceil(2)];
    if !crate::core::fill_random(&mut random) {
        return Reply::err("ERR cannot read random bytes from the kernel");
    }
    let mut hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    bulk(&hex)
}

/// ACL LOG [count | RESET], from core 0.
async fn log(s: &mut Session, args: &[Bytes]) -> Reply {
    if let Some(e) = too_many(args) {
        return e;
    }
    let mut count = 10usize;
    if let Some(a) = args.get(2) {
        if a.eq_ignore_ascii_case(b"reset") {
            s.core.run_on(0, |c0| c0.acl.borrow_mut().log.reset()).await;
            return Reply::Ok;
        }
        match num::parse_i64(a) {
            Some(n) => count = n.max(0) as usize,
            None => return error::not_integer(),
        }
    }
    let now = crate::core::wall_ms();
    let entries = s
        .core
        .run_on(0, move |c0| {
            c0.acl
                .borrow()
                .log
                .newest(count)
                .cloned()
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
    Reply::Array(
        entries
            .into_iter()
            .map(|e| {
                Reply::Map(vec![
                    (bulk("count"), Reply::Int(e.count as i64)),
                    (bulk("reason"), bulk(e.reason.name())),
                    (bulk("context"), bulk(e.context.name())),
                    (bulk("object"), Reply::Bulk(e.object.into())),
                    (bulk("username"), Reply::Bulk(e.username.into())),
                    (
                        bulk("age-seconds"),
                        Reply::Double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0),
                    ),
                    (bulk("client-info"), bulk(&e.client_info)),
                ])
            })
            .collect(),
    )
}

/// ACL DRYRUN username command [arg ...]
fn dry_run(s: &Session, args: &[Bytes]) -> Reply {
    let Some(user) = s.core.acl.borrow().get(&args[2]).cloned() else {
        return Reply::error(format!("ERR User '{}' not found", text(&args[2])));
    };
    let call = &args[3..];
    let cmd = match REGISTRY.lookup(call) {
        Ok(cmd) => cmd,
        Err(Reply::Error(e)) if e.starts_with("ERR wrong number") => return Reply::Error(e),
        Err(_) => return Reply::error(format!("ERR Command '{}' not found", text(&args[3]))),
    };
    let verdict = check_call(&user.borrow(), cmd, call);
    match verdict {
        Ok(()) => Reply::Ok,
        Err(Denial::Command) => bulk(&format!(
            "This user has no permissions to run the '{}' command",
            cmd.name
        )),
        Err(Denial::Key(i)) => bulk(&format!(
            "This user has no permissions to access the '{}' key",
            text(&arg_bytes(call, i))
        )),
        Err(Denial::Channel(i)) => bulk(&format!(
            "This user has no permissions to access the '{}' channel",
            text(&arg_bytes(call, i))
        )),
    }
}

/// Text safe inside an error reply (no line breaks).
fn safe(b: &[u8]) -> String {
    text(b).replace(['\r', '\n'], " ")
}

/// An I/O error as C's strerror words it.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
