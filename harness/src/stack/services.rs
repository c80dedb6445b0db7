//! A stack's services: their files rendered and installed on each host
//! (a mutant's or a reconfiguration's too), started, stopped, reloaded,
//! killed, and waited for until ready.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{READY_POLL, Stack};
use crate::error::{Error, Result};
use crate::fixtures::{Fixtures, render};
use crate::host::Host;
use crate::spec::{HostSpec, Ready};

impl Stack {
    /// Installs, checks, starts and waits for each service of `host`, in order.
    /// `first` also runs each service's one-time `init`.
    pub(super) async fn start_services(&self, host: &str, first: bool) -> Result<()> {
        let names = self
            .spec
            .host(host)
            .map(|h| h.services.clone())
            .unwrap_or_default();
        let h = self.host(host)?;
        // One service after another: on two cores the engine is the
        // bottleneck, and installing every service's files at once measured
        // slower (scale_up up in 4.5-5.3 s against 3.9-4.6 s).
        for name in names {
            let t = Instant::now();
            if first {
                self.install_on(h, self.spec.host(host), &name, &BTreeMap::new())
                    .await?;
            }
            let installed = t.elapsed().as_millis();
            self.start_service_on(h, &name).await?;
            let ready = t.elapsed().as_millis();
            if first && let Some(init) = &self.service(&name)?.init {
                h.run(init).await?;
            }
            tracing::debug!(
                host,
                service = name,
                installed,
                ready,
                done = t.elapsed().as_millis(),
                "service up (ms)"
            );
        }
        Ok(())
    }

    /// Installs each service's files from `fixtures` and restarts it (its
    /// stop, then its start, as a fresh start would run it), then lets the
    /// hosts settle, returning what did not (see [`Stack::settle`]). Its logs and `state` go between stop and start, as on
    /// a fresh host: a log the old files wrote would otherwise still be
    /// there for files that write none (distributed's no_php_access_log
    /// held on a running stack and failed on a fresh one until they did).
    pub(super) async fn restart_with(
        &self,
        fixtures: &Fixtures,
        users: &[(String, String)],
        overrides: &BTreeMap<String, String>,
    ) -> Result<Vec<String>> {
        for (host, service) in users {
            let h = self.host(host)?;
            let spec = self.service(service)?;
            self.install_from(fixtures, h, self.spec.host(host), service, overrides)
                .await?;
            self.stop_service(host, service).await?;
            let gone: Vec<&String> = spec
                .logs
                .iter()
                .chain(&spec.access_log)
                .chain(&spec.state)
                .collect();
            if !gone.is_empty() {
                let paths: Vec<String> = gone.iter().map(|l| format!("'{l}'")).collect();
                h.run(&format!("rm -rf {}", paths.join(" "))).await?;
            }
            self.start_service_on(h, service).await?;
        }
        let hosts: Vec<String> = users.iter().map(|(h, _)| h.clone()).collect();
        Ok(self.settle(&hosts).await)
    }

