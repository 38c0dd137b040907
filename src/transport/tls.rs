//! TLS over the std `TcpStream`, through rustls (TLS 1.3 and 1.2): the
//! server's identity (loaded PEM files or a throwaway certificate), the
//! client's verification (system roots, `--tls-ca`, `--tls-pin`,
//! `--tls-insecure`), the handshake, and the two halves a conversation's
//! pumps own (SPEC, "TLS").
//!
//! # One state machine, two threads
//!
//! A TLS session is one `rustls::Connection`: both directions' keys,
//! sequence numbers and buffers live in it, so the receiver and the sender
//! cannot each own a part the way the secret channel's halves do. They share
//! it behind one `Mutex`, and the rule that keeps them from blocking each
//! other is: **nobody holds that lock across a socket call.**
//!
//! ```text
//!  peer-recv:  read(socket) ──▶ lock { feed, decrypt, drain plaintext } ──▶ output
//!  peer-send:  input ──▶ lock { encrypt, sendmsg(MSG_DONTWAIT) } ──▶ unlocked poll(POLLOUT) if full
//! ```
//!
//! - The receiver reads the socket with the lock released, then locks only to
//!   feed those bytes to rustls and take the plaintext out. A read that waits
//!   for the peer for an hour holds nothing the sender needs.
//! - The sender locks to hand plaintext to rustls (at most `SEAL_CHUNK`, 1 MiB,
//!   at a time) and writes the encrypted records straight from rustls's
//!   buffers to the socket, many records per `sendmsg`, with
//!   `MSG_DONTWAIT`: a send under the lock never waits, it takes what the
//!   socket has room for. When the socket is full the sender lets go of the
//!   lock and waits in `poll` for room. So a write stuck on a peer that does
//!   not read holds nothing the receiver needs, and we keep reading (the
//!   peer may be waiting for us to read before it reads); and the records
//!   are never copied into a buffer of ours first (that copy cost an eighth
//!   of the sender's CPU). The socket itself stays blocking: the flag is
//!   per call, so the receiver's reads still wait in the kernel, and the
//!   conversation's `shutdown(Both)` ends the sender's `poll` as it ends a
//!   blocked read.
//! - **Only the sender writes to the socket.** What receiving makes rustls
//!   want to send (a TLS 1.3 `KeyUpdate` answer, a TLS 1.2 refusal to
//!   renegotiate) stays queued inside the `Connection` and goes out, in
//!   order, ahead of the sender's next record: RFC 8446 §4.6.3 asks for the
//!   answer "prior to sending its next Application Data record", which is
//!   exactly that. Because one thread takes records out and writes them,
//!   under the lock, the records reach the wire in the order rustls
//!   numbered them, and no second lock is needed to serialise socket
//!   writes. A fatal alert the receiver would owe after a broken record is
//!   not sent: the conversation fails and the socket is shut down, which the
//!   peer sees just as well.
//!
//! The handshake runs before the halves exist, on the thread that made the
//! connection, with the socket's timeouts set to what is left of
//! `HANDSHAKE_TIMEOUT`; the client verifies the server inside it, so no
//! application byte is sent to a server that was not accepted.
//!
//! # Ends
//!
//! `TlsTransmitter::finish` sends `close_notify`, then shuts down writing.
//! `TlsReceiver::receive` returns `Ok(0)` only for the peer's
//! `close_notify`; a TCP EOF without one is a truncation, an
//! [`io::ErrorKind::UnexpectedEof`] error (see `is_truncation`).

use super::{Connection, HANDSHAKE_TIMEOUT, Receive, Side, Transmit};
use crate::error::Error;
use aws_lc_rs::digest;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use zeroize::Zeroize;

/// How long the throwaway certificate is valid.
const THROWAWAY_VALIDITY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The most plaintext the sender encrypts under one hold of the lock: keeps
/// the lock short and the sender's buffer of records bounded.
const SEAL_CHUNK: usize = 1024 * 1024;

/// Size of the receiver's buffer of TLS bytes read from the socket.
const RAW_BUFFER: usize = 1024 * 1024;

