//! Bad input gets one clear message; designs written outside the repo run.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_config_the_server_rejects_stops_the_run_with_the_servers_own_words() {
    let dir = std::env::temp_dir().join(format!("sp-bad-{}", rand::random::<u32>()));
    std::fs::create_dir_all(dir.join("services/apache")).unwrap();
    std::fs::write(
        dir.join("services/apache/site.conf"),
        "<VirtualHost *:80>\n    NoSuchDirective on\n</VirtualHost>\n",
    )
    .unwrap();
    let fixtures = stackproof::Design::fixtures_of("simple_web")
        .unwrap()
        .with_overlay(dir.clone())
        .unwrap();
    let err = Stack::start("simple_web", fixtures).await.unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = err.to_string();
    assert!(matches!(err, Error::ConfigRejected { .. }), "{text}");
    assert!(
        text.contains("apache2ctl -t"),
        "the server's own check is not quoted: {text}"
    );
    assert!(
        text.contains("NoSuchDirective"),
        "the server's complaint is not quoted: {text}"
    );
    assert!(
        text.contains(&dir.join("services/apache/site.conf").display().to_string()),
        "the file is not named: {text}"
    );
    // Only the file that is not the library's: the service's own built-in
    // files are not the cause.
    let from = text.lines().next().unwrap_or_default();
    assert!(
        !from.contains(&Fixtures::builtin_dir().display().to_string()),
        "built-in files are named beside the user's: {from}"
    );
}

#[test]
fn unknown_names_say_what_exists() {
    let e = stackproof::Design::load("lamp")
        .map(|d| d.claims().to_vec())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown design `lamp`") && e.contains("simple_web"),
        "{e}"
    );
    // Every design of the catalogue has claims, each named under its design.
    for design in stackproof::Design::builtin_names() {
        let design = design.as_str();
        let claims = stackproof::Design::load(design)
            .map(|d| d.claims().to_vec())
            .unwrap();
        assert!(!claims.is_empty(), "{design} has no claims");
        assert!(
            claims
                .iter()
                .all(|c| c.id().starts_with(&format!("{design}."))),
            "{design}: {claims:?}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["check", "simple_web", "--claim", "simple_web.nope"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("unknown claim `simple_web.nope`") && err.contains("simple_web.issue.spof"),
        "{err}"
    );
    // `list` names every design with its claims and mutants, none "not implemented".
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .arg("list")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    for design in stackproof::Design::builtin_names() {
        assert!(listed.contains(&design), "{listed}");
    }
    assert!(!listed.contains("not implemented"), "{listed}");
}

