//! TLS on the replication links (`tls-replication`), as Redis 7.0 does it: the replica
//! connects to its primary's `tls-port` with a client certificate and checks the primary's
//! certificate against `tls-ca-cert-file`/`-dir` (the chain only: Redis sets no host name to
//! verify, so neither does this); the primary serves PSYNC on its `tls-port` connections.
//!
//! A link runs on threads with blocking sockets (`replica/link.rs`, `primary/link.rs`), and
//! the primary's side reads ACKs on one thread while another writes the stream, so a link's
//! rustls session is shared behind a mutex by the halves of a [`LinkStream`]: a reader waits
//! for ciphertext without the lock and takes it only to decrypt; a writer encrypts and sends
//! under it, so records leave in the order rustls made them.

use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, Connection, DigitallySignedStruct,
    ServerConnection, SignatureScheme,
};

use crate::config::Config;

/// The client settings a replica connects to its primary with: the CAs of `tls-ca-cert-file`
/// / `tls-ca-cert-dir` (required, as Redis requires them with `tls-replication`), the
/// certificate of `tls-client-cert-file`/`tls-client-key-file` when both are set, else the
/// server's own (`tls-cert-file`/`tls-key-file`), and the same protocols and suites as the
/// server side.
pub fn client_config(config: &Config) -> Result<Arc<ClientConfig>, String> {
    let roots = crate::tls::load_roots(
        config.get("tls-ca-cert-file"),
        config.get("tls-ca-cert-dir"),
    )?
    .ok_or(crate::tls::CA_REQUIRED)?;
    let (cert, key, cert_param, key_param) = {
        let (c, k) = (
            config.get("tls-client-cert-file"),
            config.get("tls-client-key-file"),
        );
        if !c.is_empty() && !k.is_empty() {
            (c, k, "tls-client-cert-file", "tls-client-key-file")
        } else {
            (
                config.get("tls-cert-file"),
                config.get("tls-key-file"),
                "tls-cert-file",
                "tls-key-file",
            )
        }
    };
    if cert.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if key.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    let chain = crate::tls::load_certs(cert, cert_param)?;
    let key = crate::tls::load_key(key, key_param)?;
    let (provider, versions) = crate::tls::provider(config)?;
    let chain_check =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("server certificate verifier: {e}"))?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS settings: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(chain_check)))
        .with_client_auth_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("{key_param} is not the key of the certificate in {cert_param}")
            }
            e => format!("{cert_param}/{key_param}: {e}"),
        })?;
    Ok(Arc::new(client))
}

/// Checks the primary's certificate chain against the CAs, and not its names: a replica
/// names its primary by whatever address `replicaof` gives, and Redis verifies the peer
/// without a host name.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked last, once the chain is known good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// One half of a replication link's byte stream: a plain socket, or a TLS session over it.
/// At most one half of a stream reads (its decrypted bytes are its own).
pub enum LinkStream {
    Plain(TcpStream),
    Tls(TlsHalf),
}

/// A TLS session over a socket, one half of it.
pub struct TlsHalf {
    sock: TcpStream,
    session: Arc<Mutex<Connection>>,
    /// Decrypted bytes not read yet, from `at`.
    plain: Vec<u8>,
    at: usize,
    /// The peer closed (close_notify or end of stream): reads answer 0.
    eof: bool,
}

impl LinkStream {
    /// The stream of a socket the event loop handed over, with the TLS session it had
    /// established on the `tls-port` (already past its handshake).
    pub fn handed_over(sock: TcpStream, tls: Option<ServerConnection>) -> LinkStream {
        match tls {
            None => LinkStream::Plain(sock),
            Some(session) => LinkStream::Tls(TlsHalf::new(sock, Connection::Server(session))),
        }
    }

