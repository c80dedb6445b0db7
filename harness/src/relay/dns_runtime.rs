//! hickory's resolver over the relay: its UDP and TCP sockets are the
//! agent's, so a DNS query leaves from the probe host like every other
//! request of the run's client.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hickory_resolver::net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_resolver::net::runtime::{DnsUdpSocket, RuntimeProvider, TokioHandle, TokioTime};

use super::{Relay, RelayUdp};

/// A hickory runtime whose sockets are the relay's.
#[derive(Clone)]
pub struct RelayRuntime {
    relay: Arc<Relay>,
    handle: TokioHandle,
}

impl RelayRuntime {
    /// A runtime sending through `relay`.
    pub fn new(relay: Arc<Relay>) -> Self {
        RelayRuntime {
            relay,
            handle: TokioHandle::default(),
        }
    }
}

impl DnsUdpSocket for RelayUdp {
    type Time = TokioTime;

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.poll_recv(cx, buf)
    }

    fn poll_send_to(
        &self,
        _cx: &mut Context<'_>,
        buf: &[u8],
        _target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        // The exchange was opened to the one server this socket asks.
        self.send(buf);
        Poll::Ready(Ok(buf.len()))
    }
}

impl RuntimeProvider for RelayRuntime {
    type Handle = TokioHandle;
    type Timer = TokioTime;
    type Udp = RelayUdp;
    type Tcp = AsyncIoTokioAsStd<tokio::io::DuplexStream>;

    fn create_handle(&self) -> Self::Handle {
        self.handle.clone()
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        _bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = io::Result<Self::Tcp>>>> {
        let relay = self.relay.clone();
        Box::pin(async move {
            let wait = timeout.unwrap_or(Duration::from_secs(5));
            let (stream, _) = relay.connect(server_addr, wait).await?;
            Ok(AsyncIoTokioAsStd(stream))
        })
    }

    fn bind_udp(
        &self,
        _local_addr: SocketAddr,
        server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = io::Result<Self::Udp>>>> {
        let relay = self.relay.clone();
        Box::pin(async move { relay.udp(server_addr).await })
    }
}
