//! TLS with rustls (the *ring* provider; no OpenSSL): Redis's `tls-*` settings on the server
//! side, and the record layer of a TLS connection.
//!
//! **Settings.** [`build`] makes one `rustls::ServerConfig` from the configuration: the
//! certificate chain and key (`tls-cert-file`, `tls-key-file`), the CAs that sign client
//! certificates (`tls-ca-cert-file`, `tls-ca-cert-dir`) and whether clients must present one
//! (`tls-auth-clients`), the protocol versions (`tls-protocols`), the TLS 1.3 cipher suites
//! (`tls-ciphersuites`) and TLS 1.2 ciphers (`tls-ciphers`, OpenSSL's names and keywords mapped
//! onto the suites rustls has), server preference (`tls-prefer-server-ciphers`) and the session
//! cache (`tls-session-caching`, `-size`, `-timeout`). It is built at start-up when `tls-port`
//! is set, and again by CONFIG SET of any of those parameters; the one `Arc` is shared by every
//! core (`Core::tls`), so connections accepted after a reload get the new certificates and
//! established ones keep theirs. A file that does not load makes start-up or CONFIG SET fail
//! and leaves the settings in force as they were. Single values are checked when they are set
//! ([`check_protocols`], [`check_ciphersuites`], [`check_ciphers`]), in a config file as by
//! CONFIG SET, so what rustls cannot do is refused with a message saying so.
//!
//! **Connections.** [`TlsConn`] is rustls's `ServerConnection` driven as a plain state machine
//! by the event loop (no task, no socket of its own): ciphertext taken from the receive buffer
//! ring goes in through [`TlsConn::receive`], which appends the plaintext to the connection's
//! input buffer; replies, encoded as plaintext as for any connection, are sealed into the
//! connection's send buffer by [`TlsConn::seal`] together with handshake records, alerts and
//! close_notify. Nothing a peer sends can panic the server: a rustls error ends that
//! connection (after its alert is sent) and is logged at verbose level, as Redis does.
//! A plain connection has no `TlsConn` and pays one pointer test per receive and per send.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls::crypto::ring as provider;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, StoresServerSessions, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, ServerConnection, SupportedCipherSuite};

use crate::config::Config;

/// The parameters whose change rebuilds the TLS settings.
pub const RELOADED_BY: &[&str] = &[
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-protocols",
    "tls-ciphersuites",
    "tls-ciphers",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-session-cache-size",
    "tls-session-cache-timeout",
    "tls-dh-params-file",
    "tls-replication",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
];

/// Why TLS settings without a CA are refused when something must verify a peer.
pub const CA_REQUIRED: &str = "Either tls-ca-cert-file or tls-ca-cert-dir must be specified \
     when tls-cluster, tls-replication or tls-auth-clients are enabled!";

/// Whether the configuration uses TLS (listens for it, or replicates over it), so that its
/// settings must load, as Redis configures TLS for either.
pub fn in_use(config: &Config) -> bool {
    config.get_i64("tls-port") != 0 || config.get("tls-replication") == "yes"
}

/// The TLS settings for `config` when TLS is in use, or None. With `tls-replication` the
/// replica's client settings must load too (they are built again at each REPLICAOF).
pub fn server_config(config: &Config) -> Result<Option<Arc<ServerConfig>>, String> {
    if !in_use(config) {
        return Ok(None);
    }
    let server = build(config)?;
    if config.get("tls-replication") == "yes" {
        crate::tls_link::client_config(config)?;
    }
    Ok(Some(server))
}

/// The crypto provider limited to the configured suites, and the protocol versions.
pub(crate) fn provider(
    config: &Config,
) -> Result<
    (
        Arc<CryptoProvider>,
        Vec<&'static rustls::SupportedProtocolVersion>,
    ),
    String,
