//! What a design is made of, as read from `fixtures/`: the design file
//! (`design.toml` in a design folder: networks, hosts and the services on each) and
//! one service file per service (`services/<name>/service.toml`: its files,
//! how to check, start, stop, reload and kill it, and when it is ready).
//!
//! The same service file serves a host alone or beside others: "all on one
//! server" and "split tiers" differ only in the design file.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fixtures::Fixtures;

/// The probe host every run adds, from which the claims' traffic leaves
/// (its container is `sp-<run>-stackproof-probe`): a name no design's host
/// may take.
pub const PROBE_HOST: &str = "stackproof-probe";

/// The topology file of a design folder.
pub const DESIGN_FILE: &str = crate::fixtures::DESIGN_FILE;

/// A design: its networks, hosts and DNS zone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesignSpec {
    /// One line saying what the design is.
    pub summary: String,
    /// The networks, in order; the first is where the client and DNS live.
    pub networks: Vec<NetworkSpec>,
    /// The hosts (one container each).
    pub hosts: Vec<HostSpec>,
    /// The zone file served by the run's DNS server (a fixture path).
    pub zone: String,
    /// Design variables, usable as `{{ name }}` in any fixture; values may
    /// themselves hold placeholders such as `{{ db-1.public }}`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// The site's certificate, as the run's CA issues it (`[certificate]`).
    #[serde(default)]
    pub certificate: CertificateSpec,
    /// The platform its servers run on (`debian-13`), unless a run asks
    /// for another; none: the platforms file's default.
    #[serde(default)]
    pub platform: Option<String>,
}

/// The fixture a user's mapped file writes when the site's certificate
/// must have another key than the design's (`rsa-2048`).
pub const CERTIFICATE_KEY_FILE: &str = "certificate-key";

/// The certificate the run's CA issues for the site.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSpec {
    /// Its names, in the zone: `www` for www.foobar.com, `@` for foobar.com.
    #[serde(default = "CertificateSpec::default_names")]
    pub names: Vec<String>,
    /// Its key: `ecdsa-p256`, `ecdsa-p384` or `rsa-2048`.
    #[serde(default = "CertificateSpec::default_key")]
    pub key: String,
}

impl Default for CertificateSpec {
    fn default() -> Self {
        CertificateSpec {
            names: Self::default_names(),
            key: Self::default_key(),
        }
    }
}

impl CertificateSpec {
    /// The keys the run's CA can make.
    pub const KEYS: &[&str] = &["ecdsa-p256", "ecdsa-p384", "rsa-2048"];

    fn default_names() -> Vec<String> {
        vec!["www".into(), "@".into()]
    }

    fn default_key() -> String {
        "ecdsa-p256".into()
    }

    /// Its names in full in `zone` (`www` -> `www.foobar.com`, `@` -> `foobar.com`).
    pub fn full_names(&self, zone: &str) -> Vec<String> {
        self.names
            .iter()
            .map(|n| match n.as_str() {
                "@" => zone.to_string(),
                n => format!("{n}.{zone}"),
            })
            .collect()
    }
}

/// A network of the design.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// `public` or `private`.
    pub name: String,
}