#[test]
fn no_engine_gets_one_line_saying_how_to_start_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["check", "simple_web"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no Docker engine answers at `unix:///nonexistent/docker.sock`"),
        "{err}"
    );
    assert!(err.contains("systemctl start docker"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_design_written_outside_the_repo_runs_from_its_folder_with_a_skipped_claim() {
    let base = outside_the_repo("own-design");
    let folder = base.join("my_site");
    let bin = env!("CARGO_BIN_EXE_stackproof");
    new_design(&folder);
    // The new design is the user's: no built-in mutant (each patches the
    // built-in's files), and its summary says where it started.
    assert!(
        !folder.join("mutants").exists(),
        "no built-in mutant copied"
    );
    let design = std::fs::read_to_string(folder.join("design.toml")).unwrap();
    assert!(
        design.starts_with(
            "# my_site: a design of your own, started from the built-in `simple_web_nginx`"
        ) && design.contains("summary = \"my_site (so far simple_web_nginx's: one server:"),
        "{design}"
    );
    // A user skips one sentence, with the reason they give.
    let claims = folder.join("claims.toml");
    let text = std::fs::read_to_string(&claims).unwrap().replace(
        "kind = \"outage.restart_downtime\"",
        "kind = \"outage.restart_downtime\"\nskip = \"we deploy with reloads only\"",
    );
    std::fs::write(&claims, text).unwrap();
    // `new` refuses to touch what exists.
    let again = Command::new(bin)
        .args(["new", folder.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let out = Command::new(bin)
        .args(["check", "./my_site"])
        .current_dir(&base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    std::fs::remove_dir_all(&base).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PASS  my_site.web.static_by_nginx"),
        "claims are named by the folder: {stdout}"
    );
    assert!(
        stdout.contains("SKIP  my_site.issue.restart_downtime")
            && stdout.contains("we deploy with reloads only"),
        "a skipped claim shows as SKIP with its reason: {stdout}"
    );
    assert!(
        stdout.contains("6 held, 0 broken, 0 not measured, 1 skipped"),
        "{stdout}"
    );
}

#[test]
fn a_claims_file_error_names_the_file_the_line_and_what_exists() {
    let base = outside_the_repo("bad-claims");
    let folder = base.join("site");
    let bin = env!("CARGO_BIN_EXE_stackproof");
    new_design(&folder);
    let claims = folder.join("claims.toml");
    let good = std::fs::read_to_string(&claims).unwrap();
    std::fs::create_dir_all(folder.join("variants/fix")).unwrap();
    let remedy = "[[claim]]\nid = \"site.remedy.x\"\nsays = \"the fix\"\nkind = \"tls.reencrypt_remedy\"\nlb = \"server-1\"\nbackends = [\"server-1\"]\nnetwork = \"public\"\n";
    for (broken, says) in [
        (
            good.replace(
                "points_at = \"server-1\"",
                "points_at = \"server-1\"\nhots = 1",
            ),
            vec!["no parameter `hots`", "points_at", "claims.toml:"],
        ),
        (
            good.replace("host = \"server-1\"", "host = \"web-9\""),
            vec!["no host `web-9`", "server-1"],
        ),
        (
            good.replace("kind = \"db.query_flow\"", "kind = \"db.query_flo\""),
            vec!["no check kind `db.query_flo`", "db.query_flow"],
        ),
        (
            good.replace("fault = \"stop_host\"", "fault = \"reboot\""),
            vec!["`reboot` is not one of", "stop_host"],
        ),
        (
            good.replace("web = \"nginx\"\nserver_header", "server_header"),
            vec!["needs parameter `web`"],
        ),
        // What a claim names must be where it says: a service a fault stops
        // runs on that host; a kind that reads HAProxy's view finds HAProxy.
        (
            good.replace(
                "fault = \"stop_host\"",
                "fault = \"stop_service\"\nservice = \"apache\"",
            ),
            vec!["`server-1` does not run; it runs: mariadb, php-fpm, nginx"],
        ),
        (
            format!(
                "{good}\n[[claim]]\nid = \"site.lb.health_check\"\nsays = \"x\"\nkind = \"lb.health_check\"\nlb = \"server-1\"\nbackend = \"server-1\"\nservice = \"nginx\"\n"
            ),
            vec![
                "`lb.health_check` reads HAProxy's own view on `lb` = `server-1`, and `server-1` runs no HAProxy",
            ],
        ),
        // A `host/service` a claim watches must run there (scale_independently's
        // `unchanged`): a service the design does not run would pass unseen.
        (
            format!(
                "{good}\n[[claim]]\nid = \"site.tiers.scale_independently\"\nsays = \"x\"\nkind = \"scaling.add_app_server\"\nweb = \"server-1\"\napp = \"server-1\"\nnew_host = \"app-2\"\nnetwork = \"public\"\nupstream = \"server {{{{ new }}}}:9000;\"\nunchanged = [\"server-1/haproxy\"]\n"
            ),
            vec!["`server-1/haproxy`: the design runs no `haproxy` on `server-1`"],
        ),
        // A remedy's variant and the claims that must still hold with it.
        (
            format!("{good}\n{remedy}variant = \"nope\"\n"),
            vec!["no variant `nope`", "variants/nope/"],
        ),
        (
            format!("{good}\n{remedy}still_hold = [\"site.dns.www_a_record\"]\n"),
            vec!["has no `variant`"],
        ),
        (
            format!("{good}\n{remedy}variant = \"fix\"\nstill_hold = [\"site.typo\"]\n"),
            vec!["`still_hold` names `site.typo`", "site.issue.spof"],
        ),
    ] {
        std::fs::write(&claims, &broken).unwrap();
        let out = Command::new(bin)
            .args(["list", folder.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for s in says {
            assert!(err.contains(s), "`{s}` missing from: {err}");
        }
    }
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn an_installed_binary_finds_its_fixtures_without_the_source_tree() {
    // STACKPROOF_EMBEDDED makes the binary use the copy compiled into it,
    // as `cargo install` then a run from anywhere would.
    let base = outside_the_repo("installed");
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["list", "scale_up"])
        .current_dir(&base)
        .env("STACKPROOF_EMBEDDED", "1")
        .env("XDG_CACHE_HOME", &base)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listed.contains("scale_up.lb.failover"), "{listed}");
    let unpacked: Vec<_> = std::fs::read_dir(base.join("stackproof"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    std::fs::remove_dir_all(&base).unwrap();
    assert!(
        unpacked.len() == 1 && unpacked[0].starts_with("fixtures-"),
        "{unpacked:?}"
    );
}

/// The run's traffic endpoint (a SOCKS5 port on loopback, through the probe
/// host into the run's networks) is open to the run's client alone: another
/// process on the machine finds the port but not the secret.
#[tokio::test(flavor = "multi_thread")]
async fn the_runs_traffic_endpoint_refuses_whoever_lacks_its_secret() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start(
        "simple_web",
        stackproof::Design::fixtures_of("simple_web").unwrap(),
    )
    .await
    .unwrap();
    assert!(
        !stack.traffic_endpoints().is_empty(),
        "traffic leaves through the probe host"
    );
    for at in stack.traffic_endpoints() {
        // No authentication offered: "no acceptable methods", then closed.
        let mut conn = tokio::net::TcpStream::connect(at).await.unwrap();
        conn.write_all(&[5, 1, 0]).await.unwrap();
        let mut heard = Vec::new();
        conn.read_to_end(&mut heard).await.unwrap();
        assert_eq!(heard, [5, 0xFF], "{at}");
        // A guessed password: the sub-negotiation fails, then closed.
        let mut conn = tokio::net::TcpStream::connect(at).await.unwrap();
        conn.write_all(&[5, 1, 2, 1, 10]).await.unwrap();
        conn.write_all(b"stackproof\x05guess").await.unwrap();
        let mut heard = Vec::new();
        conn.read_to_end(&mut heard).await.unwrap();
        assert_eq!(heard, [5, 2, 1, 1], "{at}");
    }
    // The run's own client still gets through.
    let page = stack
        .http()
        .get(format!("http://{}/static/hello.txt", stackproof::WWW))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
}
