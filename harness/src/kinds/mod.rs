//! Check kinds: the library a claims file composes its claims from.
//!
//! A claim in `claims.toml` names a kind and gives its parameters:
//!
//! ```toml
//! [[claim]]
//! id = "simple_web.dns.www_a_record"
//! says = "DNS resolves www.foobar.com to the server's IP"
//! kind = "dns.a_record"
//! host = "server-1"
//! ```
//!
//! A kind is a plain Rust function over the running stack and the claim's
//! [`Params`], with a description of each parameter; [`Kinds::builtin`]
//! is the library, and a user's crate adds its own with [`Kinds::with`].
//! Parameters are checked when the claims file is read (a missing one, an
//! unknown one, a host the design does not have), so a check reads them
//! without error handling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::failure::CheckResult;
use crate::recorder::Recorder;
use crate::stack::Stack;

pub(crate) mod backends;
pub(crate) mod common;
pub(crate) mod db;
pub(crate) mod dns;
pub(crate) mod firewall;
pub(crate) mod lb;
pub(crate) mod monitoring;
pub(crate) mod outage;
pub(crate) mod placement;
pub(crate) mod scaling;
pub(crate) mod tls;
pub(crate) mod traffic;
pub(crate) mod vrrp;
pub(crate) mod web;

/// A kind's check: measures one claim on a running stack, given its
/// parameters, and records its figures, timelines and waits on the recorder.
pub type KindCheck = for<'a> fn(&'a Stack, &'a Params, &'a Recorder) -> BoxFuture<'a, CheckResult>;

/// Turns `async fn check(&Stack, &Params, &Recorder) -> CheckResult` into a [`KindCheck`].
#[macro_export]
macro_rules! kind_check {
    ($f:path) => {{
        fn boxed<'a>(
            stack: &'a $crate::Stack,
            params: &'a $crate::Params,
            recorder: &'a $crate::Recorder,
        ) -> futures::future::BoxFuture<'a, $crate::CheckResult> {
            Box::pin($f(stack, params, recorder))
        }
        boxed as $crate::kinds::KindCheck
    }};
}

/// One check kind of the library.
#[derive(Clone, Copy)]
pub struct Kind {
    /// Its name in a claims file, `<area>.<what>` (`dns.a_record`).
    pub name: &'static str,
    /// What it proves, in a sentence or two.
    pub doc: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// A claims-file entry using it.
    pub example: &'static str,
    /// What the runner and the loader must know of it ([`Facts::PLAIN`]
    /// for most).
    pub facts: Facts,
    /// The check.
    pub check: KindCheck,
}

/// What the runner and the loader know of a kind beyond its parameters.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    timed: bool,
    reads: &'static [ServerView],
}

impl Facts {
    /// An untimed kind that reads no server's own view.
    pub const PLAIN: Facts = Facts {
        timed: false,
        reads: &[],
    };

    /// Its verdict is a time budget of a second or less (a failover's
    /// outage): a suite runs it while nothing else loads the machine.
    /// Measured while another test thread started a mutant's stack, a
    /// correct design's failover outage was 1256 ms against its 1000 ms
    /// budget (341-405 ms alone). A mutant's claim needs no quiet: load only
    /// lengthens outages, so it cannot turn a broken design into a PASS.
    pub const fn timed(self) -> Facts {
        Facts {
            timed: true,
            ..self
        }
    }

    /// It reads a server's own view (HAProxy's admin socket, keepalived's
    /// VIP) on the hosts these parameters name: the loader checks that
    /// each runs that server before anything starts.
    pub const fn reads(self, views: &'static [ServerView]) -> Facts {
        Facts {
            reads: views,
            ..self
        }
    }

    /// Whether it is [`Facts::timed`].
    pub fn is_timed(&self) -> bool {
        self.timed
    }

    /// The server views it reads ([`Facts::reads`]).
    pub fn server_views(&self) -> &'static [ServerView] {
        self.reads
    }
}

/// A server whose own view a kind reads on the host a parameter names.
#[derive(Debug, Clone, Copy)]
pub struct ServerView {
    param: &'static str,
    process: &'static str,
    server: &'static str,
}

impl ServerView {
    /// On the host parameter `param` names, `process` runs (the server `server`).
    pub const fn new(param: &'static str, process: &'static str, server: &'static str) -> Self {
        ServerView {
            param,
            process,
            server,
        }
    }

    /// The parameter naming the host.
    pub fn param(&self) -> &'static str {
        self.param
    }

    /// The process that must run there.
    pub fn process(&self) -> &'static str {
        self.process
    }

    /// The server's name, for messages.
    pub fn server(&self) -> &'static str {
        self.server
    }
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kind").field("name", &self.name).finish()
    }
}

