//! Claims' traffic sent from inside the run's networks.
//!
//! The run gets one more container, its *probe host*, with a leg on every
//! network of the design (as the machine running stackproof has on a local
//! engine: the gateway of each bridge). A small agent runs there
//! ([`AGENT`], Perl from the image's `perl-base`) and carries the harness's
//! connections over one attached `docker exec` stream: TCP connects, UDP
//! exchanges, and listeners whose connections come back to the harness. So
//! every request, handshake, port probe and DNS query leaves from a
//! container, and a remote engine (`DOCKER_HOST=tcp://…`, `ssh://…`),
//! whose bridges the harness cannot reach, works the same as a local one.
//!
//! The harness side: [`Relay::connect`] gives a byte stream to an address;
//! a SOCKS5 endpoint on loopback ([`Relay::socks`]) lets reqwest use it,
//! resolving names and falling back from one address to the next as a
//! client does;
//! [`Relay::udp`] an exchange of datagrams; [`Relay::serve`] makes a
//! port of the probe host forward to a local server (the run's DNS).

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::AbortHandle;

use crate::error::{Error, Result};
use crate::host::Host;

mod socks;
use socks::socks5;
pub use socks::{Resolve, SocksEndpoint};

pub mod dns_runtime;

/// The agent, run with `perl -e` on the probe host.
pub const AGENT: &str = include_str!("agent.pl");

/// The probe host's name inside the run: a name the design loader reserves.
pub use crate::spec::PROBE_HOST;
/// The probe host's last octet on every network: clear of hosts (from .10),
/// hosts added at run time, and VIPs (from .200).
pub const PROBE_OCTET: u8 = 254;
/// How long the agent may take to say it is listening or connected when
/// nothing is wrong (an exec round trip is 30-60 ms here).
const AGENT_ANSWER: Duration = Duration::from_secs(10);

// Frame types; keep in step with agent.pl.
const CONNECT: u8 = 1;
const OK: u8 = 2;
const FAIL: u8 = 3;
const DATA: u8 = 4;
const EOF: u8 = 5;
const CLOSE: u8 = 6;
const UDP: u8 = 7;
const LISTEN_TCP: u8 = 8;
const ACCEPT: u8 = 9;
const LISTEN_UDP: u8 = 10;
const DGRAM: u8 = 11;

/// What the agent said about one stream.
#[derive(Debug)]
enum Event {
    Ok(String),
    Fail(String),
    Data(Vec<u8>),
    Eof,
    Close,
    Accept(u32, UnboundedReceiver<Event>),
    Dgram(String, Vec<u8>),
}

/// Where a relayed TCP connection went, as the agent's socket saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connected {
    /// The probe host's end.
    pub local: SocketAddr,
    /// The server's end.
    pub peer: SocketAddr,
}

struct Inner {
    to_agent: UnboundedSender<Vec<u8>>,
    streams: Mutex<HashMap<u32, UnboundedSender<Event>>>,
    next_id: AtomicU32,
    /// Every connection made, newest last: who the client's TCP peer was.
    connections: Mutex<Vec<Connected>>,
    /// Set when the agent's stream ended: nothing more can be relayed.
    gone: Mutex<Option<String>>,
}

impl Inner {
    fn send(&self, id: u32, kind: u8, payload: &[u8]) {
        let mut frame = Vec::with_capacity(9 + payload.len());
        frame.extend_from_slice(&id.to_be_bytes());
        frame.push(kind);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        let _ = self.to_agent.send(frame);
    }

    fn open(&self) -> (u32, UnboundedReceiver<Event>) {
        let id = self.next_id.fetch_add(2, Ordering::Relaxed);
        let (tx, rx) = unbounded_channel();
        self.streams.lock().expect("relay streams").insert(id, tx);
        (id, rx)
    }

    fn forget(&self, id: u32) {
        self.streams.lock().expect("relay streams").remove(&id);
    }

    fn gone_error(&self) -> io::Error {
        let why = self.gone.lock().expect("relay state").clone();
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!(
                "the probe host's relay agent stopped: {}",
                why.unwrap_or_default()
            ),
        )
    }

    /// Opens a stream of `kind` (a UDP exchange, a listener) for `addr` and
    /// waits for the agent to say it is open.
    async fn request(
        &self,
        kind: u8,
        addr: SocketAddr,
    ) -> io::Result<(u32, UnboundedReceiver<Event>)> {
        let (id, mut rx) = self.open();
        self.send(id, kind, addr_text(addr).as_bytes());
        self.answer(id, &mut rx, AGENT_ANSWER).await?;
        Ok((id, rx))
    }

    /// Waits for the agent's answer to an open request.
    async fn answer(
        &self,
        id: u32,
        rx: &mut UnboundedReceiver<Event>,
        wait: Duration,
    ) -> io::Result<String> {
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(Event::Ok(text))) => Ok(text),
            Ok(Some(Event::Fail(why))) => {
                self.forget(id);
                Err(io_error(&why))
            }
            Ok(_) => {
                self.forget(id);
                Err(self.gone_error())
            }
            Err(_) => {
                self.send(id, CLOSE, &[]);
                self.forget(id);
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {} ms", wait.as_millis()),
                ))
            }
        }
    }
}

