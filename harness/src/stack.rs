//! A running design: its networks, hosts, services, DNS, PKI and client.
//!
//! [`Stack::start`] builds everything a design file names, waits until every
//! service is ready (each wait has a deadline), and returns the running
//! stack. Faults (stop a host, stop/kill/reload one service) are methods
//! here, so every design's claims use the same operations. Dropping the
//! stack removes every container and network of the run, also on panic.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU8;
use std::time::{Duration, Instant};

use testcontainers::bollard::Docker;

use crate::client::{Client, Net};
use crate::dns::DnsServer;
use crate::docker::{self, RunGuard, RunId};
use crate::error::{Error, Result};
use crate::fixtures::{Fixtures, render};
use crate::host::Host;
use crate::images::{self, ImageReport};
use crate::network::{FIRST_HOST, FIRST_VIP, Network};
use crate::pki::{Leaf, Pki};
use crate::relay::{PROBE_OCTET, Relay};
use crate::spec::{DesignSpec, HostSpec, Parts, ServiceSpec};

mod fault;
pub mod in_place;
mod services;
pub use fault::{Fault, FaultGuard};
pub use in_place::InPlace;

/// The DNS zone every design serves.
pub const ZONE: &str = "foobar.com";
/// The site's name.
pub const WWW: &str = "www.foobar.com";

/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(50);

/// A running design. Dropping it removes the run's containers and networks.
pub struct Stack {
    /// The design's name (`simple_web`).
    pub(crate) design: String,
    /// The design file as read.
    pub(crate) spec: DesignSpec,
    /// The run's identity.
    pub(crate) run: RunId,
    /// The engine.
    pub(crate) docker: Docker,
    /// Networks by design name.
    pub(crate) networks: BTreeMap<String, Network>,
    /// Hosts by design name.
    pub(crate) hosts: BTreeMap<String, Host>,
    /// Service definitions by name.
    pub(crate) services: BTreeMap<String, ServiceSpec>,
    /// The run's DNS server.
    pub(crate) dns: DnsServer,
    /// The zone's records as the design has them, as they must be between claims.
    pub(crate) design_zone: crate::dns::ZoneSnapshot,
    /// A mutant or a user's files laid on the stack: their fixtures and design variables.
    laid: std::sync::Mutex<Option<(Fixtures, BTreeMap<String, String>)>>,
    /// A user's files laid as the base claims start from (see [`Stack::lay_base`]).
    base: std::sync::Mutex<Option<in_place::Base>>,
    /// The run's PKI.
    pub(crate) pki: Pki,
    /// The certificate for www.foobar.com, signed by the run's CA.
    pub(crate) www_cert: Leaf,
    /// The run's client.
    pub(crate) client: Client,
    /// The fixture layers this run was built from.
    pub(crate) fixtures: Fixtures,
    /// Every `{{ }}` value (addresses and design variables).
    pub(crate) vars: BTreeMap<String, String>,
    /// What the image step did.
    pub(crate) image: ImageReport,
    /// From nothing to every service ready (image step excluded).
    pub(crate) up_time: Duration,
    /// From nothing to every host created and started, services not yet
    /// (the part of [`Stack::up_time`] docker-compose does the same work for).
    pub(crate) hosts_up: Duration,
    /// Hosts added at run time so far (for their addresses).
    extra_hosts: AtomicU8,
    /// Faults applied and not yet undone, newest last (see [`Stack::apply`]).
    faults: std::sync::Mutex<Vec<(u64, fault::Undo)>>,
    /// Set when undoing a fault failed: the stack no longer is the design,
    /// and a driver must start a fresh one before the next claim.
    tainted: std::sync::atomic::AtomicBool,
    /// Rest states a claim waited for and never saw (a VRRP pair that never
    /// settled on one holder), by what they are of: later claims say so
    /// without waiting again.
    never_settled: std::sync::Mutex<BTreeMap<String, String>>,
    /// What the servers said when they started but did not settle (e.g.
    /// HAProxy marking every backend DOWN): shown before the claims, which
    /// then say which sentence that breaks.
    pub(crate) notes: Vec<String>,
    /// What the servers warned of while checking their files at start (a
    /// deprecated directive, with its line), said with the notes: never a verdict.
    check_warnings: std::sync::Mutex<Vec<String>>,
    // Last, so the containers go after everything that uses them.
    guard: RunGuard,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("design", &self.design)
            .field("run", &self.run.id)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts design `design` from `fixtures` and waits until it is ready
    /// (reads its files first; the runner reuses
    /// what [`crate::design::Design::load`] read).
    pub async fn start(design: &str, fixtures: Fixtures) -> Result<Stack> {
        let parts = Parts::read(&fixtures)?;
        Self::start_from(design, fixtures, parts).await
    }