    /// Re-renders a running service's files with `overrides` on top of the
    /// design's variables, checks them, and reloads the service (its own
    /// graceful reload). An empty `overrides` puts the design's files back.
    pub async fn reconfigure(
        &self,
        host: &str,
        service: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<()> {
        let h = self.host(host)?;
        self.install_on(h, self.spec.host(host), service, overrides)
            .await?;
        self.reload_service(host, service).await
    }

    /// Renders and copies a service's files onto `host`, then runs its config check.
    pub(super) async fn install_on(
        &self,
        host: &Host,
        host_spec: Option<&HostSpec>,
        service: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<()> {
        let (fixtures, mut all) = self.laid_files();
        all.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.install_from(&fixtures, host, host_spec, service, &all)
            .await
    }

    /// The fixtures services install from now, and the design variables
    /// they are rendered with on top of the run's: the design's, or a
    /// mutant's while one is laid on the stack (see [`Stack::in_place`]),
    /// so a claim that reconfigures a service (the app pointed at a new
    /// replica) keeps the mutant's files as a fresh mutant stack would.
    pub(super) fn laid_files(&self) -> (Fixtures, BTreeMap<String, String>) {
        match &*self.laid.lock().expect("laid lock") {
            Some((fixtures, overrides)) => (fixtures.clone(), overrides.clone()),
            None => (self.fixtures.clone(), BTreeMap::new()),
        }
    }

    /// The fixtures the running services come from: the design's, or a
    /// mutant's while one is laid on the stack. Kinds that compare what a
    /// server serves with a fixture read this.
    pub fn fixtures_now(&self) -> Fixtures {
        self.laid_files().0
    }

    /// The variables `host`'s service files are rendered with: the run's
    /// (design variables and addresses), `overrides` on top, then the
    /// host's own (`self.*`, its interfaces, its design `vars`).
    pub(super) async fn vars_for(
        &self,
        host: &Host,
        host_spec: Option<&HostSpec>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let mut vars = self.vars.clone();
        for (k, v) in overrides {
            let value = render(v, &self.vars, Path::new("<overrides>"))?;
            vars.insert(k.clone(), value);
        }
        vars.insert("self.name".into(), host.name.clone());
        for (net, addr) in &host.addrs {
            vars.insert(format!("self.{net}"), addr.to_string());
        }
        // The interface on each network (`{{ self.public.iface }}`): the engine
        // names interfaces in its own order, not the design's.
        let ifaces = host.run("ip -o -4 addr show").await?;
        for line in ifaces.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let (Some(dev), Some(cidr)) = (words.get(1), words.get(3)) {
                let ip = cidr.split('/').next().unwrap_or("");
                if let Some((net, _)) = host.addrs.iter().find(|(_, a)| a.to_string() == ip) {
                    vars.insert(format!("self.{net}.iface"), dev.to_string());
                }
            }
        }
        let design_file = self
            .fixtures
            .path(crate::spec::DESIGN_FILE)
            .unwrap_or_default();
        for (k, v) in host_spec.map(|h| h.vars.clone()).unwrap_or_default() {
            let value = render(&v, &vars, &design_file)?;
            vars.insert(format!("self.{k}"), value);
        }
        Ok(vars)
    }

    /// `service`'s files for `host` from `fixtures`, rendered with `vars`:
    /// (target path, content, mode), as [`Host::put_files`] takes them.
    pub(super) fn service_files(
        &self,
        fixtures: &Fixtures,
        host_name: &str,
        service: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, Vec<u8>, u32)>> {
        let spec = self.service(service)?;
        let mut files = Vec::new();
        for f in &spec.files {
            let mode = match &f.mode {
                Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8).map_err(|_| {
                    Error::InvalidFixture {
                        path: self
                            .fixtures
                            .path(&format!("services/{service}/service.toml"))
                            .unwrap_or_default(),
                        detail: format!(
                            "mode `{m}` of `{}` is not octal (write \"0644\")",
                            f.target
                        ),
                    }
                })?,
                None => 0o644,
            };
            // `run:` sources are made by the run itself, never read from disk.
            if let Some(what) = f.source.strip_prefix("run:") {
                files.push((f.target.clone(), self.run_file(what)?, mode));
                continue;
            }
            let source = fixtures.path_for(host_name, &f.source)?;
            let entries: Vec<(String, std::path::PathBuf)> = if source.is_dir() {
                fixtures
                    .walk(&f.source)?
                    .into_iter()
                    .map(|(rel, path)| {
                        (
                            format!("{}/{}", f.target.trim_end_matches('/'), rel.display()),
                            path,
                        )
                    })
                    .collect()
            } else {
                vec![(f.target.clone(), source)]
            };
            for (target, path) in entries {
                let bytes = std::fs::read(&path).map_err(|source| Error::Fixture {
                    path: path.clone(),
                    source,
                })?;
                let bytes = if f.template {
                    let text = String::from_utf8(bytes).map_err(|_| Error::InvalidFixture {
                        path: path.clone(),
                        detail:
                            "not UTF-8 text: set `template = false` for this file in service.toml"
                                .into(),
                    })?;
                    render(&text, vars, &path)?.into_bytes()
                } else {
                    bytes
                };
                files.push((target, bytes, mode));
            }
        }
        Ok(files)
    }

