//! Per-connection state (selected database, protocol, name…) and the per-core client table
//! behind CLIENT LIST / CLIENT KILL.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

/// What one connection is.
pub struct Client {
    pub id: u64,
    pub db: usize,
    pub resp3: bool,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub addr: String,
    pub laddr: String,
    pub fd: RawFd,
    pub created: Instant,
    pub last_active: Instant,
    /// Full name of the last command (`client|list`), for CLIENT LIST's `cmd=`.
    pub last_cmd: String,
    /// Bytes waiting in the query buffer at the last look.
    pub qbuf: usize,
    /// Set when the connection must close after its pending replies are written.
    pub closing: bool,
    /// While blocked (BLPOP…): how CLIENT UNBLOCK ends the wait.
    pub unblock: Option<Unblock>,
}

/// The handle CLIENT UNBLOCK uses: the blocked command's reply channel and claim flag.
pub struct Unblock {
    pub reply: futures_channel::mpsc::UnboundedSender<shardis_resp::Reply>,
    pub claim: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What a timeout answers for this command.
    pub timeout_reply: shardis_resp::Reply,
}

impl Unblock {
    /// Ends the wait with the timeout reply or an error, unless a shard already served it.
    pub fn unblock(&self, with_error: bool) -> bool {
        use std::sync::atomic::Ordering;
        if self
            .claim
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        let reply = if with_error {
            shardis_resp::Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        } else {
            self.timeout_reply.clone()
        };
        self.reply.unbounded_send(reply).is_ok()
    }
}

/// The table entry other commands (CLIENT LIST/KILL) see.
pub type ClientHandle = Rc<RefCell<Client>>;

impl Client {
    pub fn new(id: u64, addr: String, laddr: String, fd: RawFd) -> Client {
        let now = Instant::now();
        Client {
            id,
            db: 0,
            resp3: false,
            name: None,
            lib_name: None,
            lib_ver: None,
            addr,
            laddr,
            fd,
            created: now,
            last_active: now,
            last_cmd: "NULL".into(),
            qbuf: 0,
            closing: false,
            unblock: None,
        }
    }

    /// One CLIENT LIST / CLIENT INFO line, fields as Redis prints them.
    pub fn info_line(&self) -> String {
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            text(&self.name),
            self.created.elapsed().as_secs(),
            self.last_active.elapsed().as_secs(),
            if self.unblock.is_some() { "b" } else { "N" },
            self.db,
            self.qbuf,
            self.last_cmd,
            if self.resp3 { 3 } else { 2 },
            text(&self.lib_name),
            text(&self.lib_ver),
        )
    }

    /// Closes the socket under the connection's pending read, which then ends the connection.
    pub fn kill(&mut self) {
        self.closing = true;
        // SAFETY: shutting down an fd this connection still owns; the read in flight returns 0.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }
}

/// Checks a client name as Redis does: no spaces, newlines or special characters.
pub fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}