    /// Starts a design from files already read and checked.
    pub async fn start_from(design: &str, fixtures: Fixtures, parts: Parts) -> Result<Stack> {
        let Parts {
            spec,
            services,
            zone_file,
            zone_text,
        } = parts;
        let docker = docker::connect().await?;
        // Housekeeping: a dead run whose owner's own clean-up is still
        // under way may refuse a removal now; the next start sweeps it.
        if let Err(e) = docker::sweep_dead_runs(&docker).await {
            tracing::warn!("leftovers of killed runs not all removed: {}", e.chain());
        }
        let image = images::ensure_server_image(&docker, &fixtures).await?;
        let started = Instant::now();

        // Networks and idle hosts: made now, or the spare made while the
        // process's previous stack ran (see `crate::skeleton`).
        let relayed = Net::wants_relay()?;
        let shape = crate::skeleton::Shape::of(&spec, &image.tag, relayed);
        let crate::skeleton::Skeleton {
            run,
            mut guard,
            networks,
            hosts,
            probe,
        } = crate::skeleton::take_or_create(&docker, &shape).await?;
        if std::env::var_os("STACKPROOF_KEEP").is_some() {
            guard.disarm();
            crate::reaper::keep(&run.id).await;
        }
        let hosts_up = started.elapsed();
        tracing::debug!(ms = hosts_up.as_millis(), "hosts created and started");
        let mut vars = addresses_and_vars(&spec, &networks)?;
        // The platform's names (`{{ platform.php }}`) for every fixture.
        vars.extend(fixtures.platform()?.template_vars());
        // Where clients reach the run's DNS server (the zone's `ns1`): the
        // probe host's port 53, or this machine's gateway when the traffic
        // is local.
        let public = &networks[&spec.networks[0].name];
        vars.insert(
            "dns.server".into(),
            if relayed {
                public.address(PROBE_OCTET)
            } else {
                public.gateway()
            }
            .to_string(),
        );

        let pki = Pki::new(&crate::pki::default_base(), &run.id)?;
        let names = spec.certificate.full_names(ZONE);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let www_cert = pki.issue_with(&names, &spec.certificate.key)?;

        let zone_text = render(&zone_text, &vars, &zone_file)?;
        let net = match &probe {
            None => Net::Direct,
            Some(host) => Net::Relay(std::sync::Arc::new(Relay::start(&docker, host).await?)),
        };
        let dns_at = std::net::SocketAddr::from((public.address(PROBE_OCTET), 53));
        let dns =
            DnsServer::start(public.gateway(), &net, dns_at, ZONE, &zone_text, &zone_file).await?;

        let client = Client::new(dns.addr, &pki.ca_pem, net).await?;
        let design_zone = dns.snapshot().await;
        let stack = Stack {
            design: design.to_string(),
            spec,
            run,
            docker,
            networks,
            hosts,
            services,
            dns,
            design_zone,
            laid: Default::default(),
            base: Default::default(),
            pki,
            www_cert,
            client,
            fixtures,
            vars,
            image,
            up_time: Duration::ZERO,
            hosts_up,
            extra_hosts: AtomicU8::new(0),
            faults: Default::default(),
            tainted: Default::default(),
            never_settled: Default::default(),
            notes: Vec::new(),
            check_warnings: Default::default(),
            guard,
        };
        let bringing_up = stack
            .spec
            .hosts
            .iter()
            .map(|h| stack.start_services(&h.name, true));
        futures::future::try_join_all(bringing_up).await?;
        let up_time = started.elapsed();
        tracing::debug!(ms = up_time.as_millis(), "services ready");
        let all: Vec<String> = stack.spec.hosts.iter().map(|h| h.name.clone()).collect();
        let mut notes = stack.settle(&all).await;
        tracing::debug!(ms = started.elapsed().as_millis(), "settled");
        notes.extend(stack.lint().await);
        notes.extend(std::mem::take(
            &mut *stack.check_warnings.lock().expect("not poisoned"),
        ));
        // Up: the next stack's hosts can be made now without slowing this one.
        crate::skeleton::make_spare(&stack.docker, &shape);
        Ok(Stack {
            up_time,
            notes,
            ..stack
        })
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Result<&Host> {
        self.hosts.get(name).ok_or_else(|| Error::Unknown {
            kind: "host",
            name: name.into(),
            known: self.hosts.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The service definition called `name`.
    pub fn service(&self, name: &str) -> Result<&ServiceSpec> {
        self.services.get(name).ok_or_else(|| Error::Unknown {
            kind: "service",
            name: name.into(),
            known: self.services.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The hosts that run `service`, in design order.
    pub fn hosts_running(&self, service: &str) -> Vec<&Host> {
        self.spec
            .hosts
            .iter()
            .filter(|h| h.services.iter().any(|s| s == service))
            .map(|h| &self.hosts[&h.name])
            .collect()
    }

    /// Adds a host the design file does not have, at run time (app-2, db-2),
    /// on the next free addresses, and brings its services up. It belongs to
    /// the run (removed with it) but the caller should [`Stack::remove_host`]
    /// it when done. `overrides` replace design variables for its files.
    pub async fn add_host(
        &self,
        spec: &HostSpec,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Host> {
        let n = FIRST_HOST
            + u8::try_from(self.spec.hosts.len()).expect("fewer than 190 hosts")
            + self
                .extra_hosts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut nets = Vec::new();
        for net in &spec.networks {
            let network = self.networks.get(net).ok_or_else(|| Error::Unknown {
                kind: "network",
                name: net.clone(),
                known: self.networks.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
            nets.push((network, network.address(n)));
        }
        let host = Host::create(
            &self.docker,
            &self.run,
            &self.image.tag,
            &spec.name,
            &nets,
            spec.memory_mib,
        )
        .await?;
        for name in &spec.services {
            if !self.services.contains_key(name) {
                return Err(Error::Unknown {
                    kind: "service",
                    name: name.clone(),
                    known: self.services.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
            self.install_on(&host, Some(spec), name, overrides).await?;
            self.start_service_on(&host, name).await?;
            if let Some(init) = &self.service(name)?.init {
                host.run(init).await?;
            }
        }
        Ok(host)
    }

    /// Removes a host added with [`Stack::add_host`].
    pub async fn remove_host(&self, host: Host) -> Result<()> {
        host.remove().await
    }

    /// Stops the whole host: the server is off.
    pub async fn stop_host(&self, host: &str) -> Result<()> {
        self.host(host)?.stop().await
    }

    /// Starts a stopped host and its services again, and waits until they are ready.
    pub async fn start_host(&self, host: &str) -> Result<()> {
        let h = self.host(host)?;
        let started = Instant::now();
        h.start().await?;
        tracing::debug!(
            host,
            ms = started.elapsed().as_millis(),
            "host started again"
        );
        // A real server's /run is a tmpfs, emptied by a reboot; a container's
        // is not, and a stale pid file makes some daemons refuse to start.
        h.run("find /run -name '*.pid' -type f -delete").await?;
        self.start_services(host, false).await
    }

    /// The last lines of every log of `service` on `host`.
    pub async fn logs(&self, host: &str, service: &str) -> String {
        match (self.host(host), self.service(service)) {
            (Ok(h), Ok(s)) => h.tail(&s.logs, 15).await,
            (Err(e), _) | (_, Err(e)) => e.to_string(),
        }
    }

    /// Memory used by all hosts, as the engine counts it.
    pub async fn memory_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for h in self.hosts.values() {
            total += h.memory_bytes().await?;
        }
        Ok(total)
    }

    /// The design's name (`simple_web`).
    pub fn design(&self) -> &str {
        &self.design
    }

    /// The run's id, as the containers' label and names carry it.
    pub fn run_id(&self) -> &str {
        &self.run.id
    }

    /// From nothing to every service ready (the image step excluded).
    pub fn up_time(&self) -> Duration {
        self.up_time
    }

    /// What the servers said when they started but did not settle (HAProxy
    /// with every backend DOWN), in their own words.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// An HTTP(S) client that reaches the run's hosts by the run's DNS and
    /// trusts the run's CA, opening a new connection for every request.
    pub fn http(&self) -> &reqwest::Client {
        &self.client.fresh
    }

    /// The run's traffic endpoints on loopback (SOCKS5, through the probe
    /// host into the run's networks), each open only to the run's client.
    pub fn traffic_endpoints(&self) -> &[std::net::SocketAddr] {
        &self.client.endpoints
    }

    /// The A records of `name` in the run's DNS zone now.
    pub async fn a_records(&self, name: &str) -> Result<Vec<std::net::IpAddr>> {
        self.dns.a_records(name).await
    }

    /// Whether a fault could not be undone: the stack is no longer the
    /// design, and the next claim needs a fresh one.
    pub fn tainted(&self) -> bool {
        self.tainted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Marks the stack as no longer the design (see [`Stack::tainted`]).
    pub fn taint(&self) {
        self.tainted
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Remembers that `what` (`the pair lb-1/lb-2`) never reached its rest
    /// state on this stack, and why.
    pub(crate) fn remember_never_settled(&self, what: &str, why: &str) {
        self.never_settled
            .lock()
            .expect("never_settled lock")
            .insert(what.to_string(), why.to_string());
    }

    /// Why `what` never reached its rest state on this stack, if it did not.
    pub(crate) fn never_settled(&self, what: &str) -> Option<String> {
        self.never_settled
            .lock()
            .expect("never_settled lock")
            .get(what)
            .cloned()
    }

    /// Settles every host after the last applied fault is undone: a
    /// restarted server is only back when its peers see it (HAProxy marks
    /// it UP again). While another fault still holds a host down, nothing
    /// can settle, and waiting would only run out the deadline.
    async fn settle_all(&self) {
        if !self.faults.lock().expect("faults lock").is_empty() {
            return;
        }
        let all: Vec<String> = self.spec.hosts.iter().map(|h| h.name.clone()).collect();
        let notes = self.settle(&all).await;
        if !notes.is_empty() {
            tracing::debug!(?notes, "not settled after undoing a fault");
        }
    }

    /// Each service's own `lint` on each host that runs it: one note per
    /// trap in a configuration the server accepted.
    pub(super) async fn lint(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for h in &self.spec.hosts {
            let Ok(host) = self.host(&h.name) else {
                continue;
            };
            for name in &h.services {
                let Some(cmd) = self.service(name).ok().and_then(|s| s.lint.clone()) else {
                    continue;
                };
                if let Ok(out) = host.exec(&cmd).await {
                    notes.extend(
                        out.stdout
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(|l| format!("warning ({name} on {}): {l}", h.name)),
                    );
                }
            }
        }
        notes
    }

    /// Waits, within each service's settle deadline, until the services of
    /// `hosts` that say what "settled" means agree (HAProxy sees its
    /// backends UP, a VRRP pair has elected a master). Not settling is not
    /// an error: the design may really be broken, and its claims will say
    /// which sentence that breaks. Returns one note per service that did
    /// not settle, quoting the server's own status.
    pub async fn settle(&self, hosts: &[String]) -> Vec<String> {
        let mut waits = Vec::new();
        for host in hosts {
            let Ok(h) = self.host(host) else { continue };
            let names = self
                .spec
                .host(host)
                .map(|s| s.services.clone())
                .unwrap_or_default();
            for name in names {
                let Ok(spec) = self.service(&name) else {
                    continue;
                };
                if let Some(cmd) = spec.settled.clone() {
                    let deadline = settle_deadline(h, spec).await;
                    let status = spec.status.clone();
                    waits.push(async move {
                        let started = Instant::now();
                        while started.elapsed() < deadline {
                            if matches!(h.exec_within(&cmd, Duration::from_secs(5)).await, Ok(o) if o.code == 0) {
                                return None;
                            }
                            tokio::time::sleep(READY_POLL).await;
                        }
                        let says = match status {
                            Some(c) => h.exec(&c).await.map(|o| o.combined()).unwrap_or_default(),
                            None => String::new(),
                        };
                        Some(format!(
                            "`{name}` on host `{}` started but did not settle within {} ms{}",
                            h.name,
                            deadline.as_millis(),
                            if says.trim().is_empty() {
                                String::new()
                            } else {
                                format!("; it says:\n{}", says.trim_end())
                            }
                        ))
                    });
                }
            }
        }
        futures::future::join_all(waits)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Each server's version, as the server reports it (`HAProxy version
    /// 2.6.12...`), asked on the first host that runs it.
    pub async fn versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for h in &self.spec.hosts {
            for s in &h.services {
                let Some(cmd) = self.services.get(s).and_then(|x| x.version.clone()) else {
                    continue;
                };
                if out.iter().any(|(name, _)| name == s) {
                    continue;
                }
                if let Ok(v) = self.host(&h.name).map(|x| x.run(&cmd))
                    && let Ok(v) = v.await
                {
                    out.push((s.clone(), v.trim().to_string()));
                }
            }
        }
        out
    }

    /// Disarms clean-up (STACKPROOF_KEEP): the run stays for inspection.
    pub fn keep(&mut self) {
        self.guard.disarm();
        crate::reaper::keep_soon(&self.run.id);
    }

    /// Ends the run like dropping it does, but returns while its containers
    /// and networks are still being removed: a process that starts stack
    /// after stack (a suite's mutants, `grade`) starts the next meanwhile,
    /// and keeps the [`docker::Removal`] until its end, which waits for it.
    pub fn remove_in_background(mut self) -> docker::Removal {
        let guard = std::mem::replace(&mut self.guard, RunGuard::handed_off(&self.run.id));
        // The client, relay and DNS server go first, as when dropped.
        drop(self);
        guard.remove_in_background()
    }
}

/// Every host's address on each of its networks (`server-1.public`), each
/// network's gateway (`public.gateway`), then the design's own variables,
/// rendered against those.
fn addresses_and_vars(
    spec: &DesignSpec,
    networks: &BTreeMap<String, Network>,
) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for (i, h) in spec.hosts.iter().enumerate() {
        let n = FIRST_HOST + u8::try_from(i).expect("fewer than 190 hosts");
        for net in &h.networks {
            vars.insert(
                format!("{}.{net}", h.name),
                networks[net].address(n).to_string(),
            );
        }
    }
    for (name, net) in networks {
        vars.insert(format!("{name}.gateway"), net.gateway().to_string());
        vars.insert(format!("{name}.subnet"), format!("{}/24", net.address(0)));
        // The network's virtual address, for a VRRP pair to hold.
        vars.insert(format!("{name}.vip"), net.address(FIRST_VIP).to_string());
    }
    let design_file = std::path::PathBuf::from(format!(
        "{} [vars] ({})",
        crate::spec::DESIGN_FILE,
        spec.summary
    ));
    for (k, v) in &spec.vars {
        let value = render(v, &vars, &design_file)?;
        vars.insert(k.clone(), value);
    }
    Ok(vars)
}

/// The longest a service's settling may follow its own timers.
const SETTLE_CAP: Duration = Duration::from_secs(60);

/// How long `spec` may take to settle on `host`: its `settle_timers` (the
/// server's own timers, as its running file sets them) when it has them,
/// at least its `settle_timeout_ms`, at most [`SETTLE_CAP`].
async fn settle_deadline(host: &Host, spec: &ServiceSpec) -> Duration {
    let fixed = Duration::from_millis(spec.settle_timeout_ms);
    let Some(cmd) = &spec.settle_timers else {
        return fixed;
    };
    let own = host
        .exec_within(cmd, Duration::from_secs(5))
        .await
        .ok()
        .and_then(|o| o.stdout.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(fixed);
    own.max(fixed).min(SETTLE_CAP.max(fixed))
}
