//! Listening sockets: one per core and address, all bound with SO_REUSEPORT so the kernel
//! spreads new connections over the cores, and the start-up check that no other process is
//! listening on the port already (after a few seconds' wait for one a killed predecessor
//! still holds).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// One `bind` entry: the address and whether a failure to bind it may be skipped (`-addr`).
#[derive(Clone, Debug)]
pub struct BindAddr {
    pub addr: SocketAddr,
    pub optional: bool,
    /// The `tls-port` listener at this address (the plain `port` one otherwise).
    pub tls: bool,
    /// In cluster mode, the port of this shard's node alone (see `cluster`).
    pub node: Option<usize>,
}

/// A core's listening socket, whether its connections speak TLS, and whether it is the
/// core's own cluster node port (its clients are redirected, not forwarded).
pub struct Listener {
    pub fd: OwnedFd,
    pub tls: bool,
    pub node: bool,
}

/// Parses Redis's `bind` value ("127.0.0.1 -::1") for `port`.
pub fn bind_addrs(bind: &str, port: u16) -> Result<Vec<BindAddr>, String> {
    let mut out = Vec::new();
    for word in bind.split_whitespace() {
        let (text, optional) = match word.strip_prefix('-') {
            Some(rest) => (rest, true),
            None => (word, false),
        };
        let ip: IpAddr = match text {
            "*" => IpAddr::from([0u8; 4]),
            "::*" => IpAddr::from([0u16; 8]),
            _ => text
                .parse()
                .map_err(|_| format!("Invalid bind address '{text}'"))?,
        };
        out.push(BindAddr {
            addr: SocketAddr::new(ip, port),
            optional,
            tls: false,
            node: None,
        });
    }
    Ok(out)
}

/// Every address the server listens on: `bind`'s for `port` and for `tls-port` (0: that one
/// is not listened on), and in cluster mode every shard's node port.
pub fn server_addrs(
    config: &crate::config::Config,
    shards: usize,
) -> Result<Vec<BindAddr>, String> {
    let port = config.get_i64("port").clamp(0, u16::MAX as i64) as u16;
    let tls_port = config.get_i64("tls-port").clamp(0, u16::MAX as i64) as u16;
    let bind = config.get("bind");
    let mut addrs = Vec::new();
    if port != 0 {
        addrs = bind_addrs(bind, port)?;
    }
    if tls_port != 0 {
        for mut a in bind_addrs(bind, tls_port)? {
            a.tls = true;
            addrs.push(a);
        }
    }
    // Cluster mode: every shard's node listens on a port of its own too.
    if config.get_bool("cluster-enabled") && crate::cluster::node_per_shard(config) && port != 0 {
        for shard in 0..shards {
            let node_port = crate::cluster::listen_port(port, shard);
            for mut a in bind_addrs(bind, node_port)? {
                a.node = Some(shard);
                addrs.push(a);
            }
        }
    }
    Ok(addrs)
}

/// Core `core`'s listening sockets on `addrs`: the shared ports, and a cluster node's own
/// port on its core alone. An optional address (`-addr`) that cannot be bound is skipped
/// (logged by core 0), unless another process holds it; an address that cannot be bound
/// otherwise is an error, with Redis's words for it.
pub fn open(addrs: &[BindAddr], backlog: i32, core: usize) -> Result<Vec<Listener>, String> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for a in addrs.iter().filter(|a| a.node.is_none_or(|n| n == core)) {
        match listen(&a.addr, backlog) {
            Ok(fd) => listeners.push(Listener {
                fd,
                tls: a.tls,
                node: a.node.is_some(),
            }),
            Err(e) if a.optional && e.kind() != io::ErrorKind::AddrInUse => {
                if core == 0 {
                    tracing::warn!("could not bind {}: {e}", a.addr);
                }
            }
            Err(e) => {
                return Err(format!(
                    "Could not create server TCP listening socket {}: bind: {}",
                    a.addr,
                    describe(&e)
                ))
            }
        }
    }
    if listeners.is_empty() && !addrs.is_empty() {
        return Err("Failed listening on every address".into());
    }
    Ok(listeners)
}

/// Redis's wording for the usual bind failures.
pub fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => "Address already in use".into(),
        io::ErrorKind::AddrNotAvailable => "Cannot assign requested address".into(),
        _ => e.to_string(),
    }
}

