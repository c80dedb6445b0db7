//! The run's client: HTTP(S) that resolves only through the run's DNS server
//! and trusts only the run's CA.
//!
//! No system resolver, no hosts file, no proxy: a name the run's DNS does not
//! know fails, it never leaks to the machine's resolvers. Every request can
//! use a fresh connection, so a load balancer sees each as a new client.
//!
//! Where the traffic leaves from is a [`Net`]: this machine, through the
//! bridges' gateways (a local engine), or the run's probe host, through its
//! relay agent (any engine, remote ones included; see [`crate::relay`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{Record, RecordType};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::{RuntimeProvider, TokioRuntimeProvider};
use hickory_resolver::{Resolver, TokioResolver};

use crate::error::{Error, Result};
use crate::relay::Relay;
use crate::relay::dns_runtime::RelayRuntime;

/// Where the run's client traffic leaves from.
#[derive(Clone, Debug)]
pub enum Net {
    /// From this machine, through each network's gateway (a local engine only).
    Direct,
    /// From the run's probe host, through its relay agent.
    Relay(Arc<Relay>),
}

/// The environment variable choosing where claims' traffic leaves from.
pub const TRAFFIC_ENV: &str = "STACKPROOF_TRAFFIC";

impl Net {
    /// Whether this run sends its traffic from a container: `STACKPROOF_TRAFFIC`
    /// says `container` (the default: the same on every engine) or `local`
    /// (from this machine's gateways, a local engine only).
    pub fn wants_relay() -> Result<bool> {
        match std::env::var(TRAFFIC_ENV).ok().as_deref() {
            Some("container") => Ok(true),
            Some("local") => Ok(false),
            Some(other) => Err(Error::BadEnv {
                name: TRAFFIC_ENV,
                value: other.to_string(),
                expected: "`container` (claims' traffic from the run's probe host, any engine) or `local` (from this machine, a local engine only)",
            }),
            None => Ok(true),
        }
    }

    /// A TCP connect to `addr` within `wait`; the peer it reached.
    pub async fn connect(&self, addr: SocketAddr, wait: Duration) -> std::io::Result<SocketAddr> {
        let timed_out = || {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connect to {addr} timed out after {} ms", wait.as_millis()),
            )
        };
        match self {
            Net::Direct => {
                let s = tokio::time::timeout(wait, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| timed_out())??;
                s.peer_addr()
            }
            Net::Relay(relay) => Ok(relay.connect(addr, wait).await?.1.peer),
        }
    }

    /// A description for evidence: where the client's packets come from.
    pub fn origin(&self) -> String {
        match self {
            Net::Direct => "this machine".into(),
            Net::Relay(r) => format!(
                "the probe host ({})",
                r.addrs
                    .values()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

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

/// A resolver of the run: asks only the run's DNS server, never the
/// machine's, from wherever the run's [`Net`] sends traffic.
#[derive(Clone)]
pub enum DnsClient {
    /// Its sockets are this machine's.
    Direct(TokioResolver),
    /// Its sockets are the probe host's.
    Relayed(Resolver<RelayRuntime>),
}

impl std::fmt::Debug for DnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DnsClient::Direct(_) => "DnsClient::Direct",
            DnsClient::Relayed(_) => "DnsClient::Relayed",
        })
    }
}

impl DnsClient {
    /// Builds a resolver that asks only `server`, over `transport`, caching
    /// nothing (so a changed record is seen at once) and never reading the
    /// hosts file.
    pub fn new(net: &Net, server: SocketAddr, transport: DnsTransport) -> Result<Self> {
        Self::build(net, server, transport, 0)
    }

    /// A resolver like [`DnsClient::new`] that caches answers for as long as
    /// their TTL says, as a client's stub resolver or an ISP's cache would:
    /// what a user behind a cache sees after a record changes.
    pub fn caching(net: &Net, server: SocketAddr) -> Result<Self> {
        Self::build(net, server, DnsTransport::Udp, 64)
    }