/// A host: one container standing for one server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// e.g. `server-1`.
    pub name: String,
    /// The networks it is on; the first is its main address.
    pub networks: Vec<String>,
    /// Services, started in this order (a database before the app that needs it).
    pub services: Vec<String>,
    /// A memory limit in MiB, if the design sets one.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Variables of this host only, usable as `{{ self.<name> }}` in the
    /// files of its services (e.g. a keepalived priority); values may hold
    /// placeholders such as `{{ lb-2.public }}`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// How to run one service, read from `services/<name>/service.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// e.g. `apache`.
    pub name: String,
    /// Process names (as `pgrep -x` sees them) that show it runs.
    pub processes: Vec<String>,
    /// Files to install, rendered as templates.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// The server's own configuration check (`apachectl -t`); run before start.
    #[serde(default)]
    pub check: Option<String>,
    /// Starts it; must return once it is launched (daemonise or detach).
    pub start: String,
    /// Stops it cleanly.
    pub stop: String,
    /// Reloads its configuration without dropping requests.
    pub reload: String,
    /// The processes that serve requests, as `pgrep -f` matches their
    /// title (`^nginx: worker process$`). A reload command returns once it
    /// has signalled the server, before the server has read its files, so
    /// requests sent right after went to the old workers with the old
    /// files; with this set, a reload is done only once a worker serves
    /// and none from before the reload still does.
    #[serde(default)]
    pub workers: Option<String>,
    /// Kills its processes outright (a crash).
    pub kill: String,
    /// Prints the server's version as the server reports it (for reports).
    #[serde(default)]
    pub version: Option<String>,
    /// Run once after the first start, when ready (e.g. loading a schema).
    #[serde(default)]
    pub init: Option<String>,
    /// When it counts as ready.
    pub ready: Ready,
    /// How long readiness may take, in ms.
    #[serde(default = "default_ready_ms")]
    pub ready_timeout_ms: u64,
    /// What readiness means, in words, for messages ("answer on its admin socket").
    #[serde(default)]
    pub ready_means: Option<String>,
    /// A command exiting 0 once the server agrees with its peers (HAProxy
    /// sees its backends UP, a VRRP pair elected a master). Readiness means
    /// the server answers; settling is waited for after it, and a service
    /// that does not settle is reported, not a failed start: the claims say
    /// which sentence that breaks.
    #[serde(default)]
    pub settled: Option<String>,
    /// How long settling may take, in ms.
    #[serde(default = "default_settle_ms")]
    pub settle_timeout_ms: u64,
    /// A command printing how long, in ms, the server's own timers take to
    /// settle as its running configuration sets them (HAProxy: a server
    /// DOWN at its first check needs `rise` checks `inter` apart): the
    /// settle wait follows it, at least `settle_timeout_ms`, at most 60 s.
    #[serde(default)]
    pub settle_timers: Option<String>,
    /// A command printing the server's own view of itself (HAProxy's
    /// `show stat` per server with its check result), quoted whenever the
    /// service does not become ready or does not settle.
    #[serde(default)]
    pub status: Option<String>,
    /// A command printing traps in the configuration the server accepts
    /// (one per line: a cipher OpenSSL ignores); run once the stack is up,
    /// each line a note before the claims.
    #[serde(default)]
    pub lint: Option<String>,
    /// Its log files, whose last lines go into every failure about it.
    #[serde(default)]
    pub logs: Vec<String>,
    /// The file it writes one line per request to, where check kinds count
    /// the requests it served (its own count, not the app's).
    #[serde(default)]
    pub access_log: Option<String>,
    /// Where it keeps what it gathered (a monitoring server's time series,
    /// a log server's received logs): removed, with its logs, when a
    /// running stack restarts it with a mutant's files, as a fresh host
    /// has none (a restarted Prometheus still answered `up` for a target
    /// the mutant no longer scrapes, from its old samples).
    #[serde(default)]
    pub state: Vec<String>,
}

fn default_ready_ms() -> u64 {
    15_000
}

fn default_settle_ms() -> u64 {
    10_000
}

/// A file to install on the host.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Fixture path (file, or folder copied whole).
    pub source: String,
    /// Where it goes in the container.
    pub target: String,
    /// Octal mode, e.g. "0644".
    #[serde(default)]
    pub mode: Option<String>,
    /// Whether to fill `{{ }}` placeholders (off for binary or PHP-heavy files).
    #[serde(default = "yes")]
    pub template: bool,
}

fn yes() -> bool {
    true
}

/// Readiness: a TCP port accepting on the host, or a command exiting 0 on the host.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Ready {
    /// A port accepts a TCP connection on the host itself.
    Tcp(u16),
    /// A shell command on the host exits 0.
    Exec(String),
}