/// The SHA-256 of a DER certificate: what `--tls-pin` names and what
/// `serve --tls` prints.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of the DER certificate `der`.
    pub fn of(der: &[u8]) -> Fingerprint {
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest::digest(&digest::SHA256, der).as_ref());
        Fingerprint(bytes)
    }

    /// Compares without stopping at the first difference.
    fn matches(&self, other: &Fingerprint) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Display for Fingerprint {
    /// `sha256:` and 64 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    /// `sha256:HEX`: 64 hex digits, either case; colons between bytes (as
    /// `openssl x509 -fingerprint` prints them) are allowed.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hex = text
            .strip_prefix("sha256:")
            .or_else(|| text.strip_prefix("SHA256:"))
            .ok_or_else(|| format!("'{text}' is not a pin: write sha256:HEX"))?;
        let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        let value = |b: u8| (b as char).to_digit(16);
        if digits.len() != 64 || digits.iter().any(|&b| value(b).is_none()) {
            return Err(format!(
                "'{text}' is not a pin: sha256: must be followed by 64 hex digits"
            ));
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let (high, low) = (value(pair[0]), value(pair[1]));
            if let (Some(high), Some(low)) = (high, low) {
                *byte = (high * 16 + low) as u8;
            }
        }
        Ok(Fingerprint(bytes))
    }
}

/// Who `serve --tls` says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A self-signed certificate made at start, valid 30 days.
    Throwaway,
    /// `--tls-cert` (PEM chain, leaf first) and `--tls-key` (PEM key).
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
}

/// How `connect --tls` decides whether to trust the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// A chain to a trusted root, valid for HOST: the system's roots, or the
    /// PEM bundle `ca` (`--tls-ca`).
    Roots {
        /// `--tls-ca FILE`, instead of the system's roots.
        ca: Option<PathBuf>,
    },
    /// Exactly the leaf certificate with this fingerprint (`--tls-pin`).
    Pin(Fingerprint),
    /// Anything (`--tls-insecure`).
    Insecure,
}

/// Why TLS could not be set up or a handshake failed. Each displays as one
/// line a person can act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate, key or CA file could not be used, or the throwaway
    /// certificate could not be made.
    Setup(String),
    /// The server's certificate did not verify.
    NotTrusted {
        /// The name we checked it against (HOST).
        host: String,
        /// Why it is not trusted.
        reason: String,
        /// The leaf's fingerprint, for `--tls-pin`.
        fingerprint: Option<Fingerprint>,
    },
    /// The server's leaf is not the pinned one.
    PinMismatch {
        /// HOST.
        host: String,
        /// The leaf it sent.
        fingerprint: Option<Fingerprint>,
    },
    /// The handshake did not finish.
    Handshake {
        /// The peer's address.
        peer: SocketAddr,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Setup(what) => f.write_str(what),
            TlsError::NotTrusted {
                host,
                reason,
                fingerprint,
            } => {
                write!(f, "certificate for {host} is not trusted: {reason}")?;
                match fingerprint {
                    Some(fp) => write!(f, "; use --tls-pin {fp} to trust this one"),
                    None => Ok(()),
                }
            }
            TlsError::PinMismatch { host, fingerprint } => {
                write!(f, "certificate for {host} does not match --tls-pin")?;
                match fingerprint {
                    Some(fp) => write!(f, ": it is {fp}"),
                    None => Ok(()),
                }
            }
            TlsError::Handshake { peer, reason } => {
                write!(f, "TLS handshake with {peer} failed: {reason}")
            }
        }
    }
}

impl std::error::Error for TlsError {}

/// Whether `error` from [`TlsReceiver::receive`] is the peer's EOF without
/// `close_notify`: a truncation, which ends a drain after our goodbye
/// normally (SPEC, "TLS").
pub(crate) fn is_truncation(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<Truncated>())
}

/// The peer's TCP EOF came without `close_notify`.
#[derive(Debug)]
struct Truncated;

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the peer closed the connection without TLS close_notify (the data may be truncated)",
        )
    }
}

impl std::error::Error for Truncated {}