> {
    let versions = protocol_versions(config.get("tls-protocols"))?;
    let tls13 = check_ciphersuites(config.get("tls-ciphersuites"))?;
    let tls12 = check_ciphers(config.get("tls-ciphers"))?;
    for v in &versions {
        let empty = match v.version {
            rustls::ProtocolVersion::TLSv1_3 => tls13.is_empty(),
            _ => tls12.is_empty(),
        };
        if empty {
            return Err(format!(
                "no cipher suite left for {:?} (tls-ciphersuites for TLSv1.3, tls-ciphers for TLSv1.2)",
                v.version
            ));
        }
    }
    let provider = Arc::new(CryptoProvider {
        cipher_suites: tls13.into_iter().chain(tls12).collect(),
        ..provider::default_provider()
    });
    Ok((provider, versions))
}

/// Builds the server's TLS settings from the `tls-*` parameters, or says why they do not load.
pub fn build(config: &Config) -> Result<Arc<ServerConfig>, String> {
    let cert_file = config.get("tls-cert-file");
    if cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    let key_file = config.get("tls-key-file");
    if key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    let chain = load_certs(cert_file, "tls-cert-file")?;
    let key = load_key(key_file, "tls-key-file")?;
    let (provider, versions) = provider(config)?;

    let dh = config.get("tls-dh-params-file");
    if !dh.is_empty() {
        // rustls offers no DHE suites (key exchange is ECDHE only), so the parameters are
        // never used; a file that cannot be read is still refused, as Redis refuses it.
        std::fs::metadata(dh).map_err(|e| format!("Failed to load {dh}: {e}"))?;
    }

    let roots = load_roots(
        config.get("tls-ca-cert-file"),
        config.get("tls-ca-cert-dir"),
    )?;
    if roots.is_none() && config.get("tls-replication") == "yes" {
        return Err(CA_REQUIRED.into());
    }
    let auth = config.get("tls-auth-clients");
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS settings: {e}"))?;
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        let Some(roots) = roots else {
            return Err(CA_REQUIRED.into());
        };
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if auth == "optional" {
            verifier.allow_unauthenticated()
        } else {
            verifier
        };
        let verifier = verifier
            .build()
            .map_err(|e| format!("client certificate verifier: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut server = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            format!("tls-key-file {key_file} is not the key of the certificate in tls-cert-file {cert_file}")
        }
        e => format!("tls-cert-file/tls-key-file: {e}"),
    })?;
    server.ignore_client_order = config.get("tls-prefer-server-ciphers") == "yes";
    if config.get("tls-session-caching") == "yes" {
        let size = config.get_i64("tls-session-cache-size").max(0) as usize;
        let timeout = config.get_i64("tls-session-cache-timeout").max(0) as u64;
        server.session_storage = Arc::new(SessionCache::new(size, Duration::from_secs(timeout)));
    } else {
        server.session_storage = Arc::new(NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
    }
    Ok(Arc::new(server))
}

// ---------------------------------------------------------------------------------------------
// Files.

/// Every certificate in a PEM file.
pub(crate) fn load_certs(path: &str, param: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("Failed to load {param} {path}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("Failed to load {param} {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "Failed to load {param} {path}: no PEM certificate in it"
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1). Encrypted keys are refused by
/// name: rustls has no decryption of private keys, so `tls-key-file-pass` cannot be honoured.
pub(crate) fn load_key(path: &str, param: &str) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("Failed to load {param} {path}: {e}"))?;
    if is_encrypted_key(&bytes) {
        return Err(format!(
            "{param} {path} is an encrypted private key, which Shardis cannot read \
             (rustls has no key decryption, so {param}-pass is not supported): store the key \
             unencrypted, e.g. `openssl pkey -in {path} -out key.pem`, and protect the file instead"
        ));
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "Failed to load {param} {path}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)"
        ),
        e => format!("Failed to load {param} {path}: {e}"),
    })
}

/// A PEM private key protected by a password: PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's
/// traditional format with a `Proc-Type: 4,ENCRYPTED` header.
fn is_encrypted_key(pem: &[u8]) -> bool {
    let has = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || has(b"Proc-Type: 4,ENCRYPTED")
}