/// One parameter of a kind.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its key in the claims file.
    pub name: &'static str,
    /// What it holds.
    pub ty: Ty,
    /// What it means.
    pub doc: &'static str,
    /// Its value when the claim does not give one; `None`: required.
    /// Written as in the claims file (`"/static/hello.txt"`, `10`, `["a", "b"]`).
    pub default: Option<&'static str>,
}

impl Param {
    /// A required parameter.
    pub const fn required(name: &'static str, ty: Ty, doc: &'static str) -> Param {
        Param {
            name,
            ty,
            doc,
            default: None,
        }
    }

    /// A parameter with a default, written as TOML (`"text"`, `10`, `["a"]`).
    pub const fn optional(
        name: &'static str,
        ty: Ty,
        doc: &'static str,
        default: &'static str,
    ) -> Param {
        Param {
            name,
            ty,
            doc,
            default: Some(default),
        }
    }
}

/// What a parameter holds; hosts and services are checked against the design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A host of the design (`lb-1`).
    Host,
    /// Hosts of the design, in order (`["web-1", "web-2"]`).
    Hosts,
    /// A service of the library or the design's `services/` (`nginx`).
    Service,
    /// Services, in order.
    Services,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A network of the design (`public`).
    Network,
    /// Text (a path, a header value, a query).
    Text,
    /// A list of texts.
    Texts,
    /// Services on hosts, `host/service` (`["lb-1/haproxy"]`): each host
    /// must run that service in the design.
    HostServices,
    /// A whole number (a count, a port, kbit/s).
    Int,
    /// A list of whole numbers (ports).
    Ints,
    /// Firewall rules: `[{ from = [hosts], to = [hosts], ports = [..], process = ".." }]`.
    Rules,
    /// A number (a share, a rate).
    Number,
    /// A duration in milliseconds.
    Ms,
    /// true or false.
    Bool,
}

impl Ty {
    /// How it is written, for `stackproof kinds`.
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Host => "host",
            Ty::Hosts => "list of hosts",
            Ty::Service => "service",
            Ty::Services => "list of services",
            Ty::Choice(_) => "one of the words below",
            Ty::Network => "network",
            Ty::Text => "text",
            Ty::Texts => "list of texts",
            Ty::HostServices => "list of `host/service`",
            Ty::Int => "integer",
            Ty::Ints => "list of integers",
            Ty::Rules => "list of rules { from, to, ports, process }",
            Ty::Number => "number",
            Ty::Ms => "milliseconds",
            Ty::Bool => "true/false",
        }
    }
}

/// The library's kinds, by area.
pub const LIBRARY: &[Kind] = &[
    dns::A_RECORD,
    dns::HEALTH_CHECKED_FAILOVER,
    web::STATIC_BY,
    web::DYNAMIC_BY,
    web::APP_TIER_DOWN,
    web::ACCESS_LOG_RATE,
    lb::ROUND_ROBIN,
    lb::ACTIVE_ACTIVE,
    lb::HEALTH_CHECK,
    backends::SKIPS_DEAD_BACKEND,
    vrrp::SINGLE_HOLDER,
    vrrp::FAILOVER,
    vrrp::SPLIT_BRAIN,
    db::QUERY_FLOW,
    db::REPLICATION,
    db::REPLICA_READ_ONLY,
    db::ROUTING,
    db::SINGLE_WRITER,
    db::SINGLE_DATABASE,
    placement::SINGLE_HOST,
    placement::TIERS,
    scaling::ADD_APP_SERVER,
    scaling::ADD_REPLICA,
    scaling::MEMORY_ISOLATION,
    outage::SPOF,
    outage::RESTART_DOWNTIME,
    outage::READS_ONLY,
    tls::NO_HTTPS,
    tls::CERTIFICATE,
    tls::REDIRECT_HSTS,
    tls::CLEAR_BEHIND_LB,
    tls::REENCRYPT_REMEDY,
    firewall::OPEN_TO_CLIENT,
    firewall::REACHABILITY,
    monitoring::TARGETS_UP,
    monitoring::SERIES_FOR_HOSTS,
    monitoring::COUNTER_RATE,
    monitoring::DETECTS_DOWN,
    monitoring::ALERT_FIRES,
    monitoring::LOGS_CENTRALISED,
    monitoring::RESPONSE_TIMES,
];

