//! The Docker engine: connecting, labelling what a run creates, and removing it.
//!
//! Why bollard and not testcontainers' runner: testcontainers 0.28 speaks
//! Docker API 1.53 with no version negotiation, and the engine Debian 12
//! ships (20.10) answers only up to 1.41, refusing every call. So we use
//! bollard through testcontainers' re-export and negotiate the version. The
//! guard pattern testcontainers uses (remove on `Drop`) is kept: see [`RunGuard`].

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};

use testcontainers::bollard::Docker;
use testcontainers::bollard::errors::Error as DockerError;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};

use crate::error::{Error, Result};

/// Label carried by every container and network a run creates: its run id.
pub const LABEL_RUN: &str = "stackproof.run";
/// Label naming the process that owns the run, so a sweep never touches a live run.
pub const LABEL_PID: &str = "stackproof.pid";
/// Label naming the machine of the owning process (its machine id, or
/// host name): on an engine several machines share (a remote engine), only
/// the machine that owns a run can tell whether its process is gone.
pub const LABEL_MACHINE: &str = "stackproof.machine";
/// Label with the owner's start time (clock ticks since boot), so a reused pid
/// is not mistaken for the owner.
pub const LABEL_STARTED: &str = "stackproof.started";
/// Label of a class graded on a Docker swarm (ci/swarm/grade-class.sh): its
/// service and its tasks' containers.
pub const LABEL_SWARM: &str = "stackproof.swarm";