    fn build(net: &Net, server: SocketAddr, transport: DnsTransport, cache: u64) -> Result<Self> {
        Ok(match net {
            Net::Direct => DnsClient::Direct(build_resolver(
                server,
                transport,
                cache,
                TokioRuntimeProvider::default(),
            )?),
            Net::Relay(relay) => DnsClient::Relayed(build_resolver(
                server,
                transport,
                cache,
                RelayRuntime::new(relay.clone()),
            )?),
        })
    }

    async fn lookup(
        &self,
        fqdn: &str,
        rtype: RecordType,
    ) -> std::result::Result<Vec<Record>, String> {
        let answers = match self {
            DnsClient::Direct(r) => r.lookup(fqdn, rtype).await.map(|l| l.answers().to_vec()),
            DnsClient::Relayed(r) => r.lookup(fqdn, rtype).await.map(|l| l.answers().to_vec()),
        };
        answers.map_err(|e| e.to_string())
    }

    pub(crate) async fn lookup_ip(&self, host: &str) -> std::result::Result<Vec<IpAddr>, String> {
        let ips = match self {
            DnsClient::Direct(r) => r.lookup_ip(host).await.map(|l| l.iter().collect()),
            DnsClient::Relayed(r) => r.lookup_ip(host).await.map(|l| l.iter().collect()),
        };
        ips.map_err(|e| e.to_string())
    }
}

fn build_resolver<P: RuntimeProvider>(
    server: SocketAddr,
    transport: DnsTransport,
    cache_size: u64,
    provider: P,
) -> Result<Resolver<P>> {
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
    Resolver::builder_with_config(config, provider)
        .with_options(opts)
        .build()
        .map_err(|e| Error::Dns {
            addr: server.to_string(),
            source: Box::new(e),
        })
}

/// The answer records for `name`/`rtype`, as the server sent them (CNAMEs included).
pub async fn query(
    resolver: &DnsClient,
    name: &str,
    rtype: RecordType,
) -> std::result::Result<Vec<Record>, String> {
    let fqdn = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    resolver.lookup(&fqdn, rtype).await
}

/// reqwest's resolver hook, answering from the run's DNS only.
struct RunResolver(DnsClient);

impl reqwest::dns::Resolve for RunResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        // reqwest asks even for an address when it connects through the
        // relay's SOCKS5 endpoint: an address is its own answer.
        if let Ok(ip) = name.as_str().parse::<IpAddr>() {
            let addrs = vec![SocketAddr::new(ip, 0)];
            return Box::pin(async move { Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs) });
        }
        let host = format!("{}.", name.as_str().trim_end_matches('.'));
        Box::pin(async move {
            let ips = resolver.lookup_ip(host.as_str()).await?;
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
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
    /// The run's DNS server, as the client reaches it.
    pub dns_server: SocketAddr,
    /// Where the traffic leaves from.
    pub net: Net,
    /// The run's SOCKS5 endpoints on loopback (through the probe host), each
    /// open only to whoever has its secret; none when traffic leaves from here.
    pub endpoints: Vec<SocketAddr>,
    /// What every client above is built from, for [`Client::browser`].
    recipe: Recipe,
}

/// What the run's HTTP clients are built from: the run's resolver, its CA
/// alone as trust, and the relay's endpoint.
#[derive(Clone, Debug)]
struct Recipe {
    dns: DnsClient,
    ca: reqwest::Certificate,
    proxy: Option<reqwest::Proxy>,
}

impl Recipe {
    fn builder(&self, connect: Duration, total: Duration) -> reqwest::ClientBuilder {
        let b = reqwest::Client::builder()
            .dns_resolver(Arc::new(RunResolver(self.dns.clone())))
            .tls_certs_only([self.ca.clone()])
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect)
            .timeout(total)
            .user_agent(concat!("stackproof/", env!("CARGO_PKG_VERSION")));
        match &self.proxy {
            None => b.no_proxy(),
            Some(p) => b.proxy(p.clone()),
        }
    }
}