/// The kinds a design's claims may use.
#[derive(Debug, Clone)]
pub struct Kinds(BTreeMap<&'static str, Kind>);

impl Kinds {
    /// The library's kinds.
    pub fn builtin() -> Kinds {
        let mut k = Kinds(BTreeMap::new());
        for kind in LIBRARY {
            k = k.with(*kind);
        }
        k
    }

    /// Adds (or replaces) a kind: how a user's crate brings its own checks.
    pub fn with(mut self, kind: Kind) -> Kinds {
        self.0.insert(kind.name, kind);
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&Kind> {
        self.0.get(name)
    }

    /// Only the kind called `name` (for explaining one).
    pub fn only(&self, name: &str) -> Kinds {
        Kinds(
            self.0
                .iter()
                .filter(|(k, _)| **k == name)
                .map(|(k, v)| (*k, *v))
                .collect(),
        )
    }

    /// Every kind, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Kind> {
        self.0.values()
    }

    /// Every kind as Markdown: name, what it proves, its parameters, an
    /// example (`stackproof kinds` and docs/kinds.md).
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut md = String::new();
        for k in self.iter() {
            let _ = write!(md, "## `{}`\n\n{}\n\n", k.name, k.doc);
            if k.params.is_empty() {
                md.push_str("No parameters.\n\n");
            } else {
                md.push_str("| parameter | type | default | meaning |\n|---|---|---|---|\n");
                for p in k.params {
                    let ty = match p.ty {
                        Ty::Choice(words) => format!("one of {}", words.join(", ")),
                        other => other.describe().to_string(),
                    };
                    let _ = writeln!(
                        md,
                        "| `{}` | {} | {} | {} |",
                        p.name,
                        ty,
                        p.default
                            .map(|d| format!("`{d}`"))
                            .unwrap_or_else(|| "required".into()),
                        p.doc
                    );
                }
                md.push('\n');
            }
            let _ = write!(md, "```toml\n{}\n```\n\n", k.example.trim());
        }
        md
    }
}

/// What a parameter is checked against when the claims file is read.
pub(crate) struct Known<'a> {
    /// The design's hosts.
    pub hosts: Vec<&'a str>,
    /// The services of the library and the design.
    pub services: Vec<String>,
    /// The design's networks.
    pub networks: Vec<&'a str>,
    /// Each host and the services the design puts on it.
    pub placed: Vec<(&'a str, Vec<&'a str>)>,
}

/// A claim's parameters, checked against its kind and the design when the
/// claims file was read, defaults filled in. A check asking for a
/// parameter its kind does not declare is a bug in the kind: it panics,
/// which the claim runner reports as ERROR.
#[derive(Debug, Clone, Default)]
pub struct Params {
    claim: String,
    values: toml::Table,
}

impl Params {
    /// Checks `given` against `kind` and `known`; `file` and `claim` name
    /// where the claim is in errors.
    pub(crate) fn check(
        kind: &Kind,
        given: toml::Table,
        known: &Known<'_>,
        file: &Path,
        claim: &str,
    ) -> Result<Params> {
        let invalid = |detail: String| Error::InvalidFixture {
            path: file.to_path_buf(),
            detail: format!("claim `{claim}`: {detail}"),
        };
        let takes = || {
            if kind.params.is_empty() {
                "none".to_string()
            } else {
                kind.params
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        for key in given.keys() {
            if !kind.params.iter().any(|p| p.name == key) {
                return Err(invalid(format!(
                    "kind `{}` has no parameter `{key}`; it takes: {} (`stackproof kinds {}` explains each)",
                    kind.name,
                    takes(),
                    kind.name
                )));
            }
        }
        let mut values = toml::Table::new();
        for p in kind.params {
            let value = match (given.get(p.name), p.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => toml::from_str::<toml::Table>(&format!("v = {d}"))
                    .map(|mut t| t.remove("v").expect("just written"))
                    .unwrap_or_else(|e| panic!("kind {}: default of {}: {e}", kind.name, p.name)),
                (None, None) => {
                    return Err(invalid(format!(
                        "kind `{}` needs parameter `{}` ({}: {})",
                        kind.name,
                        p.name,
                        p.ty.describe(),
                        p.doc
                    )));
                }
            };
            check_value(p, &value, known).map_err(|d| invalid(format!("`{}`: {d}", p.name)))?;
            values.insert(p.name.to_string(), value);
        }
        Ok(Params {
            claim: claim.to_string(),
            values,
        })
    }

    fn get(&self, name: &str) -> &toml::Value {
        self.values.get(name).unwrap_or_else(|| {
            panic!(
                "claim {} asks for parameter `{name}`, which its kind does not declare",
                self.claim
            )
        })
    }

    /// A host, text, service or network parameter.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).as_str().unwrap_or_default()
    }

    /// A host parameter (same as [`Params::text`], named for reading).
    pub fn host(&self, name: &str) -> &str {
        self.text(name)
    }

    /// A list parameter (hosts or texts).
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.get(name)
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default()
    }

