//! A realistic transport for the benchmark: each AWS endpoint the functions
//! call sits behind a link with a fixed round-trip time and, with `--tls`,
//! a TLS server whose certificate a throwaway CA issued (the functions
//! trust that CA's root for the run through `SSL_CERT_FILE`).
//!
//! The link delays every chunk by half the round trip in each direction,
//! so what a real network serialises (the TLS handshake's flights, a
//! request and its answer) costs whole round trips, and what it pipelines
//! stays pipelined. TCP's handshake happens on loopback at once, so the
//! first bytes a client sends on a connection wait one more round trip:
//! a new connection costs 1 RTT (TCP) + 1 (TLS 1.3) before its request's.
//!
//! ```text
//! function --(https://127.0.0.1:A)--> link A (RTT) --> TLS server B --> keep-alive proxy --> recorder --> DynamoDB Local / moto
//! ```
//!
//! Everything right of the link stands in for the AWS side, and its time
//! is not the function's: the link records, per connection, each span from
//! the moment the client's bytes were delivered to the far side until that
//! side's next bytes came back ([`Owed`]): the TLS server's handshake work,
//! the hops behind it and the server's answer, all on the CPUs the function
//! shares here.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// Copies `from` to `to`, each chunk leaving `delay` after it arrived (the
/// first one `first_extra` later still), in order. OS threads and
/// `thread::sleep` (nanosleep, tens of microseconds late at most): tokio's
/// timer rounds every sleep up to its millisecond tick, which would add up
/// to a millisecond to every crossing.
fn delay_line(
    from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    delay: Duration,
    first_extra: Duration,
    turn: Turn,
) {
    use std::io::Write;
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    let reader_turn = turn.clone();
    std::thread::spawn(move || {
        let turn = reader_turn;
        let mut buf = vec![0u8; 64 * 1024];
        let mut extra = first_extra;
        loop {
            // When the bytes reached this socket (the kernel's stamp), not
            // when this thread got to them: a new connection's first bytes
            // wait while the link connects upstream and starts its threads,
            // and that set-up is the rig's, not the network's.
            match syncaroo_tests::ktime::read_blocking(&from, &mut buf) {
                Ok((0, _)) | Err(_) => break,
                Ok((n, arrived)) => {
                    if let Turn::Answers(t) = &turn {
                        t.answered(arrived);
                    }
                    let due = arrived + delay + extra;
                    extra = Duration::ZERO;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            // Stamped before the write: once the far side has the bytes,
            // this thread may not run again for a while, and that wait is
            // not the far side's.
            let at = Instant::now();
            if to.write_all(&bytes).is_err() {
                break;
            }
            if let Turn::Asks(t) = &turn {
                t.delivered(at);
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// The far side's time, as seen from the link: spans from a delivery of
/// the client's bytes, when nothing was owed, to the far side's next bytes.
#[derive(Clone, Default)]
pub struct Owed(Arc<Mutex<Vec<Span>>>, Arc<AtomicUsize>);

/// On connection `conn`, when the far side began to owe an answer and when
/// it came (`None`: not yet).
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub conn: usize,
    pub start: Instant,
    pub end: Option<Instant>,
}

impl Owed {
    /// Spans begun in `[from, to)`.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<Span> {
        let spans = self.0.lock().unwrap();
        spans
            .iter()
            .filter(|s| s.start >= from && s.start < to)
            .copied()
            .collect()
    }

    /// The far side's time on a cold request's path: of init's connections,
    /// which run side by side (the secrets fetch and the warm-ups, each a
    /// handshake and one request), the one the far side kept longest; then
    /// all it owed during the first invocation (`[sent, at)`), overlaps
    /// once. Time it spent on the other init connections is off the path
    /// and stays the function's.
    pub fn on_cold_path(&self, cold: &Cold) -> Duration {
        let Cold {
            started,
            init_end,
            sent,
            at,
        } = *cold;
        let mut per_conn: std::collections::HashMap<usize, Duration> = Default::default();
        for s in self.between(started, init_end) {
            let end = s.end.unwrap_or(init_end).min(init_end);
            *per_conn.entry(s.conn).or_default() += end.saturating_duration_since(s.start);
        }
        let init = per_conn.values().max().copied().unwrap_or_default();
        let first = syncaroo_tests::ddb_proxy::covered(
            self.between(sent, at).into_iter().map(|s| (s.start, s.end)),
            at,
        );
        init + first
    }

    fn conversation(&self) -> Conversation {
        Conversation {
            owed: self.clone(),
            conn: self.1.fetch_add(1, Ordering::SeqCst),
            open: Arc::default(),
        }
    }
}

/// The moments of one cold request: the function started, asked for its
/// first event (init's end), was sent it, and answered it.
#[derive(Clone, Copy, Debug)]
pub struct Cold {
    pub started: Instant,
    pub init_end: Instant,
    pub sent: Instant,
    pub at: Instant,
}

/// One connection's open span, if the far side owes an answer.
#[derive(Clone)]
struct Conversation {
    owed: Owed,
    conn: usize,
    open: Arc<Mutex<Option<usize>>>,
}

impl Conversation {
    fn delivered(&self, at: Instant) {
        let mut open = self.open.lock().unwrap();
        if open.is_none() {
            let mut spans = self.owed.0.lock().unwrap();
            spans.push(Span {
                conn: self.conn,
                start: at,
                end: None,
            });
            *open = Some(spans.len() - 1);
        }
    }

    fn answered(&self, at: Instant) {
        if let Some(i) = self.open.lock().unwrap().take() {
            self.owed.0.lock().unwrap()[i].end = Some(at);
        }
    }
}

/// Which way a delay line carries a conversation.
#[derive(Clone)]
enum Turn {
    /// Client to server: a delivery opens a span.
    Asks(Conversation),
    /// Server to client: an arrival closes it.
    Answers(Conversation),
}

/// A link with round-trip time `rtt` in front of `upstream` (host:port),
/// recording the far side's time into `owed`; returns the address it
/// listens on.
pub async fn link(upstream: String, rtt: Duration, owed: Owed) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind link");
    syncaroo_tests::ktime::enable(&listener).expect("SO_TIMESTAMPNS");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let std_of = |s: TcpStream| {
                let s = s.into_std().expect("a std socket");
                s.set_nonblocking(false).expect("blocking");
                s.set_nodelay(true).expect("nodelay");
                s
            };
            let (client, server) = (std_of(client), std_of(server));
            let _ = syncaroo_tests::ktime::enable_socket(&server);
            let (client2, server2) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let talk = owed.conversation();
            delay_line(client, server, rtt / 2, rtt, Turn::Asks(talk.clone()));
            delay_line(
                server2,
                client2,
                rtt / 2,
                Duration::ZERO,
                Turn::Answers(talk),
            );
        }
    });
    addr
}

/// A TLS server in front of `upstream` (plain TCP); returns its address.
pub async fn tls_server(upstream: String, config: Arc<rustls::ServerConfig>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tls");
    let addr = listener.local_addr().expect("addr").to_string();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    addr
}

/// A throwaway PKI shaped like AWS's endpoints' (RSA 2048 throughout: a
/// root, an intermediate it signed, a server certificate for 127.0.0.1 the
/// intermediate signed; the server sends its certificate and the
/// intermediate), made by the `openssl` command in `dir`: the root's PEM
/// (for `SSL_CERT_FILE`) and the server's TLS configuration. The functions'
/// TLS client so does the verification work it does on AWS (RSA signatures
/// over a two-certificate chain).
pub fn throwaway_ca(dir: &Path) -> (PathBuf, Arc<rustls::ServerConfig>) {
    std::fs::create_dir_all(dir).expect("cert dir");
    // One `openssl` command; `line` is split at spaces (no argument has one).
    let run = |line: &str| {
        syncaroo_tests::openssl(dir, &line.split_whitespace().collect::<Vec<_>>());
    };
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("ext file");
    write(
        "ca.ext",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n",
    );
    write(
        "server.ext",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    run(
        "req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.pem -days 1 \
         -subj /CN=bench-throwaway-root -addext basicConstraints=critical,CA:TRUE \
         -addext keyUsage=critical,keyCertSign",
    );
    // `name` gets a key, and a certificate from `issuer` (its PEM and key).
    let issue = |name: &str, issuer: &str, ext: &str| {
        run(&format!(
            "req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={name}"
        ));
        run(&format!(
            "x509 -req -in {name}.csr -CA {issuer}.pem -CAkey {issuer}.key -CAcreateserial \
             -out {name}.pem -days 1 -extfile {ext}"
        ));
    };
    issue("intermediate", "root", "ca.ext");
    issue("server", "intermediate", "server.ext");
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = ["server.pem", "intermediate.pem"]
        .iter()
        .flat_map(|f| CertificateDer::pem_file_iter(dir.join(f)).expect(f))
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    // No session tickets: they would be bytes the server sends unasked
    // right after the handshake, and the link's account of what the far
    // side owes reads every answer as the end of a turn. A cold start
    // resumes nothing, so the functions lose nothing by it.
    config.send_tls13_tickets = 0;
    (dir.join("root.pem"), Arc::new(config))
}

/// The endpoint the functions are given for `recorder` (a proxy URL
/// `http://host:port`): behind a link of `rtt`, and TLS when `tls` is set.
///
/// Between the TLS server and the recorder sits a keep-alive HTTP proxy
/// (the fault proxy with no faults planned): moto answers every request
/// with `Connection: close`, which would make each request to Secrets
/// Manager or EventBridge pay a new connection's handshakes, where AWS's
/// endpoints keep connections open.
pub async fn endpoint(
    recorder_url: &str,
    rtt: Duration,
    tls: Option<&Arc<rustls::ServerConfig>>,
    owed: &Owed,
) -> String {
    use syncaroo_tests::fault_proxy::{self, Plan, Service};
    let kept_alive = fault_proxy::start(Service::SecretsManager, recorder_url, Plan::new()).await;
    let upstream = kept_alive
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    match tls {
        Some(cfg) => {
            let server = tls_server(upstream, cfg.clone()).await;
            let port = link(server, rtt, owed.clone()).await;
            format!("https://{port}")
        }
        None => format!("http://{}", link(upstream, rtt, owed.clone()).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Init's connections run side by side: the longest one's far-side
    /// time is on the path, the others' is not; in the first invocation
    /// everything the far side owed counts, overlaps once.
    #[test]
    fn the_cold_path_takes_inits_longest_connection_and_the_first_invocation() {
        let owed = Owed::default();
        let t0 = Instant::now();
        let span = |conn, a, b: Option<u64>| Span {
            conn,
            start: at(t0, a),
            end: b.map(|b| at(t0, b)),
        };
        *owed.0.lock().unwrap() = vec![
            // Connection 0: handshake 2 ms, request 4 ms = 6.
            span(0, 10, Some(12)),
            span(0, 15, Some(19)),
            // Connection 1: handshake 1 ms, request still open at init's
            // end (22): 1 + 7 = 8, the longest.
            span(1, 10, Some(11)),
            span(1, 15, None),
            // The first invocation, sent at 30: [31, 34] and [33, 36]
            // overlap (5 ms), then [40, 41].
            span(0, 31, Some(34)),
            span(1, 33, Some(36)),
            span(0, 40, Some(41)),
            // After the answer (45): not this request's.
            span(0, 46, Some(48)),
        ];
        let got = owed.on_cold_path(&Cold {
            started: at(t0, 5),
            init_end: at(t0, 22),
            sent: at(t0, 30),
            at: at(t0, 45),
        });
        assert_eq!(got, Duration::from_millis(8 + 6));
    }

    /// Through a real link: the far side's span covers what the server
    /// took and none of the link's own delay, each connection has its own
    /// spans, and a connection's first bytes wait one more round trip (the
    /// TCP handshake).
    #[tokio::test]
    async fn a_link_records_what_the_far_side_took_not_the_round_trip() {
        // The link times arrivals by the kernel's stamps once they flow.
        syncaroo_tests::ktime::wait_until_live().await;
        let hold = Duration::from_millis(30);
        let rtt = Duration::from_millis(20);
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = server.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = server.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        tokio::time::sleep(hold).await;
                        if s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let owed = Owed::default();
        let addr = link(upstream, rtt, owed.clone()).await;
        let t0 = Instant::now();
        let mut observed = Vec::new();
        for _connection in 0..2 {
            let mut c = TcpStream::connect(&addr).await.unwrap();
            for _exchange in 0..2 {
                let sent = Instant::now();
                c.write_all(b"ping").await.unwrap();
                let mut buf = [0u8; 4];
                c.read_exact(&mut buf).await.unwrap();
                assert_eq!(&buf, b"ping");
                observed.push(sent.elapsed());
            }
        }
        let spans = owed.between(t0, Instant::now());
        let conns: Vec<usize> = spans.iter().map(|s| s.conn).collect();
        assert_eq!(conns.len(), 4, "{spans:?}");
        assert!(conns[0] == conns[1] && conns[2] == conns[3] && conns[0] != conns[2]);
        for (i, (s, seen)) in spans.iter().zip(&observed).enumerate() {
            let took = s.end.expect("answered") - s.start;
            assert!(
                took >= hold,
                "exchange {i}: {took:?} is less than the server's hold"
            );
            let delay = if i % 2 == 0 { 2 * rtt } else { rtt };
            assert!(
                took + delay <= *seen,
                "exchange {i}: the span ({took:?}) holds some of the link's delay ({delay:?}; seen {seen:?})"
            );
        }
    }
}