fn provider() -> Arc<CryptoProvider> {
    // aws-lc-rs, the one crypto library of the crate (the secret channel's
    // records use it too). aws-lc-sys builds with the C compiler alone (no
    // cmake is needed).
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The server side: its configuration, made once per `serve`.
pub(crate) struct TlsAcceptor {
    config: Arc<ServerConfig>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl TlsAcceptor {
    /// Loads the identity, or makes the throwaway certificate for the names
    /// `localhost`, `127.0.0.1`, `::1` and `bind` (SPEC, "TLS").
    pub fn new(identity: &Identity, bind: &str) -> Result<TlsAcceptor, TlsError> {
        let (chain, mut key) = match identity {
            Identity::Throwaway => throwaway(bind)?,
            Identity::Files { cert, key } => (load_chain(cert, "--tls-cert")?, load_key(key)?),
        };
        let provider = provider();
        let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key);
        // The DER key is not needed once AWS-LC holds it; leave no copy.
        key.zeroize();
        let signing = signing.map_err(|error| {
            TlsError::Setup(format!("the TLS private key cannot be used: {error}"))
        })?;
        let fingerprint = Fingerprint::of(chain[0].as_ref());
        let certified = CertifiedKey::new(chain, signing);
        match certified.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(_) => {
                return Err(TlsError::Setup(
                    "--tls-key is not the key of the certificate in --tls-cert".into(),
                ));
            }
        }
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)
            .map_err(|error| TlsError::Setup(format!("TLS configuration: {error}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
        Ok(TlsAcceptor {
            config: Arc::new(config),
            fingerprint,
        })
    }

    /// The SHA-256 of the leaf certificate we present.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// Runs the server's handshake on `stream` within [`HANDSHAKE_TIMEOUT`].
    pub fn accept(&self, stream: TcpStream, peer: SocketAddr) -> Result<TlsSession, TlsError> {
        self.accept_within(stream, peer, HANDSHAKE_TIMEOUT)
    }

    fn accept_within(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        timeout: Duration,
    ) -> Result<TlsSession, TlsError> {
        let conn = rustls::ServerConnection::new(Arc::clone(&self.config))
            .map_err(|error| handshake_failed(peer, &error))?;
        let mut conn = rustls::Connection::Server(conn);
        match handshake(&mut conn, &stream, timeout) {
            Ok(leftover) => Ok(TlsSession::new(conn, stream, leftover)),
            Err(failure) => Err(failure.into_error(peer)),
        }
    }
}

/// The client side: how to verify, made once per `connect`.
pub(crate) struct TlsConnector {
    verification: Verification,
    roots: Option<Arc<RootCertStore>>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("verification", &self.verification)
            .finish()
    }
}

impl TlsConnector {
    /// Loads the roots `verification` needs (the system's or `--tls-ca`).
    pub fn new(verification: &Verification) -> Result<TlsConnector, TlsError> {
        let roots = match verification {
            Verification::Roots { ca: Some(path) } => {
                let mut store = RootCertStore::empty();
                for cert in load_chain(path, "--tls-ca")? {
                    store.add(cert).map_err(|error| {
                        TlsError::Setup(format!(
                            "--tls-ca {} holds a certificate that cannot be a root: {error}",
                            path.display()
                        ))
                    })?;
                }
                Some(store)
            }
            Verification::Roots { ca: None } => {
                let found = rustls_native_certs::load_native_certs();
                let mut store = RootCertStore::empty();
                let (added, _ignored) = store.add_parsable_certificates(found.certs);
                tracing::debug!(added, errors = found.errors.len(), "system roots");
                if added == 0 {
                    return Err(TlsError::Setup(
                        "found no system root certificates: use --tls-ca FILE or --tls-pin".into(),
                    ));
                }
                Some(store)
            }
            Verification::Pin(_) | Verification::Insecure => None,
        };
        Ok(TlsConnector {
            verification: verification.clone(),
            roots: roots.map(Arc::new),
        })
    }

    /// Runs the client's handshake on `stream`, verifying the server for
    /// `host`, within [`HANDSHAKE_TIMEOUT`].
    pub fn connect(
        &self,
        stream: TcpStream,
        host: &str,
        peer: SocketAddr,
    ) -> Result<TlsSession, TlsError> {
        self.connect_within(stream, host, peer, HANDSHAKE_TIMEOUT)
    }

    fn connect_within(
        &self,
        stream: TcpStream,
        host: &str,
        peer: SocketAddr,
        timeout: Duration,
    ) -> Result<TlsSession, TlsError> {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let provider = provider();
        let policy = match (&self.verification, &self.roots) {
            (Verification::Roots { .. }, Some(roots)) => Policy::Roots(
                WebPkiServerVerifier::builder_with_provider(Arc::clone(roots), provider.clone())
                    .build()
                    .map_err(|error| TlsError::Setup(format!("TLS roots: {error}")))?,
            ),
            (Verification::Pin(pin), _) => Policy::Pin(*pin),
            _ => Policy::Insecure,
        };
        let name = match ServerName::try_from(host.to_owned()) {
            Ok(name) => name,
            // Only a verification by name needs a name; a pin or
            // --tls-insecure can talk to whatever HOST was.
            Err(_) if !matches!(policy, Policy::Roots(_)) => ServerName::from(peer.ip()),
            Err(_) => {
                return Err(TlsError::Setup(format!(
                    "{host} is not a name a certificate can be checked against"
                )));
            }
        };
        let verifier = Arc::new(Verifier {
            policy,
            provider: provider.clone(),
            seen: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)
            .map_err(|error| TlsError::Setup(format!("TLS configuration: {error}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        let conn = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|error| handshake_failed(peer, &error))?;
        let mut conn = rustls::Connection::Client(conn);
        match handshake(&mut conn, &stream, timeout) {
            Ok(leftover) => Ok(TlsSession::new(conn, stream, leftover)),
            Err(Failure::Tls(rustls::Error::InvalidCertificate(error), _)) => {
                let fingerprint = verifier.seen();
                Err(match &verifier.policy {
                    Policy::Pin(_) => TlsError::PinMismatch {
                        host: host.to_owned(),
                        fingerprint,
                    },
                    _ => TlsError::NotTrusted {
                        host: host.to_owned(),
                        reason: untrusted_reason(&error, host),
                        fingerprint,
                    },
                })
            }
            Err(failure) => Err(failure.into_error(peer)),
        }
    }
}

/// TLS made ready for one command: the server's identity, or the client's
/// verification and the name it checks. Each connection gets its own
/// handshake from it ([`super::establish`]).
#[derive(Clone, Debug)]
pub(crate) enum Tls {
    /// `serve --tls`.
    Server(Arc<TlsAcceptor>),
    /// `connect --tls` to `host`.
    Client {
        /// How the server is verified.
        connector: Arc<TlsConnector>,
        /// HOST as given: the name the certificate must hold.
        host: String,
    },
}

impl Tls {
    /// Runs the handshake on `stream` and yields the two halves.
    pub(super) fn establish(&self, stream: TcpStream, side: Side) -> crate::Result<Connection> {
        let peer = stream.peer_addr().map_err(Error::Accept)?;
        let session = match (self, side) {
            (Tls::Server(acceptor), Side::Server) => acceptor.accept(stream, peer),
            (Tls::Client { connector, host }, Side::Client) => {
                connector.connect(stream, host, peer)
            }
            _ => Err(TlsError::Setup(
                "TLS was set up for the other end of the connection".into(),
            )),
        }
        .map_err(Error::Tls)?;
        tracing::info!(%peer, tls = session.description(), "TLS handshake done");
        let (socket, receiver, transmitter) = session.split();
        Ok(Connection {
            socket,
            receiver: Box::new(receiver),
            transmitter: Box::new(transmitter),
        })
    }
}

/// Why a certificate is not trusted, in words.
fn untrusted_reason(error: &CertificateError, host: &str) -> String {
    match error {
        CertificateError::UnknownIssuer => "it is not signed by a trusted authority".into(),
        CertificateError::BadSignature => "its signature does not verify".into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".into()
        }
        CertificateError::NotValidForName => format!("it is not valid for {host}"),
        CertificateError::NotValidForNameContext { presented, .. } => {
            if presented.is_empty() {
                format!("it names no host, not {host}")
            } else {
                let names: Vec<String> =
                    presented.iter().map(|name| presented_name(name)).collect();
                format!("it is for {}, not {host}", names.join(", "))
            }
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "it is not a server certificate".into()
        }
        // webpki's "CaUsedAsEndEntity", which rustls passes on as an opaque
        // `Other`: most often a self-signed certificate given to --tls-ca.
        CertificateError::Other(other) if other.to_string() == "CaUsedAsEndEntity" => {
            "it is a CA's certificate, not a server's (a self-signed certificate cannot be its own --tls-ca)".into()
        }
        other => other.to_string(),
    }
}

/// A name from the peer's certificate as a person reads it: webpki says
/// `DnsName("a.example")` and `IpAddress(1.2.3.4)`. The name is the peer's
/// text, so control and bidirectional characters are shown, not obeyed.
fn presented_name(name: &str) -> String {
    let inner = name
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })
        .unwrap_or(name);
    inner
        .chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                format!("<U+{:04X}>", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// What the client's verifier accepts.
#[derive(Debug)]
enum Policy {
    Roots(Arc<WebPkiServerVerifier>),
    Pin(Fingerprint),
    Insecure,
}

/// The client's certificate check. Whatever it accepts, the server must
/// still prove it holds the certificate's key (the handshake signatures are
/// always checked), and it remembers the leaf it saw for the error line.
#[derive(Debug)]
struct Verifier {
    policy: Policy,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<Fingerprint>>,
}

impl Verifier {
    fn seen(&self) -> Option<Fingerprint> {
        match self.seen.lock() {
            Ok(seen) => *seen,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity.as_ref());
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(fingerprint);
        }
        match &self.policy {
            Policy::Roots(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Policy::Pin(pin) if pin.matches(&fingerprint) => Ok(ServerCertVerified::assertion()),
            Policy::Pin(_) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            Policy::Insecure => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A PEM certificate chain from `path` (named `option` in errors).
fn load_chain(path: &Path, option: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display();
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| pem_error(option, path, &error))?;
    if chain.is_empty() {
        return Err(TlsError::Setup(format!(
            "{option} {shown} holds no PEM certificate"
        )));
    }
    Ok(chain)
}

/// A PEM private key (PKCS#8, PKCS#1 or SEC1) from `path`.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::Setup(format!(
            "--tls-key {} holds no PEM private key",
            path.display()
        )),
        other => pem_error("--tls-key", path, &other),
    })
}

fn pem_error(option: &str, path: &Path, error: &pem::Error) -> TlsError {
    let shown = path.display();
    TlsError::Setup(match error {
        pem::Error::Io(io) => format!(
            "could not read {option} {shown}: {}",
            crate::error::describe(io)
        ),
        other => format!("{option} {shown} is not valid PEM: {other}"),
    })
}

/// A self-signed certificate for `localhost`, `127.0.0.1`, `::1` and `bind`,
/// valid from a minute ago (clocks differ) for 30 days, and its key.
fn throwaway(
    bind: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
    let failed = |error: rcgen::Error| {
        TlsError::Setup(format!("could not make a throwaway certificate: {error}"))
    };
    let mut names: Vec<SanType> = Vec::new();
    let mut add = |name: SanType| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    let bind = bind
        .strip_prefix('[')
        .and_then(|b| b.strip_suffix(']'))
        .unwrap_or(bind);
    for name in ["localhost", "127.0.0.1", "::1", bind] {
        match name.parse::<IpAddr>() {
            Ok(ip) => add(SanType::IpAddress(ip)),
            Err(_) => match name.try_into() {
                Ok(dns) => add(SanType::DnsName(dns)),
                Err(_) => tracing::debug!(name, "not a DNS name; left out of the certificate"),
            },
        }
    }
    let mut params = CertificateParams::default();
    params.subject_alt_names = names;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, "duplex throwaway certificate");
    params.distinguished_name = subject;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(60);
    params.not_after = now + THROWAWAY_VALIDITY;
    let mut key = KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    key.zeroize();
    Ok((vec![cert.der().clone()], der))
}

