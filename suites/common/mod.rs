//! Helpers the suites share. The suites need nothing on the host but the
//! Docker engine: a tool a test uses (xmllint, Chromium, tcpdump) runs in a
//! container of the run's own images, and the engine's socket is relayed
//! over TCP by a thread here, not by a program to install.
// Each suite that includes this module uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A program from Debian's packages on the host, installed with apt-get
/// when missing and this process may (root or passwordless sudo). Only for
/// what is a host tool by nature (docker-compose, which the bench compares
/// against); installs hold the machine's image-build lock, so two tests (or
/// a test and an image build installing mmdebstrap) never race for dpkg's
/// lock, and apt's failure is shown, not ignored.
pub fn debian_tool(program: &str, packages: &[&str]) -> PathBuf {
    let found = |p: &str| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
            .then(|| PathBuf::from(p))
    };
    if let Some(p) = found(program) {
        return p;
    }
    let _lock = stackproof::images::BuildLock::acquire_blocking(&format!("install {program}"))
        .unwrap_or_else(|e| panic!("{e}"));
    // Another test may have installed it while this one waited.
    if let Some(p) = found(program) {
        return p;
    }
    eprintln!(
        "{program} is missing: installing {} with apt-get (once)",
        packages.join(" ")
    );
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    let prefix: Vec<&str> = if root { vec![] } else { vec!["sudo", "-n"] };
    let install: Vec<&str> = [
        "apt-get",
        "-o",
        "DPkg::Lock::Timeout=120",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
    ]
    .into_iter()
    .chain(packages.iter().copied())
    .collect();
    for args in [vec!["apt-get", "update", "-qq"], install] {
        let all: Vec<&str> = prefix.iter().copied().chain(args).collect();
        let out = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("`{}` did not run: {e}", all.join(" ")));
        assert!(
            out.status.success(),
            "`{}` failed ({}): install {} yourself\n{}",
            all.join(" "),
            out.status,
            packages.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    found(program).unwrap_or_else(|| {
        panic!(
            "{program} is still missing after installing {}",
            packages.join(" ")
        )
    })
}

/// Runs `f` on a runtime of its own, on a thread of its own: callable from
/// a plain test and from inside an async one alike.
fn on_own_runtime<T: Send + 'static, F: std::future::Future<Output = T>>(
    f: impl FnOnce() -> F + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
    .join()
    .unwrap()
}

/// The run's server image (built if missing, as a run builds it): it has
/// tcpdump, curl and openssl already.
pub fn server_image() -> String {
    on_own_runtime(|| async {
        let docker = stackproof::docker::connect()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let design = stackproof::Design::load("simple_web").unwrap();
        stackproof::images::ensure_server_image(&docker, design.fixtures())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .tag
    })
}

/// The recipe of the tools image: the server image plus what only the
/// tests use (xmllint, headless Chromium and a font).
const TOOLS_RECIPE: &str = "tests/tools-image/Dockerfile";

/// The image the suites run their tools in, built once per recipe and
/// server image (under the machine's build lock, with a deadline).
pub fn tools_image() -> String {
    use sha2::Digest;
    let server = server_image();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join(TOOLS_RECIPE);
    let dockerfile = std::fs::read(&recipe).unwrap();
    let mut hash = sha2::Sha256::new();
    hash.update(&server);
    hash.update(&dockerfile);
    let hash: String = hash
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let tag = format!("stackproof/tools:{hash}");
    let present = |tag: &str| {
        Command::new("docker")
            .args(["image", "inspect", tag])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if present(&tag) {
        return tag;
    }
    let _lock =
        stackproof::images::BuildLock::acquire_blocking(&tag).unwrap_or_else(|e| panic!("{e}"));
    if present(&tag) {
        return tag;
    }
    eprintln!("building `{tag}` (the tests' tools: xmllint, Chromium) on `{server}`, once");
    // A build that hangs on a mirror ends: 15 minutes is ten times its usual.
    let out = Command::new("timeout")
        .args(["900", "docker", "build", "-q", "--build-arg"])
        .arg(format!("SERVER={server}"))
        .args(["-t", &tag, "-f"])
        .arg(&recipe)
        .arg(recipe.parent().unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the tools image `{tag}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    tag
}

/// `program args` in a tools container, with `dirs` mounted at their own
/// paths, as this process's user, with no network: its output.
pub fn in_tools_container(dirs: &[&Path], program: &str, args: &[&str]) -> std::process::Output {
    let image = tools_image();
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--network", "none"])
        .arg(format!("--user={}", user_and_group()));
    for dir in dirs {
        cmd.arg("-v").arg(format!("{0}:{0}", dir.display()));
    }
    cmd.arg(&image)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("docker run {program}: {e}"))
}

/// `uid:gid` of this process, so files a tool writes belong to the test.
fn user_and_group() -> String {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self").unwrap();
    format!("{}:{}", me.uid(), me.gid())
}

/// The engine's Unix socket served on a free loopback port, as a remote
/// engine is reached (`DOCKER_HOST=tcp://…`): every accepted connection is
/// copied both ways by two threads. Stops accepting when dropped.
pub struct EngineOverTcp {
    /// The loopback port it listens on.
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl EngineOverTcp {
    pub fn start() -> EngineOverTcp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                // dockerd (Go) sets TCP_NODELAY on its connections too.
                let _ = client.set_nodelay(true);
                let Ok(engine) = UnixStream::connect("/var/run/docker.sock") else {
                    continue;
                };
                relay(client, engine);
            }
        });
        EngineOverTcp { port, stop }
    }
}

impl Drop for EngineOverTcp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread so it sees the flag.
        let _ =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
    }
}

/// Copies `tcp` to `unix` and back until either side closes.
fn relay(tcp: TcpStream, unix: UnixStream) {
    let (mut tcp_in, mut unix_out) = (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
    let (mut tcp_out, mut unix_in) = (tcp, unix);
    std::thread::spawn(move || {
        let _ = copy_until_closed(&mut tcp_in, &mut unix_out);
        let _ = unix_out.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = copy_until_closed(&mut unix_in, &mut tcp_out);
        let _ = tcp_out.shutdown(Shutdown::Write);
    });
}

fn copy_until_closed(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<u64> {
    std::io::copy(from, to)
}

/// A tcpdump on this machine's network namespace (all its interfaces, the
/// run's bridges among them), run from the server image in a container on
/// the host's network: its output lines arrive on `stdout` of the child.
/// Removed when dropped, and it ends by itself after `limit`.
pub struct HostCapture {
    pub child: std::process::Child,
    name: String,
}

impl HostCapture {
    pub fn start(tcpdump_args: &[&str], limit: Duration) -> HostCapture {
        let name = format!(
            "sp-capture-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let child = Command::new("docker")
            .args(["run", "--rm", "--name", &name, "--network", "host"])
            .args(["--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN"])
            .arg(server_image())
            .args(["timeout", &limit.as_secs().to_string(), "tcpdump"])
            .args(tcpdump_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker run tcpdump");
        HostCapture { child, name }
    }
}

impl Drop for HostCapture {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