/// Makes ring the process's TLS provider (once; a provider installed
/// before, by a user's crate, stays): reqwest is built without one of its own.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// A client resolving through `dns_server`, trusting only `ca_pem`,
    /// sending from where `net` says.
    pub async fn new(dns_server: SocketAddr, ca_pem: &str, net: Net) -> Result<Self> {
        install_crypto_provider();
        let dns = DnsClient::new(&net, dns_server, DnsTransport::Udp)?;
        // Through the relay, reqwest hands the name to a SOCKS5 endpoint on
        // loopback (socks5h), which resolves it through the run's DNS and
        // tries each address in turn from the probe host, as reqwest's own
        // connector does directly: a second address is a client's way past
        // a dead first one. One endpoint per connect budget.
        let proxy = |budget: Duration| {
            let (net, dns) = (net.clone(), dns.clone());
            async move {
                let Net::Relay(relay) = &net else {
                    return Ok(None);
                };
                let resolve: crate::relay::Resolve = Arc::new(move |name: String| {
                    let dns = dns.clone();
                    Box::pin(async move {
                        let ips = dns.lookup_ip(&name).await?;
                        Ok(ips
                            .into_iter()
                            .filter_map(|ip| match ip {
                                IpAddr::V4(v4) => Some(v4),
                                IpAddr::V6(_) => None,
                            })
                            .collect())
                    })
                });
                let endpoint = relay.socks(budget, resolve).await?;
                reqwest::Proxy::all(endpoint.url())
                    .map(|p| Some((p, endpoint.addr)))
                    .map_err(|source| Error::Client { source })
            }
        };
        let (normal, probing) = (
            proxy(CONNECT_TIMEOUT).await?,
            proxy(PROBE_CONNECT_TIMEOUT).await?,
        );
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
            .map_err(|source| Error::Client { source })?;
        let recipe = |proxy: &Option<(reqwest::Proxy, SocketAddr)>| Recipe {
            dns: dns.clone(),
            ca: ca.clone(),
            proxy: proxy.as_ref().map(|(p, _)| p.clone()),
        };
        let build = |fresh: bool,
                     connect: Duration,
                     total: Duration,
                     proxy: &Option<(reqwest::Proxy, SocketAddr)>| {
            let mut b = recipe(proxy).builder(connect, total);
            if fresh {
                b = b.pool_max_idle_per_host(0);
            }
            b.build().map_err(|source| Error::Client { source })
        };
        Ok(Client {
            fresh: build(true, CONNECT_TIMEOUT, REQUEST_TIMEOUT, &normal)?,
            pooled: build(false, CONNECT_TIMEOUT, REQUEST_TIMEOUT, &normal)?,
            probe: build(
                true,
                PROBE_CONNECT_TIMEOUT,
                Duration::from_secs(1),
                &probing,
            )?,
            endpoints: [&normal, &probing]
                .into_iter()
                .flatten()
                .map(|(_, at)| *at)
                .collect(),
            recipe: recipe(&normal),
            dns_server,
            net,
        })
    }

    /// A new browser-like session: it keeps the cookies the site sets and
    /// sends them back, and keeps its connections alive between requests.
    pub fn browser(&self) -> Result<reqwest::Client> {
        self.recipe
            .builder(CONNECT_TIMEOUT, REQUEST_TIMEOUT)
            .cookie_store(true)
            .build()
            .map_err(|source| Error::Client { source })
    }

    /// A resolver asking the run's DNS over `transport`, caching nothing.
    pub fn resolver(&self, transport: DnsTransport) -> Result<DnsClient> {
        DnsClient::new(&self.net, self.dns_server, transport)
    }

    /// A resolver that caches answers for their TTL (see [`DnsClient::caching`]).
    pub fn caching_resolver(&self) -> Result<DnsClient> {
        DnsClient::caching(&self.net, self.dns_server)
    }

    /// The TCP peer of the response `resp`, as the client saw it: through
    /// the relay, the agent's socket's peer for the connections made since
    /// `mark` ([`Client::mark`]).
    pub fn peer_of(&self, resp: &reqwest::Response, mark: usize) -> Option<SocketAddr> {
        match &self.net {
            Net::Direct => resp.remote_addr(),
            Net::Relay(relay) => relay.peers_since(mark).last().copied(),
        }
    }

    /// A mark for [`Client::peer_of`].
    pub fn mark(&self) -> usize {
        match &self.net {
            Net::Direct => 0,
            Net::Relay(relay) => relay.mark(),
        }
    }
}