/// How a handshake failed, before it is put in words.
enum Failure {
    /// rustls refused; the first byte the peer sent, if any.
    Tls(rustls::Error, Option<u8>),
    Io(io::Error),
    TimedOut,
    /// The peer closed before the handshake finished.
    Closed(Option<u8>),
}

impl Failure {
    fn into_error(self, peer: SocketAddr) -> TlsError {
        let not_tls = |first: Option<u8>| first.is_some_and(|byte| !(20..=24).contains(&byte));
        let reason = match self {
            Failure::Tls(_, first) | Failure::Closed(first) if not_tls(first) => {
                "the peer does not speak TLS (it sent plain bytes)".to_owned()
            }
            Failure::Tls(rustls::Error::AlertReceived(alert), _) => {
                format!("the peer refused it (alert: {alert:?})")
            }
            Failure::Tls(error, _) => error.to_string(),
            Failure::Io(error) => crate::error::describe(&error),
            Failure::TimedOut => format!(
                "no answer within {} s (is it a TLS peer?)",
                HANDSHAKE_TIMEOUT.as_secs()
            ),
            Failure::Closed(_) => "the peer closed the connection during the handshake".into(),
        };
        TlsError::Handshake { peer, reason }
    }
}

fn handshake_failed(peer: SocketAddr, error: &rustls::Error) -> TlsError {
    TlsError::Handshake {
        peer,
        reason: error.to_string(),
    }
}