/// The agent's words for a failed connect, as the error kind a local
/// connect would give (so callers tell refused from unreachable the same way).
fn io_error(why: &str) -> io::Error {
    let kind = if why.contains("refused") {
        io::ErrorKind::ConnectionRefused
    } else if why.contains("No route") || why.contains("unreachable") {
        io::ErrorKind::HostUnreachable
    } else if why.contains("timed out") {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, why.to_string())
}

fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.trim().split_once(' ')?;
    Some(SocketAddr::V4(SocketAddrV4::new(
        ip.parse().ok()?,
        port.parse().ok()?,
    )))
}

fn addr_text(addr: SocketAddr) -> String {
    format!("{} {}", addr.ip(), addr.port())
}

/// The relay of one run. Dropping it stops the agent (its exec ends with
/// the probe host, which the run removes with every other container).
pub struct Relay {
    inner: Arc<Inner>,
    /// The probe host's address on each network, by design network name.
    pub addrs: std::collections::BTreeMap<String, Ipv4Addr>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in self.tasks.lock().expect("relay tasks").drain(..) {
            t.abort();
        }
    }
}

impl Relay {
    /// Starts the agent on `host` (the run's probe host) and the local SOCKS5 endpoint.
    pub async fn start(docker: &Docker, host: &Host) -> Result<Relay> {
        let failed = |e| Error::docker(format!("start the relay agent on host `{}`", host.name))(e);
        let opts = CreateExecOptions {
            cmd: Some(vec!["perl", "-e", AGENT, "stackproof-relay"]),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = docker
            .create_exec(&host.container, opts)
            .await
            .map_err(failed)?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = docker.start_exec(&exec.id, None).await.map_err(failed)?
        else {
            return Err(Error::Io {
                action: format!("attach to the relay agent on host `{}`", host.name),
                source: io::Error::other("the engine started it detached"),
            });
        };

        let (to_agent, mut outgoing) = unbounded_channel::<Vec<u8>>();
        let inner = Arc::new(Inner {
            to_agent,
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(2),
            connections: Mutex::new(Vec::new()),
            gone: Mutex::new(None),
        });
        let mut tasks = Vec::new();

        // Frames to the agent, in order, whatever is queued in one write:
        // bollard's TCP connection to a remote engine has no TCP_NODELAY,
        // and a small write behind an unacknowledged one waits for the
        // peer's delayed ACK (40 ms).
        tasks.push(
            tokio::spawn(async move {
                while let Some(mut frames) = outgoing.recv().await {
                    while let Ok(more) = outgoing.try_recv() {
                        frames.extend_from_slice(&more);
                    }
                    if input.write_all(&frames).await.is_err() || input.flush().await.is_err() {
                        break;
                    }
                }
            })
            .abort_handle(),
        );

        // Frames from the agent, to the stream each belongs to.
        let reader = inner.clone();
        tasks.push(
            tokio::spawn(async move {
                let mut buf: Vec<u8> = Vec::new();
                let end = loop {
                    match output.next().await {
                        Some(Ok(LogOutput::StdErr { message })) => {
                            tracing::warn!(
                                "relay agent: {}",
                                String::from_utf8_lossy(&message).trim_end()
                            );
                        }
                        Some(Ok(chunk)) => {
                            buf.extend_from_slice(&chunk.into_bytes());
                            dispatch(&reader, &mut buf);
                        }
                        Some(Err(e)) => break e.to_string(),
                        None => break "its exec stream ended".to_string(),
                    }
                };
                *reader.gone.lock().expect("relay state") = Some(end);
                // Every stream still open learns the agent is gone.
                reader.streams.lock().expect("relay streams").clear();
            })
            .abort_handle(),
        );

        Ok(Relay {
            inner,
            addrs: host.addrs.clone(),
            tasks: Mutex::new(tasks),
        })
    }

    /// A SOCKS5 endpoint on loopback whose connections leave from the probe
    /// host, for whoever knows its secret (RFC 1929 username and password,
    /// made per endpoint: another process on a shared machine finds the
    /// port, not the way into the run's networks). A name is resolved with
    /// `resolve` (the run's DNS, asked from the probe host) and its
    /// addresses tried in turn, each with an equal share of `budget`, as
    /// hyper's connector does: a client gets past an address that refuses,
    /// or does not answer, to the next one.
    pub async fn socks(&self, budget: Duration, resolve: Resolve) -> Result<SocksEndpoint> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(Error::io(
                "listen on loopback for the relay's SOCKS5 endpoint",
            ))?;
        let at = listener.local_addr().map_err(Error::io(
            "listen on loopback for the relay's SOCKS5 endpoint",
        ))?;
        let endpoint = SocksEndpoint {
            addr: at,
            user: "stackproof".into(),
            password: format!("{:032x}", rand::random::<u128>()),
        };
        let inner = self.inner.clone();
        let secret = Arc::new(endpoint.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (inner, resolve, secret) = (inner.clone(), resolve.clone(), secret.clone());
                tokio::spawn(async move {
                    let _ = socks5(inner, conn, budget, resolve, &secret).await;
                });
            }
        });
        self.tasks
            .lock()
            .expect("relay tasks")
            .push(task.abort_handle());
        Ok(endpoint)
    }

    /// A TCP connection to `target` from the probe host, within `wait`.
    pub async fn connect(
        &self,
        target: SocketAddr,
        wait: Duration,
    ) -> io::Result<(tokio::io::DuplexStream, Connected)> {
        connect(&self.inner, target, wait).await
    }

    /// The TCP peers of the connections made since `mark` ([`Relay::mark`]).
    pub fn peers_since(&self, mark: usize) -> Vec<SocketAddr> {
        self.inner.connections.lock().expect("relay connections")[mark..]
            .iter()
            .map(|c| c.peer)
            .collect()
    }

    /// A mark for [`Relay::peers_since`].
    pub fn mark(&self) -> usize {
        self.inner
            .connections
            .lock()
            .expect("relay connections")
            .len()
    }

    /// A UDP exchange with `target` from the probe host: what is sent goes
    /// there, and only its answers come back.
    pub async fn udp(&self, target: SocketAddr) -> io::Result<RelayUdp> {
        let (id, rx) = self.inner.request(UDP, target).await?;
        Ok(RelayUdp {
            inner: self.inner.clone(),
            id,
            target,
            rx: Mutex::new(rx),
        })
    }

    /// Listens on `at` (an address of the probe host), TCP and UDP, and
    /// forwards what arrives to `to`, a server of the harness on loopback.
    pub async fn serve(&self, at: SocketAddr, to: SocketAddr) -> Result<()> {
        let failed = |e: io::Error| Error::Io {
            action: format!("listen on {at} on the probe host for {to}"),
            source: e,
        };
        let (_, mut tcp_rx) = self.inner.request(LISTEN_TCP, at).await.map_err(failed)?;
        let (udp_id, mut udp_rx) = self.inner.request(LISTEN_UDP, at).await.map_err(failed)?;

        let inner = self.inner.clone();
        let tcp = tokio::spawn(async move {
            while let Some(event) = tcp_rx.recv().await {
                if let Event::Accept(id, rx) = event {
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        match TcpStream::connect(to).await {
                            Ok(local) => pump(inner, id, rx, local).await,
                            Err(_) => inner.send(id, CLOSE, &[]),
                        }
                    });
                }
            }
        });
        let inner = self.inner.clone();
        let udp = tokio::spawn(async move {
            while let Some(event) = udp_rx.recv().await {
                if let Event::Dgram(peer, data) = event {
                    let inner = inner.clone();
                    // One local exchange per query: the server answers each once.
                    tokio::spawn(async move {
                        let Ok(sock) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await else {
                            return;
                        };
                        if sock.send_to(&data, to).await.is_err() {
                            return;
                        }
                        let mut buf = vec![0u8; 65535];
                        if let Ok(Ok(n)) =
                            tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf)).await
                        {
                            let mut payload = format!("{peer}\n").into_bytes();
                            payload.extend_from_slice(&buf[..n]);
                            inner.send(udp_id, DGRAM, &payload);
                        }
                    });
                }
            }
        });
        let mut tasks = self.tasks.lock().expect("relay tasks");
        tasks.push(tcp.abort_handle());
        tasks.push(udp.abort_handle());
        Ok(())
    }
}

