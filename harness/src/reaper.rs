//! Nothing left behind, even when the process is killed with SIGKILL and
//! no later run sweeps: each process starts one small reaper container
//! (from the run's own image: no registry) with the engine's socket, and
//! keeps a connection to its standard input for as long as it lives. When
//! that connection closes (the process ended, however), the reaper removes
//! every container and network labelled with the process, then itself
//! (`AutoRemove`). Runs kept on purpose (`--keep`) are named to it first.
//! testcontainers' Ryuk keeps the same promise the same way.

use std::collections::HashMap;
use std::pin::Pin;

use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{ContainerCreateBody, HostConfig};
use testcontainers::bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, StartContainerOptions,
};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::docker::{LABEL_MACHINE, LABEL_PID};

/// The label a reaper carries (never the run's own labels, or it would
/// remove itself before the rest).
pub const LABEL_REAPER: &str = "stackproof.reaper";

/// Where the reaper finds the engine's socket.
const ENGINE_SOCKET: &str = "/var/run/docker.sock";

/// Where the engine's socket is on the engine's own machine: DOCKER_HOST's
/// path for a local socket elsewhere (a rootless engine), else the usual
/// path (also for a remote engine: a bind mount names the engine's path).
fn engine_socket_on_its_machine() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| ENGINE_SOCKET.to_string())
}

/// The reaper's program (Perl from the image): reads "keep <run>" lines
/// until its input closes, then removes what the process's labels name
/// (the kept runs excepted) through the engine's API.
const SCRIPT: &str = r#"
use strict; use JSON::PP; use IO::Socket::UNIX;
my %keep;
while (my $l = <STDIN>) { $keep{$1} = 1 if $l =~ /^keep (\S+)/; }
sub api {
    my ($method, $path) = @_;
    my $s = IO::Socket::UNIX->new(Peer => "/var/run/docker.sock") or return "";
    print $s "$method $path HTTP/1.0\r\nHost: engine\r\n\r\n";
    local $/; my $r = <$s> // ""; my (undef, $body) = split /\r\n\r\n/, $r, 2;
    return $body // "";
}
my $f = $ENV{FILTER};
for my $kind (["containers/json?all=1&", "containers/", "?force=1&v=1"], ["networks?", "networks/", ""]) {
    my ($list, $one, $opts) = @$kind;
    my $all = eval { decode_json(api("GET", "/v1.41/${list}filters=$f")) } || [];
    for my $x (@$all) {
        next if $keep{$x->{Labels}{"stackproof.run"} // ""};
        api("DELETE", "/v1.41/$one$x->{Id}$opts");
    }
}
"#;

/// The process's end of the connection: its closing (the process ended,
/// however) sets the reaper off. Held until the process ends.
struct Held {
    input: tokio::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>,
    /// The other half, never read (the reaper prints nothing).
    _output: std::sync::Mutex<Box<dyn std::any::Any + Send>>,
}

static REAPER: tokio::sync::OnceCell<Option<Held>> = tokio::sync::OnceCell::const_new();

/// Starts this process's reaper (once; `image` is the run's image) and
/// holds its connection until the process ends. When it cannot start, the
/// runs go on and the sweep at a later run's start is what is left.
pub async fn ensure(docker: &Docker, image: &str) {
    REAPER
        .get_or_init(|| async {
            match start(docker, image).await {
                Ok(held) => Some(held),
                Err(e) => {
                    tracing::warn!("no reaper for this process: {e}");
                    None
                }
            }
        })
        .await;
}

/// Tells the reaper, from a synchronous caller inside the runtime, to
/// leave run `run` alone (`--keep`).
pub fn keep_soon(run: &str) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let run = run.to_string();
        runtime.spawn(async move { keep(&run).await });
    }
}

/// Tells the reaper to leave run `run` alone (`--keep`).
pub async fn keep(run: &str) {
    if let Some(Some(held)) = REAPER.get() {
        let mut input = held.input.lock().await;
        let _ = input.write_all(format!("keep {run}\n").as_bytes()).await;
        let _ = input.flush().await;
    }
}

async fn start(docker: &Docker, image: &str) -> Result<Held, String> {
    let pid = std::process::id().to_string();
    let machine = crate::docker::this_machine();
    let filter = serde_json::json!({
        "label": [format!("{LABEL_PID}={pid}"), format!("{LABEL_MACHINE}={machine}")]
    })
    .to_string();
    let name = format!("sp-reaper-{pid}-{:08x}", rand::random::<u32>());
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["perl".into(), "-e".into(), SCRIPT.into()]),
        env: Some(vec![format!("FILTER={}", percent_encoded(&filter))]),
        labels: Some(HashMap::from([(LABEL_REAPER.to_string(), pid.clone())])),
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        host_config: Some(HostConfig {
            auto_remove: Some(true),
            network_mode: Some("none".into()),
            binds: Some(vec![format!(
                "{}:{ENGINE_SOCKET}",
                engine_socket_on_its_machine()
            )]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::new().name(&name).build();
    docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| format!("create {name}: {e}"))?;
    // Attached before it starts, so no moment passes with nobody holding it.
    let attach = AttachContainerOptionsBuilder::new()
        .stdin(true)
        .stream(true)
        .build();
    let attached = docker
        .attach_container(&name, Some(attach))
        .await
        .map_err(|e| format!("attach to {name}: {e}"))?;
    docker
        .start_container(&name, None::<StartContainerOptions>)
        .await
        .map_err(|e| format!("start {name}: {e}"))?;
    Ok(Held {
        input: tokio::sync::Mutex::new(attached.input),
        _output: std::sync::Mutex::new(Box::new(attached.output)),
    })
}

/// `text` as a URL's query value.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