/// Drives the handshake to its end on this thread, every socket call bounded
/// by what is left of `timeout`. Returns the TLS bytes read past the
/// handshake, which belong to the receiver.
fn handshake(
    conn: &mut rustls::Connection,
    stream: &TcpStream,
    timeout: Duration,
) -> Result<Vec<u8>, Failure> {
    let deadline = Instant::now() + timeout;
    let mut first: Option<u8> = None;
    let mut buf = vec![0; 16 * 1024];
    let result = (|| {
        while conn.is_handshaking() || conn.wants_write() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::TimedOut);
            }
            stream.set_read_timeout(Some(left)).map_err(Failure::Io)?;
            stream.set_write_timeout(Some(left)).map_err(Failure::Io)?;
            if conn.wants_write() {
                let mut socket = stream;
                match conn.write_tls(&mut socket) {
                    Ok(_) => continue,
                    Err(error) => return Err(socket_failure(error, first)),
                }
            }
            let n = match (&mut &*stream).read(&mut buf) {
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(socket_failure(error, first)),
            };
            if n == 0 {
                return Err(Failure::Closed(first));
            }
            first.get_or_insert(buf[0]);
            let mut rest = &buf[..n];
            while !rest.is_empty() && conn.is_handshaking() {
                if conn.read_tls(&mut rest).map_err(Failure::Io)? == 0 {
                    // rustls takes nothing more (a close_notify came): the
                    // handshake cannot finish; the deadline ends the wait.
                    break;
                }
                if let Err(error) = conn.process_new_packets() {
                    // Tell the peer why, if it will take it now.
                    let mut socket = stream;
                    let _ = conn.write_tls(&mut socket);
                    return Err(Failure::Tls(error, first));
                }
            }
            if !rest.is_empty() && !conn.is_handshaking() {
                return Ok(rest.to_vec());
            }
        }
        Ok(Vec::new())
    })();
    // The pumps block without timeouts; shutdown(Both) is their way out.
    let _ = stream.set_read_timeout(None);
    let _ = stream.set_write_timeout(None);
    let leftover = result?;
    // Anything still owed (a TLS 1.3 client's Finished, the server's
    // session tickets) goes out before the pumps start.
    flush_pending(conn, stream, deadline).map_err(|error| socket_failure(error, first))?;
    Ok(leftover)
}