/// Splits complete frames off `buf` and hands each to its stream.
fn dispatch(inner: &Inner, buf: &mut Vec<u8>) {
    let mut at = 0;
    while buf.len() - at >= 9 {
        let id = u32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
        let kind = buf[at + 4];
        let len = u32::from_be_bytes(buf[at + 5..at + 9].try_into().expect("4 bytes")) as usize;
        if buf.len() - at < 9 + len {
            break;
        }
        let payload = buf[at + 9..at + 9 + len].to_vec();
        at += 9 + len;
        let mut streams = inner.streams.lock().expect("relay streams");
        let event = match kind {
            OK => Event::Ok(String::from_utf8_lossy(&payload).into_owned()),
            FAIL => Event::Fail(String::from_utf8_lossy(&payload).into_owned()),
            DATA => Event::Data(payload),
            EOF => Event::Eof,
            CLOSE => Event::Close,
            ACCEPT => {
                // "<listen id> <peer ip> <peer port>": the new stream is
                // registered here, before its first data can arrive.
                let text = String::from_utf8_lossy(&payload);
                let Some(listener) = text.split(' ').next().and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                let (tx, rx) = unbounded_channel();
                streams.insert(id, tx);
                if let Some(l) = streams.get(&listener) {
                    let _ = l.send(Event::Accept(id, rx));
                }
                continue;
            }
            DGRAM => {
                let (peer, data) = match payload.iter().position(|&b| b == b'\n') {
                    Some(nl) => (
                        String::from_utf8_lossy(&payload[..nl]).into_owned(),
                        payload[nl + 1..].to_vec(),
                    ),
                    None => continue,
                };
                Event::Dgram(peer, data)
            }
            _ => continue,
        };
        let done = matches!(event, Event::Close | Event::Fail(_));
        if let Some(s) = streams.get(&id) {
            let _ = s.send(event);
        }
        if done {
            streams.remove(&id);
        }
    }
    buf.drain(..at);
}

