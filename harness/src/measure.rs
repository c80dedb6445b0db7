//! What the servers themselves count: log lines, status counters, processes.
//! Claims read these rather than anything the app says about itself.

use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::host::Host;

/// Lines in a log file on `host`. A log that does not exist is never read
/// as 0: the design's configuration does not write it, so nothing it should
/// count can be counted, and that is the design's failure.
pub async fn log_lines(host: &Host, path: &str) -> std::result::Result<u64, Failure> {
    let out = host
        .run(&format!(
            "if [ -f {path} ]; then wc -l < {path}; else echo missing; fi"
        ))
        .await?;
    if out.trim() == "missing" {
        return Err(Failure::new(
            format!(
                "`{path}` does not exist on host `{}`: the design's configuration does not write \
                 this log, so the requests it should count cannot be counted",
                host.name
            ),
            "",
        ));
    }
    Ok(parse_u64(host, path, &out)?)
}

/// A global status counter of the MariaDB server on `host` (e.g. `Com_select`).
pub async fn mariadb_status(host: &Host, variable: &str) -> Result<u64> {
    let sql = format!("SHOW GLOBAL STATUS LIKE '{variable}'");
    let out = host.run(&format!("mariadb -N -B -e \"{sql}\"")).await?;
    let value = out.split_whitespace().nth(1).unwrap_or("");
    parse_u64(host, variable, value)
}

/// Runs SQL as the database's root on `host`, returning its tab-separated output.
pub async fn mariadb_sql(host: &Host, sql: &str) -> Result<String> {
    let escaped = sql.replace('\\', "\\\\").replace('"', "\\\"");
    host.run(&format!("mariadb -N -B -e \"{escaped}\"")).await
}

fn parse_u64(host: &Host, what: &str, text: &str) -> Result<u64> {
    text.trim().parse().map_err(|_| Error::Exec {
        host: host.name.clone(),
        command: format!("read `{what}`"),
        code: 0,
        output: format!("expected a number, got `{}`", text.trim()),
    })
}

/// The site's URL for `path` over plain HTTP.
pub fn http(path: &str) -> String {
    format!("http://{}{path}", crate::stack::WWW)
}

/// One column of MariaDB's USER_STATISTICS for `user` on `host` (0 before
/// the user's first statement). These tell the app's own reads and writes
/// apart from replication's, which run as a system thread.
pub async fn user_stat(host: &Host, user: &str, column: &str) -> std::result::Result<u64, Failure> {
    let sql =
        format!("SELECT {column} FROM information_schema.USER_STATISTICS WHERE USER = '{user}'");
    let out = mariadb_sql(host, &sql).await?;
    if out.trim().is_empty() {
        // No row: the user has run nothing yet, unless the server collects
        // no per-user statistics at all, which is then never read as 0.
        if mariadb_sql(host, "SELECT @@userstat").await?.trim() == "0" {
            return Err(Failure::new(
                format!(
                    "MariaDB on host `{}` collects no per-user statistics (`userstat` is off in the \
                     design's my.cnf), so the app's reads and writes cannot be counted",
                    host.name
                ),
                "",
            ));
        }
        return Ok(0);
    }
    Ok(parse_u64(host, column, &out)?)
}

/// HAProxy's view of each server (`show stat`): (backend, server) → status
/// such as `UP`, `DOWN`, `DOWN 1/2`.
pub async fn haproxy_status(host: &Host) -> Result<Vec<(String, String, String)>> {
    let out = host
        .run("echo 'show stat' | nc -U -N /run/haproxy/admin.sock")
        .await?;
    Ok(out
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() > 17 && f[1] != "FRONTEND" && f[1] != "BACKEND")
                .then(|| (f[0].into(), f[1].into(), f[17].into()))
        })
        .collect())
}
