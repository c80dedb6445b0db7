//! Shells kept open on a host, so a command costs a fork in the container
//! instead of a new exec through the engine.
//!
//! Each exec the engine starts goes through dockerd, containerd, a shim and
//! runc: about 50 ms of the machine's CPU on our 2-core machines (an exec
//! created and started through the API, 50 times, less the client's own
//! share), against about 2.5 ms for the same command written to a shell
//! that is already open (2026-11-30). A check polls the VIP's holders every
//! 20 ms and a stack start runs a hundred commands, so the engine's share
//! was most of the CPU a run used and slowed every service start beside it.
//!
//! A command still runs as `sh -c <cmd>` with no input, as a fresh exec
//! would, in a session of its own (a `kill 0` in a user's script ends that
//! script, not the shell); its standard output, standard error and exit
//! status come back separately, each stream ended by a marker line of its own.

use std::pin::Pin;

use futures::{FutureExt as _, Stream, StreamExt as _};
use testcontainers::bollard::Docker;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::ExecOutput;

type Output =
    Pin<Box<dyn Stream<Item = Result<LogOutput, testcontainers::bollard::errors::Error>> + Send>>;

/// How many idle shells a host keeps; more at once are closed after use.
const KEEP_IDLE: usize = 6;

/// One open `sh` on a host, reading commands from its input.
pub(crate) struct Shell {
    input: Pin<Box<dyn AsyncWrite + Send>>,
    output: Output,
}

/// How a command on a shell went wrong.
pub(crate) enum ShellError {
    /// The engine refused to open a shell (the host is stopped, say).
    Open(testcontainers::bollard::errors::Error),
    /// The shell ended before it said the command had ended: `quiet` when
    /// the command printed nothing, as on a shell that died while idle.
    Ended { quiet: bool, partial: ExecOutput },
}

impl Shell {
    /// Opens a shell on `container` (one exec, kept).
    pub(crate) async fn open(docker: &Docker, container: &str) -> Result<Shell, ShellError> {
        let opts = CreateExecOptions {
            cmd: Some(vec!["sh"]),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = docker
            .create_exec(container, opts)
            .await
            .map_err(ShellError::Open)?;
        match docker
            .start_exec(&exec.id, None)
            .await
            .map_err(ShellError::Open)?
        {
            StartExecResults::Attached { output, input } => Ok(Shell { input, output }),
            StartExecResults::Detached => Err(ShellError::Ended {
                quiet: true,
                partial: ExecOutput {
                    code: -1,
                    stdout: String::new(),
                    stderr: String::new(),
                },
            }),
        }
    }

    /// Whether it can take a command: its process has not ended, and it has
    /// printed nothing since its last command (a leftover would be read as
    /// the next command's output).
    fn idle_and_alive(&mut self) -> bool {
        self.output.next().now_or_never().is_none()
    }

    /// Runs `sh -c cmd` with no input, in a session of its own, and returns how it ended.
    pub(crate) async fn run(&mut self, cmd: &str) -> Result<ExecOutput, ShellError> {
        let marker = format!("__stackproof_end_{:016x}", rand::random::<u64>());
        // The newline before each marker ends a last line that has none; it
        // is taken off again below.
        let script = format!(
            "setsid -w sh -c '{}' </dev/null; c=$?; printf '\\n{marker} %d\\n' \"$c\"; printf '\\n{marker}\\n' >&2\n",
            cmd.replace('\'', r"'\''")
        );
        let ended = |stdout: &[u8], stderr: &[u8]| ShellError::Ended {
            quiet: stdout.is_empty() && stderr.is_empty(),
            partial: ExecOutput {
                code: -1,
                stdout: String::from_utf8_lossy(stdout).into_owned(),
                stderr: String::from_utf8_lossy(stderr).into_owned(),
            },
        };
        if self.input.write_all(script.as_bytes()).await.is_err()
            || self.input.flush().await.is_err()
        {
            return Err(ended(&[], &[]));
        }
        let out_end = format!("\n{marker} ");
        let err_end = format!("\n{marker}\n");
        let (mut stdout, mut stderr) = (Vec::<u8>::new(), Vec::<u8>::new());
        let (mut code, mut err_done) = (None::<i64>, false);
        while code.is_none() || !err_done {
            match self.output.next().await {
                Some(Ok(LogOutput::StdErr { message })) => {
                    stderr.extend_from_slice(&message);
                    if !err_done && stderr.ends_with(err_end.as_bytes()) {
                        stderr.truncate(stderr.len() - err_end.len());
                        err_done = true;
                    }
                }
                Some(Ok(other)) => {
                    stdout.extend_from_slice(&other.into_bytes());
                    if code.is_none()
                        && stdout.ends_with(b"\n")
                        && let Some(at) = find_in_tail(&stdout, out_end.as_bytes())
                    {
                        let status = &stdout[at + out_end.len()..stdout.len() - 1];
                        if let Some(c) = std::str::from_utf8(status)
                            .ok()
                            .and_then(|s| s.parse().ok())
                        {
                            code = Some(c);
                            stdout.truncate(at);
                        }
                    }
                }
                Some(Err(_)) | None => return Err(ended(&stdout, &stderr)),
            }
        }
        Ok(ExecOutput {
            code: code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

/// Where `marker` starts in the last line of `out` (a marker and a status).
fn find_in_tail(out: &[u8], marker: &[u8]) -> Option<usize> {
    let from = out.len().saturating_sub(marker.len() + 24);
    out[from..]
        .windows(marker.len())
        .rposition(|w| w == marker)
        .map(|i| from + i)
}

/// A host's idle shells, shared by every copy of its [`super::Host`].
#[derive(Default)]
pub(crate) struct Shells(std::sync::Mutex<Vec<Shell>>);

impl std::fmt::Debug for Shells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|v| v.len()).unwrap_or(0);
        write!(f, "Shells({n} idle)")
    }
}

impl Shells {
    /// An idle shell that can take a command; dead ones are dropped.
    pub(crate) fn take(&self) -> Option<Shell> {
        let mut idle = self.0.lock().expect("shells lock");
        while let Some(mut s) = idle.pop() {
            if s.idle_and_alive() {
                return Some(s);
            }
        }
        None
    }

    /// Back for the next command, unless enough are idle.
    pub(crate) fn put_back(&self, shell: Shell) {
        let mut idle = self.0.lock().expect("shells lock");
        if idle.len() < KEEP_IDLE {
            idle.push(shell);
        }
    }

    /// Closes every idle shell (the host is stopping: they end with it).
    pub(crate) fn close_all(&self) {
        self.0.lock().expect("shells lock").clear();
    }
}