    /// A list-of-whole-numbers parameter.
    pub fn ints(&self, name: &str) -> Vec<u64> {
        self.get(name)
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_integer())
                    .map(|i| i as u64)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A rules parameter (checked when the claims file was read).
    pub(crate) fn rules(&self, name: &str) -> Vec<firewall::Rule> {
        firewall::Rule::parse_all(self.get(name), &[]).unwrap_or_default()
    }

    /// A whole-number parameter.
    pub fn int(&self, name: &str) -> u64 {
        self.get(name).as_integer().unwrap_or_default().max(0) as u64
    }

    /// A number parameter.
    pub fn number(&self, name: &str) -> f64 {
        let v = self.get(name);
        v.as_float()
            .or_else(|| v.as_integer().map(|i| i as f64))
            .unwrap_or_default()
    }

    /// A duration parameter (given in ms).
    pub fn ms(&self, name: &str) -> Duration {
        Duration::from_millis(self.int(name))
    }

    /// A true/false parameter.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).as_bool().unwrap_or_default()
    }
}

fn check_value(p: &Param, v: &toml::Value, known: &Known<'_>) -> std::result::Result<(), String> {
    let one_of = |what: &str, name: &str, set: &[&str]| -> std::result::Result<(), String> {
        if set.contains(&name) {
            Ok(())
        } else {
            Err(format!(
                "the design has no {what} `{name}`; it has: {}",
                set.join(", ")
            ))
        }
    };
    let text = || {
        v.as_str()
            .ok_or_else(|| format!("expected {}, got {v}", p.ty.describe()))
    };
    let texts = || -> std::result::Result<Vec<&str>, String> {
        v.as_array()
            .and_then(|a| a.iter().map(|x| x.as_str()).collect::<Option<Vec<_>>>())
            .ok_or_else(|| {
                format!(
                    "expected {} (e.g. [\"a\", \"b\"]), got {v}",
                    p.ty.describe()
                )
            })
    };
    match p.ty {
        Ty::Host => one_of("host", text()?, &known.hosts),
        Ty::Hosts => texts()?
            .into_iter()
            .try_for_each(|h| one_of("host", h, &known.hosts)),
        Ty::Network => one_of("network", text()?, &known.networks),
        Ty::Service | Ty::Services => {
            let services: Vec<&str> = known.services.iter().map(String::as_str).collect();
            let names = if p.ty == Ty::Service {
                vec![text()?]
            } else {
                texts()?
            };
            names
                .into_iter()
                .try_for_each(|s| one_of("service", s, &services))
        }
        Ty::Choice(words) => {
            let w = text()?;
            if words.contains(&w) {
                Ok(())
            } else {
                Err(format!("`{w}` is not one of: {}", words.join(", ")))
            }
        }
        Ty::Text => text().map(drop),
        Ty::Texts => texts().map(drop),
        Ty::HostServices => texts()?.into_iter().try_for_each(|hs| {
            let (host, service) = hs
                .split_once('/')
                .ok_or_else(|| format!("`{hs}` is not `host/service` (e.g. \"lb-1/haproxy\")"))?;
            one_of("host", host, &known.hosts)?;
            let on: &[&str] = known
                .placed
                .iter()
                .find(|(h, _)| *h == host)
                .map(|(_, s)| s.as_slice())
                .unwrap_or(&[]);
            if on.contains(&service) {
                Ok(())
            } else {
                Err(format!(
                    "`{hs}`: the design runs no `{service}` on `{host}` (its services: {})",
                    on.join(", ")
                ))
            }
        }),
        Ty::Ints => match v.as_array() {
            Some(a) if a.iter().all(|x| x.as_integer().is_some_and(|i| i >= 0)) => Ok(()),
            _ => Err(format!(
                "expected a list of whole numbers (e.g. [80, 443]), got {v}"
            )),
        },
        Ty::Rules => firewall::Rule::parse_all(v, &known.hosts).map(drop),
        Ty::Int | Ty::Ms => match v.as_integer() {
            Some(i) if i >= 0 => Ok(()),
            _ => Err(format!("expected a whole number >= 0, got {v}")),
        },
        Ty::Number => {
            if v.as_float().is_some() || v.as_integer().is_some() {
                Ok(())
            } else {
                Err(format!("expected a number, got {v}"))
            }
        }
        Ty::Bool => v
            .as_bool()
            .map(drop)
            .ok_or_else(|| format!("expected true or false, got {v}")),
    }
}

/// Where `needle` first occurs in `text`, as `file:line`, for messages.
pub fn at_line(file: &Path, text: &str, needle: &str) -> PathBuf {
    match text.find(needle) {
        Some(i) => PathBuf::from(format!(
            "{}:{}",
            file.display(),
            text[..i].matches('\n').count() + 1
        )),
        None => file.to_path_buf(),
    }
}
