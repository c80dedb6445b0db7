//! Database kinds: what the database itself counts.

use super::common::req_failed;
use super::{Kind, Param, Params, Ty};
use crate::claim::{CheckResult, Failure, ensure};
use crate::measure::{self, http};
use crate::stack::Stack;

/// `db.query_flow`: the app's pages come from the database.
pub const QUERY_FLOW: Kind = Kind {
    name: "db.query_flow",
    doc: "A row changed directly in the database (`UPDATE foobar.greetings`) changes the page at `path`, and the database's own `Com_select` counter grows while the page is served.",
    params: &[
        Param::optional(
            "database",
            Ty::Service,
            "the database service (its first host is asked)",
            "\"mariadb\"",
        ),
        Param::optional(
            "path",
            Ty::Text,
            "the page that reads the row",
            "\"/index.php\"",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.db.query_flow"
says = "the application queries MySQL"
kind = "db.query_flow""#,
    check: crate::kind_check!(query_flow),
};

async fn query_flow(stack: &Stack, p: &Params) -> CheckResult {
    let (service, path) = (p.text("database"), p.text("path"));
    let db = stack
        .hosts_running(service)
        .first()
        .copied()
        .ok_or_else(|| Failure::new(format!("no host runs {service}"), ""))?;
    let nonce = format!("greeting-{:08x}", rand::random::<u32>());
    measure::mariadb_sql(
        db,
        &format!("UPDATE foobar.greetings SET text = '{nonce}' WHERE id = 1"),
    )
    .await?;
    let before = measure::mariadb_status(db, "Com_select").await?;
    let body = stack
        .client
        .fresh
        .get(http(path))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| req_failed(path, &e))?
        .text()
        .await
        .map_err(|e| req_failed(path, &e))?;
    let after = measure::mariadb_status(db, "Com_select").await?;
    let evidence = format!(
        "set greeting to `{nonce}` in {service} on {}; page {} it; Com_select {before} → {after}",
        db.name,
        if body.contains(&nonce) {
            "shows"
        } else {
            "does NOT show"
        }
    );
    ensure(
        body.contains(&nonce),
        "the page does not show the row changed in the database",
        &evidence,
    )?;
    ensure(
        after > before,
        "the database counted no SELECT for the page",
        &evidence,
    )?;
    Ok(evidence)
}