/// The trusted CAs of `tls-ca-cert-file` and every file of `tls-ca-cert-dir` that holds PEM
/// certificates (OpenSSL's hashed names, `*.pem`, `*.crt` alike); None when neither is set.
pub(crate) fn load_roots(file: &str, dir: &str) -> Result<Option<RootCertStore>, String> {
    if file.is_empty() && dir.is_empty() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    let mut add = |certs: Vec<CertificateDer<'static>>, from: &str| -> Result<(), String> {
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("CA certificate in {from}: {e}"))?;
        }
        Ok(())
    };
    if !file.is_empty() {
        add(load_certs(file, "tls-ca-cert-file")?, file)?;
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("Failed to load tls-ca-cert-dir {dir}: {e}"))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            // Files that are not PEM certificates (a README, a CRL…) are skipped.
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
                .filter_map(Result::ok)
                .collect();
            add(certs, &path.display().to_string())?;
        }
    }
    if roots.is_empty() {
        let from = if file.is_empty() { dir } else { file };
        return Err(format!("no CA certificate found in {from}"));
    }
    Ok(Some(roots))
}

// ---------------------------------------------------------------------------------------------
// Protocols and cipher suites.

/// Checks `tls-protocols`: words among TLSv1.2 and TLSv1.3 (any case), or empty for both.
pub fn check_protocols(value: &str) -> Result<(), String> {
    protocol_versions(value).map(|_| ())
}

fn protocol_versions(
    value: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let mut out: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    for word in value.split_whitespace() {
        let v: &'static rustls::SupportedProtocolVersion = match word.to_ascii_lowercase().as_str()
        {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            "tlsv1" | "tlsv1.1" => {
                return Err(format!(
                    "{word} is not supported: rustls implements TLSv1.2 and TLSv1.3 only"
                ))
            }
            _ => return Err(
                "Invalid tls-protocols specified. Use a combination of 'TLSv1.2' and 'TLSv1.3'."
                    .into(),
            ),
        };
        if !out.iter().any(|o| o.version == v.version) {
            out.push(v);
        }
    }
    if out.is_empty() {
        out = vec![&rustls::version::TLS12, &rustls::version::TLS13];
    }
    Ok(out)
}

