//! The README's rule for ERROR, on both sides: what the design's files
//! cause is a FAIL with its evidence; ERROR is stackproof not being able
//! to measure (its own query, deadline or tool).

use crate::{check_files, run_with_report};

/// TLS bound on :403 (a typo): nothing answers HTTPS on 443, so every
/// claim that sends HTTPS fails because of the file, never ERRORs.
#[test]
fn tls_on_the_wrong_port_fails_the_https_claims_it_breaks() {
    let claims = [
        "https.valid_cert",
        "monitoring.qps",
        "issue.ssl_termination_plaintext",
        "issue.single_writer",
    ];
    let (out, text, v) = check_files(
        "secured_monitored",
        &["haproxy=haproxy/https_bind_403.cfg"],
        &claims,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    for id in claims {
        assert!(
            v.is("FAIL", &format!("secured_monitored.{id}")),
            "{id}: {text}"
        );
    }
    assert!(text.contains("TLS is bound on port 403"), "{text}");
    // Where TLS is instead, not "does not verify" nor a proxy's words.
    assert!(
        text.contains("nothing listens on port 443 of lb-1 (connection refused); TLS answers on port 403 instead"),
        "{text}"
    );
}

/// A design whose primary database moved to a host of its own: the claim
/// that stops "the primary on server-1" finds none there, which is the
/// design's doing.
#[test]
fn a_primary_moved_off_its_host_is_a_fail_not_a_failed_stop() {
    let (out, text, v) = check_files(
        "secured_monitored",
        &[],
        &["issue.single_writer"],
        &["--mutant", "primary_on_own_host"],
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        v.is("FAIL", "secured_monitored.issue.single_writer"),
        "{text}"
    );
    assert!(
        text.contains("host `server-1` runs no `mariadb-primary` in this design (it runs on db-1)"),
        "{text}"
    );
}

/// A claims file whose PromQL Prometheus cannot parse: nothing was
/// measured, and the design is not to blame: ERROR, with Prometheus's words.
#[test]
fn a_query_prometheus_cannot_run_is_error() {
    let dir = std::env::temp_dir().join(format!("sp-error-side-{}", std::process::id()));
    let design = dir.join("secured_copy");
    std::fs::create_dir_all(&design).unwrap();
    let builtin =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/designs/secured_monitored");
    for f in ["design.toml", "dns.zone"] {
        std::fs::copy(builtin.join(f), design.join(f)).unwrap();
    }
    std::fs::write(
        design.join("claims.toml"),
        r#"[[claim]]
id = "secured_copy.monitoring.qps"
says = "collects QPS"
kind = "monitoring.counter_rate"
query = 'sum(haproxy_frontend_http_requests_total{proxy="www"}'
scheme = "https"
"#,
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.arg("check").arg(&design);
    let (out, v) = run_with_report(cmd);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(v.is("ERROR", "secured_copy.monitoring.qps"), "{text}");
    assert!(text.contains("Prometheus could not run"), "{text}");
}

/// A haproxy.cfg with no Prometheus exporter frontend: the response-time
/// claim says what Prometheus does scrape, not "series before: []".
#[test]
fn no_exporter_frontend_is_said_in_words() {
    let (out, text, v) = check_files(
        "secured_monitored",
        &["haproxy=haproxy/https_no_exporter.cfg"],
        &["monitoring.response_times"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        v.is("FAIL", "secured_monitored.monitoring.response_times"),
        "{text}"
    );
    assert!(
        text.contains("holds no response-time series at all"),
        "{text}"
    );
    assert!(text.contains("jobs Prometheus scrapes: "), "{text}");
    assert!(!text.contains("series before: []"), "{text}");
}
