//! Images, built here from Debian's packages: no registry is needed.
//!
//! One server image per platform (a Debian release, see [`crate::Platform`]),
//! from the one recipe in `fixtures/images/server/` (the packages of every
//! service, the files dpkg leaves out, the steps before and after the
//! install), with the platform's names filled in (`php{{ platform.php }}-fpm`).
//! When the engine has the platform's Debian image (`debian:trixie-slim`) or
//! can pull it, the recipe's Dockerfile builds on it; otherwise (no
//! registry, as on our machines) one `mmdebstrap` pass of the platform's
//! suite installs every package and the result is imported as the image:
//! one download and one install. The tag is a hash of the recipe, the
//! platform and the base, reused whenever it exists: a warm run builds nothing.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use testcontainers::bollard::Docker;
use testcontainers::bollard::body_full;
use testcontainers::bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder,
};

use crate::error::{Error, Result};
use crate::fixtures::Fixtures;
/// The fixture folder holding the server image's recipe.
pub(crate) const SERVER_RECIPE: &str = "images/server";
/// How long a pull may try before we conclude no registry is reachable.
/// A reachable registry answers within seconds; an unreachable one fails
/// at DNS or connect, so this only bounds a hanging proxy.
const PULL_DEADLINE: Duration = Duration::from_secs(20);

/// Where build progress goes: a spinner on a terminal, plain lines otherwise (CI logs).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    /// Packages apt-get said it installs, and how many are set up so far.
    packages: std::cell::Cell<(u64, u64)>,
}

impl Progress {
    fn new(what: &str) -> Self {
        let started = Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed}] {prefix}: {wide_msg}",
                )
                .expect("static template"),
            );
            bar.set_prefix(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            Progress {
                bar: Some(bar),
                started,
                packages: Default::default(),
            }
        } else {
            eprintln!("stackproof: {what}");
            Progress {
                bar: None,
                started,
                packages: Default::default(),
            }
        }
    }

    fn step(&self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        // apt-get's own count ("250 newly installed"), then one "Setting up <pkg>" each.
        if let Some(n) = line
            .split(" newly installed")
            .next()
            .filter(|_| line.contains(" newly installed"))
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            self.packages.set((n, 0));
            if let Some(bar) = &self.bar {
                bar.set_length(n);
                bar.set_position(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "[{elapsed}] {prefix}: [{bar:30}] {pos}/{len} packages, {wide_msg}",
                    )
                    .expect("static template")
                    .progress_chars("=> "),
                );
            }
        }
        if let Some(pkg) = line.strip_prefix("Setting up ") {
            let (total, done) = self.packages.get();
            let done = done + 1;
            self.packages.set((total, done));
            let pkg = pkg.split(' ').next().unwrap_or(pkg);
            match &self.bar {
                Some(bar) => {
                    bar.set_position(done);
                    bar.set_message(format!("setting up {pkg}"));
                }
                // On CI, a line at every tenth of the packages.
                None if total > 0 && (done * 10 / total) != ((done - 1) * 10 / total) => eprintln!(
                    "stackproof:   [{:>3}s] {done}/{total} packages set up ({pkg})",
                    self.started.elapsed().as_secs()
                ),
                None => {}
            }
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            // On CI, only the builder's and mmdebstrap's step lines: enough to see where it is.
            None if line.starts_with("Step ") || line.starts_with("I: ") => {
                eprintln!(
                    "stackproof:   [{:>3}s] {line}",
                    self.started.elapsed().as_secs()
                )
            }
            None => {}
        }
    }

    fn done(self, what: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        match self.bar {
            Some(bar) => bar.finish_with_message(format!("{what} in {secs:.1} s")),
            None => eprintln!("stackproof: {what} in {secs:.1} s"),
        }
    }
}

/// What [`ensure_server_image`] did, for the benchmark and the checklist.
#[derive(Debug, Clone)]
pub struct ImageReport {
    /// The server image tag.
    pub tag: String,
    /// What it was built from: a base image, or `ONE_PASS` (one mmdebstrap pass).
    pub base: String,
    /// Whether anything was built (false on a warm run).
    pub built: bool,
    /// Time spent.
    pub elapsed: Duration,
    /// The image's size as the engine counts it, in bytes.
    pub size: u64,
}