/// Connects to the engine (DOCKER_HOST or the local socket) and agrees on an API version.
pub async fn connect() -> Result<Docker> {
    let endpoint =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let no_engine = |source| Error::NoEngine {
        endpoint: endpoint.clone(),
        source,
    };
    let plain_tcp = endpoint
        .strip_prefix("tcp://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .filter(|_| std::env::var_os("DOCKER_TLS_VERIFY").is_none());
    let docker = match plain_tcp {
        Some(addr) => connect_tcp_nodelay(addr).map_err(no_engine)?,
        None => Docker::connect_with_defaults().map_err(no_engine)?,
    };
    let docker = docker.negotiate_version().await.map_err(no_engine)?;
    docker.ping().await.map_err(no_engine)?;
    Ok(docker)
}

/// An engine at `addr` over plain TCP, with TCP_NODELAY (as the docker CLI
/// has): bollard's own connector leaves Nagle on, and the relay's small
/// frames on its exec stream then wait for the engine's delayed ACKs
/// (a probe request took about 50 ms instead of 10).
fn connect_tcp_nodelay(addr: &str) -> std::result::Result<Docker, DockerError> {
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use testcontainers::bollard::{API_DEFAULT_VERSION, BollardRequest};
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let mut builder = Client::builder(hyper_util::rt::TokioExecutor::new());
    builder.pool_max_idle_per_host(0);
    let client = std::sync::Arc::new(builder.build(connector));
    Docker::connect_with_custom_transport(
        move |req: BollardRequest| {
            let client = client.clone();
            async move { client.request(req).await.map_err(DockerError::from) }
        },
        Some(format!("http://{addr}")),
        // bollard's own default read/write timeout, in seconds.
        120,
        API_DEFAULT_VERSION,
    )
}

/// The identity of one run: unique per process and per topology, so parallel
/// runs (two suites, or two tests in one suite) never collide.
#[derive(Debug, Clone)]
pub struct RunId {
    /// e.g. `4242-3-k9x2`: pid, counter, and a random tail against pid reuse.
    pub id: String,
}

impl RunId {
    /// A fresh run id for this process.
    pub fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tail: String = (0..4)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rand::random_range(0..36)]))
            .collect();
        RunId {
            id: format!("{}-{n}-{tail}", std::process::id()),
        }
    }

    /// The labels every resource of this run carries.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.to_string(), self.id.clone()),
            (LABEL_PID.to_string(), std::process::id().to_string()),
            (LABEL_MACHINE.to_string(), this_machine()),
            (
                LABEL_STARTED.to_string(),
                process_start_ticks(std::process::id()).unwrap_or_default(),
            ),
        ])
    }

    /// A docker-safe name for a resource of this run: `sp-<run>-<name>`.
    pub fn name(&self, what: &str) -> String {
        format!("sp-{}-{what}", self.id)
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

/// The start time of a process (field 22 of /proc/PID/stat), if it is alive.
fn process_start_ticks(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it start past ')'.
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(19).map(str::to_string)
}

/// This machine's identity for [`LABEL_MACHINE`].
pub(crate) fn this_machine() -> String {
    ["/etc/machine-id", "/proc/sys/kernel/hostname"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

/// Whether the process that labelled a resource still runs. A run another
/// machine owns counts as alive: its pid means nothing here.
fn owner_alive(labels: &HashMap<String, String>) -> bool {
    if labels
        .get(LABEL_MACHINE)
        .is_some_and(|m| *m != this_machine())
    {
        return true;
    }
    let Some(pid) = labels.get(LABEL_PID).and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    match (process_start_ticks(pid), labels.get(LABEL_STARTED)) {
        (Some(now), Some(then)) => &now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Removes every container carrying `label` (`key` or `key=value`), with
/// its volumes; the ids it removed (one already gone is no error).
async fn remove_containers_labelled(docker: &Docker, label: String) -> Result<Vec<String>> {
    let filter = HashMap::from([("label", vec![label.clone()])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .map_err(Error::docker(format!("list containers labelled `{label}`")))?;
    let mut removed = Vec::new();
    for c in containers {
        let Some(id) = c.id else { continue };
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(&id, Some(opts)).await {
            Ok(()) => removed.push(id),
            Err(e) if is_not_found(&e) || is_being_removed(&e) => {}
            Err(e) => return Err(Error::docker(format!("remove container `{id}`"))(e)),
        }
    }
    Ok(removed)
}

/// Removes every container and network of one run.
pub async fn remove_run(docker: &Docker, run: &str) -> Result<usize> {
    let filter = HashMap::from([("label", vec![format!("{LABEL_RUN}={run}")])]);
    let mut removed = remove_containers_labelled(docker, format!("{LABEL_RUN}={run}"))
        .await?
        .len();
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(Error::docker(format!("list networks of run `{run}`")))?;
    for n in networks {
        let Some(id) = n.id else { continue };
        match docker.remove_network(&id).await {
            Ok(()) => removed += 1,
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::docker(format!("remove network `{id}`"))(e)),
        }
    }
    Ok(removed)
}

/// The labels of every container and network that carries `label` (`key` or `key=value`).
async fn labels_of(docker: &Docker, label: String) -> Result<Vec<HashMap<String, String>>> {
    let filter = HashMap::from([("label", vec![label])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .map_err(Error::docker("list stackproof containers"))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(Error::docker("list stackproof networks"))?;
    Ok(containers
        .into_iter()
        .filter_map(|c| c.labels)
        .chain(networks.into_iter().filter_map(|n| n.labels))
        .collect())
}

/// Removes each run whose resources' labels pass `pick`; returns the runs removed.
async fn remove_runs_where(
    docker: &Docker,
    label: String,
    pick: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<Vec<String>> {
    let runs: BTreeSet<String> = labels_of(docker, label)
        .await?
        .iter()
        .filter(|l| pick(l))
        .filter_map(|l| l.get(LABEL_RUN).cloned())
        .collect();
    for run in &runs {
        tracing::info!(run, "removing run");
        remove_run(docker, run).await?;
    }
    Ok(runs.into_iter().collect())
}

/// Removes what earlier runs left behind, but only runs whose owning process
/// is gone (killed test binaries, a CLI that lost its terminal): never a run
/// that is still going, here or in a parallel process.
pub async fn sweep_dead_runs(docker: &Docker) -> Result<Vec<String>> {
    remove_runs_where(docker, LABEL_RUN.to_string(), |l| !owner_alive(l)).await
}

/// Whether the engine answered 404 (already gone: fine when removing).
pub(crate) fn is_not_found(e: &testcontainers::bollard::errors::Error) -> bool {
    matches!(
        e,
        testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether the engine answered that another call is removing it already
/// (a run's own guard and a Ctrl-C sweep, or a sweep by another process).
fn is_being_removed(e: &testcontainers::bollard::errors::Error) -> bool {
    matches!(
        e,
        testcontainers::bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message,
        } if message.contains("already in progress")
    )
}

/// Removes everything a run created when dropped: on success, on failure and
/// on panic (unwinding drops it). Removal needs async calls, and `Drop` may
/// run inside or outside a runtime of either flavour, so it runs on a
/// dedicated thread with its own small runtime and is joined.
#[derive(Debug)]
pub struct RunGuard {
    run: String,
    disarmed: bool,
    /// Its removal was handed to a [`Removal`]: nothing left to do on drop.
    handed_off: bool,
}

/// A run's removal under way on a thread of its own ([`RunGuard::remove_in_background`]):
/// joined when dropped, so a process that keeps it until its end leaves
/// nothing behind, while the next run starts in the meantime.
#[derive(Debug)]
#[must_use = "dropping a Removal waits for it; keep it to let the removal run meanwhile"]
pub struct Removal(Option<std::thread::JoinHandle<()>>);

impl Drop for Removal {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take()
            && thread.join().is_err()
        {
            eprintln!("stackproof: a clean-up thread panicked");
        }
    }
}

impl RunGuard {
    /// Guards the resources labelled with `run`.
    pub fn new(run: &RunId) -> Self {
        RunGuard {
            run: run.id.clone(),
            disarmed: false,
            handed_off: false,
        }
    }

    /// Starts removing the run now, on its own thread, and returns at once.
    pub fn remove_in_background(mut self) -> Removal {
        self.handed_off = true;
        self.start_removal()
    }

    /// A guard that guards nothing (what is left in a stack whose guard was taken).
    pub fn handed_off(run: &str) -> Self {
        RunGuard {
            run: run.to_string(),
            disarmed: false,
            handed_off: true,
        }
    }

    fn start_removal(&self) -> Removal {
        if self.disarmed {
            eprintln!(
                "stackproof: keeping run `{}` (STACKPROOF_KEEP); remove it with `stackproof sweep --all`",
                self.run
            );
            return Removal(None);
        }
        let run = self.run.clone();
        Removal(Some(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(rt) = rt else { return };
            rt.block_on(async {
                match connect().await {
                    Ok(docker) => {
                        if let Err(e) = remove_run(&docker, &run).await {
                            eprintln!("stackproof: clean-up of run `{run}` failed: {}", e.chain());
                        }
                    }
                    Err(e) => {
                        eprintln!("stackproof: clean-up of run `{run}` failed: {}", e.chain())
                    }
                }
            });
        })))
    }

    /// Keeps the resources (STACKPROOF_KEEP=1, for debugging a failed run).
    pub fn disarm(&mut self) {
        self.disarmed = true;
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.handed_off {
            // Dropping the Removal joins it: the run is gone when this returns.
            drop(self.start_removal());
        }
    }
}

/// Removes every stackproof run, whoever owns it (`stackproof sweep --all`).
pub(crate) async fn remove_all(docker: &Docker) -> Result<Vec<String>> {
    let mut removed = remove_swarm_jobs(docker).await?;
    removed.extend(remove_runs_where(docker, LABEL_RUN.to_string(), |_| true).await?);
    Ok(removed)
}

/// Removes every swarm grading job (ci/swarm/grade-class.sh) and its tasks'
/// containers: a job whose script was killed. An engine in no swarm has none.
async fn remove_swarm_jobs(docker: &Docker) -> Result<Vec<String>> {
    use testcontainers::bollard::query_parameters::ListServicesOptionsBuilder;
    let filter = HashMap::from([("label".to_string(), vec![LABEL_SWARM.to_string()])]);
    let mut removed = Vec::new();
    // Not a swarm manager (the usual case): no services to list.
    let services = docker
        .list_services(Some(
            ListServicesOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .unwrap_or_default();
    for s in services {
        let name = s
            .spec
            .and_then(|spec| spec.name)
            .or(s.id)
            .unwrap_or_default();
        match docker.delete_service(&name).await {
            Ok(()) => removed.push(format!("swarm job {name}")),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::docker(format!("remove swarm job `{name}`"))(e)),
        }
    }
    for id in remove_containers_labelled(docker, LABEL_SWARM.to_string()).await? {
        removed.push(format!("swarm task {}", &id[..12.min(id.len())]));
    }
    Ok(removed)
}

/// Removes every run this process owns. For Ctrl-C: the guards' `Drop`
/// does not run when the process is interrupted, so the handler calls this.
pub(crate) async fn remove_own_runs(docker: &Docker) -> Result<Vec<String>> {
    remove_runs_where(
        docker,
        format!("{LABEL_PID}={}", std::process::id()),
        |_| true,
    )
    .await
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether Ctrl-C was pressed: errors that follow are the clean-up's doing,
/// and the handler will exit with 130 once it is done.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// On Ctrl-C (or SIGTERM), removes this process's runs and exits 130.
/// Call once, inside the runtime.
pub(crate) fn clean_up_on_interrupt() {
    tokio::spawn(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\nstackproof: interrupted; removing this run's containers and networks");
        if let Ok(docker) = connect().await {
            // The main flow may still be creating a container as we list: sweep
            // until a pass finds nothing (bounded).
            // Creations check the flag and stop, but one may be in flight: sweep
            // until two passes in a row, 300 ms apart, find nothing (bounded).
            let mut quiet = 0;
            for _ in 0..20 {
                match remove_own_runs(&docker).await {
                    Ok(runs) if runs.is_empty() => quiet += 1,
                    Ok(_) => quiet = 0,
                    // The run's own guard may be removing the same things
                    // (a network is not removable while its container is
                    // going): try again on the next pass.
                    Err(_) => quiet = 0,
                }
                if quiet == 2 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        }
        std::process::exit(130);
    });
}