    /// As [`Stack::install_on`], with the service's files taken from `fixtures`.
    pub(super) async fn install_from(
        &self,
        fixtures: &Fixtures,
        host: &Host,
        host_spec: Option<&HostSpec>,
        service: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<()> {
        let host_name = host.name.as_str();
        let spec = self.service(service)?;
        let vars = self.vars_for(host, host_spec, overrides).await?;
        let files = self.service_files(fixtures, host_name, service, &vars)?;
        host.put_files(&files).await?;
        if let Some(check) = &spec.check {
            let out = host.exec(check).await?;
            if out.code == 0 {
                self.note_warnings(host, service, &out.combined()).await;
            }
            if out.code != 0 {
                // Which release refuses it: the same file may run on another.
                let version = match &spec.version {
                    Some(cmd) => host
                        .exec(cmd)
                        .await
                        .map(|v| v.combined())
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let version = version.lines().next().unwrap_or("").trim();
                return Err(Error::ConfigRejected {
                    version: if version.is_empty() {
                        "version unknown".into()
                    } else {
                        version.to_string()
                    },
                    service: service.into(),
                    host: host_name.into(),
                    file: rejected_files(fixtures, host_name, &spec.files),
                    command: check.clone(),
                    output: out.combined(),
                });
            }
        }
        Ok(())
    }

    /// The warnings a server's check printed about its files (Nginx's
    /// `[warn] ... in /etc/nginx/...:4`, HAProxy's `[WARNING] ... config :`,
    /// anything `deprecated` or `was removed`), kept for the stack's notes with the server's
    /// version: which release warns. A warning about the machine, not the
    /// files (MariaDB's open-files limit), is not the user's to fix.
    async fn note_warnings(&self, host: &Host, service: &str, said: &str) {
        let warnings: Vec<&str> = said
            .lines()
            .map(str::trim)
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                let about_a_file =
                    l.contains(" config ") || l.contains("parsing [") || l.contains(" in /");
                // MariaDB 11 on a removed option: "'innodb-defragment' was
                // removed. It does nothing now and exists only for
                // compatibility with old my.cnf files."
                l.contains("deprecated")
                    || l.contains("was removed")
                    || (l.contains("[warn") && about_a_file)
            })
            .collect();
        if warnings.is_empty() {
            return;
        }
        let version = match self.service(service).ok().and_then(|s| s.version.clone()) {
            Some(cmd) => host
                .exec(&cmd)
                .await
                .map(|v| v.combined())
                .unwrap_or_default(),
            None => String::new(),
        };
        let version = version.lines().next().unwrap_or("").trim().to_string();
        let mut kept = self.check_warnings.lock().expect("not poisoned");
        for w in warnings {
            let line = format!("warning ({service} on {}, {version}): {w}", host.name);
            if !kept.contains(&line) {
                kept.push(line);
            }
        }
    }

    /// Files a service can install from the run itself (`source = "run:<name>"`):
    /// `www.pem` (certificate then key, as HAProxy wants it), `www.crt`,
    /// `www.key`, `ca.pem`.
    pub(super) fn run_file(&self, what: &str) -> Result<Vec<u8>> {
        Ok(match what {
            "www.pem" => self.www_cert.bundle_pem(),
            "www.crt" => self.www_cert.cert_pem.clone(),
            "www.key" => self.www_cert.key_pem.clone(),
            "ca.pem" => self.pki.ca_pem.clone(),
            other => {
                return Err(Error::Unknown {
                    kind: "run file",
                    name: format!("run:{other}"),
                    known: "run:www.pem, run:www.crt, run:www.key, run:ca.pem".into(),
                });
            }
        }
        .into_bytes())
    }