/// How the server image is made when the engine has no Debian image: one
/// mmdebstrap pass over Debian's packages, imported as the image itself.
pub(crate) const ONE_PASS: &str = "mmdebstrap (one pass)";
/// How long the one pass may take: about a minute here, ten on a slow mirror.
const ONE_PASS_DEADLINE: Duration = Duration::from_secs(20 * 60);

/// Makes sure the server image for the current recipe exists, building it
/// when it does not: on a Debian base image when the engine has one (or can
/// pull it), otherwise in one mmdebstrap pass.
pub async fn ensure_server_image(docker: &Docker, fixtures: &Fixtures) -> Result<ImageReport> {
    let started = Instant::now();
    let (recipe, base, hash) = planned(docker, fixtures).await?;
    let tag = format!("stackproof/server:{hash}");
    let report = |built: bool, size: u64| ImageReport {
        tag: tag.clone(),
        base: base.clone().unwrap_or_else(|| ONE_PASS.to_string()),
        built,
        elapsed: started.elapsed(),
        size,
    };
    if let Ok(image) = docker.inspect_image(&tag).await {
        return Ok(report(false, image.size.unwrap_or(0) as u64));
    }
    // Tests and processes that start at once on an empty engine all come
    // here: one builds (and installs mmdebstrap), the others wait for it and
    // then find its image.
    let _lock = BuildLock::acquire(&tag).await?;
    if let Ok(image) = docker.inspect_image(&tag).await {
        return Ok(report(false, image.size.unwrap_or(0) as u64));
    }
    match &base {
        Some(base) => build_on_base(docker, &recipe, base, &tag, &hash).await?,
        None => build_in_one_pass(docker, &recipe, &tag, &hash).await?,
    }
    let image = docker
        .inspect_image(&tag)
        .await
        .map_err(|e| Error::ImageBuild {
            image: tag.clone(),
            detail: format!("the build ended without an image: {e}"),
        })?;
    Ok(report(true, image.size.unwrap_or(0) as u64))
}

/// The recipe for the fixtures' platform, the base it would be built on
/// (none: one mmdebstrap pass) and its hash, the image's tag.
async fn planned(docker: &Docker, fixtures: &Fixtures) -> Result<(Recipe, Option<String>, String)> {
    let recipe = Recipe::read(fixtures)?;
    let base = choose_base(docker, &recipe.platform).await?;
    let base_id = match &base {
        Some(base) => {
            docker
                .inspect_image(base)
                .await
                .map_err(Error::docker(format!("inspect base image `{base}`")))?
                .id
        }
        None => None,
    };
    let hash = recipe.hash(base_id.as_deref().unwrap_or(ONE_PASS));
    Ok((recipe, base, hash))
}

/// How long a process waits for another one's build: the longest a build
/// may take, and a minute more.
const BUILD_LOCK_DEADLINE: Duration = Duration::from_secs(ONE_PASS_DEADLINE.as_secs() + 60);

/// This machine's one image build at a time, across processes: an
/// exclusive `flock` on a file in the temporary directory, released when
/// the guard is dropped or the process dies (the kernel drops it then).
pub struct BuildLock {
    _file: std::fs::File,
}

