//! TLS on `tls-port`: round trips with the `redis` crate (rustls) and `redis-cli --tls`, client
//! certificates (`tls-auth-clients` yes, optional, no), protocol versions and cipher suites,
//! certificate reload by CONFIG SET, session resumption, large values and pipelines over TLS on
//! both shards, what a peer that does not speak TLS gets, and replication links over TLS
//! (`tls-replication`) with Debian's redis-server 7.0 on either side and between Shardis
//! servers. Certificates are made by the
//! tests (rcgen), in a directory of their own.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::real_redis::redis_server_with;
use common::replication::{
    assert_same, fill, info_of, kill_type, number, wait_in_sync, wait_info, wait_replicas,
    write_load,
};
use common::{free_port, Server};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use redis::{ClientTlsConfig, TlsCertificates};
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

// ---------------------------------------------------------------------------------------------
// Certificates.

/// A certificate and its key, as PEM, and the files they were written to.
struct Pem {
    cert: String,
    key: String,
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// A CA with a server certificate (localhost, 127.0.0.1, ::1) and a client certificate.
struct Pki {
    ca_pem: String,
    ca_file: PathBuf,
    server: Pem,
    client: Pem,
}

/// A directory for one test's files, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "shardis-tls-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        Dir(path)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn make_pki(dir: &Dir, name: &str) -> Pki {
    let ca_key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Shardis test CA {name}"));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(params, ca_key).expect("CA");
    let leaf = |what: &str, sans: Vec<String>| -> Pem {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(sans).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{what} {name}"));
        let cert = params.signed_by(&key, &*ca).expect("sign");
        let (cert, key) = (cert.pem(), key.serialize_pem());
        Pem {
            cert_file: dir.file(&format!("{name}-{what}.crt"), &cert),
            key_file: dir.file(&format!("{name}-{what}.key"), &key),
            cert,
            key,
        }
    };
    let server = leaf(
        "server",
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
    );
    let client = leaf("client", vec!["client.shardis.test".into()]);
    let ca_pem = ca.pem();
    Pki {
        ca_file: dir.file(&format!("{name}-ca.crt"), &ca_pem),
        ca_pem,
        server,
        client,
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `--tls-port PORT` and the server's certificate files from `pki`, then `extra`.
fn tls_args(tls_port: u16, pki: &Pki, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "--tls-port".into(),
        tls_port.to_string(),
        "--tls-cert-file".into(),
        path(&pki.server.cert_file),
        "--tls-key-file".into(),
        path(&pki.server.key_file),
        "--tls-ca-cert-file".into(),
        path(&pki.ca_file),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn start(shards: usize, tls_port: u16, pki: &Pki, extra: &[&str]) -> Server {
    let args = tls_args(tls_port, pki, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(shards, &args)
}

// ---------------------------------------------------------------------------------------------
// Clients.

/// A `redis` crate client for `rediss://127.0.0.1:port`, trusting `ca`, presenting `cert`.
fn client(port: u16, ca: &str, cert: Option<&Pem>) -> redis::Client {
    redis::Client::build_with_tls(
        format!("rediss://127.0.0.1:{port}/"),
        TlsCertificates {
            client_tls: cert.map(|c| ClientTlsConfig {
                client_cert: c.cert.clone().into_bytes(),
                client_key: c.key.clone().into_bytes(),
            }),
            root_cert: Some(ca.as_bytes().to_vec()),
        },
    )
    .expect("TLS client")
}

/// PING over a fresh connection of `client`: the certificate checks of both sides happen by
/// then (with TLS 1.3 a refused client certificate shows only at the first read).
fn ping(client: &redis::Client) -> Result<String, String> {
    let mut c = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query::<String>(&mut c)
        .map_err(|e| e.to_string())
}

/// A rustls client configuration of our own, for what the `redis` crate does not expose:
/// protocol versions, cipher suites, session resumption, close_notify.
fn rustls_config(
    ca: &str,
    cert: Option<&Pem>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    suites: Option<Vec<rustls::SupportedCipherSuite>>,
) -> Arc<rustls::ClientConfig> {
    let mut p = provider::default_provider();
    if let Some(suites) = suites {
        p.cipher_suites = suites;
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.expect("CA pem")).expect("root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(p))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let config = match cert {
        Some(c) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(c.cert.as_bytes())
                    .map(|c| c.expect("pem"))
                    .collect(),
                PrivateKeyDer::from_pem_slice(c.key.as_bytes()).expect("key"),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

type Stream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(port: u16, config: &Arc<rustls::ClientConfig>) -> Stream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let conn = rustls::ClientConnection::new(
        config.clone(),
        ServerName::try_from("localhost").expect("name"),
    )
    .expect("client connection");
    rustls::StreamOwned::new(conn, tcp)
}

/// Sends `request` and reads until the reply ends with `until`.
fn exchange(s: &mut Stream, request: &[u8], until: &[u8]) -> Result<Vec<u8>, String> {
    s.write_all(request).map_err(|e| e.to_string())?;
    s.flush().map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    while !got.ends_with(until) {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("closed after {:?}", String::from_utf8_lossy(&got)));
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

/// PING with our own rustls client; the negotiated version and suite.
fn rustls_ping(
    port: u16,
    config: &Arc<rustls::ClientConfig>,
) -> Result<(rustls::ProtocolVersion, rustls::CipherSuite), String> {
    let mut s = connect(port, config);
    exchange(&mut s, b"PING\r\n", b"+PONG\r\n")?;
    Ok((
        s.conn.protocol_version().expect("version"),
        s.conn.negotiated_cipher_suite().expect("suite").suite(),
    ))
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS12, &rustls::version::TLS13];

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn round_trip_with_the_redis_crate_and_client_certificates_on_two_shards() {
    let dir = Dir::new("roundtrip");
    let pki = make_pki(&dir, "a");
    let other = make_pki(&dir, "b");
    let tls_port = free_port();
    let server = start(2, tls_port, &pki, &[]);

    // tls-auth-clients yes (the default): a certificate from the CA is required.
    let good = client(tls_port, &pki.ca_pem, Some(&pki.client));
    let mut c = good.get_connection().expect("TLS connection");
    for i in 0..200 {
        // Keys on both shards.
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg(i)
            .query(&mut c)
            .expect("SET");
    }
    for i in 0..200 {
        let v: i64 = redis::cmd("GET")
            .arg(format!("key:{i}"))
            .query(&mut c)
            .expect("GET");
        assert_eq!(v, i);
    }
    let keys: Vec<String> = redis::cmd("MGET")
        .arg("key:1")
        .arg("key:2")
        .arg("key:3")
        .query(&mut c)
        .expect("MGET over shards");
    assert_eq!(keys, vec!["1", "2", "3"]);
    // The plain port serves the same data.
    let mut plain = server.conn();
    let v: i64 = redis::cmd("GET")
        .arg("key:7")
        .query(&mut plain)
        .expect("GET");
    assert_eq!(v, 7);

    // No client certificate, or one from another CA: refused.
    let none = client(tls_port, &pki.ca_pem, None);
    assert!(
        ping(&none).is_err(),
        "a client without a certificate got in"
    );
    let wrong = client(tls_port, &pki.ca_pem, Some(&other.client));
    assert!(ping(&wrong).is_err(), "a certificate of another CA got in");
    // A client that does not trust the server's CA refuses the server.
    let distrust = client(tls_port, &other.ca_pem, Some(&pki.client));
    assert!(ping(&distrust).is_err());

    // Every connection, on either core, is served (SO_REUSEPORT spreads them).
    for _ in 0..8 {
        assert_eq!(ping(&good).as_deref(), Ok("PONG"));
    }
    // The refusals did not take the server down, and its clients are counted.
    assert!(server.answers_ping(Duration::from_secs(5)).is_ok());
    assert!(server.info_number("connected_clients") >= 2);
}

#[test]
fn auth_clients_optional_and_no() {
    let dir = Dir::new("auth");
    let pki = make_pki(&dir, "a");
    let other = make_pki(&dir, "b");

    let tls_port = free_port();
    let _server = start(1, tls_port, &pki, &["--tls-auth-clients", "optional"]);
    assert_eq!(
        ping(&client(tls_port, &pki.ca_pem, None)).as_deref(),
        Ok("PONG")
    );
    assert_eq!(
        ping(&client(tls_port, &pki.ca_pem, Some(&pki.client))).as_deref(),
        Ok("PONG")
    );
    // Optional still checks a certificate that is presented.
    assert!(ping(&client(tls_port, &pki.ca_pem, Some(&other.client))).is_err());

    // `no`: no certificate asked for; no CA needed either.
    let tls_port = free_port();
    let args = [
        "--tls-port".to_string(),
        tls_port.to_string(),
        "--tls-cert-file".into(),
        path(&pki.server.cert_file),
        "--tls-key-file".into(),
        path(&pki.server.key_file),
        "--tls-auth-clients".into(),
        "no".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _server = Server::start(1, &args);
    assert_eq!(
        ping(&client(tls_port, &pki.ca_pem, None)).as_deref(),
        Ok("PONG")
    );
    // A certificate the server did not ask for is not sent, whatever its CA.
    assert_eq!(
        ping(&client(tls_port, &pki.ca_pem, Some(&other.client))).as_deref(),
        Ok("PONG")
    );
}

#[test]
fn protocol_versions_and_cipher_suites() {
    let dir = Dir::new("versions");
    let pki = make_pki(&dir, "a");
    let tls12 = &[&rustls::version::TLS12][..];
    let tls13 = &[&rustls::version::TLS13][..];
    let cfg = |v: &[&'static rustls::SupportedProtocolVersion]| {
        rustls_config(&pki.ca_pem, Some(&pki.client), v, None)
    };

    // Both by default; TLS 1.3 preferred.
    let port = free_port();
    let server = start(1, port, &pki, &[]);
    assert_eq!(
        rustls_ping(port, &cfg(BOTH)).expect("default").0,
        rustls::ProtocolVersion::TLSv1_3
    );
    assert_eq!(
        rustls_ping(port, &cfg(tls12)).expect("1.2").0,
        rustls::ProtocolVersion::TLSv1_2
    );
    drop(server);

    // TLSv1.2 only.
    let port = free_port();
    let server = start(1, port, &pki, &["--tls-protocols", "TLSv1.2"]);
    assert_eq!(
        rustls_ping(port, &cfg(BOTH)).expect("negotiates 1.2").0,
        rustls::ProtocolVersion::TLSv1_2
    );
    assert!(rustls_ping(port, &cfg(tls13)).is_err(), "1.3 accepted");
    // The redis crate works against it too.
    assert_eq!(
        ping(&client(port, &pki.ca_pem, Some(&pki.client))).as_deref(),
        Ok("PONG")
    );
    drop(server);

    // TLSv1.3 only.
    let port = free_port();
    let server = start(1, port, &pki, &["--tls-protocols", "TLSv1.3"]);
    assert_eq!(
        rustls_ping(port, &cfg(BOTH)).expect("negotiates 1.3").0,
        rustls::ProtocolVersion::TLSv1_3
    );
    assert!(rustls_ping(port, &cfg(tls12)).is_err(), "1.2 accepted");
    drop(server);

    // Cipher choices: tls-ciphers (TLS 1.2, OpenSSL names; the certificates are ECDSA) and
    // tls-ciphersuites (TLS 1.3), with the server's order preferred.
    let port = free_port();
    let server = start(
        1,
        port,
        &pki,
        &[
            "--tls-ciphers",
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256",
            "--tls-ciphersuites",
            "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
            "--tls-prefer-server-ciphers",
            "yes",
        ],
    );
    assert_eq!(
        rustls_ping(port, &cfg(tls12)).expect("1.2").1,
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    );
    assert_eq!(
        rustls_ping(port, &cfg(tls13)).expect("1.3").1,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    );
    // A client offering only a suite the server left out is refused.
    let aes256 = rustls_config(
        &pki.ca_pem,
        Some(&pki.client),
        tls13,
        Some(vec![provider::cipher_suite::TLS13_AES_256_GCM_SHA384]),
    );
    assert!(rustls_ping(port, &aes256).is_err());
    // CONFIG GET shows what was set; an unknown cipher is refused by CONFIG SET.
    let mut c = server.conn();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-ciphersuites")
        .query(&mut c)
        .expect("CONFIG GET");
    assert_eq!(
        got[1],
        "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
    );
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-ciphers")
        .arg("DEFAULT:NO-SUCH-CIPHER")
        .query::<()>(&mut c)
        .expect_err("unknown cipher");
    assert!(e.to_string().contains("NO-SUCH-CIPHER"), "{e}");
    // Setting the ciphers reloads the settings: new connections negotiate the new choice.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-ciphers")
        .arg("ECDHE-ECDSA-AES256-GCM-SHA384")
        .query(&mut c)
        .expect("CONFIG SET tls-ciphers");
    assert_eq!(
        rustls_ping(port, &cfg(tls12)).expect("1.2").1,
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    );
}

#[test]
fn config_set_reloads_the_certificates_on_every_core() {
    let dir = Dir::new("reload");
    let first = make_pki(&dir, "first");
    let second = make_pki(&dir, "second");
    let tls_port = free_port();
    // Clients of either CA may connect: the server's trust list holds both.
    let both_cas = dir.file("both.crt", &format!("{}{}", first.ca_pem, second.ca_pem));
    let server = start(
        2,
        tls_port,
        &first,
        &["--tls-ca-cert-file", &path(&both_cas)],
    );
    let old_client = client(tls_port, &first.ca_pem, Some(&first.client));
    let mut kept = old_client.get_connection().expect("connection");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut kept)
        .expect("SET");

    let mut admin = server.conn();
    let set = |admin: &mut redis::Connection, pairs: &[(&str, &str)]| -> redis::RedisResult<()> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET");
        for (k, v) in pairs {
            cmd.arg(*k).arg(*v);
        }
        cmd.query(admin)
    };
    set(
        &mut admin,
        &[
            ("tls-cert-file", &path(&second.server.cert_file)),
            ("tls-key-file", &path(&second.server.key_file)),
        ],
    )
    .expect("CONFIG SET of the new certificate");
    // New connections, on both cores, see the new certificate: trusted by the second CA only.
    let new_client = client(tls_port, &second.ca_pem, Some(&second.client));
    for _ in 0..8 {
        assert_eq!(ping(&new_client).as_deref(), Ok("PONG"));
        assert!(ping(&client(tls_port, &first.ca_pem, Some(&first.client))).is_err());
    }
    // The connection made before keeps its session.
    let v: String = redis::cmd("GET").arg("k").query(&mut kept).expect("GET");
    assert_eq!(v, "v");

    // Files that do not load make CONFIG SET fail and keep the certificate in force.
    let e =
        set(&mut admin, &[("tls-cert-file", "/nonexistent/cert.pem")]).expect_err("a missing file");
    let text = e.to_string();
    assert!(text.contains("tls-cert-file"), "{text}");
    assert!(text.contains("/nonexistent/cert.pem"), "{text}");
    // A key that is not the certificate's.
    let e = set(
        &mut admin,
        &[("tls-key-file", &path(&first.server.key_file))],
    )
    .expect_err("a key of another certificate");
    assert!(e.to_string().contains("not the key"), "{e}");
    let garbage = dir.file("garbage.pem", "not a certificate\n");
    assert!(set(&mut admin, &[("tls-cert-file", &path(&garbage))]).is_err());
    // An encrypted key is refused, saying so.
    let encrypted = dir.file(
        "encrypted.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let e = set(&mut admin, &[("tls-key-file", &path(&encrypted))]).expect_err("encrypted");
    assert!(e.to_string().contains("encrypted"), "{e}");
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-cert-file")
        .query(&mut admin)
        .expect("CONFIG GET");
    assert_eq!(got[1], path(&second.server.cert_file));
    for _ in 0..4 {
        assert_eq!(ping(&new_client).as_deref(), Ok("PONG"));
    }

    // The CA list reloads too: dropping the first CA shuts its clients out.
    set(&mut admin, &[("tls-ca-cert-file", &path(&second.ca_file))]).expect("CA");
    assert!(ping(&client(tls_port, &second.ca_pem, Some(&first.client))).is_err());
    assert_eq!(ping(&new_client).as_deref(), Ok("PONG"));
    // A CA directory works as well.
    let ca_dir = dir.0.join("cas");
    std::fs::create_dir_all(&ca_dir).expect("dir");
    std::fs::write(ca_dir.join("first.pem"), &first.ca_pem).expect("write");
    std::fs::write(ca_dir.join("README"), "not a certificate").expect("write");
    set(
        &mut admin,
        &[
            ("tls-ca-cert-file", ""),
            ("tls-ca-cert-dir", &path(&ca_dir)),
        ],
    )
    .expect("CA dir");
    assert_eq!(
        ping(&client(tls_port, &second.ca_pem, Some(&first.client))).as_deref(),
        Ok("PONG")
    );
    assert!(
        ping(&new_client).is_err(),
        "the second CA is no longer trusted"
    );
}

#[test]
fn large_values_and_pipelines_over_tls_on_two_shards() {
    let dir = Dir::new("large");
    let pki = make_pki(&dir, "a");
    let tls_port = free_port();
    let _server = start(2, tls_port, &pki, &[]);
    let mut c = client(tls_port, &pki.ca_pem, Some(&pki.client))
        .get_connection()
        .expect("connection");

    // 16 MiB both ways, on keys of both shards.
    let big: Vec<u8> = (0..16 << 20)
        .map(|i: u32| (i * 7 + (i >> 11)) as u8)
        .collect();
    for key in ["big:a", "big:b", "big:c"] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(&big[..])
            .query(&mut c)
            .expect("SET 16 MiB");
    }
    for key in ["big:a", "big:b", "big:c"] {
        let got: Vec<u8> = redis::cmd("GET")
            .arg(key)
            .query(&mut c)
            .expect("GET 16 MiB");
        assert!(got == big, "{key}: the value came back different");
    }
    let len: i64 = redis::cmd("STRLEN")
        .arg("big:b")
        .query(&mut c)
        .expect("STRLEN");
    assert_eq!(len, 16 << 20);

    // A pipeline of 5,000 commands over both shards, in one write.
    let mut pipe = redis::pipe();
    for i in 0..2500 {
        pipe.cmd("SET").arg(format!("p:{i}")).arg(i).ignore();
        pipe.cmd("INCR").arg(format!("p:{i}"));
    }
    let got: Vec<i64> = pipe.query(&mut c).expect("pipeline");
    assert_eq!(got.len(), 2500);
    assert!(got.iter().enumerate().all(|(i, &v)| v == i as i64 + 1));

    // Several large replies pipelined: the reply buffer is bigger than rustls would take at
    // once.
    let mut pipe = redis::pipe();
    for _ in 0..3 {
        pipe.cmd("GET").arg("big:a");
    }
    let got: Vec<Vec<u8>> = pipe.query(&mut c).expect("pipelined large GETs");
    assert!(got.iter().all(|v| *v == big));
}

#[test]
fn tls_only_with_port_zero() {
    let dir = Dir::new("only");
    let pki = make_pki(&dir, "a");
    let tls_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
        .args(tls_args(tls_port, &pki, &[]))
        .args(["--port", "0", "--shards", "2", "--loglevel", "warning"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let tls = client(tls_port, &pki.ca_pem, Some(&pki.client));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answered = Err(String::new());
    while Instant::now() < deadline {
        answered = ping(&tls);
        if answered.is_ok() {
            break;
        }
        assert!(matches!(child.try_wait(), Ok(None)), "the server exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    // INFO's tcp_port is the TLS port when there is no plain one, as in Redis.
    let info: Option<String> = answered.is_ok().then(|| {
        let mut c = tls.get_connection().expect("connection");
        redis::cmd("INFO")
            .arg("server")
            .query(&mut c)
            .expect("INFO")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answered.as_deref(), Ok("PONG"));
    let info = info.unwrap_or_default();
    assert!(info.contains(&format!("tcp_port:{tls_port}\r\n")), "{info}");

    // Neither port: refused at start.
    let out = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
        .args(["--port", "0", "--tls-port", "0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not listen anywhere"));
}

/// Runs the server with `args` and expects it to refuse to start with `message` on stderr.
fn refused_at_start(args: &[String], message: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
        .args(args)
        .args(["--port", &free_port().to_string(), "--shards", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            assert!(!status.success(), "started with {args:?}");
            assert!(
                err.contains(message),
                "{args:?}: expected {message:?} in: {err}"
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn settings_that_cannot_work_are_refused_at_start() {
    let dir = Dir::new("refused");
    let pki = make_pki(&dir, "a");
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let port = free_port().to_string();
    // Client authentication (the default) without a CA.
    refused_at_start(
        &s(&[
            "--tls-port",
            &port,
            "--tls-cert-file",
            &path(&pki.server.cert_file),
            "--tls-key-file",
            &path(&pki.server.key_file),
        ]),
        "tls-ca-cert-file or tls-ca-cert-dir must be specified",
    );
    refused_at_start(
        &s(&["--tls-port", &port, "--tls-auth-clients", "no"]),
        "No tls-cert-file configured",
    );
    let encrypted = dir.file(
        "enc.key",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0011\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    );
    refused_at_start(
        &tls_args(
            free_port(),
            &pki,
            &[
                "--tls-key-file",
                &path(&encrypted),
                "--tls-key-file-pass",
                "secret",
            ],
        ),
        "encrypted private key",
    );
    refused_at_start(
        &s(&["--tls-ciphers", "DEFAULT:BOGUS"]),
        "unknown cipher 'BOGUS'",
    );
    refused_at_start(
        &s(&["--tls-ciphersuites", "TLS_AES_128_CCM_SHA256"]),
        "not supported by rustls",
    );
    refused_at_start(
        &s(&["--tls-protocols", "TLSv1.1 TLSv1.2"]),
        "TLSv1.1 is not supported",
    );
    // TLS replication needs the certificate (even with no tls-port) and a CA, as in Redis.
    refused_at_start(&s(&["--tls-replication", "yes"]), "No tls-cert-file");
    refused_at_start(
        &s(&[
            "--tls-replication",
            "yes",
            "--tls-cert-file",
            &path(&pki.server.cert_file),
            "--tls-key-file",
            &path(&pki.server.key_file),
        ]),
        "tls-ca-cert-file or tls-ca-cert-dir must be specified",
    );
    refused_at_start(
        &tls_args(
            free_port(),
            &pki,
            &[
                "--tls-replication",
                "yes",
                "--tls-client-cert-file",
                "/nonexistent/client.pem",
                "--tls-client-key-file",
                &path(&pki.client.key_file),
            ],
        ),
        "Failed to load tls-client-cert-file /nonexistent/client.pem",
    );
    refused_at_start(&s(&["--tls-cluster", "yes"]), "cluster");
    // Only classes rustls lacks were chosen: no TLS 1.2 suite left.
    refused_at_start(
        &tls_args(free_port(), &pki, &["--tls-ciphers", "RC4:3DES"]),
        "no cipher suite left",
    );
}

#[test]
fn session_resumption_follows_tls_session_caching() {
    let dir = Dir::new("sessions");
    let pki = make_pki(&dir, "a");
    for (caching, versions) in [
        ("yes", &[&rustls::version::TLS13][..]),
        ("yes", &[&rustls::version::TLS12][..]),
        ("no", &[&rustls::version::TLS13][..]),
    ] {
        let port = free_port();
        let _server = start(1, port, &pki, &["--tls-session-caching", caching]);
        let config = rustls_config(&pki.ca_pem, Some(&pki.client), versions, None);
        let mut first = connect(port, &config);
        exchange(&mut first, b"PING\r\n", b"+PONG\r\n").expect("first");
        let mut second = connect(port, &config);
        exchange(&mut second, b"PING\r\n", b"+PONG\r\n").expect("second");
        let resumed = second.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        assert_eq!(
            resumed,
            caching == "yes",
            "tls-session-caching {caching} with {versions:?}"
        );
    }
}

#[test]
fn quit_ends_with_close_notify_and_bad_peers_are_dropped() {
    let dir = Dir::new("close");
    let pki = make_pki(&dir, "a");
    let port = free_port();
    let server = start(1, port, &pki, &[]);
    let config = rustls_config(&pki.ca_pem, Some(&pki.client), BOTH, None);

    // QUIT: +OK, then close_notify (a clean end: read returns 0, not an error).
    let mut s = connect(port, &config);
    exchange(&mut s, b"QUIT\r\n", b"+OK\r\n").expect("QUIT");
    let mut rest = Vec::new();
    let end = s.read_to_end(&mut rest);
    assert!(end.is_ok(), "no close_notify: {end:?}");
    assert!(rest.is_empty());

    // A plain-text client on the TLS port, a truncated handshake, and random bytes: each is
    // closed, none harms the server.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    plain.write_all(b"PING\r\n").expect("write");
    let mut buf = [0u8; 256];
    let mut got = 0;
    loop {
        match plain.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < 64, "a plain-text client got an answer");
    let mut half = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .expect("write");
    drop(half);
    let mut noise = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let junk: Vec<u8> = (0..20000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = noise.write_all(&junk);
    drop(noise);
    // A client that stops mid-handshake and another that sends a forged record after it.
    let mut forged = connect(port, &config);
    exchange(&mut forged, b"PING\r\n", b"+PONG\r\n").expect("ping");
    let tcp = forged.get_mut();
    let _ = tcp.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]);
    let _ = tcp.write_all(&[0xAB; 32]);
    let mut sink = Vec::new();
    let _ = tcp.read_to_end(&mut sink);

    assert!(server.answers_ping(Duration::from_secs(5)).is_ok());
    assert_eq!(rustls_ping(port, &config).map(|_| ()), Ok(()));
}

#[test]
fn redis_cli_over_tls() {
    let help = match Command::new("redis-cli").arg("--help").output() {
        Ok(out) => {
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
        }
        Err(e) => panic!("redis-cli is needed (Debian's redis-tools package): {e}"),
    };
    if !help.contains("--tls") {
        println!("note: this redis-cli was built without TLS support; redis-cli --tls not tested");
        return;
    }
    let dir = Dir::new("cli");
    let pki = make_pki(&dir, "a");
    let port = free_port();
    let _server = start(2, port, &pki, &[]);
    let cli = |args: &[&str]| -> String {
        let out = Command::new("redis-cli")
            .args([
                "--tls",
                "--cacert",
                &path(&pki.ca_file),
                "--cert",
                &path(&pki.client.cert_file),
                "--key",
                &path(&pki.client.key_file),
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
            + &String::from_utf8_lossy(&out.stderr)
    };
    assert_eq!(cli(&["PING"]), "PONG");
    assert_eq!(cli(&["SET", "cli:a", "hello"]), "OK");
    assert_eq!(cli(&["SET", "cli:b", "world"]), "OK");
    assert_eq!(cli(&["MGET", "cli:a", "cli:b"]), "hello\nworld");
    // Without a client certificate the server refuses it.
    let out = Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            &path(&pki.ca_file),
            "-p",
            &port.to_string(),
            "PING",
        ])
        .output()
        .expect("redis-cli");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("PONG"),
        "redis-cli without a certificate got in"
    );
}

/// Under `appendfsync always` a TLS connection's replies are sealed only once their records
/// are durable, while the core serves on: a pipeline over both shards, with a reply larger
/// than one send, comes back whole and in order.
#[test]
fn pipelines_over_tls_under_appendfsync_always() {
    let dir = Dir::new("always");
    let pki = make_pki(&dir, "a");
    let tls_port = free_port();
    let _server = start(
        2,
        tls_port,
        &pki,
        &["--appendonly", "yes", "--appendfsync", "always"],
    );
    let mut c = client(tls_port, &pki.ca_pem, Some(&pki.client))
        .get_connection()
        .expect("connection");
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i * 13 + (i >> 7)) as u8).collect();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big[..])
        .query(&mut c)
        .expect("SET");
    for round in 0..5 {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.cmd("SET").arg(format!("p:{i}")).arg(round).ignore();
            pipe.cmd("INCR").arg(format!("p:{i}"));
        }
        pipe.cmd("GET").arg("big");
        let mut got: Vec<redis::Value> = pipe.query(&mut c).expect("pipeline");
        let value: Vec<u8> = redis::from_redis_value(got.pop().expect("GET")).expect("bytes");
        assert!(value == big, "round {round}: the value differs");
        let incrs: Vec<i64> = got
            .into_iter()
            .map(|v| redis::from_redis_value(v).expect("an integer"))
            .collect();
        assert_eq!(incrs, vec![round + 1; 1000], "round {round}");
    }
}

// ---------------------------------------------------------------------------------------------
// Replication over TLS (`tls-replication`).

/// The TLS arguments of a Redis or Shardis replica: the CA, the server's certificate (Redis
/// requires one even without a tls-port), the client certificate the link presents.
fn replica_tls_args(pki: &Pki) -> Vec<String> {
    [
        "--tls-cert-file",
        &path(&pki.server.cert_file),
        "--tls-key-file",
        &path(&pki.server.key_file),
        "--tls-ca-cert-file",
        &path(&pki.ca_file),
        "--tls-client-cert-file",
        &path(&pki.client.cert_file),
        "--tls-client-key-file",
        &path(&pki.client.key_file),
        "--tls-replication",
        "yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_redis_replica_follows_a_shardis_primary_over_tls() {
    let dir = Dir::new("repl-redis-replica");
    let pki = make_pki(&dir, "a");
    let tls_port = free_port();
    let shardis = start(
        2,
        tls_port,
        &pki,
        &[
            "--repl-diskless-sync-delay",
            "0",
            "--enable-debug-command",
            "yes",
        ],
    );
    let mut p = shardis.conn();
    fill(&mut p);
    let mut args = replica_tls_args(&pki);
    args.extend([
        "--replicaof".into(),
        "127.0.0.1".into(),
        tls_port.to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some((_redis, redis_port)) = redis_server_with(&dir.0, &args) else {
        return;
    };
    let mut r = common::connect(redis_port);
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    // The link was accepted on the TLS port: the plain port saw no replica.
    let line = wait_info(&mut p, "slave0", |l| l.contains("state=online"));
    assert!(line.starts_with("ip=127.0.0.1,"), "{line}");
    write_load(&mut p, 0);
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    let acked: i64 = wait_replicas(&mut p, 1, 10000);
    assert_eq!(acked, 1, "REPLCONF ACK over TLS");

    // A killed link comes back over TLS with a partial resync.
    let killed: i64 = kill_type(&mut p, "replica");
    assert_eq!(killed, 1);
    write_load(&mut p, 1);
    wait_info(&mut p, "sync_partial_ok", |v| v == "1");
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    assert_eq!(number(&mut p, "sync_full"), 1);
}

#[test]
fn shardis_follows_a_redis_primary_over_tls_and_client_kill_type_master() {
    let dir = Dir::new("repl-redis-primary");
    let pki = make_pki(&dir, "a");
    let redis_tls = free_port();
    // Redis requires the replica's client certificate (tls-auth-clients yes, its default).
    let primary_args = tls_args(redis_tls, &pki, &[]);
    let primary_args: Vec<&str> = primary_args.iter().map(String::as_str).collect();
    let Some((_redis, redis_port)) = redis_server_with(&dir.0, &primary_args) else {
        return;
    };
    let mut p = common::connect(redis_port);
    fill(&mut p);
    let mut args = replica_tls_args(&pki);
    args.extend([
        "--enable-debug-command".into(),
        "yes".into(),
        "--replicaof".into(),
        format!("127.0.0.1 {redis_tls}"),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let shardis = Server::start(2, &args);
    let mut r = shardis.conn();
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    write_load(&mut p, 0);
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    let acked: i64 = wait_replicas(&mut p, 1, 10000);
    assert_eq!(acked, 1, "REPLCONF ACK over TLS");

    // CLIENT KILL TYPE master ends the link; it comes back with a partial resync.
    let none: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("master")
        .arg("USER")
        .arg("default")
        .query(&mut r)
        .expect("CLIENT KILL");
    assert_eq!(none, 0, "the master client has no user");
    let killed: i64 = kill_type(&mut r, "master");
    assert_eq!(killed, 1);
    write_load(&mut p, 1);
    wait_info(&mut p, "sync_partial_ok", |v| v == "1");
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    assert_eq!(number(&mut p, "sync_full"), 1);
}

#[test]
fn shardis_follows_shardis_over_tls_and_refuses_an_untrusted_primary() {
    let dir = Dir::new("repl-shardis");
    let pki = make_pki(&dir, "a");
    let other = make_pki(&dir, "b");
    let tls_port = free_port();
    // Replicas must present a certificate of CA a (tls-auth-clients yes).
    let primary = start(
        2,
        tls_port,
        &pki,
        &[
            "--repl-diskless-sync-delay",
            "0",
            "--enable-debug-command",
            "yes",
        ],
    );
    let mut p = client(tls_port, &pki.ca_pem, Some(&pki.client))
        .get_connection()
        .expect("TLS connection");
    fill(&mut p);
    let follow = |pki: &Pki| {
        let mut args = replica_tls_args(pki);
        args.extend([
            "--enable-debug-command".into(),
            "yes".into(),
            "--replicaof".into(),
            format!("127.0.0.1 {tls_port}"),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start(3, &args)
    };
    let good = follow(&pki);
    let mut r = good.conn();
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);
    write_load(&mut p, 0);
    wait_in_sync(&mut p, &mut r);
    assert_same(&mut p, &mut r);

    // CA b trusts neither the primary's certificate nor is its client certificate trusted.
    let bad = follow(&other);
    let mut b = bad.conn();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        info_of(&mut b, "master_link_status").as_deref(),
        Some("down")
    );
    let keys: i64 = redis::cmd("DBSIZE").query(&mut b).expect("DBSIZE");
    assert_eq!(keys, 0);
    assert_eq!(info_of(&mut p, "connected_slaves").as_deref(), Some("1"));
    drop(primary);
}
