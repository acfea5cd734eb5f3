//! The process around the server, as Redis manages it: running in the background
//! (`daemonize`), the pid file, telling a supervisor (systemd, upstart) when it is ready or
//! stopping (`supervised`), the OOM killer's score (`oom-score-adj`) and transparent huge
//! pages (`disable-thp`).

use std::os::unix::net::UnixDatagram;

use crate::config::Config;

/// Where Redis writes its pid when daemonized without a `pidfile`.
const DEFAULT_PIDFILE: &str = "/var/run/redis.pid";

/// Who supervises the server, if anyone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Supervisor {
    None,
    /// systemd: notifications go to the `NOTIFY_SOCKET` datagram socket.
    Systemd(String),
    /// upstart: the server stops itself (SIGSTOP) once ready.
    Upstart,
}

/// The supervisor `supervised` names (`auto` looks at the environment), as Redis decides.
pub fn supervisor(config: &Config) -> Supervisor {
    let notify = std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty());
    let mode = match config.get("supervised") {
        "auto" if std::env::var_os("UPSTART_JOB").is_some() => "upstart",
        "auto" if notify.is_some() => "systemd",
        other => other,
    };
    match mode {
        "upstart" if std::env::var_os("UPSTART_JOB").is_some() => {
            std::env::remove_var("UPSTART_JOB");
            Supervisor::Upstart
        }
        "upstart" => {
            tracing::warn!("upstart supervision requested, but UPSTART_JOB not found!");
            Supervisor::None
        }
        "systemd" => match notify {
            Some(path) => Supervisor::Systemd(path),
            None => {
                tracing::warn!("systemd supervision requested or auto-detected, but no socket was provided: NOTIFY_SOCKET not found");
                Supervisor::None
            }
        },
        _ => Supervisor::None,
    }
}

impl Supervisor {
    /// Sends a systemd notification (`READY=1`, `STATUS=…`, `STOPPING=1`).
    pub fn notify(&self, message: &str) {
        let Supervisor::Systemd(path) = self else {
            return;
        };
        let sent = UnixDatagram::unbound().and_then(|sock| {
            // An abstract socket is named with a leading '@'.
            match path.strip_prefix('@') {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                    sock.send_to_addr(message.as_bytes(), &addr)
                }
                None => sock.send_to(message.as_bytes(), path),
            }
        });
        if let Err(e) = sent {
            tracing::warn!("Can't send notification to systemd: {e}");
        }
    }

    /// Tells the supervisor the server is ready for connections.
    pub fn ready(&self) {
        match self {
            Supervisor::Systemd(_) => {
                self.notify("STATUS=Ready to accept connections\n");
                self.notify("READY=1\n");
            }
            // SAFETY: stopping ourselves is how upstart's "expect stop" learns readiness.
            Supervisor::Upstart => unsafe {
                libc::raise(libc::SIGSTOP);
            },
            Supervisor::None => {}
        }
    }
}

/// The supervisor found at start-up ([`start`]).
static SUPERVISOR: std::sync::OnceLock<Supervisor> = std::sync::OnceLock::new();

/// The pid file written at start-up, removed at exit.
static PIDFILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Start-up, before any thread: finds the supervisor, goes to the background if asked,
/// writes the pid file, and applies the OOM score and the huge-page setting.
pub fn start(config: &Config) -> Result<(), String> {
    let supervisor = supervisor(config);
    let background = runs_in_background(config, &supervisor);
    let _ = SUPERVISOR.set(supervisor);
    if background {
        daemonize()?;
    }
    if let Some(path) = pidfile(config, background) {
        write_pidfile(&path);
        let _ = PIDFILE.set(path);
    }
    if config.get("oom-score-adj") != "no" {
        apply_oom_score(config);
    }
    apply_thp(config);
    Ok(())
}

/// The server accepts connections: tells the supervisor.
pub fn ready() {
    if let Some(s) = SUPERVISOR.get() {
        s.ready();
    }
}

