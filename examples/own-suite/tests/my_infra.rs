//! The crate's infrastructure, proven on real containers: the claims of
//! `infra/claims.toml` (the library's kinds and `own.page_says` below),
//! one Rust claim on the same stack, and every mutant of `infra/mutants/`
//! failing the claim it names. `cargo test` runs it.

use stackproof::{
    CheckResult, Claim, Facts, Failure, Kind, Param, Params, Recorder, Stack, Suite, Ty, WWW,
    ensure,
};

/// A check kind of this crate's own: a page's body contains a text.
const PAGE_SAYS: Kind = Kind {
    name: "own.page_says",
    doc: "GET `path` answers 200 and its body contains `text`.",
    params: &[
        Param::required("path", Ty::Text, "the page"),
        Param::required("text", Ty::Text, "what it must contain"),
    ],
    example: "kind = \"own.page_says\"\npath = \"/\"\ntext = \"Welcome\"",
    // Untimed, reads no server's own view: it runs beside other claims.
    facts: Facts::PLAIN,
    check: stackproof::kind_check!(page_says),
};

async fn page_says(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let url = format!("http://{WWW}{}", p.text("path"));
    let resp = stack
        .http()
        .get(&url)
        .send()
        .await
        .map_err(|e| Failure::new(format!("GET {url}: {e}"), ""))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let evidence = format!("GET {url} → {status}, {} bytes", body.len());
    ensure(status == 200, format!("answered {status}"), &evidence)?;
    ensure(
        body.contains(p.text("text")),
        format!("the body does not contain `{}`", p.text("text")),
        &evidence,
    )?;
    Ok(evidence)
}

/// A Rust claim: PHP-FPM's workers run unprivileged, read from the host's process table.
fn php_unprivileged<'a>(
    stack: &'a Stack,
    _: &'a Params,
    _: &'a Recorder,
) -> futures::future::BoxFuture<'a, CheckResult> {
    Box::pin(async move {
        let users = stack
            .host("web-1")?
            // PHP-FPM's binary carries its version (php-fpm8.4): any version.
            .run("ps -eo user=,comm= | awk '$2 ~ /^php-fpm/ {print $1}' | sort | uniq -c")
            .await?;
        let evidence = format!(
            "php-fpm processes by user: {}",
            users.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        ensure(
            users.contains("www-data"),
            "no PHP-FPM worker runs as www-data",
            &evidence,
        )?;
        Ok(evidence)
    })
}

fn main() -> std::process::ExitCode {
    Suite::new(concat!(env!("CARGO_MANIFEST_DIR"), "/infra"))
        .kind(PAGE_SAYS)
        .claim(Claim::rust(
            "my_infra.app.php_unprivileged",
            "the application does not run as root",
            "PHP-FPM's workers run as www-data",
            php_unprivileged,
        ))
        .run()
}