fn flush_pending(
    conn: &mut rustls::Connection,
    stream: &TcpStream,
    deadline: Instant,
) -> io::Result<()> {
    if !conn.wants_write() {
        return Ok(());
    }
    let left = deadline.saturating_duration_since(Instant::now());
    stream.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
    let mut socket = stream;
    let written = (|| {
        while conn.wants_write() {
            conn.write_tls(&mut socket)?;
        }
        Ok(())
    })();
    let _ = stream.set_write_timeout(None);
    written
}

fn socket_failure(error: io::Error, first: Option<u8>) -> Failure {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::TimedOut,
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Failure::Closed(first),
        _ => Failure::Io(error),
    }
}

/// A finished handshake: the session the two halves share, and the socket.
pub(crate) struct TlsSession {
    socket: Arc<TcpStream>,
    shared: Arc<Mutex<rustls::Connection>>,
    leftover: Vec<u8>,
    description: String,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("description", &self.description)
            .finish()
    }
}

impl TlsSession {
    fn new(mut conn: rustls::Connection, stream: TcpStream, leftover: Vec<u8>) -> TlsSession {
        // The sender bounds what it hands over at once (SEAL_CHUNK), so the
        // session's own buffers need no limit that would refuse a write.
        conn.set_buffer_limit(None);
        let description = match (conn.protocol_version(), conn.negotiated_cipher_suite()) {
            (Some(version), Some(suite)) => format!("{version:?} {:?}", suite.suite()),
            _ => "TLS".to_owned(),
        };
        TlsSession {
            socket: Arc::new(stream),
            shared: Arc::new(Mutex::new(conn)),
            leftover,
            description,
        }
    }