    /// Starts one service on `host` and waits until it is ready.
    pub async fn start_service(&self, host: &str, service: &str) -> Result<()> {
        self.start_service_on(self.host(host)?, service).await
    }

    /// Starts one service on a host (also one added at run time) and waits until it is ready.
    pub async fn start_service_on(&self, host: &Host, service: &str) -> Result<()> {
        let spec = self.service(service)?;
        let out = host.exec(&spec.start).await?;
        if out.code != 0 {
            return Err(Error::ServiceStart {
                service: service.into(),
                host: host.name.clone(),
                what: format!("start (`{}` exited {})", spec.start, out.code),
                waited: None,
                says: format!("; it says:\n{}\n", out.combined().trim_end()),
                logs: host.tail(&spec.logs, 15).await,
            });
        }
        self.wait_ready_on(host, service).await
    }

    /// Stops one service cleanly (its own stop command) and waits until its
    /// processes are gone, so a start that follows does not race the old one.
    pub async fn stop_service(&self, host: &str, service: &str) -> Result<()> {
        let h = self.host(host)?;
        let spec = self.service(service)?;
        h.run(&spec.stop).await?;
        self.wait_gone(host, service).await
    }

    /// Waits until none of `service`'s processes runs on `host` (10 s deadline).
    pub async fn wait_gone(&self, host: &str, service: &str) -> Result<()> {
        let h = self.host(host)?;
        let spec = self.service(service)?;
        if spec.processes.is_empty() {
            return Ok(());
        }
        let names = spec.processes.join("|");
        self.poll_until(h, service, Duration::from_secs(10), || async {
            let out = h.exec(&format!("pgrep -x '{names}'")).await?;
            Ok((out.code == 0).then(|| {
                format!(
                    "stop (processes still running: {})",
                    out.stdout.split_whitespace().collect::<Vec<_>>().join(" ")
                )
            }))
        })
        .await
    }

