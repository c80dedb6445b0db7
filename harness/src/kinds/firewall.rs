//! Firewall kinds: which ports answer whom, probed for real.

use std::time::Duration;

use super::{Kind, Param, Params, Ty};
use crate::claim::{CheckResult, ensure_eq};
use crate::stack::Stack;

/// `firewall.open_to_client`: nothing stops the client reaching a port (a weakness).
pub const OPEN_TO_CLIENT: Kind = Kind {
    name: "firewall.open_to_client",
    doc: "A TCP connection from the client to `port` on each of `hosts` is accepted: no firewall stands between the world and that service (a weakness a design admits to).",
    params: &[
        Param::required("hosts", Ty::Hosts, "the hosts probed"),
        Param::required("port", Ty::Int, "the port (3306 for the database)"),
    ],
    example: r#"
[[claim]]
id = "my_site.issue.no_firewall"
says = "no firewall: the database port is open to anyone"
kind = "firewall.open_to_client"
hosts = ["db-1"]
port = 3306"#,
    check: crate::kind_check!(open_to_client),
};

async fn open_to_client(stack: &Stack, p: &Params) -> CheckResult {
    let port = p.int("port") as u16;
    let mut open = Vec::new();
    for &h in &p.list("hosts") {
        let addr = (stack.host(h)?.main_addr(), port);
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                .await,
            Ok(Ok(_))
        );
        open.push((h.to_string(), ok));
    }
    let evidence = format!(
        "TCP connect from the client to port {port}: {}",
        open.iter()
            .map(|(s, ok)| format!("{s} {}", if *ok { "accepted" } else { "refused" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let want: Vec<(String, bool)> = open.iter().map(|(h, _)| (h.clone(), true)).collect();
    ensure_eq(
        &format!("{port} reachable from the client"),
        want,
        open,
        &evidence,
    )?;
    Ok(evidence)
}
