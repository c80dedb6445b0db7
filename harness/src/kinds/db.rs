//! Database kinds: what the database itself counts.

use std::time::{Duration, Instant};

use super::common::req_failed;
use super::{Facts, Kind, Param, Params, Ty};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq};
use crate::measure::{self, http};
use crate::probe;
use crate::recorder::Recorder;
use crate::stack::{Fault, Stack};

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
    facts: Facts::PLAIN,
    check: crate::kind_check!(query_flow),
};

async fn query_flow(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
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

/// `db.replication`: a write on the primary is readable on the replica in time.
pub const REPLICATION: Kind = Kind {
    name: "db.replication",
    doc: "A row inserted on `primary` is readable on `replica` within `budget_ms`, and the replica's own `SHOW SLAVE STATUS` says both replication threads run.",
    params: &[
        Param::required("primary", Ty::Host, "the host of the primary"),
        Param::required("replica", Ty::Host, "the host of the replica"),
        Param::optional(
            "budget_ms",
            Ty::Ms,
            "how long the row may take to arrive",
            "1000",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.db.replication"
says = "the primary replicates to the replica"
kind = "db.replication"
primary = "db-1"
replica = "db-2""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(replication),
};

async fn replication(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    replication_between(
        stack,
        rec,
        p.host("primary"),
        p.host("replica"),
        p.ms("budget_ms"),
    )
    .await
}

/// The replication check between two hosts (also for a replica a claim adds).
pub(crate) async fn replication_between(
    stack: &Stack,
    rec: &Recorder,
    primary_name: &str,
    replica_name: &str,
    budget: Duration,
) -> CheckResult {
    let (primary, replica) = (stack.host(primary_name)?, stack.host(replica_name)?);
    let nonce = format!("repl-{:08x}", rand::random::<u32>());
    measure::mariadb_sql(
        primary,
        // Written as the app writes: with its database as the default one
        // (replication filters such as binlog_do_db judge by that).
        &format!(
            "USE foobar; INSERT INTO greetings VALUES (1000 + FLOOR(RAND()*1000000), '{nonce}')"
        ),
    )
    .await?;
    let started = Instant::now();
    let mut seen = false;
    while started.elapsed() < super::common::late_wait(budget) {
        // A replica that never replicated has no such table yet: that is "not there", not an error.
        let sql = format!("SELECT COUNT(*) FROM foobar.greetings WHERE text = '{nonce}'");
        let out = replica.exec(&format!("mariadb -N -B -e \"{sql}\"")).await?;
        if out.code == 0 && out.stdout.trim() == "1" {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delay = started.elapsed();
    if seen {
        rec.record("replication delay (ms)", delay.as_millis() as f64);
    }
    let status = replica.run("mariadb -e 'SHOW SLAVE STATUS\\G'").await?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{name}: "))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "-".into())
    };
    let (io, sql) = (field("Slave_IO_Running"), field("Slave_SQL_Running"));
    let evidence = format!(
        "row written on the primary ({primary_name}) {} on the replica ({replica_name}) after {} ms (budget {} ms); Slave_IO_Running {io}, Slave_SQL_Running {sql}",
        if seen { "readable" } else { "NOT readable" },
        delay.as_millis(),
        budget.as_millis()
    );
    ensure(
        seen && delay <= budget,
        "the write did not reach the replica within the budget",
        &evidence,
    )?;
    ensure_eq(
        "replication threads (IO, SQL)",
        ("Yes".to_string(), "Yes".to_string()),
        (io, sql),
        &evidence,
    )?;
    Ok(evidence)
}

/// `db.replica_read_only`: the app's user cannot write on the replica.
pub const REPLICA_READ_ONLY: Kind = Kind {
    name: "db.replica_read_only",
    doc: "An INSERT as the application's user on `replica` (at its address, as the app reaches it) is refused by the server itself with error 1290 (read-only). A write that succeeds FAILs; one refused for another reason (access denied, nothing listening, no such table) is a failed precondition, said with what the error means: read-only was not measured.",
    params: &[
        Param::required("replica", Ty::Host, "the host of the replica"),
        Param::optional(
            "user",
            Ty::Text,
            "the application's database user",
            "\"app\"",
        ),
        Param::optional("password", Ty::Text, "its password", "\"app-secret\""),
    ],
    example: r#"
[[claim]]
id = "my_site.db.replica_read_only"
says = "the replica only serves reads"
kind = "db.replica_read_only"
replica = "db-2""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(replica_read_only),
};

async fn replica_read_only(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let name = p.host("replica");
    let replica = stack.host(name)?;
    // To the replica's address, as the app reaches it (not 127.0.0.1, which
    // a server bound to its own address does not answer).
    let addr = replica.main_addr();
    let out = replica
        .exec(&format!(
            "mariadb -h {addr} -u {} -p{} -e \"INSERT INTO foobar.greetings VALUES (999999, 'on the replica')\" foobar",
            p.text("user"),
            p.text("password")
        ))
        .await?;
    let said = out
        .combined()
        .lines()
        .find(|l| l.starts_with("ERROR"))
        .unwrap_or("")
        .trim()
        .to_string();
    let evidence = format!(
        "INSERT as `{}` on the replica ({name}, {addr}): exit {}, {}",
        p.text("user"),
        out.code,
        if said.is_empty() {
            "no error".into()
        } else {
            said.clone()
        }
    );
    ensure(
        out.code != 0,
        "the replica accepted a write from the application's user",
        &evidence,
    )?;
    // Refused, but not for being read-only: the claim's sentence is not what
    // was measured. Its precondition (the app's user can reach the replica
    // and would write there) failed, and the error says why.
    if !said.contains("1290") {
        return Err(Failure::new(
            format!(
                "precondition not met: the application's user could not write on the replica for another reason than read-only ({}), so read-only was not measured",
                refusal_cause(&said)
            ),
            evidence,
        ));
    }
    Ok(evidence)
}

/// What a MariaDB client error other than read-only (1290) means for the app.
fn refusal_cause(error: &str) -> &'static str {
    let code = |c: &str| error.contains(&format!("ERROR {c}"));
    if code("1045") {
        "access denied: the app's user or password is not on the replica (replicated from the primary, or granted there)"
    } else if code("1130") {
        "this host is not allowed to connect: the app user's grant names other hosts"
    } else if code("2002") || code("2003") {
        "nothing answers on the replica's address: MariaDB is not listening there (bind-address, skip-networking) or is down"
    } else if code("1146") || code("1049") {
        "the app's database or table is not on the replica: replication has not brought it"
    } else if error.is_empty() {
        "the client failed without a server error"
    } else {
        "the server refused it for another reason (its error above)"
    }
}

/// What `db.routing` counts.
const COUNTERS: &[&str] = &["ROWS_INSERTED", "SELECT_COMMANDS", "ROWS_UPDATED"];

/// `db.routing`: the app's statements land on the database host they should.
pub const ROUTING: Kind = Kind {
    name: "db.routing",
    doc: "`requests` requests to `path` all answer 200, and the application user's `counter` in each server's own USER_STATISTICS grows by exactly `requests` on `to` and by 0 on each of `not_to` (replication runs as a system thread, so it is not counted).",
    params: &[
        Param::required(
            "path",
            Ty::Text,
            "the page that reads or writes (`/index.php`, `/write.php`)",
        ),
        Param::required(
            "counter",
            Ty::Choice(COUNTERS),
            "the USER_STATISTICS column",
        ),
        Param::required(
            "to",
            Ty::Host,
            "the database host that must see the statements",
        ),
        Param::required("not_to", Ty::Hosts, "the database hosts that must not"),
        Param::optional(
            "user",
            Ty::Text,
            "the application's database user",
            "\"app\"",
        ),
        Param::optional("requests", Ty::Int, "requests sent", "6"),
    ],
    example: r#"
[[claim]]
id = "my_site.db.writes_to_primary"
says = "writes go to the primary"
kind = "db.routing"
path = "/write.php"
counter = "ROWS_INSERTED"
to = "db-1"
not_to = ["db-2"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(routing),
};

async fn routing(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let (path, column, user) = (p.text("path"), p.text("counter"), p.text("user"));
    let n = p.int("requests");
    let mut hosts = vec![p.host("to")];
    hosts.extend(p.list("not_to"));
    let mut before = Vec::new();
    for h in &hosts {
        before.push(measure::user_stat(stack.host(h)?, user, column).await?);
    }
    let ok = crate::probe::successes(&stack.client.fresh, vec![http(path); n as usize]).await;
    let mut grew = Vec::new();
    for (h, b) in hosts.iter().zip(&before) {
        grew.push((
            h.to_string(),
            measure::user_stat(stack.host(h)?, user, column).await? - b,
        ));
    }
    let evidence = format!(
        "{n} requests to {path}, {ok} answered 200; {column} of the `{user}` user: {}",
        grew.iter()
            .map(|(h, g)| format!("{h} +{g}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure_eq("requests answered 200", n as usize, ok, &evidence)?;
    let want: Vec<(String, u64)> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.to_string(), if i == 0 { n } else { 0 }))
        .collect();
    ensure_eq(
        &format!("the app's {column} per host"),
        want,
        grew,
        &evidence,
    )?;
    Ok(evidence)
}

/// `db.single_writer`: with the primary down, writes fail and reads go on.
pub const SINGLE_WRITER: Kind = Kind {
    name: "db.single_writer",
    doc: "Writes (`write_path`) succeed before; with `service` stopped on `primary`, 0 of `requests` writes succeed while all `requests` reads (`read_path`) still do: the primary is the one place writes can go.",
    params: &[
        Param::required("primary", Ty::Host, "the host of the primary"),
        Param::optional(
            "service",
            Ty::Service,
            "the primary's database service",
            "\"mariadb-primary\"",
        ),
        crate::kinds::common::SCHEME,
        Param::optional(
            "write_path",
            Ty::Text,
            "a page that writes",
            "\"/write.php\"",
        ),
        Param::optional("read_path", Ty::Text, "a page that reads", "\"/index.php\""),
        Param::optional(
            "requests",
            Ty::Int,
            "writes and reads sent during the fault",
            "6",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.issue.spof_primary"
says = "the primary is a single point of failure for writes"
kind = "db.single_writer"
primary = "db-1""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(single_writer),
};

async fn single_writer(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    single_writer_over(
        stack,
        p.host("primary"),
        p.text("service"),
        p.text("scheme"),
        (p.text("write_path"), p.text("read_path")),
        p.int("requests") as usize,
    )
    .await
}

/// The single-writer check itself.
pub(crate) async fn single_writer_over(
    stack: &Stack,
    primary: &str,
    service: &str,
    scheme: &str,
    (write_path, read_path): (&str, &str),
    n: usize,
) -> CheckResult {
    let url = |path: &str| format!("{scheme}://{}{path}", crate::stack::WWW);
    let (write, read) = (url(write_path), url(read_path));
    let (writes_before, _) = probe::burst(&stack.client.fresh, &write, 2).await;
    crate::failure::ensure(
        writes_before == 2,
        format!(
            "before the fault only {writes_before} of 2 writes to {write_path} succeeded: the site cannot write with every host up, so there is no writing for the fault to stop"
        ),
        "",
    )?;
    let fault = stack.apply(Fault::StopService(primary, service)).await?;
    let (writes, _) = probe::burst(&stack.client.fresh, &write, n).await;
    let (reads, read_err) = probe::burst(&stack.client.fresh, &read, n).await;
    fault.restore().await?;
    let evidence = format!(
        "{service} stopped on the primary ({primary}): {writes} of {n} writes succeeded, {reads} of {n} reads succeeded{}",
        read_err
            .map(|e| format!(" (first read error: {e})"))
            .unwrap_or_default()
    );
    ensure_eq(
        "(writes, reads) that succeeded",
        (0, n),
        (writes, reads),
        &evidence,
    )?;
    Ok(evidence)
}

/// `db.single_database`: one database takes every read and write.
pub const SINGLE_DATABASE: Kind = Kind {
    name: "db.single_database",
    doc: "`requests` reads and `requests` writes are answered 200, and on `db` the application user's own counters (USER_STATISTICS) grow by exactly `requests` SELECTs and `requests` inserted rows: one database carries all of it.",
    params: &[
        Param::required("db", Ty::Host, "the database's host"),
        Param::optional(
            "user",
            Ty::Text,
            "the application's database user",
            "\"app\"",
        ),
        Param::optional("requests", Ty::Int, "reads and writes sent", "6"),
    ],
    example: r#"
[[claim]]
id = "my_site.issue.db_bottleneck"
says = "a single database takes all writes and reads"
kind = "db.single_database"
db = "db-1""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(single_database),
};

async fn single_database(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let (name, user) = (p.host("db"), p.text("user"));
    let n = p.int("requests");
    let db = stack.host(name)?;
    let selects = measure::user_stat(db, user, "SELECT_COMMANDS").await?;
    let inserts = measure::user_stat(db, user, "ROWS_INSERTED").await?;
    let urls: Vec<String> = ["/index.php", "/write.php"]
        .iter()
        .flat_map(|path| vec![http(path); n as usize])
        .collect();
    let ok = probe::successes(&stack.client.fresh, urls).await;
    let selects = measure::user_stat(db, user, "SELECT_COMMANDS").await? - selects;
    let inserts = measure::user_stat(db, user, "ROWS_INSERTED").await? - inserts;
    let evidence = format!(
        "{n} reads and {n} writes, {ok} answered 200; on {name} the `{user}` user's SELECTs +{selects}, rows inserted +{inserts}"
    );
    ensure_eq("requests answered 200", 2 * n as usize, ok, &evidence)?;
    ensure_eq(
        &format!("(SELECTs, rows inserted) on {name}"),
        (n, n),
        (selects, inserts),
        &evidence,
    )?;
    Ok(evidence)
}

#[cfg(test)]
mod tests {
    /// A write the replica refused for another reason than read-only says
    /// what that reason means for the app, never "accepted a write".
    #[test]
    fn a_refusal_that_is_not_read_only_is_named_by_its_cause() {
        for (error, says) in [
            (
                "ERROR 1045 (28000): Access denied for user 'app'@'172.28.0.3' (using password: YES)",
                "access denied",
            ),
            (
                "ERROR 2002 (HY000): Can't connect to server on '172.28.0.3' (115)",
                "nothing answers",
            ),
            (
                "ERROR 1130 (HY000): Host '172.28.0.3' is not allowed to connect to this MariaDB server",
                "not allowed",
            ),
            (
                "ERROR 1146 (42S02): Table 'foobar.greetings' doesn't exist",
                "replication has not brought it",
            ),
        ] {
            assert!(super::refusal_cause(error).contains(says), "{error}");
        }
    }
}