/// The TLS 1.3 suites rustls has, by their names (OpenSSL uses the IANA names for TLS 1.3).
const TLS13_SUITES: &[(&str, SupportedCipherSuite)] = &[
    (
        "TLS_AES_256_GCM_SHA384",
        provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_AES_128_GCM_SHA256",
        provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

/// Checks `tls-ciphersuites` (TLS 1.3, colon-separated names in order of preference) and
/// returns the suites; empty means rustls's defaults.
pub fn check_ciphersuites(value: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut out = Vec::new();
    for name in value.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        let Some((_, suite)) = TLS13_SUITES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        else {
            return Err(match name.to_ascii_uppercase().as_str() {
                "TLS_AES_128_CCM_SHA256" | "TLS_AES_128_CCM_8_SHA256" => format!(
                    "{name} is not supported by rustls; the TLSv1.3 suites are {}",
                    names(TLS13_SUITES)
                ),
                _ => format!(
                    "unknown TLSv1.3 cipher suite '{name}'; the supported ones are {}",
                    names(TLS13_SUITES)
                ),
            });
        };
        if !out.contains(suite) {
            out.push(*suite);
        }
    }
    if out.is_empty() {
        out = TLS13_SUITES.iter().map(|(_, s)| *s).collect();
    }
    Ok(out)
}

fn names(table: &[(&str, SupportedCipherSuite)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// A TLS 1.2 suite rustls has, with its OpenSSL name and the properties OpenSSL's cipher
/// keywords select on.
struct Tls12 {
    openssl: &'static str,
    suite: SupportedCipherSuite,
    ecdsa: bool,
    /// AES-256-GCM, AES-128-GCM or ChaCha20-Poly1305.
    cipher: Cipher,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cipher {
    Aes256Gcm,
    Aes128Gcm,
    ChaCha20,
}

const TLS12_SUITES: &[Tls12] = &[
    Tls12 {
        openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
        suite: provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ecdsa: true,
        cipher: Cipher::Aes256Gcm,
    },
    Tls12 {
        openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
        suite: provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ecdsa: true,
        cipher: Cipher::Aes128Gcm,
    },
    Tls12 {
        openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
        suite: provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ecdsa: true,
        cipher: Cipher::ChaCha20,
    },
    Tls12 {
        openssl: "ECDHE-RSA-AES256-GCM-SHA384",
        suite: provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ecdsa: false,
        cipher: Cipher::Aes256Gcm,
    },
    Tls12 {
        openssl: "ECDHE-RSA-AES128-GCM-SHA256",
        suite: provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ecdsa: false,
        cipher: Cipher::Aes128Gcm,
    },
    Tls12 {
        openssl: "ECDHE-RSA-CHACHA20-POLY1305",
        suite: provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ecdsa: false,
        cipher: Cipher::ChaCha20,
    },
];

/// What one word of an OpenSSL cipher string selects among [`TLS12_SUITES`]: a suite by its
/// OpenSSL or IANA name, or a keyword. Keywords for what rustls never offers (RSA key
/// exchange, CBC, SHA-1, DHE, anonymous or export suites…) select nothing, so `!MEDIUM` or
/// `!aNULL` are accepted; a word OpenSSL would not know either is an error.
fn select(word: &str) -> Option<Vec<usize>> {
    let all = |f: &dyn Fn(&Tls12) -> bool| -> Vec<usize> {
        (0..TLS12_SUITES.len())
            .filter(|&i| f(&TLS12_SUITES[i]))
            .collect()
    };
    if let Some(i) = TLS12_SUITES.iter().position(|s| {
        s.openssl.eq_ignore_ascii_case(word)
            || s.suite
                .suite()
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(word))
    }) {
        return Some(vec![i]);
    }
    Some(match word {
        "DEFAULT" | "ALL" | "HIGH" | "FIPS" | "ECDHE" | "EECDH" | "kECDHE" | "kEECDH" | "AEAD"
        | "TLSv1.2" | "SSLv3" | "SUITEB128" | "SUITEB192" => all(&|_| true),
        "ECDSA" | "aECDSA" => all(&|s| s.ecdsa),
        "aRSA" => all(&|s| !s.ecdsa),
        "AES" | "AESGCM" => all(&|s| s.cipher != Cipher::ChaCha20),
        "AES256" | "AESGCM256" | "SHA384" => all(&|s| s.cipher == Cipher::Aes256Gcm),
        "AES128" | "AESGCM128" => all(&|s| s.cipher == Cipher::Aes128Gcm),
        "CHACHA20" => all(&|s| s.cipher == Cipher::ChaCha20),
        "SHA256" => all(&|s| s.cipher != Cipher::Aes256Gcm),
        "MEDIUM"
        | "LOW"
        | "EXP"
        | "EXPORT"
        | "aNULL"
        | "eNULL"
        | "NULL"
        | "COMPLEMENTOFDEFAULT"
        | "COMPLEMENTOFALL"
        | "RC4"
        | "MD5"
        | "DES"
        | "3DES"
        | "SHA1"
        | "SHA"
        | "PSK"
        | "kPSK"
        | "ECDHEPSK"
        | "DHEPSK"
        | "RSAPSK"
        | "SRP"
        | "kSRP"
        | "DSS"
        | "aDSS"
        | "CAMELLIA"
        | "CAMELLIA128"
        | "CAMELLIA256"
        | "ARIA"
        | "ARIA128"
        | "ARIA256"
        | "SEED"
        | "IDEA"
        | "RC2"
        | "kRSA"
        | "RSA"
        | "DH"
        | "DHE"
        | "EDH"
        | "kDHE"
        | "kEDH"
        | "ADH"
        | "AECDH"
        | "aNULL:eNULL"
        | "CBC"
        | "AESCCM"
        | "AESCCM8"
        | "AES128CCM"
        | "AES256CCM"
        | "GOST"
        | "kGOST"
        | "aGOST"
        | "SSLv2"
        | "TLSv1"
        | "TLSv1.0"
        | "aPSK"
        | "kECDHEPSK"
        | "kDHEPSK"
        | "kRSAPSK"
        | "aSRP"
        | "kDH"
        | "kDHr"
        | "kDHd"
        | "kECDH"
        | "kECDHr"
        | "kECDHe" => Vec::new(),
        _ => return None,
    })
}

/// Checks `tls-ciphers` (TLS 1.2, an OpenSSL cipher string) and returns the suites in order
/// of preference; empty means rustls's defaults.
///
/// The parts OpenSSL's syntax has are honoured over the suites rustls offers: words separated
/// by `:`, `,` or spaces; `A+B` (suites matching both); `!X` (removed for good), `-X` (removed,
/// may come back), `+X` (moved to the end); `@STRENGTH` (strongest first) and `@SECLEVEL=n`
/// (no effect: every suite rustls has passes every level).
pub fn check_ciphers(value: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut list: Vec<usize> = Vec::new();
    let mut banned: Vec<usize> = Vec::new();
    let mut any = false;
    for word in value
        .split([':', ',', ' '])
        .map(str::trim)
        .filter(|w| !w.is_empty())
    {
        any = true;
        if word == "@STRENGTH" {
            list.sort_by_key(|&i| match TLS12_SUITES[i].cipher {
                Cipher::Aes256Gcm | Cipher::ChaCha20 => 0,
                Cipher::Aes128Gcm => 1,
            });
            continue;
        }
        if word.starts_with("@SECLEVEL=") {
            continue;
        }
        let (op, body) = match word.as_bytes()[0] {
            b'!' | b'-' | b'+' => (word.as_bytes()[0], &word[1..]),
            _ => (b' ', word),
        };
        let mut chosen: Option<Vec<usize>> = None;
        for part in body.split('+') {
            let Some(sel) = select(part) else {
                return Err(format!(
                    "unknown cipher '{part}' in tls-ciphers; the TLSv1.2 ciphers rustls supports are {}",
                    TLS12_SUITES
                        .iter()
                        .map(|s| s.openssl)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            chosen = Some(match chosen {
                None => sel,
                Some(prev) => prev.into_iter().filter(|i| sel.contains(i)).collect(),
            });
        }
        let chosen = chosen.unwrap_or_default();
        match op {
            b'!' => {
                list.retain(|i| !chosen.contains(i));
                banned.extend(chosen);
            }
            b'-' => list.retain(|i| !chosen.contains(i)),
            b'+' => {
                let moved: Vec<usize> = list
                    .iter()
                    .copied()
                    .filter(|i| chosen.contains(i))
                    .collect();
                list.retain(|i| !chosen.contains(i));
                list.extend(moved);
            }
            _ => {
                for i in chosen {
                    if !list.contains(&i) && !banned.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
    }
    if !any {
        return Ok(TLS12_SUITES.iter().map(|s| s.suite).collect());
    }
    Ok(list.into_iter().map(|i| TLS12_SUITES[i].suite).collect())
}

// ---------------------------------------------------------------------------------------------
// Session cache.

/// The server's session cache (`tls-session-cache-size` entries, 0 for no limit, each valid
/// `tls-session-cache-timeout` seconds): TLS 1.2 session ids and TLS 1.3 tickets, which rustls
/// keeps here (stateful tickets). One cache serves every core; it is touched only during
/// handshakes.
#[derive(Debug)]
struct SessionCache {
    size: usize,
    timeout: Duration,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    map: HashMap<Vec<u8>, (Vec<u8>, Instant)>,
    /// Keys in insertion order, with their insertion time (stale ones are skipped).
    order: VecDeque<(Vec<u8>, Instant)>,
}

impl SessionCache {
    fn new(size: usize, timeout: Duration) -> SessionCache {
        SessionCache {
            size,
            timeout,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self, at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) < self.timeout
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        let CacheInner { map, order } = &mut *inner;
        // Drop expired entries and, when full, the oldest.
        while let Some((k, at)) = order.front() {
            let current = map.get(k).is_some_and(|(_, t)| t == at);
            let full = self.size > 0 && map.len() >= self.size;
            if current && self.live(*at, now) && !full {
                break;
            }
            if current {
                map.remove(k);
            }
            order.pop_front();
        }
        order.push_back((key.clone(), now));
        map.insert(key, (value, now));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let now = Instant::now();
        let inner = self.lock();
        let (value, at) = inner.map.get(key)?;
        self.live(*at, now).then(|| value.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let now = Instant::now();
        let (value, at) = self.lock().map.remove(key)?;
        self.live(at, now).then_some(value)
    }

    fn can_cache(&self) -> bool {
        !self.timeout.is_zero()
    }
}

// ---------------------------------------------------------------------------------------------
// Connections.

/// Plaintext handed to rustls at once when sealing: its queue of records stays this small
/// while a large reply is encrypted into the send buffer.
const SEAL_CHUNK: usize = 64 << 10;

/// What a [`TlsConn::receive`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// The connection goes on.
    Open,
    /// The peer sent close_notify: it will send nothing more.
    Closed,
}

/// One TLS connection's state: the handshake, then the record layer in both directions.
pub struct TlsConn {
    conn: ServerConnection,
    /// The handshake or a record failed: what arrives next is dropped.
    failed: bool,
}

impl TlsConn {
    /// A connection that starts its handshake with the settings in force.
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsConn, rustls::Error> {
        let mut conn = ServerConnection::new(config)?;
        // The event loop bounds a connection's output itself (client-output-buffer-limit and
        // the pause on unsent output) and hands rustls at most SEAL_CHUNK at once.
        conn.set_buffer_limit(None);
        Ok(TlsConn {
            conn,
            failed: false,
        })
    }

    /// Takes ciphertext received from the peer and appends the plaintext it carries to
    /// `plain`. Records split over several receives are kept until complete. On an error
    /// (a failed handshake, a forged record…) the alert for the peer is queued for
    /// [`TlsConn::seal`], and everything received afterwards is dropped.
    pub fn receive(&mut self, mut data: &[u8], plain: &mut BytesMut) -> Result<Received, String> {
        if self.failed {
            return Ok(Received::Open);
        }
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(0) => {
                    // A record longer than TLS allows (rustls reads nothing more), or data
                    // after close_notify.
                    if self
                        .conn
                        .process_new_packets()
                        .is_ok_and(|s| s.peer_has_closed())
                    {
                        return Ok(Received::Closed);
                    }
                    self.failed = true;
                    return Err("malformed TLS record".into());
                }
                Ok(_) => {}
                Err(e) => {
                    self.failed = true;
                    return Err(e.to_string());
                }
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    self.failed = true;
                    return Err(e.to_string());
                }
            };
            let mut left = state.plaintext_bytes_to_read();
            let closed = state.peer_has_closed();
            let mut reader = self.conn.reader();
            while left > 0 {
                let n = match reader.fill_buf() {
                    Ok(buf) if !buf.is_empty() => {
                        plain.extend_from_slice(buf);
                        buf.len()
                    }
                    _ => break,
                };
                reader.consume(n);
                left = left.saturating_sub(n);
            }
            if closed {
                return Ok(Received::Closed);
            }
        }
        Ok(Received::Open)
    }

    /// Appends to `sending` the ciphertext waiting to go out: handshake records, alerts,
    /// and, once the handshake is done, `out`'s plaintext (which is taken). Returns how many
    /// plaintext bytes were taken.
    pub fn seal(&mut self, out: &mut Vec<u8>, sending: &mut Vec<u8>) -> usize {
        let mut taken = 0;
        if !self.failed && !self.conn.is_handshaking() && !out.is_empty() {
            for chunk in out.chunks(SEAL_CHUNK) {
                // With no buffer limit rustls takes all of it (0 only once closed).
                if let Ok(n) = self.conn.writer().write(chunk) {
                    taken += n;
                }
                self.flush(sending);
            }
            out.clear();
        }
        self.flush(sending);
        taken
    }

    fn flush(&mut self, sending: &mut Vec<u8>) {
        while self.conn.wants_write() {
            match self.conn.write_tls(sending) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    /// Ciphertext is waiting for [`TlsConn::seal`].
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// The handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues close_notify, telling the peer the server closes the connection on purpose
    /// (once per connection, and only over an established session).
    pub fn close(&mut self) {
        if !self.failed && !self.conn.is_handshaking() {
            self.conn.send_close_notify();
        }
    }

    /// The established session, for a replica's link that takes the connection over; None
    /// when the session failed.
    pub fn into_session(self) -> Option<ServerConnection> {
        (!self.failed).then_some(self.conn)
    }

    /// The negotiated protocol version and cipher suite, for logs.
    pub fn describe(&self) -> String {
        let version = self
            .conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let suite = self
            .conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        format!("{version} {suite}")
    }
}

/// Reads all of `rd` (a helper for the tests of this module).
#[cfg(test)]
fn drain(rd: &mut dyn std::io::Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = rd.read_to_end(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls12(v: &str) -> Vec<String> {
        check_ciphers(v)
            .expect("valid")
            .into_iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect()
    }

    #[test]
    fn openssl_cipher_strings_map_onto_rustls_suites() {
        assert_eq!(tls12("").len(), 6);
        assert_eq!(tls12("DEFAULT:!MEDIUM").len(), 6);
        assert_eq!(tls12("HIGH:!aNULL:!MD5:!RC4").len(), 6);
        assert_eq!(
            tls12("ECDHE-RSA-AES128-GCM-SHA256"),
            vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
        );
        assert_eq!(
            tls12("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"),
            vec![
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        // A+B, !X, -X then X again, +X to the end.
        assert_eq!(
            tls12("ECDHE+aRSA+AES128"),
            vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
        );
        assert_eq!(tls12("ALL:!ECDSA:!CHACHA20").len(), 2);
        assert_eq!(tls12("!CHACHA20:ALL:CHACHA20").len(), 4);
        assert_eq!(tls12("-CHACHA20:ALL").len(), 6);
        let moved = tls12("aRSA:+AES256");
        assert_eq!(
            moved.last().map(String::as_str),
            Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
        );
        // IANA names work too; unknown words are refused.
        assert_eq!(tls12("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256").len(), 1);
        let e = check_ciphers("DEFAULT:FOO").expect_err("unknown");
        assert!(e.contains("unknown cipher 'FOO'"), "{e}");
        assert!(
            check_ciphers("AES128-SHA").is_err(),
            "RSA key exchange, CBC: not in rustls"
        );
        // Only classes rustls lacks: nothing left (refused when the settings are built).
        assert!(check_ciphers("RC4").expect("known").is_empty());
    }

    #[test]
    fn tls13_suites_and_protocols() {
        assert_eq!(check_ciphersuites("").expect("ok").len(), 3);
        assert_eq!(
            check_ciphersuites("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256")
                .expect("ok")
                .len(),
            2
        );
        let e = check_ciphersuites("TLS_AES_128_CCM_SHA256").expect_err("ccm");
        assert!(e.contains("not supported by rustls"), "{e}");
        assert!(check_ciphersuites("FOO").is_err());
        assert_eq!(protocol_versions("").expect("ok").len(), 2);
        assert_eq!(protocol_versions("tlsv1.3").expect("ok").len(), 1);
        assert_eq!(protocol_versions("TLSv1.2 TLSv1.3").expect("ok").len(), 2);
        let e = check_protocols("TLSv1.1 TLSv1.2").expect_err("old");
        assert!(e.contains("TLSv1.1 is not supported"), "{e}");
        assert!(check_protocols("SSLv3").is_err());
    }

    #[test]
    fn session_cache_expires_and_evicts() {
        let cache = SessionCache::new(2, Duration::from_secs(60));
        assert!(cache.put(b"a".to_vec(), b"1".to_vec()));
        assert!(cache.put(b"b".to_vec(), b"2".to_vec()));
        assert_eq!(cache.get(b"a"), Some(b"1".to_vec()));
        assert!(cache.put(b"c".to_vec(), b"3".to_vec()));
        assert_eq!(cache.get(b"a"), None, "the oldest goes when full");
        assert_eq!(cache.take(b"b"), Some(b"2".to_vec()));
        assert_eq!(cache.get(b"b"), None);
        assert_eq!(cache.get(b"c"), Some(b"3".to_vec()));
        let expired = SessionCache::new(0, Duration::ZERO);
        expired.put(b"a".to_vec(), b"1".to_vec());
        assert_eq!(expired.get(b"a"), None);
        assert!(!expired.can_cache());
    }

    #[test]
    fn encrypted_keys_are_recognised() {
        assert!(is_encrypted_key(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ));
        assert!(is_encrypted_key(
            b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n"
        ));
        assert!(!is_encrypted_key(b"-----BEGIN PRIVATE KEY-----\n"));
    }

    /// A handshake and a round trip between a rustls client and [`TlsConn`], in memory, with
    /// the ciphertext fed in one byte at a time (records split across receives).
    #[test]
    fn record_layer_round_trip_with_split_records() {
        let dir = std::env::temp_dir().join(format!("shardis-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, ca.cert.pem()).expect("write");
        std::fs::write(&key, ca.signing_key.serialize_pem()).expect("write");
        let mut config = Config::default();
        config
            .load_text(&format!(
                "tls-cert-file {}\ntls-key-file {}\ntls-auth-clients no\n",
                cert.display(),
                key.display()
            ))
            .expect("config");
        let server_config = build(&config).expect("settings");
        let mut server = TlsConn::new(server_config).expect("conn");

        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.der().clone()).expect("root");
        let client_config =
            rustls::ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        let mut client = rustls::ClientConnection::new(
            Arc::new(client_config),
            "localhost".try_into().expect("name"),
        )
        .expect("client");

        let mut plain = BytesMut::new();
        let mut out = Vec::new();
        let mut answered = false;
        client.writer().write_all(b"PING\r\n").expect("write");
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).expect("write_tls");
            }
            for b in wire.chunks(1) {
                assert_eq!(server.receive(b, &mut plain), Ok(Received::Open));
            }
            let mut back = Vec::new();
            server.seal(&mut out, &mut back);
            if !back.is_empty() {
                client.read_tls(&mut &back[..]).expect("read_tls");
                client.process_new_packets().expect("client side");
            }
            if plain.as_ref() == b"PING\r\n" && !answered {
                out.extend_from_slice(b"+PONG\r\n");
                answered = true;
            }
        }
        assert_eq!(plain.as_ref(), b"PING\r\n");
        assert_eq!(drain(&mut client.reader()), b"+PONG\r\n");
        assert!(
            server.describe().contains("TLSv1_3"),
            "{}",
            server.describe()
        );

        // close_notify from the client ends the input.
        client.send_close_notify();
        let mut wire = Vec::new();
        client.write_tls(&mut wire).expect("write_tls");
        assert_eq!(server.receive(&wire, &mut plain), Ok(Received::Closed));

        // Garbage is an error, never a panic, and what follows is dropped.
        let mut other = TlsConn::new(build(&config).expect("settings")).expect("conn");
        assert!(other
            .receive(b"GET / HTTP/1.1\r\n\r\n", &mut plain)
            .is_err());
        assert_eq!(other.receive(b"more", &mut plain), Ok(Received::Open));
        let mut alert = Vec::new();
        other.seal(&mut Vec::new(), &mut alert);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