async fn connect(
    inner: &Arc<Inner>,
    target: SocketAddr,
    wait: Duration,
) -> io::Result<(tokio::io::DuplexStream, Connected)> {
    if inner.gone.lock().expect("relay state").is_some() {
        return Err(inner.gone_error());
    }
    let (id, mut rx) = inner.open();
    inner.send(id, CONNECT, addr_text(target).as_bytes());
    let text = inner.answer(id, &mut rx, wait).await.map_err(|e| {
        if e.kind() == io::ErrorKind::TimedOut {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "connect to {target} timed out after {} ms",
                    wait.as_millis()
                ),
            )
        } else {
            e
        }
    })?;
    let mut words = text.split(' ');
    let mut next_addr = || {
        let ip = words.next()?;
        let port = words.next()?;
        parse_addr(&format!("{ip} {port}"))
    };
    let local = next_addr().unwrap_or(target);
    let peer = next_addr().unwrap_or(target);
    let connected = Connected { local, peer };
    inner
        .connections
        .lock()
        .expect("relay connections")
        .push(connected);
    let (mine, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(pump(inner.clone(), id, rx, theirs));
    Ok((mine, connected))
}

/// Carries one stream both ways between a local end and the agent, with
/// half-closes passed on, until both directions are done or either side drops.
async fn pump<S>(inner: Arc<Inner>, id: u32, mut rx: UnboundedReceiver<Event>, local: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(local);
    let mut buf = vec![0u8; 32 * 1024];
    let (mut local_done, mut remote_done) = (false, false);
    loop {
        tokio::select! {
            n = rd.read(&mut buf), if !local_done => match n {
                Ok(0) => { local_done = true; inner.send(id, EOF, &[]); }
                Ok(n) => inner.send(id, DATA, &buf[..n]),
                Err(_) => break,
            },
            event = rx.recv() => match event {
                Some(Event::Data(d)) => if wr.write_all(&d).await.is_err() { break },
                Some(Event::Eof) => { let _ = wr.shutdown().await; remote_done = true; }
                _ => break,
            },
        }
        if local_done && remote_done {
            // Both sides said EOF: the agent closes the socket itself. A
            // CLOSE now would be a frame nobody answers, which is what
            // makes the next request wait for a delayed ACK (see start).
            inner.forget(id);
            return;
        }
    }
    inner.send(id, CLOSE, &[]);
    inner.forget(id);
}

/// A UDP exchange made by the agent (see [`Relay::udp`]).
pub struct RelayUdp {
    inner: Arc<Inner>,
    id: u32,
    target: SocketAddr,
    rx: Mutex<UnboundedReceiver<Event>>,
}

impl RelayUdp {
    /// Sends one datagram to the target.
    pub fn send(&self, data: &[u8]) {
        self.inner.send(self.id, DATA, data);
    }

    /// The target's next datagram, copied into `buf`.
    pub fn poll_recv(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<(usize, SocketAddr)>> {
        use std::task::Poll;
        let mut rx = self.rx.lock().expect("relay udp");
        match rx.poll_recv(cx) {
            Poll::Ready(Some(Event::Data(d))) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Poll::Ready(Ok((n, self.target)))
            }
            Poll::Ready(Some(_)) | Poll::Ready(None) => Poll::Ready(Err(self.inner.gone_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for RelayUdp {
    fn drop(&mut self) {
        self.inner.send(self.id, CLOSE, &[]);
        self.inner.forget(self.id);
    }
}