fn socket_for(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the fd is owned by the returned OwnedFd.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid socket we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_flag(fd: &OwnedFd, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a live c_int of the declared size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn bind_fd(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (storage, len) = sockaddr(addr);
    // SAFETY: bind with a sockaddr_storage filled for this family and its length.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &storage as *const libc::sockaddr_storage as *const libc::sockaddr,
            len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A `sockaddr_storage` for `addr`.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zero is a valid bit pattern.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Refuses to start when another process listens on `addr`, as Redis does.
///
/// The cores' listeners use SO_REUSEPORT, which would silently share the port with another
/// process listening with it too. The probe binds with SO_REUSEADDR and without SO_REUSEPORT:
/// Linux then refuses the bind only while a socket is bound or listening there, not for
/// connections of an earlier run lingering in TIME_WAIT, so a restart works at once.
pub fn check_free(addr: &SocketAddr) -> io::Result<()> {
    let fd = socket_for(addr)?;
    set_flag(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
    if addr.is_ipv6() {
        set_flag(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
    }
    bind_fd(&fd, addr)
}

/// How long start-up waits for a port still held: a predecessor killed with SIGKILL keeps its
/// listening sockets until its io_uring rings are torn down, which the kernel finishes a
/// little after the process is reaped.
pub const BIND_RETRY: Duration = Duration::from_secs(5);

/// [`check_free`], retried for up to [`BIND_RETRY`] while the address is in use, with a log
/// line saying so (Redis fails at once; it has no such teardown to wait for).
pub fn wait_free(addr: &SocketAddr) -> io::Result<()> {
    let deadline = Instant::now() + BIND_RETRY;
    let mut logged = false;
    loop {
        match check_free(addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                if !logged {
                    tracing::warn!(
                        "{addr} is still in use; retrying for up to {} s",
                        BIND_RETRY.as_secs()
                    );
                    logged = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
            Ok(()) => {
                if logged {
                    tracing::info!("{addr} is free now");
                }
                return Ok(());
            }
        }
    }
}

/// A listening socket for one core: SO_REUSEADDR (restarts over TIME_WAIT) and SO_REUSEPORT
/// (every core listens on the same port).
pub fn listen(addr: &SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
    listen_on(addr, backlog, true)
}

/// A listening socket only this one listens on (no SO_REUSEPORT: a second bind fails), IPv6
/// ones IPv6-only as the cores' (the metrics endpoint's).
pub fn listen_alone(addr: &SocketAddr, backlog: i32) -> io::Result<OwnedFd> {
    listen_on(addr, backlog, false)
}

fn listen_on(addr: &SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let fd = socket_for(addr)?;
    set_flag(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR)?;
    if reuse_port {
        set_flag(&fd, libc::SOL_SOCKET, libc::SO_REUSEPORT)?;
    }
    if addr.is_ipv6() {
        set_flag(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)?;
    }
    bind_fd(&fd, addr)?;
    // SAFETY: listen on a bound socket we own.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Sets the options every accepted connection gets: TCP_NODELAY (replies go out at once) and,
/// when `keepalive_secs` > 0, TCP keepalive probes after that many idle seconds (Redis's
/// `tcp-keepalive`: probes every third of it, three of them, then the kernel closes).
pub fn configure_accepted(fd: i32, keepalive_secs: i64) {
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| {
        // SAFETY: setsockopt on an fd we were just handed, with a pointer to a live c_int.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    };
    set(libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    if keepalive_secs > 0 {
        let idle = keepalive_secs.clamp(1, i32::MAX as i64) as libc::c_int;
        set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
        set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle);
        set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (idle / 3).max(1));
        set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    }
}

/// The peer and local addresses of a connected socket, as CLIENT LIST prints them.
pub fn addresses(fd: i32) -> (String, String) {
    let name = |peer: bool| -> Option<String> {
        // SAFETY: get{peer,sock}name fill a sockaddr_storage we own, up to `len` bytes.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let ptr = &mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr;
        let rc = unsafe {
            if peer {
                libc::getpeername(fd, ptr, &mut len)
            } else {
                libc::getsockname(fd, ptr, &mut len)
            }
        };
        if rc < 0 {
            return None;
        }
        match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the kernel filled a sockaddr_in for this family.
                let sin = unsafe { &*(ptr as *const libc::sockaddr_in) };
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(format!("{ip}:{}", u16::from_be(sin.sin_port)))
            }
            libc::AF_INET6 => {
                // SAFETY: the kernel filled a sockaddr_in6 for this family.
                let sin6 = unsafe { &*(ptr as *const libc::sockaddr_in6) };
                let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(format!("{ip}:{}", u16::from_be(sin6.sin6_port)))
            }
            _ => None,
        }
    };
    (
        name(true).unwrap_or_default(),
        name(false).unwrap_or_default(),
    )
}

/// True for addresses protected mode lets in without a password: loopback (IPv4, IPv6, and
/// IPv4-mapped loopback) and Unix sockets.
pub fn is_loopback(peer: &str) -> bool {
    let host = match peer.rsplit_once(':') {
        Some((h, _)) => h,
        None => peer,
    };
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_lines_parse_like_redis() {
        let addrs = bind_addrs("127.0.0.1 -::1", 6379).expect("valid");
        assert_eq!(addrs.len(), 2);
        assert_eq!(addrs[0].addr.to_string(), "127.0.0.1:6379");
        assert!(!addrs[0].optional);
        assert!(addrs[1].optional);
        assert!(bind_addrs("nonsense", 1).is_err());
        assert_eq!(
            bind_addrs("*", 7).expect("valid")[0].addr.to_string(),
            "0.0.0.0:7"
        );
    }

    #[test]
    fn loopback_peers() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("::1:5000"));
        assert!(is_loopback("::ffff:127.0.0.1:80"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn a_listener_is_detected_and_time_wait_is_not() {
        let l = listen(&"127.0.0.1:0".parse().expect("addr"), 16).expect("listen");
        let port = {
            let (_, local) = addresses(std::os::fd::AsRawFd::as_raw_fd(&l));
            local
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .expect("port")
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        assert!(check_free(&addr).is_err(), "a live listener must be seen");
        // A connection closed by the server side leaves it in TIME_WAIT.
        let client = std::net::TcpStream::connect(addr).expect("connect");
        // SAFETY: accept on our listening socket.
        let accepted = unsafe {
            libc::accept(
                std::os::fd::AsRawFd::as_raw_fd(&l),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert!(accepted >= 0);
        // SAFETY: closing the fd accept just gave us.
        unsafe { libc::close(accepted) };
        drop(client);
        drop(l);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            check_free(&addr).is_ok(),
            "TIME_WAIT must not block a restart"
        );
    }
}