    /// Makes the TLS handshake as a client on a connected socket (with its read timeout
    /// set), giving up after `timeout`.
    pub fn connect(
        sock: TcpStream,
        config: Arc<ClientConfig>,
        host: &str,
        timeout: Duration,
    ) -> io::Result<LinkStream> {
        // The name only goes out as SNI: it is not verified (see ChainOnly).
        let name = ServerName::try_from(host.to_string())
            .or_else(|_| ServerName::try_from("localhost"))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let started = Instant::now();
        loop {
            while conn.wants_write() {
                conn.write_tls(&mut &sock)?;
            }
            if !conn.is_handshaking() {
                break;
            }
            match conn.read_tls(&mut &sock) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the primary closed the connection during the TLS handshake",
                    ))
                }
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        // The alert tells the primary why.
                        let _ = conn.write_tls(&mut &sock);
                        return Err(io::Error::other(format!("TLS handshake: {e}")));
                    }
                }
                Err(e) if is_timeout(&e) => {
                    if started.elapsed() > timeout {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "timeout in the TLS handshake with the primary",
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(LinkStream::Tls(TlsHalf::new(
            sock,
            Connection::Client(conn),
        )))
    }

    /// The socket underneath (timeouts, shutdown).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            LinkStream::Plain(s) => s,
            LinkStream::Tls(t) => &t.sock,
        }
    }

    /// Another half of the same stream (a duplicated socket, the same TLS session).
    pub fn try_clone(&self) -> io::Result<LinkStream> {
        Ok(match self {
            LinkStream::Plain(s) => LinkStream::Plain(s.try_clone()?),
            LinkStream::Tls(t) => LinkStream::Tls(TlsHalf {
                sock: t.sock.try_clone()?,
                session: t.session.clone(),
                plain: Vec::new(),
                at: 0,
                eof: false,
            }),
        })
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl TlsHalf {
    fn new(sock: TcpStream, session: Connection) -> TlsHalf {
        TlsHalf {
            sock,
            session: Arc::new(Mutex::new(session)),
            plain: Vec::new(),
            at: 0,
            eof: false,
        }
    }

    /// Moves the session's decrypted bytes into `plain`; whether the peer sent close_notify.
    fn take_plaintext(session: &mut Connection, plain: &mut Vec<u8>) -> bool {
        let mut reader = session.reader();
        loop {
            match reader.fill_buf() {
                Ok([]) => return true,
                Ok(buf) => {
                    let n = buf.len();
                    plain.extend_from_slice(buf);
                    reader.consume(n);
                }
                // WouldBlock: nothing more for now; UnexpectedEof is seen by the socket read.
                Err(_) => return false,
            }
        }
    }
}

fn lock(session: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    session.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends whatever the session has to send (records, alerts).
fn flush(session: &mut Connection, mut sock: &TcpStream) -> io::Result<()> {
    while session.wants_write() {
        session.write_tls(&mut sock)?;
    }
    Ok(())
}

impl Read for TlsHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at == self.plain.len() {
                self.plain.clear();
                self.at = 0;
                // Bytes decrypted along with the handshake, or before a timeout.
                let closed = Self::take_plaintext(&mut lock(&self.session), &mut self.plain);
                self.eof |= closed && self.plain.is_empty();
            }
            if self.at < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.at);
                buf[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if self.eof {
                return Ok(0);
            }
            // Waits without the lock, so the writing half goes on meanwhile.
            let mut cipher = [0u8; 16 * 1024];
            let n = (&self.sock).read(&mut cipher)?;
            if n == 0 {
                self.eof = true;
                return Ok(0);
            }
            let mut session = lock(&self.session);
            let mut rest = &cipher[..n];
            while !rest.is_empty() {
                if session.read_tls(&mut rest)? == 0 {
                    return Err(io::Error::other("malformed TLS record"));
                }
                if let Err(e) = session.process_new_packets() {
                    let _ = flush(&mut session, &self.sock);
                    return Err(io::Error::other(format!("TLS: {e}")));
                }
                // Taken after each piece, so rustls's plaintext buffer never fills.
                Self::take_plaintext(&mut session, &mut self.plain);
            }
            // A key update or an alert to answer.
            flush(&mut session, &self.sock)?;
        }
    }
}

impl Write for TlsHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut session = lock(&self.session);
        let n = session.writer().write(buf)?;
        flush(&mut session, &self.sock)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every write sends what it sealed.
        Ok(())
    }
}

impl Read for LinkStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            LinkStream::Plain(s) => s.read(buf),
            LinkStream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for LinkStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LinkStream::Plain(s) => s.write(buf),
            LinkStream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LinkStream::Plain(s) => s.flush(),
            LinkStream::Tls(t) => t.flush(),
        }
    }
}
