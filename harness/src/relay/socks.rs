//! The SOCKS5 endpoint on loopback through which the run's client reaches
//! the run's networks (RFC 1928, with RFC 1929's username and password):
//! names resolved by the run's DNS, connections made by the relay agent.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Inner, connect};

/// How a SOCKS5 endpoint resolves a name: the run's DNS, from the probe host.
pub type Resolve = Arc<
    dyn Fn(
            String,
        )
            -> futures::future::BoxFuture<'static, std::result::Result<Vec<Ipv4Addr>, String>>
        + Send
        + Sync,
>;

/// A SOCKS5 endpoint of the run and its secret.
#[derive(Clone)]
pub struct SocksEndpoint {
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// The username it asks for.
    pub user: String,
    /// The password it asks for, random per endpoint.
    pub password: String,
}

impl std::fmt::Debug for SocksEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of every log and message.
        f.debug_struct("SocksEndpoint")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SocksEndpoint {
    /// The proxy URL a client uses (`socks5h://user:password@addr`: names
    /// resolved by the endpoint).
    pub fn url(&self) -> String {
        format!("socks5h://{}:{}@{}", self.user, self.password, self.addr)
    }
}

/// The start of a SOCKS5 conversation: the client must offer
/// username/password (RFC 1929) and give `secret`'s. Anything else is
/// refused as the RFCs say (no acceptable method, or a failed
/// sub-negotiation) and the connection closed: Ok(false).
async fn authenticated<S>(conn: &mut S, secret: &SocksEndpoint) -> io::Result<bool>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = [0u8; 2];
    conn.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    conn.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&2) {
        conn.write_all(&[5, 0xFF]).await?;
        return Ok(false);
    }
    conn.write_all(&[5, 2]).await?;
    let mut ver_len = [0u8; 2];
    conn.read_exact(&mut ver_len).await?;
    let mut user = vec![0u8; ver_len[1] as usize];
    conn.read_exact(&mut user).await?;
    let mut len = [0u8; 1];
    conn.read_exact(&mut len).await?;
    let mut password = vec![0u8; len[0] as usize];
    conn.read_exact(&mut password).await?;
    let ok = ver_len[0] == 1
        && same(&user, secret.user.as_bytes())
        && same(&password, secret.password.as_bytes());
    conn.write_all(&[1, if ok { 0 } else { 1 }]).await?;
    Ok(ok)
}

/// Whether `a` and `b` are equal, in a time that does not tell where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A minimal SOCKS5 server (username/password only, CONNECT to an IPv4
/// address or a name) whose connections are made by the agent.
pub(super) async fn socks5(
    inner: Arc<Inner>,
    mut conn: TcpStream,
    budget: Duration,
    resolve: Resolve,
    secret: &SocksEndpoint,
) -> io::Result<()> {
    conn.set_nodelay(true)?;
    if !authenticated(&mut conn, secret).await? {
        return Ok(());
    }
    let mut req = [0u8; 4];
    conn.read_exact(&mut req).await?;
    // "command/address type not supported" / "host unreachable"
    let refuse = |code: u8| [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    let host = match (req[1], req[3]) {
        (1, 1) => {
            let mut ip = [0u8; 4];
            conn.read_exact(&mut ip).await?;
            Ipv4Addr::from(ip).to_string()
        }
        (1, 3) => {
            let mut len = [0u8; 1];
            conn.read_exact(&mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            conn.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            conn.write_all(&refuse(8)).await?;
            return Ok(());
        }
    };
    let mut port = [0u8; 2];
    conn.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    let addrs = match host.parse::<Ipv4Addr>() {
        Ok(ip) => vec![ip],
        Err(_) => match resolve(format!("{}.", host.trim_end_matches('.'))).await {
            Ok(a) if !a.is_empty() => a,
            _ => {
                conn.write_all(&refuse(4)).await?;
                return Ok(());
            }
        },
    };
    // Each address gets an equal share of the budget, as hyper's connector
    // gives them; the last error is the one reported.
    let share = budget / addrs.len() as u32;
    let mut last = io::Error::other("no address");
    for ip in addrs {
        let target = SocketAddr::V4(SocketAddrV4::new(ip, port));
        match connect(&inner, target, share).await {
            Ok((mut stream, connected)) => {
                let (ip, port) = match connected.local {
                    SocketAddr::V4(a) => (a.ip().octets(), a.port()),
                    SocketAddr::V6(_) => ([0; 4], 0),
                };
                let mut reply = vec![5, 0, 0, 1];
                reply.extend_from_slice(&ip);
                reply.extend_from_slice(&port.to_be_bytes());
                conn.write_all(&reply).await?;
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut stream).await;
                return Ok(());
            }
            Err(e) => last = e,
        }
    }
    let code = match last.kind() {
        io::ErrorKind::ConnectionRefused => 5,
        io::ErrorKind::HostUnreachable => 4,
        io::ErrorKind::TimedOut => 6,
        _ => 1,
    };
    conn.write_all(&refuse(code)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn secret() -> SocksEndpoint {
        SocksEndpoint {
            addr: (Ipv4Addr::LOCALHOST, 1080).into(),
            user: "stackproof".into(),
            password: "0123456789abcdef".into(),
        }
    }

    /// What the endpoint answers a client that says `hello`, then `auth`.
    async fn answers(hello: &[u8], auth: &[u8]) -> (bool, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(hello).await.unwrap();
        client.write_all(auth).await.unwrap();
        let ok = authenticated(&mut server, &secret()).await.unwrap();
        drop(server);
        let mut heard = Vec::new();
        client.read_to_end(&mut heard).await.unwrap();
        (ok, heard)
    }

    fn auth(user: &str, password: &str) -> Vec<u8> {
        let mut a = vec![1, user.len() as u8];
        a.extend_from_slice(user.as_bytes());
        a.push(password.len() as u8);
        a.extend_from_slice(password.as_bytes());
        a
    }

    #[tokio::test]
    async fn the_traffic_endpoint_refuses_whoever_lacks_its_secret() {
        // No authentication offered: "no acceptable methods".
        assert_eq!(answers(&[5, 1, 0], &[]).await, (false, vec![5, 0xFF]));
        // The wrong password: the sub-negotiation fails.
        assert_eq!(
            answers(&[5, 2, 0, 2], &auth("stackproof", "guess")).await,
            (false, vec![5, 2, 1, 1])
        );
        // The run's own client.
        assert_eq!(
            answers(&[5, 1, 2], &auth("stackproof", "0123456789abcdef")).await,
            (true, vec![5, 2, 1, 0])
        );
        assert!(!format!("{:?}", secret()).contains("0123"));
    }
}