impl DesignSpec {
    /// Reads the design's `design.toml` and checks that it hangs together.
    pub fn load(fixtures: &Fixtures) -> Result<Self> {
        let (path, text) = fixtures.read(DESIGN_FILE)?;
        let spec: DesignSpec = toml::from_str(&text).map_err(|e| Error::InvalidFixture {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let invalid = |detail: String| Error::InvalidFixture {
            path: path.clone(),
            detail,
        };
        if spec.networks.is_empty() {
            return Err(invalid("a design needs at least one network".into()));
        }
        let cert = &spec.certificate;
        if cert.names.is_empty() {
            return Err(invalid(
                "[certificate] names no name: give at least one (`www`, or `@` for the zone itself)".into(),
            ));
        }
        if let Some(bad) = cert
            .names
            .iter()
            .find(|n| *n != "@" && (n.is_empty() || n.contains(['.', ' ', '/'])))
        {
            return Err(invalid(format!(
                "[certificate] name `{bad}`: write a name in the zone (`www`, `shop`), or `@` for the zone itself"
            )));
        }
        if !CertificateSpec::KEYS.contains(&cert.key.as_str()) {
            return Err(invalid(format!(
                "[certificate] key `{}`: the run's CA makes {}",
                cert.key,
                CertificateSpec::KEYS.join(" or ")
            )));
        }
        for (i, host) in spec.hosts.iter().enumerate() {
            if host.name == PROBE_HOST {
                return Err(invalid(format!(
                    "host `{}` has the name of the probe host every run adds (the claims' \
                     traffic leaves from it): rename the design's host",
                    host.name
                )));
            }
            if spec.hosts[..i].iter().any(|h| h.name == host.name) {
                return Err(invalid(format!(
                    "two hosts are called `{}`: give each host its own name",
                    host.name
                )));
            }
            if host.networks.is_empty() {
                return Err(invalid(format!("host `{}` is on no network", host.name)));
            }
            for n in &host.networks {
                if !spec.networks.iter().any(|x| &x.name == n) {
                    return Err(invalid(format!(
                        "host `{}` is on network `{n}`, which the design does not declare",
                        host.name
                    )));
                }
            }
        }
        Ok(spec)
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

impl ServiceSpec {
    /// Whether it installs fixture `file` (a file it names, or one inside a folder it names).
    pub fn installs(&self, file: &str) -> bool {
        self.files.iter().any(|f| {
            file == f.source || file.starts_with(&format!("{}/", f.source.trim_end_matches('/')))
        })
    }

    /// Reads `services/<name>/service.toml` for the fixtures' platform:
    /// its `{{ platform.<name> }}` filled, and a line that names another
    /// release's files (`/etc/php/8.2/` on a platform with PHP 8.4) refused.
    pub fn load(fixtures: &Fixtures, name: &str) -> Result<Self> {
        let rel = format!("services/{name}/service.toml");
        let (path, text) = fixtures.read(&rel)?;
        let platform = fixtures.platform()?;
        if let Some((line, named)) = platform.other_release_named(&text) {
            return Err(Error::InvalidFixture {
                path,
                detail: format!(
                    "line {line} names `{named}`, another release's; this run's platform is {} ({}): write `{{{{ platform.php }}}}` where the version goes, or run with --platform",
                    platform.name(),
                    platform.release()
                ),
            });
        }
        toml::from_str(&platform.fill(&text)).map_err(|e| Error::InvalidFixture {
            path,
            detail: e.to_string(),
        })
    }
}

/// Everything a design's servers are started from, read and checked once:
/// the topology, every service of the fixtures (the design's first, an
/// unknown one an error naming those that exist), and the zone file.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The topology.
    pub spec: DesignSpec,
    /// Every service the fixtures define (hosts added at run time may use any).
    pub services: BTreeMap<String, ServiceSpec>,
    /// Where the zone came from.
    pub zone_file: std::path::PathBuf,
    /// The zone, placeholders not yet filled.
    pub zone_text: String,
}

impl Parts {
    /// Reads the design's files from `fixtures`.
    pub fn read(fixtures: &Fixtures) -> Result<Parts> {
        let mut spec = DesignSpec::load(fixtures)?;
        refuse_hosts_own_service_files(fixtures)?;
        // A user's file that only one kind of certificate can serve (a TLS
        // cipher list of RSA suites) says so in the users' layer.
        if let Ok((_, key)) = fixtures.read(CERTIFICATE_KEY_FILE) {
            spec.certificate.key = key.trim().to_string();
        }
        let mut services = BTreeMap::new();
        for host in &spec.hosts {
            for name in &host.services {
                if !services.contains_key(name) {
                    // Named by a host of design.toml: say which, and where.
                    let service = load_service(fixtures, name).map_err(|e| match e {
                        Error::Unknown { name, known, .. } => Error::InvalidFixture {
                            path: fixtures
                                .read(DESIGN_FILE)
                                .map(|(p, _)| p)
                                .unwrap_or_else(|_| DESIGN_FILE.into()),
                            detail: format!(
                                "host `{}` runs service `{name}`, which neither the library nor the design's services/ define; known: {known}",
                                host.name
                            ),
                        },
                        other => other,
                    })?;
                    services.insert(name.clone(), service);
                }
            }
        }
        for name in service_names(fixtures) {
            if !services.contains_key(&name) {
                services.insert(name.clone(), load_service(fixtures, &name)?);
            }
        }
        let (zone_file, zone_text) = fixtures.read(&spec.zone)?;
        Ok(Parts {
            spec,
            services,
            zone_file,
            zone_text,
        })
    }
}

/// The services every layer of `fixtures` defines, by name.
pub fn service_names(fixtures: &Fixtures) -> std::collections::BTreeSet<String> {
    fixtures
        .layers()
        .iter()
        .flat_map(|l| {
            std::fs::read_dir(l.join("services"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|e| e.path().join("service.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A service is defined once (`services/<name>/service.toml`); a host's
/// own folder replaces the files a service installs, not its definition.
/// A `hosts/<host>/services/<name>/service.toml` would be ignored without a
/// word, so it is refused, saying what to do instead.
fn refuse_hosts_own_service_files(fixtures: &Fixtures) -> Result<()> {
    for layer in fixtures.layers() {
        let Ok(hosts) = std::fs::read_dir(layer.join("hosts")) else {
            continue;
        };
        for host in hosts.flatten() {
            let Ok(services) = std::fs::read_dir(host.path().join("services")) else {
                continue;
            };
            for service in services.flatten() {
                let path = service.path().join("service.toml");
                if path.is_file() {
                    let name = service.file_name().to_string_lossy().into_owned();
                    return Err(Error::InvalidFixture {
                        path,
                        detail: format!(
                            "a host's own service.toml is not read: a service is defined once, in services/{name}/service.toml. A host's folder replaces the files the service installs (hosts/{}/services/{name}/<file>); for another definition on this host, define a service of another name and list it in the host's `services`",
                            host.file_name().to_string_lossy()
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

fn load_service(fixtures: &Fixtures, name: &str) -> Result<ServiceSpec> {
    ServiceSpec::load(fixtures, name).map_err(|e| match e {
        Error::Fixture { .. } => Error::Unknown {
            kind: "service",
            name: name.into(),
            known: service_names(fixtures)
                .into_iter()
                .collect::<Vec<_>>()
                .join(", "),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_own_service_toml_is_refused_with_what_to_do() {
        let dir = std::env::temp_dir().join(format!(
            "stackproof-host-service-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let own = dir.join("hosts/server-1/services/apache");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("service.toml"), "name = \"apache\"\n").unwrap();
        let fixtures = crate::design::fixtures("simple_web")
            .unwrap()
            .with_overlay(dir.clone())
            .unwrap();
        let e = Parts::read(&fixtures).map(drop).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            e.contains("hosts/server-1/services/apache/service.toml")
                && e.contains("a host's own service.toml is not read"),
            "{e}"
        );
    }

    /// simple_web's design file with its host renamed `name`, and a second host.
    fn load_with_hosts(names: [&str; 2]) -> Result<DesignSpec> {
        let dir = std::env::temp_dir().join(format!(
            "stackproof-spec-test-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let _gone = crate::tempdir::TempDir::adopt(dir.clone());
        let hosts: String = names
            .iter()
            .map(|n| format!("[[hosts]]\nname = \"{n}\"\nnetworks = [\"public\"]\nservices = []\n"))
            .collect();
        std::fs::write(
            dir.join(DESIGN_FILE),
            format!(
                "summary = \"t\"\nzone = \"dns.zone\"\n[[networks]]\nname = \"public\"\n{hosts}"
            ),
        )
        .expect("write design");
        DesignSpec::load(&crate::design::fixtures("simple_web")?.with_overlay(dir)?)
    }

    #[test]
    fn a_host_named_like_the_probe_host_or_twice_is_refused() {
        let probe = load_with_hosts(["web-1", PROBE_HOST])
            .expect_err("the probe host's name is taken")
            .to_string();
        assert!(probe.contains("the probe host every run adds"), "{probe}");
        let twice = load_with_hosts(["web-1", "web-1"])
            .expect_err("a name used twice")
            .to_string();
        assert!(twice.contains("two hosts are called `web-1`"), "{twice}");
        assert!(load_with_hosts(["web-1", "web-2"]).is_ok());
    }
}
