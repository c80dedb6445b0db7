//! The run's client: HTTP(S) that resolves only through the run's DNS server
//! and trusts only the run's CA.
//!
//! No system resolver, no hosts file, no proxy: a name the run's DNS does not
//! know fails, it never leaks to the machine's resolvers. Every request can
//! use a fresh connection, so a load balancer sees each as a new client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{Record, RecordType};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};

use crate::error::{Error, Result};

/// How long a TCP connect may take: containers answer in well under a
/// millisecond, so a second only elapses when the host is really gone.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// A probe's connect timeout: far above a healthy connect here (under 1 ms).
pub const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a whole request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Which transport a DNS query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTransport {
    /// UDP only.
    Udp,
    /// TCP only.
    Tcp,
}

/// Builds a resolver that asks only `server`, over `transport`, caching nothing
/// (so a changed record is seen at once) and never reading the hosts file.
pub fn resolver(server: SocketAddr, transport: DnsTransport) -> Result<TokioResolver> {
    build_resolver(server, transport, 0)
}

/// A resolver like [`resolver`] that caches answers for as long as their
/// TTL says, as a client's stub resolver or an ISP's cache would: what a
/// user behind a cache sees after a record changes.
pub fn caching_resolver(server: SocketAddr) -> Result<TokioResolver> {
    build_resolver(server, DnsTransport::Udp, 64)
}

fn build_resolver(
    server: SocketAddr,
    transport: DnsTransport,
    cache_size: u64,
) -> Result<TokioResolver> {
    let protocol = match transport {
        DnsTransport::Udp => ProtocolConfig::Udp,
        DnsTransport::Tcp => ProtocolConfig::Tcp,
    };
    let mut conn = ConnectionConfig::new(protocol);
    conn.port = server.port();
    let ns = NameServerConfig::new(server.ip(), true, vec![conn]);
    let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
    let mut opts = ResolverOpts::default();
    opts.use_hosts_file = ResolveHosts::Never;
    opts.cache_size = cache_size;
    opts.timeout = Duration::from_millis(800);
    opts.attempts = 2;
    opts.ndots = 0;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| Error::Dns {
            addr: server.to_string(),
            source: Box::new(e),
        })
}

/// The answer records for `name`/`rtype`, as the server sent them (CNAMEs included).
pub async fn query(
    resolver: &TokioResolver,
    name: &str,
    rtype: RecordType,
) -> std::result::Result<Vec<Record>, String> {
    let fqdn = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    match resolver.lookup(fqdn.as_str(), rtype).await {
        Ok(lookup) => Ok(lookup.answers().to_vec()),
        Err(e) => Err(e.to_string()),
    }
}

/// reqwest's resolver hook, answering from the run's DNS only.
struct RunResolver(TokioResolver);

impl reqwest::dns::Resolve for RunResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        let host = format!("{}.", name.as_str().trim_end_matches('.'));
        Box::pin(async move {
            let lookup = resolver.lookup_ip(host.as_str()).await?;
            let addrs: Vec<SocketAddr> = lookup
                .iter()
                .map(|ip: IpAddr| SocketAddr::new(ip, 0))
                .collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The run's HTTP client.
#[derive(Clone, Debug)]
pub struct Client {
    /// A new TCP (and TLS) connection for every request.
    pub fresh: reqwest::Client,
    /// Keeps connections alive between requests, like a browser.
    pub pooled: reqwest::Client,
    /// For probe loops through a failover: fresh connections, and a connect
    /// that gives up after [`PROBE_CONNECT_TIMEOUT`] so one lost SYN does not
    /// hide the moment service comes back.
    pub probe: reqwest::Client,
    /// The resolver both use (UDP, falling back to nothing).
    pub dns: TokioResolver,
}

impl Client {
    /// A client resolving through `dns_server` and trusting only `ca_pem`.
    pub fn new(dns_server: SocketAddr, ca_pem: &str) -> Result<Self> {
        let dns = resolver(dns_server, DnsTransport::Udp)?;
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
            .map_err(|source| Error::Client { source })?;
        let build = |fresh: bool, connect: Duration, total: Duration| {
            let mut b = reqwest::Client::builder()
                .dns_resolver(Arc::new(RunResolver(dns.clone())))
                .tls_certs_only([ca.clone()])
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(connect)
                .timeout(total)
                .user_agent(concat!("stackproof/", env!("CARGO_PKG_VERSION")));
            if fresh {
                b = b.pool_max_idle_per_host(0);
            }
            b.build().map_err(|source| Error::Client { source })
        };
        Ok(Client {
            fresh: build(true, CONNECT_TIMEOUT, REQUEST_TIMEOUT)?,
            pooled: build(false, CONNECT_TIMEOUT, REQUEST_TIMEOUT)?,
            probe: build(true, PROBE_CONNECT_TIMEOUT, Duration::from_secs(1))?,
            dns,
        })
    }
}