    /// Runs `step` every [`READY_POLL`] until it says nothing is left to
    /// wait for (`None`), or `deadline` passes: then a timeout for
    /// `service` on `h` saying what was still awaited (its last words),
    /// with the service's last log lines.
    async fn poll_until<F, Fut>(
        &self,
        h: &Host,
        service: &str,
        deadline: Duration,
        mut step: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>>>,
    {
        let started = Instant::now();
        loop {
            let Some(what) = step().await? else {
                return Ok(());
            };
            if started.elapsed() > deadline {
                return Err(Error::Timeout {
                    host: h.name.clone(),
                    service: service.into(),
                    what,
                    waited: deadline,
                    logs: h.tail(&self.service(service)?.logs, 15).await,
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// The process ids of `service` running on `host` (empty when it is down).
    pub async fn pids(&self, host: &str, service: &str) -> Result<Vec<u32>> {
        let names = self.service(service)?.processes.join("|");
        if names.is_empty() {
            return Ok(vec![]);
        }
        let out = self
            .host(host)?
            .exec(&format!("pgrep -x '{names}'"))
            .await?;
        Ok(out
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }

    /// Reloads one service's configuration (its own graceful reload) and,
    /// where the service names its `workers`, waits until the reload has
    /// taken: no worker from before the reload still takes requests
    /// (`nginx -s reload` returns before the master has read its files; ten
    /// pages sent right after one were all served with the old upstream).
    /// A server keeps its old workers when it cannot apply the new files,
    /// so that is a timeout too. (A new worker is not waited for: a
    /// PHP-FPM pool `ondemand` has none until a request comes.)
    pub async fn reload_service(&self, host: &str, service: &str) -> Result<()> {
        let (h, spec) = (self.host(host)?, self.service(service)?);
        let Some(workers) = &spec.workers else {
            return h.run(&spec.reload).await.map(drop);
        };
        let serving = || async {
            Ok::<_, Error>(
                h.run(&format!("pgrep -f '{workers}' || true"))
                    .await?
                    .split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok())
                    .collect::<Vec<_>>(),
            )
        };
        let before = serving().await?;
        h.run(&spec.reload).await?;
        let deadline = Duration::from_millis(spec.ready_timeout_ms);
        self.poll_until(h, service, deadline, || async {
            let now = serving().await?;
            let old: Vec<u32> = now.iter().filter(|p| before.contains(p)).copied().collect();
            Ok((!old.is_empty()).then(|| {
                format!(
                    "serve from new workers after `{}` (workers before it: {before:?}; still serving: {old:?}; serving now: {now:?})",
                    spec.reload
                )
            }))
        })
        .await
    }

    /// Kills one service's processes outright, as a crash would.
    pub async fn kill_service(&self, host: &str, service: &str) -> Result<()> {
        self.host(host)?
            .run(&self.service(service)?.kill)
            .await
            .map(drop)
    }

    /// Waits until `service` on `host` is ready, within its deadline; on
    /// timeout the error carries the service's last log lines.
    pub async fn wait_ready(&self, host: &str, service: &str) -> Result<()> {
        self.wait_ready_on(self.host(host)?, service).await
    }

    /// Waits until `service` on `h` is ready (see [`Stack::wait_ready`]).
    pub async fn wait_ready_on(&self, h: &Host, service: &str) -> Result<()> {
        let host = h.name.as_str();
        let spec = self.service(service)?;
        let deadline = Duration::from_millis(spec.ready_timeout_ms);
        let started = Instant::now();
        loop {
            let ready = match &spec.ready {
                // Checked on the host itself: a firewall may rightly hide the port from us.
                Ready::Tcp(port) => matches!(
                    h.exec_within(&format!("nc -z -w 1 127.0.0.1 {port}"), Duration::from_secs(5)).await,
                    Ok(o) if o.code == 0
                ),
                Ready::Exec(cmd) => {
                    matches!(h.exec_within(cmd, Duration::from_secs(5)).await, Ok(o) if o.code == 0)
                }
            };
            if ready {
                return Ok(());
            }
            if started.elapsed() > deadline {
                let what = match (&spec.ready_means, &spec.ready) {
                    (Some(means), _) => means.clone(),
                    (None, Ready::Tcp(port)) => format!("accept TCP on 127.0.0.1:{port}"),
                    (None, Ready::Exec(_)) => "pass its readiness check".into(),
                };
                let says = match &spec.status {
                    Some(cmd) => match h.exec_within(cmd, Duration::from_secs(5)).await {
                        Ok(o) if !o.combined().trim().is_empty() => {
                            format!("; it says:\n{}\n", o.combined().trim_end())
                        }
                        _ => String::new(),
                    },
                    None => String::new(),
                };
                return Err(Error::ServiceStart {
                    host: host.into(),
                    service: service.into(),
                    what,
                    waited: Some(deadline),
                    says,
                    logs: h.tail(&spec.logs, 15).await,
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

/// The files to name when a service rejects its configuration: those that
/// are not the built-in library's (a user's mapped file, a mutant's, a
/// design folder's) when there are any, else the service's own
/// configuration files (no helper scripts or fixed assets).
fn rejected_files(fixtures: &Fixtures, host: &str, files: &[crate::spec::FileSpec]) -> String {
    let found: Vec<(&crate::spec::FileSpec, std::path::PathBuf)> = files
        .iter()
        .filter_map(|f| Some((f, fixtures.path_for(host, &f.source).ok()?)))
        .collect();
    let builtin = Fixtures::builtin_dir();
    let own: Vec<&std::path::PathBuf> = found
        .iter()
        .filter(|(_, p)| !p.starts_with(&builtin))
        .map(|(_, p)| p)
        .collect();
    let shown: Vec<&std::path::PathBuf> = if own.is_empty() {
        found
            .iter()
            .filter(|(f, _)| f.template && f.mode.is_none())
            .map(|(_, p)| p)
            .collect()
    } else {
        own
    };
    shown
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