    /// The protocol version and cipher suite, for diagnostics.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The socket (shutting it down both ways wakes both halves), the
    /// receiving half and the sending half.
    pub fn split(self) -> (Arc<TcpStream>, TlsReceiver, TlsTransmitter) {
        let mut raw = vec![0; RAW_BUFFER.max(self.leftover.len())].into_boxed_slice();
        raw[..self.leftover.len()].copy_from_slice(&self.leftover);
        let receiver = TlsReceiver {
            socket: Arc::clone(&self.socket),
            shared: Arc::clone(&self.shared),
            raw,
            start: 0,
            end: self.leftover.len(),
            failure: None,
        };
        let transmitter = TlsTransmitter {
            socket: Arc::clone(&self.socket),
            shared: self.shared,
        };
        (self.socket, receiver, transmitter)
    }
}

fn lock(shared: &Mutex<rustls::Connection>) -> io::Result<MutexGuard<'_, rustls::Connection>> {
    // A poisoned lock means the other half panicked in rustls: the session's
    // state cannot be trusted any more.
    shared
        .lock()
        .map_err(|_| io::Error::other("the TLS session broke"))
}

fn tls_io_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {error}"))
}

/// The receiving half: TLS records from the socket in, plaintext out.
pub(crate) struct TlsReceiver {
    socket: Arc<TcpStream>,
    shared: Arc<Mutex<rustls::Connection>>,
    /// TLS bytes read from the socket and not yet fed to rustls.
    raw: Box<[u8]>,
    start: usize,
    end: usize,
    /// An error met after some plaintext was already handed out; reported
    /// by the next call.
    failure: Option<io::Error>,
}

impl fmt::Debug for TlsReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReceiver").finish_non_exhaustive()
    }
}

impl TlsReceiver {
    /// Plaintext into `buf`. `Ok(0)`: the peer's `close_notify`. A TCP EOF
    /// without it is an [`io::ErrorKind::UnexpectedEof`] error.
    pub fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(error) = self.failure.take() {
            return Err(error);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(done) = self.open(buf)? {
                return Ok(done);
            }
            // The lock is released here: the sender encrypts and writes
            // while we wait for the peer.
            let n = loop {
                match (&mut &*self.socket).read(&mut self.raw) {
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            (self.start, self.end) = (0, n);
            if n == 0 {
                // Tell rustls about the EOF; `open` then says whether the
                // peer's close_notify came before it.
                let mut conn = lock(&self.shared)?;
                conn.read_tls(&mut io::empty())?;
                conn.process_new_packets().map_err(tls_io_error)?;
            }
        }
    }

    /// Under the lock, without blocking: feeds the TLS bytes already read and
    /// drains plaintext into `buf`. `None`: the socket must be read first.
    fn open(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut conn = lock(&self.shared)?;
        let mut filled = 0;
        let keep = |error: io::Error, filled: usize, failure: &mut Option<io::Error>| {
            if filled == 0 {
                Err(error)
            } else {
                *failure = Some(error);
                Ok(Some(filled))
            }
        };
        loop {
            match conn.reader().read(&mut buf[filled..]) {
                // The peer's close_notify (after everything before it).
                Ok(0) => return Ok(Some(filled)),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(Some(filled));
                    }
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    let truncated = io::Error::new(io::ErrorKind::UnexpectedEof, Truncated);
                    return keep(truncated, filled, &mut self.failure);
                }
                Err(error) => return keep(error, filled, &mut self.failure),
            }
            if self.start < self.end {
                let mut pending = &self.raw[self.start..self.end];
                let before = pending.len();
                match conn.read_tls(&mut pending) {
                    // After the peer's close_notify nothing more is read:
                    // what follows it is not the peer's data.
                    Ok(0) => self.start = self.end,
                    Ok(_) => self.start += before - pending.len(),
                    Err(error) => return keep(error, filled, &mut self.failure),
                }
                if let Err(error) = conn.process_new_packets() {
                    return keep(tls_io_error(error), filled, &mut self.failure);
                }
                continue;
            }
            return Ok((filled > 0).then_some(filled));
        }
    }
}