impl BuildLock {
    /// Waits (with a deadline) until no other process on this machine is
    /// building an image or installing packages for one, then holds that.
    pub async fn acquire(what: &str) -> Result<BuildLock> {
        let waiting = BuildLock::waiting(what)?;
        let started = Instant::now();
        loop {
            if let Some(lock) = waiting.try_take(started)? {
                return Ok(lock);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// As [`BuildLock::acquire`], for code with no async runtime (a test
    /// installing a tool with apt-get, which must not race an install here).
    pub fn acquire_blocking(what: &str) -> Result<BuildLock> {
        let waiting = BuildLock::waiting(what)?;
        let started = Instant::now();
        loop {
            if let Some(lock) = waiting.try_take(started)? {
                return Ok(lock);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn waiting(what: &str) -> Result<WaitingForLock> {
        let path = std::env::temp_dir().join("stackproof-image-build.lock");
        // Writable when we may create it; read-only is enough for flock when
        // another user made it.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .or_else(|_| std::fs::File::open(&path))
            .map_err(Error::io(format!(
                "open the image build lock `{}`",
                path.display()
            )))?;
        Ok(WaitingForLock {
            file: std::cell::Cell::new(Some(file)),
            path,
            what: what.to_string(),
            said: std::cell::Cell::new(false),
        })
    }
}

/// A lock file opened, not yet held.
struct WaitingForLock {
    file: std::cell::Cell<Option<std::fs::File>>,
    path: std::path::PathBuf,
    what: String,
    said: std::cell::Cell<bool>,
}

impl WaitingForLock {
    /// The lock if it is free now; `None` to try again; an error past the deadline.
    fn try_take(&self, started: Instant) -> Result<Option<BuildLock>> {
        let file = self.file.take().expect("taken once");
        match file.try_lock() {
            Ok(()) => return Ok(Some(BuildLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => self.file.set(Some(file)),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("lock `{}`", self.path.display()))(e));
            }
        }
        if !self.said.replace(true) {
            eprintln!(
                "stackproof: another process is building an image on this machine; `{}` waits for it",
                self.what
            );
        }
        if started.elapsed() > BUILD_LOCK_DEADLINE {
            return Err(Error::ImageBuild {
                image: self.what.clone(),
                detail: format!(
                    "another process held the build lock `{}` for {} s: if no build is running, remove the file",
                    self.path.display(),
                    BUILD_LOCK_DEADLINE.as_secs()
                ),
            });
        }
        Ok(None)
    }
}

/// The server image's recipe, `fixtures/images/server/`: the packages, the
/// files dpkg leaves out, the steps before and after the install, and the
/// Dockerfile that applies them on a base image.
struct Recipe {
    /// Relative path and the file on disk, in a stable order (the
    /// platforms file left out: only the run's platform goes in).
    files: std::collections::BTreeMap<std::path::PathBuf, std::path::PathBuf>,
    /// The platform it is built for: its suite, base image and names.
    platform: crate::platform::Platform,
}

impl Recipe {
    fn read(fixtures: &Fixtures) -> Result<Recipe> {
        let platform = fixtures.platform()?;
        let mut files = fixtures.walk(SERVER_RECIPE)?;
        files.remove(std::path::Path::new("platforms.toml"));
        for needed in [
            "packages",
            "dpkg-excludes",
            "policy-rc.d",
            "after-install.sh",
        ] {
            if !files.contains_key(std::path::Path::new(needed)) {
                return Err(Error::Fixture {
                    path: std::path::Path::new(SERVER_RECIPE).join(needed),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the server image's recipe needs it",
                    ),
                });
            }
        }
        Ok(Recipe { files, platform })
    }

    fn file(&self, name: &str) -> &std::path::Path {
        &self.files[std::path::Path::new(name)]
    }

    /// One of its files as the platform has it (`{{ platform.php }}` filled).
    fn text(&self, name: &str) -> Result<String> {
        let path = self.file(name);
        let text = std::fs::read_to_string(path).map_err(|source| Error::Fixture {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(self.platform.fill(&text))
    }

    /// The lines of one of its files, without comments and blank lines.
    fn lines(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .text(name)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect())
    }

    /// A short hash of every file and of what it is built on: the tag.
    fn hash(&self, built_on: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(built_on.as_bytes());
        hasher.update(self.platform.suite().as_bytes());
        for (rel, path) in &self.files {
            hasher.update(rel.to_string_lossy().as_bytes());
            let text = std::fs::read(path).unwrap_or_default();
            match std::str::from_utf8(&text) {
                Ok(text) => hasher.update(self.platform.fill(text).as_bytes()),
                Err(_) => hasher.update(&text),
            }
        }
        hasher
            .finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The recipe as a build context for the engine's builder.
    fn context(&self) -> Result<Vec<u8>> {
        let mut context = tar::Builder::new(Vec::new());
        for (rel, path) in &self.files {
            let bytes = std::fs::read(path).map_err(|source| Error::Fixture {
                path: path.clone(),
                source,
            })?;
            // The platform's names filled in, as the one-pass build has them.
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => self.platform.fill(&text).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            context
                .append_data(&mut header, rel, bytes.as_slice())
                .map_err(Error::io("pack the image recipe"))?;
        }
        context
            .into_inner()
            .map_err(Error::io("pack the image recipe"))
    }
}

/// The recipe's Dockerfile on `base`, by the engine's builder.
async fn build_on_base(
    docker: &Docker,
    recipe: &Recipe,
    base: &str,
    tag: &str,
    hash: &str,
) -> Result<()> {
    let context = recipe.context()?;
    let progress = Progress::new(&format!(
        "building `{tag}` on `{base}` (about a minute, once)"
    ));
    let opts = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&HashMap::from([("BASE", base)]))
        .labels(&HashMap::from([("stackproof.recipe", hash)]))
        .build();
    let mut stream = docker.build_image(opts, None, Some(body_full(context.into())));
    let mut tail: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| Error::ImageBuild {
            image: tag.to_string(),
            detail: format!("{e}\n{}", tail.join("")),
        })?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::ImageBuild {
                image: tag.to_string(),
                detail: format!("{err}\nlast lines:\n{}", tail.join("")),
            });
        }
        if let Some(line) = info.stream {
            progress.step(&line);
            tail.push(line);
            if tail.len() > 30 {
                tail.remove(0);
            }
        }
    }
    progress.done(&format!("built `{tag}`"));
    Ok(())
}

/// Picks the base image for `platform`: STACKPROOF_BASE_IMAGE_<PLATFORM>
/// (`STACKPROOF_BASE_IMAGE_DEBIAN_13`), then STACKPROOF_BASE_IMAGE, then
/// the platform's Debian image (`debian:trixie-slim`) when present or
/// pullable. `None`: there is none, build in one pass.
async fn choose_base(
    docker: &Docker,
    platform: &crate::platform::Platform,
) -> Result<Option<String>> {
    let own = format!(
        "STACKPROOF_BASE_IMAGE_{}",
        platform.name().to_uppercase().replace('-', "_")
    );
    for var in [own.as_str(), "STACKPROOF_BASE_IMAGE"] {
        if let Ok(base) = std::env::var(var) {
            docker
                .inspect_image(&base)
                .await
                .map_err(Error::docker(format!(
                    "find {var} `{base}` in the engine (load or build it first)"
                )))?;
            return Ok(Some(base));
        }
    }
    let slim = platform.base_image();
    if docker.inspect_image(slim).await.is_ok() || try_pull(docker, slim).await {
        return Ok(Some(slim.to_string()));
    }
    Ok(None)
}

async fn try_pull(docker: &Docker, image: &str) -> bool {
    let opts = CreateImageOptionsBuilder::new().from_image(image).build();
    let pull = async {
        let mut stream = docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            if item.is_err() {
                return false;
            }
        }
        true
    };
    let pulled = tokio::time::timeout(PULL_DEADLINE, pull)
        .await
        .unwrap_or(false);
    pulled && docker.inspect_image(image).await.is_ok()
}

