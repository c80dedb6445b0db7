//! Errors, one variant per operation, each naming the thing it was about.
//!
//! Messages are lowercase and verb-first ("failed to start `apache` on host
//! `server-1`"); the underlying cause is attached with `#[source]` rather than
//! pasted into the text, so a reporter can print the chain.

use std::path::PathBuf;
use std::time::Duration;

use testcontainers::bollard::errors::Error as DockerError;

/// Everything that can go wrong while building, starting or checking a design.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Docker engine did not answer.
    #[error(
        "no Docker engine answers at `{endpoint}`: start one (`sudo systemctl start docker`, \
         or `sudo dockerd &` where there is no systemd) or point DOCKER_HOST at it"
    )]
    NoEngine {
        /// Where we looked.
        endpoint: String,
        /// What the client saw.
        #[source]
        source: DockerError,
    },

    /// An environment variable holds a value stackproof does not know.
    #[error("`{name}` is `{value}`: set it to {expected}, or unset it")]
    BadEnv {
        /// The variable.
        name: &'static str,
        /// What it holds.
        value: String,
        /// What it may hold.
        expected: &'static str,
    },

    /// A Docker API call failed.
    #[error("failed to {action}")]
    Docker {
        /// What we were doing, e.g. "create network `public`".
        action: String,
        /// The engine's answer.
        #[source]
        source: DockerError,
    },

    /// An image could not be built.
    #[error("failed to build image `{image}`: {detail}")]
    ImageBuild {
        /// The image tag.
        image: String,
        /// The builder's own last lines.
        detail: String,
    },

    /// The server image had to be built with mmdebstrap but it is not installed.
    #[error(
        "the engine has no Debian image of the run's platform (`debian:trixie-slim` for \
         debian-13) and cannot pull it, and `mmdebstrap` is not installed to build the server \
         image from Debian's packages (stackproof installs it itself only as root or with \
         passwordless sudo): run `sudo apt-get install mmdebstrap` and try again, or set \
         STACKPROOF_BASE_IMAGE_DEBIAN_13 (or _DEBIAN_12) to that release's image the engine has"
    )]
    NoBootstrapTool,

    /// A fixture file is missing or unreadable.
    #[error("failed to read fixture `{path}`")]
    Fixture {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A file of the user's (`--config`, `--script`, a submission) that is
    /// no configuration at all: empty, not text, far too big.
    #[error("`{path}`: {detail}")]
    UsersFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, and what to give instead.
        detail: String,
    },

    /// A fixture file is readable but not valid.
    #[error("invalid fixture `{path}`: {detail}")]
    InvalidFixture {
        /// The file.
        path: PathBuf,
        /// What is wrong, and how to fix it.
        detail: String,
    },

    /// A claim names a service on a host the design does not put it on
    /// (a design that moved its primary database to a host of its own).
    #[error("host `{host}` runs no `{service}` in this design ({})", if on.is_empty() { "no host does".to_string() } else { format!("it runs on {}", on.join(", ")) })]
    NotOnHost {
        /// The service.
        service: String,
        /// The host the claim names.
        host: String,
        /// The hosts that do run it.
        on: Vec<String>,
    },

    /// A server rejected its configuration.
    #[error(
        "`{service}` on host `{host}` ({version}) rejects its configuration (from `{file}`):\n$ {command}\n{output}"
    )]
    ConfigRejected {
        /// The service.
        service: String,
        /// The running server's version, in its own words (`HAProxy version 3.0.11-1+deb13u5 ...`).
        version: String,
        /// The host.
        host: String,
        /// The fixture file(s) the configuration came from.
        file: String,
        /// The server's own check command.
        command: String,
        /// What the check printed.
        output: String,
    },

    /// A service did not start: its start command failed, or it did not
    /// become ready (answer at all) within its deadline.
    #[error(
        "failed to start `{service}` on host `{host}`: it did not {what}{}{says}; \
         {}",
        waited.map(|w| format!(" within {w:?}")).unwrap_or_default(),
        last_log_lines(logs)
    )]
    ServiceStart {
        /// The service.
        service: String,
        /// The host.
        host: String,
        /// What readiness means for it, in words.
        what: String,
        /// How long we waited for it to become ready (none: its start command failed).
        waited: Option<Duration>,
        /// What the server itself says (its status command), introduced, or empty.
        says: String,
        /// The service's last log lines.
        logs: String,
    },

    /// A command inside a container failed.
    #[error("failed to run `{command}` on host `{host}` (exit {code}):\n{output}")]
    Exec {
        /// The host.
        host: String,
        /// The command.
        command: String,
        /// Its exit code.
        code: i64,
        /// Its combined output.
        output: String,
    },

    /// A wait ran out of time.
    #[error(
        "timed out after {waited:?} waiting for `{service}` on host `{host}` to {what}; \
         {}",
        last_log_lines(logs)
    )]
    Timeout {
        /// The host.
        host: String,
        /// The service (or `host` for the container itself).
        service: String,
        /// What we waited for.
        what: String,
        /// How long we waited.
        waited: Duration,
        /// The service's last log lines.
        logs: String,
    },

    /// A name that is not known.
    #[error("unknown {kind} `{name}`: known ones are {known}")]
    Unknown {
        /// "design", "claim", "host", "service", "mutant"...
        kind: &'static str,
        /// What was asked for.
        name: String,
        /// What exists.
        known: String,
    },

    /// Certificates could not be generated or written.
    #[error("failed to {action}")]
    Pki {
        /// What we were doing.
        action: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The run's DNS server could not start.
    #[error("failed to start the run's DNS server on `{addr}`")]
    Dns {
        /// The address it tried.
        addr: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The client could not be built.
    #[error("failed to build the HTTP client")]
    Client {
        /// The cause.
        #[source]
        source: reqwest::Error,
    },

    /// Local I/O failed (temporary files, reports).
    #[error("failed to {action}")]
    Io {
        /// What we were doing.
        action: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a Docker error with what we were doing.
    pub fn docker(action: impl Into<String>) -> impl FnOnce(DockerError) -> Error {
        let action = action.into();
        move |source| Error::Docker { action, source }
    }

    /// Wraps an I/O error with what we were doing.
    pub fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }

    /// Whether stackproof itself failed (the engine, the image, its own
    /// files), so a later try may go through: not what a user's files or
    /// design made happen (a server refusing its configuration, a service
    /// that never became ready, a script that failed), which a retry repeats.
    pub fn is_stackproofs_own(&self) -> bool {
        matches!(
            self,
            Error::NoEngine { .. }
                | Error::BadEnv { .. }
                | Error::Docker { .. }
                | Error::ImageBuild { .. }
                | Error::NoBootstrapTool
                | Error::Fixture { .. }
                | Error::Pki { .. }
                | Error::Io { .. }
        )
    }

    /// The whole chain of causes, one per line, for printing.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(&format!("\n  caused by: {c}"));
            cause = c.source();
        }
        out
    }
}

/// "its last log lines:" and the lines, or what it means that there are
/// none: an empty log is no evidence, so it is never shown as if it were.
fn last_log_lines(logs: &str) -> String {
    if logs
        .lines()
        .all(|l| l.trim().is_empty() || l.starts_with("--- "))
    {
        "it wrote no log lines the run can read (its file names no log, or it stopped before writing one)".into()
    } else {
        format!("its last log lines:\n{logs}")
    }
}