/// The sending half: plaintext in, TLS records to the socket.
pub(crate) struct TlsTransmitter {
    socket: Arc<TcpStream>,
    shared: Arc<Mutex<rustls::Connection>>,
}

impl fmt::Debug for TlsTransmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransmitter").finish_non_exhaustive()
    }
}

impl TlsTransmitter {
    /// Encrypts and sends all of `bytes`.
    pub fn transmit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.transmit_vectored(&[bytes])
    }

    /// Encrypts and sends all of `bufs`, in order, `SEAL_CHUNK` at a time.
    pub fn transmit_vectored(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        let mut sealed_plain = 0;
        let mut conn = lock(&self.shared)?;
        for buf in bufs {
            for piece in buf.chunks(SEAL_CHUNK) {
                conn.writer().write_all(piece)?;
                sealed_plain += piece.len();
                if sealed_plain >= SEAL_CHUNK {
                    conn = self.send_records(conn)?;
                    sealed_plain = 0;
                }
            }
        }
        self.send_records(conn).map(drop)
    }

    /// Ends our direction: `close_notify`, then `shutdown(Write)`. A peer
    /// that has already gone is not an error here.
    pub fn finish(&mut self) -> io::Result<()> {
        let mut conn = lock(&self.shared)?;
        conn.send_close_notify();
        match self.send_records(conn) {
            Err(error) if peer_gone(&error) => {
                tracing::debug!(%error, "close_notify not sent: the peer has gone");
            }
            other => drop(other?),
        }
        match self.socket.shutdown(std::net::Shutdown::Write) {
            Err(error) if peer_gone(&error) => Ok(()),
            other => other,
        }
    }

    /// Writes every record the session holds straight from its buffers to
    /// the socket, without waiting on the socket under the lock: each
    /// `sendmsg` is non-blocking, and when the socket is full the lock is
    /// released for the wait in `poll` (see the module docs). Gives the lock
    /// back, taken again, for more plaintext.
    fn send_records<'a>(
        &'a self,
        mut conn: MutexGuard<'a, rustls::Connection>,
    ) -> io::Result<MutexGuard<'a, rustls::Connection>> {
        while conn.wants_write() {
            match conn.write_tls(&mut NoWait(&self.socket)) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    drop(conn);
                    wait_writable(&self.socket)?;
                    conn = lock(&self.shared)?;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(conn)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

/// The socket as a writer that never waits: `sendmsg` with `MSG_DONTWAIT`
/// (and `MSG_NOSIGNAL`: a closed peer is an `EPIPE` error, not a signal).
/// The socket itself stays blocking for the receiver's reads.
struct NoWait<'a>(&'a TcpStream);

impl Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        socket2::SockRef::from(self.0).send_vectored_with_flags(bufs, SEND_FLAGS)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Waits, holding nothing, until the socket takes more bytes, or until it
/// is shut down or broken (then the next `sendmsg` says which): the
/// conversation's `shutdown(Both)` is this wait's way out, as it is a
/// blocking write's.
fn wait_writable(socket: &TcpStream) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(socket, PollFlags::OUT)];
    match poll(&mut fds, None) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

impl Read for TlsReceiver {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.receive(buf)
    }
}

impl Receive for TlsReceiver {}

impl Write for TlsTransmitter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.transmit(buf)?;
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let slices: Vec<&[u8]> = bufs.iter().map(|buf| &**buf).collect();
        self.transmit_vectored(&slices)?;
        Ok(slices.iter().map(|buf| buf.len()).sum())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.transmit(buf)
    }

    /// Every write is on the socket when it returns.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transmit for TlsTransmitter {
    fn finish(&mut self) -> io::Result<()> {
        TlsTransmitter::finish(self)
    }
}

fn peer_gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotConnected | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests;