/// The server image in one pass: `mmdebstrap --variant=minbase` with every
/// package of the recipe included, dpkg's path filters applied as it
/// installs, written to a tarball and imported as the image. One download
/// and one install, where a base image and a build on it were two.
async fn build_in_one_pass(docker: &Docker, recipe: &Recipe, tag: &str, hash: &str) -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    if !has_mmdebstrap() {
        install_mmdebstrap().await?;
    }
    let progress = Progress::new(&format!(
        "no registry: building `{tag}` from {} packages with mmdebstrap (about a minute, once)",
        recipe.platform.release()
    ));
    let scratch = crate::tempdir::TempDir::new("image");
    std::fs::create_dir_all(scratch.path())
        .map_err(Error::io(format!("create `{}`", scratch.path().display())))?;
    let tarball = scratch.path().join("server.tar");
    let mut cmd = tokio::process::Command::new("mmdebstrap");
    cmd.args([
        "--variant=minbase",
        "--aptopt=APT::Install-Recommends \"false\"",
    ]);
    for filter in recipe.lines("dpkg-excludes")? {
        // Kept in the image too (mmdebstrap writes them to dpkg.cfg.d).
        cmd.arg(format!("--dpkgopt={filter}"));
    }
    let file = |name: &str| recipe.file(name).display().to_string();
    cmd.arg(format!(
        "--essential-hook=copy-in {} /usr/sbin",
        file("policy-rc.d")
    ))
    .arg("--essential-hook=chmod 755 \"$1/usr/sbin/policy-rc.d\"")
    .arg(format!("--include={}", recipe.lines("packages")?.join(",")))
    .arg("--customize-hook=mkdir -p \"$1/tmp/recipe\"")
    .arg(format!(
        "--customize-hook=copy-in {} /tmp/recipe",
        file("after-install.sh")
    ))
    .arg("--customize-hook=chroot \"$1\" sh /tmp/recipe/after-install.sh")
    .args([recipe.platform.suite().as_ref(), tarball.as_os_str()])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(Error::io("run mmdebstrap"))?;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut tail: Vec<String> = Vec::new();
    // A mirror that stops answering would hold the run forever: a deadline
    // well past the minute a build takes (the child is killed on drop).
    let finished = tokio::time::timeout(ONE_PASS_DEADLINE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            progress.step(&line);
            tail.push(line);
            if tail.len() > 30 {
                tail.remove(0);
            }
        }
        child.wait().await
    })
    .await;
    let status = match finished {
        Ok(status) => status.map_err(Error::io("run mmdebstrap"))?,
        Err(_) => {
            return Err(Error::ImageBuild {
                image: tag.to_string(),
                detail: format!(
                    "mmdebstrap did not finish within {ONE_PASS_DEADLINE:?} (is the Debian mirror reachable?); its last lines:\n{}",
                    tail.join("\n")
                ),
            });
        }
    };
    if !status.success() {
        return Err(Error::ImageBuild {
            image: tag.to_string(),
            detail: format!(
                "mmdebstrap failed ({status}); its last lines:\n{}",
                tail.join("\n")
            ),
        });
    }
    progress.step("importing the root file system");
    let (repo, version) = tag.split_once(':').expect("repo:tag");
    let opts = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .changes(vec![
            "ENV DEBIAN_FRONTEND=noninteractive".to_string(),
            format!("LABEL stackproof.recipe={hash}"),
        ])
        .build();
    let body = tokio::fs::File::open(&tarball)
        .await
        .map_err(Error::io(format!("open `{}`", tarball.display())))?;
    let body = testcontainers::bollard::body_try_stream(tokio_util::io::ReaderStream::new(body));
    let mut stream = docker.create_image(Some(opts), Some(body), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| Error::ImageBuild {
            image: tag.to_string(),
            detail: e.to_string(),
        })?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::ImageBuild {
                image: tag.to_string(),
                detail: err,
            });
        }
    }
    progress.done(&format!("built `{tag}`"));
    Ok(())
}