/// The server is stopping: tells the supervisor and removes the pid file.
pub fn stopping() {
    if let Some(s) = SUPERVISOR.get() {
        s.notify("STOPPING=1\n");
    }
    if let Some(path) = PIDFILE.get() {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether the server goes to the background: `daemonize yes`, unless supervised.
pub fn runs_in_background(config: &Config, supervisor: &Supervisor) -> bool {
    config.get("daemonize") == "yes" && *supervisor == Supervisor::None
}

/// Forks: the parent exits, the child leads a new session with its standard streams on
/// /dev/null. Must run before any thread starts.
pub fn daemonize() -> Result<(), String> {
    // SAFETY: no other thread exists yet; the child continues with a copy of this one.
    match unsafe { libc::fork() } {
        -1 => return Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {}
        _ => std::process::exit(0),
    }
    // SAFETY: plain system calls on our own process and standard descriptors.
    unsafe {
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0);
        if fd != -1 {
            libc::dup2(fd, libc::STDIN_FILENO);
            libc::dup2(fd, libc::STDOUT_FILENO);
            libc::dup2(fd, libc::STDERR_FILENO);
            if fd > libc::STDERR_FILENO {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

/// The pid file to write: `pidfile`, or Redis's default path when daemonized without one.
pub fn pidfile(config: &Config, background: bool) -> Option<String> {
    match config.get("pidfile") {
        "" if background => Some(DEFAULT_PIDFILE.to_string()),
        "" => None,
        path => Some(path.to_string()),
    }
}

/// Writes our pid, best effort as Redis does (a failure is logged, not fatal).
pub fn write_pidfile(path: &str) {
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        tracing::warn!("Failed to write PID file {path}: {e}");
    }
}

/// The OOM score the kernel had for us at start-up (the base of relative adjustments).
static OOM_BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// Applies `oom-score-adj` and `oom-score-adj-values` (the first value, the one for a
/// primary): relative to the score at start-up, absolute, or back to it (`no`).
pub fn apply_oom_score(config: &Config) {
    const PATH: &str = "/proc/self/oom_score_adj";
    let base = *OOM_BASE.get_or_init(|| {
        std::fs::read_to_string(PATH)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    });
    let value: i64 = config
        .get("oom-score-adj-values")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let target = match config.get("oom-score-adj") {
        "yes" | "relative" => base + value,
        "absolute" => value,
        _ => base,
    }
    .clamp(-1000, 1000);
    if let Err(e) = std::fs::write(PATH, target.to_string()) {
        tracing::warn!("Unable to write oom_score_adj: {e}");
    }
}

/// `disable-thp`: turns transparent huge pages off for this process (latency spikes on
/// copy-on-write and memory use, as Redis explains).
pub fn apply_thp(config: &Config) {
    if config.get("disable-thp") != "yes" {
        return;
    }
    // SAFETY: a process-wide flag, no pointers involved.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
        tracing::warn!(
            "Failed to disable transparent huge pages: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_defaults_only_in_the_background() {
        let mut c = Config::default();
        assert_eq!(pidfile(&c, false), None);
        assert_eq!(pidfile(&c, true).as_deref(), Some(DEFAULT_PIDFILE));
        c.load_text("pidfile /tmp/x.pid").expect("valid");
        assert_eq!(pidfile(&c, false).as_deref(), Some("/tmp/x.pid"));
    }

    #[test]
    fn supervision_follows_the_setting_and_the_environment() {
        let mut c = Config::default();
        assert_eq!(supervisor(&c), Supervisor::None);
        c.load_text("supervised upstart").expect("valid");
        if std::env::var_os("UPSTART_JOB").is_none() {
            assert_eq!(supervisor(&c), Supervisor::None);
        }
        c.load_text("daemonize yes").expect("valid");
        assert!(runs_in_background(&c, &Supervisor::None));
        assert!(!runs_in_background(&c, &Supervisor::Upstart));
    }
}