fn has_mmdebstrap() -> bool {
    matches!(
        std::process::Command::new("mmdebstrap").arg("--version").output(),
        Ok(o) if o.status.success()
    )
}

/// How packages can be installed here: as root directly, with passwordless
/// sudo, or not at all (`None`).
fn package_installer() -> Option<Vec<&'static str>> {
    use std::os::unix::fs::MetadataExt;
    let apt = std::process::Command::new("apt-get")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !apt {
        return None;
    }
    // The owner of /proc/self is this process's effective user.
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return Some(vec![]);
    }
    let sudo = std::process::Command::new("sudo")
        .args(["-n", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    sudo.then(|| vec!["sudo", "-n"])
}

/// Installs mmdebstrap with apt-get when this process may (root or
/// passwordless sudo), saying so in one line; otherwise the error gives the
/// exact command. Needed once, on a machine whose engine has no Debian image.
async fn install_mmdebstrap() -> Result<()> {
    let Some(prefix) = package_installer() else {
        return Err(Error::NoBootstrapTool);
    };
    let progress = Progress::new(&format!(
        "no registry and no Debian image: installing `mmdebstrap` with apt-get{} to build \
         the server image from Debian's packages (once)",
        if prefix.is_empty() { "" } else { " (sudo)" }
    ));
    for args in [
        &["apt-get", "update", "-qq"][..],
        // Another apt (unattended upgrades) may hold dpkg's lock: wait for it.
        &[
            "apt-get",
            "-o",
            "DPkg::Lock::Timeout=120",
            "install",
            "-y",
            "-qq",
            "mmdebstrap",
        ][..],
    ] {
        progress.step(&args.join(" "));
        let mut cmd = tokio::process::Command::new(prefix.first().copied().unwrap_or(args[0]));
        cmd.args(prefix.iter().skip(1))
            .args(if prefix.is_empty() { &args[1..] } else { args })
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null());
        let out = cmd.output().await.map_err(Error::io("run apt-get"))?;
        if !out.status.success() {
            return Err(Error::ImageBuild {
                image: "the server image".into(),
                detail: format!(
                    "`{}` failed (install mmdebstrap yourself, or set STACKPROOF_BASE_IMAGE):\n{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
    }
    if !has_mmdebstrap() {
        return Err(Error::NoBootstrapTool);
    }
    progress.done("installed mmdebstrap");
    Ok(())
}

/// Removes every `stackproof/*` image (`stackproof bench --cold`).
///
/// By tag, children first: the tools image is built FROM a server image,
/// and an image ID with dependent children cannot be removed, not even
/// forced. Removing the last child's tag deletes its untagged parents too.
pub(crate) async fn remove_images(docker: &Docker) -> Result<()> {
    use testcontainers::bollard::query_parameters::{
        ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
    };
    let filter = HashMap::from([("reference", vec!["stackproof/*"])]);
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(Error::docker("list stackproof images"))?;
    let mut tags: Vec<String> = images.into_iter().flat_map(|i| i.repo_tags).collect();
    // `stackproof/tools:*` sorts after `stackproof/server:*`: reversed, children go first.
    tags.sort_unstable_by(|a, b| b.cmp(a));
    for tag in tags {
        let opts = RemoveImageOptionsBuilder::new().force(true).build();
        docker
            .remove_image(&tag, Some(opts), None)
            .await
            .map_err(Error::docker(format!("remove image `{tag}`")))?;
    }
    Ok(())
}

/// The file `stackproof images --save` writes for the current recipe.
fn saved_file(dir: &std::path::Path, tag: &str) -> std::path::PathBuf {
    dir.join(format!("{}.tar", tag.replace(['/', ':'], "-")))
}

/// Saves the current server image (and its base, if it has one) into `dir` (one tar, as
/// `docker save` writes it), for a CI cache; returns the file and its size.
pub(crate) async fn save(
    docker: &Docker,
    fixtures: &Fixtures,
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, u64)> {
    use tokio::io::AsyncWriteExt;
    let image = ensure_server_image(docker, fixtures).await?;
    std::fs::create_dir_all(dir).map_err(Error::io(format!("create `{}`", dir.display())))?;
    let path = saved_file(dir, &image.tag);
    let partial = path.with_extension("tar.partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(Error::io(format!("create `{}`", partial.display())))?;
    let progress = Progress::new(&format!(
        "saving `{}` and `{}` to `{}`",
        image.tag,
        image.base,
        path.display()
    ));
    let mut names = vec![image.tag.as_str()];
    if image.base != ONE_PASS {
        names.push(image.base.as_str());
    }
    let mut stream = docker.export_images(&names);
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Error::docker(format!("save image `{}`", image.tag)))?;
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(Error::io(format!("write `{}`", partial.display())))?;
    }
    file.flush()
        .await
        .map_err(Error::io(format!("write `{}`", partial.display())))?;
    std::fs::rename(&partial, &path)
        .map_err(Error::io(format!("rename to `{}`", path.display())))?;
    progress.done(&format!("saved {:.0} MiB", size as f64 / 1048576.0));
    Ok((path, size))
}

/// Loads every `*.tar` that `save` wrote into `dir` (a CI cache), so the
/// next check finds its image and builds nothing. Returns the files loaded.
pub(crate) async fn load(
    docker: &Docker,
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>> {
    use testcontainers::bollard::query_parameters::ImportImageOptionsBuilder;
    let entries = std::fs::read_dir(dir).map_err(Error::io(format!("read `{}`", dir.display())))?;
    let mut loaded = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "tar") {
            continue;
        }
        let progress = Progress::new(&format!("loading `{}`", path.display()));
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(Error::io(format!("open `{}`", path.display())))?;
        let opts = ImportImageOptionsBuilder::new().quiet(true).build();
        let mut stream =
            docker.import_image_stream(opts, tokio_util::io::ReaderStream::new(file), None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(Error::docker(format!("load `{}`", path.display())))?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(Error::ImageBuild {
                    image: path.display().to_string(),
                    detail: err,
                });
            }
        }
        progress.done(&format!("loaded `{}`", path.display()));
        loaded.push(path);
    }
    Ok(loaded)
}

/// The version of every server the image installed, in each server's own
/// words (its service file's `version` command, run in a throwaway
/// container of `tag` on no network), one line per server, by service.
pub(crate) async fn server_versions(
    docker: &Docker,
    fixtures: &Fixtures,
    tag: &str,
) -> Result<Vec<(String, String)>> {
    crate::reaper::ensure(docker, tag).await;
    let run = crate::docker::RunId::new();
    let _guard = crate::docker::RunGuard::new(&run);
    let host = crate::host::Host::create_isolated(docker, &run, tag, "versions").await?;
    let mut out: Vec<(String, String)> = Vec::new();
    for name in crate::spec::service_names(fixtures) {
        let Some(cmd) = crate::spec::ServiceSpec::load(fixtures, &name)?.version else {
            continue;
        };
        let said = host.exec(&cmd).await?.combined();
        let said = said.lines().next().unwrap_or("").trim().to_string();
        // Two services of one server (mariadb, mariadb-primary) say it once.
        if !said.is_empty() && !out.iter().any(|(_, v)| *v == said) {
            out.push((name, said));
        }
    }
    Ok(out)
}

/// Removes server images of older recipes (each is about 1 GB) and the
/// test suites' tools images; keeps the current server image and any image
/// a container still uses. Returns the tags removed.
pub(crate) async fn prune(docker: &Docker, fixtures: &Fixtures) -> Result<Vec<String>> {
    use testcontainers::bollard::query_parameters::{
        ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
    };
    // Every platform's current image stays, built or not.
    let mut current = Vec::new();
    for name in fixtures.platform_names()? {
        let (_, _, hash) = planned(docker, &fixtures.clone().on_platform(&name)).await?;
        current.push(format!("stackproof/server:{hash}"));
    }
    let filter = HashMap::from([("reference", vec!["stackproof/server"])]);
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(Error::docker("list stackproof images"))?;
    // The test suites' tools images (`stackproof/tools:*`, about 1.6 GB,
    // built on a server image) are rebuilt on demand: all go.
    let tools_filter = HashMap::from([("reference", vec!["stackproof/tools"])]);
    let tools = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new()
                .filters(&tools_filter)
                .build(),
        ))
        .await
        .map_err(Error::docker("list stackproof tools images"))?;
    let mut removed = Vec::new();
    // Tools first: they are children of a server image, whose removal
    // waits for them. By tag, so a parent with children is only untagged.
    for image in tools.into_iter().chain(images) {
        if image.repo_tags.iter().any(|t| current.contains(t)) {
            continue;
        }
        for tag in &image.repo_tags {
            let opts = RemoveImageOptionsBuilder::new().build();
            // An image a container still uses stays: removing it is not ours to force.
            if docker.remove_image(tag, Some(opts), None).await.is_ok() {
                removed.push(tag.clone());
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_progress_counts_the_packages_apt_sets_up() {
        let p = super::Progress {
            bar: None,
            started: std::time::Instant::now(),
            packages: Default::default(),
        };
        p.step("0 upgraded, 250 newly installed, 0 to remove and 0 not upgraded.");
        assert_eq!(p.packages.get(), (250, 0));
        p.step("Setting up nginx-common (1.22.1-9+deb12u2) ...");
        p.step("Setting up haproxy (2.6.12-1+deb12u4) ...");
        assert_eq!(p.packages.get(), (250, 2));
    }
}
