//! The iptables and ufw mapper, on files written as people write them.

use super::*;
use crate::config::{AddressBook, Known};
use crate::design::Design;

fn target<'a>(design: &'a Design, book: &'a AddressBook, host: &'a str) -> Target<'a> {
    crate::config::test_target(
        design,
        book,
        Some(host),
        vec!["lb-1", "server-1", "server-2"],
    )
}

#[test]
fn ufw_reset_insert_delete_and_comments_act_as_ufw_does() {
    let design = Design::load("secured_monitored").unwrap();
    let book = AddressBook::new();
    let t = target(&design, &book, "lb-1");
    let script = "ufw allow 9100\nufw --force reset\nufw allow 22/tcp comment 'ssh access'\nufw allow 80/tcp\nufw allow 'HAProxy'\nufw insert 1 deny 8405/tcp\nufw delete allow 80/tcp\nufw --force enable\n";
    let m = map(Path::new("ufw.sh"), script, &t).unwrap();
    let user_rules: Vec<&str> = m
        .text
        .lines()
        .filter(|l| l.starts_with("-A INPUT -p"))
        .collect();
    assert_eq!(
        user_rules,
        [
            "-A INPUT -p tcp --dport 8405 -j DROP",
            "-A INPUT -p tcp --dport 22 -j ACCEPT"
        ],
        "{}",
        m.text
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("ufw.sh:5") && w.contains("profile `HAProxy`")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn ufw_never_enabled_or_disabled_again_filters_nothing() {
    let design = Design::load("secured_monitored").unwrap();
    let book = AddressBook::new();
    let t = target(&design, &book, "lb-1");
    // An iptables rule beside ufw's is active whatever ufw's state.
    let m = map(
        Path::new("fw.sh"),
        "iptables -A INPUT -p tcp --dport 3306 -j DROP\nufw default deny incoming\nufw allow 80/tcp\n",
        &t,
    )
    .unwrap();
    assert!(
        m.text.contains("-A INPUT -p tcp --dport 3306 -j DROP"),
        "{}",
        m.text
    );
    assert!(!m.text.contains("--dport 80"), "{}", m.text);
    assert!(m.text.contains(":INPUT ACCEPT [0:0]"), "{}", m.text);
    for script in [
        "ufw default deny incoming\nufw allow 80/tcp\nufw allow 443/tcp\n",
        "ufw default deny incoming\nufw allow 80/tcp\nufw --force enable\nufw disable\n",
    ] {
        let m = map(Path::new("ufw.sh"), script, &t).unwrap();
        assert!(m.text.contains(":INPUT ACCEPT [0:0]"), "{}", m.text);
        assert!(!m.text.contains("-A INPUT"), "{}", m.text);
        assert!(
            m.warnings.iter().any(|w| w.contains("ufw stays off")),
            "{:?}",
            m.warnings
        );
    }
}

#[test]
fn ufw_commands_become_rules_and_unknown_addresses_stop() {
    let design = Design::load("secured_monitored").unwrap();
    let book = AddressBook::new();
    let t = target(&design, &book, "lb-1");
    let script = "#!/usr/bin/env bash\nsudo apt-get install -y ufw\nsudo ufw default deny incoming\nsudo ufw default allow outgoing\nsudo ufw allow 22/tcp\nsudo ufw allow 80/tcp\nsudo ufw allow 443/tcp\nsudo ufw allow from 10.0.0.0/16 to any port 9100\nsudo ufw enable\n";
    let m = map(Path::new("ufw.sh"), script, &t).unwrap();
    assert!(m.text.contains(":INPUT DROP [0:0]"), "{}", m.text);
    assert!(
        m.text.contains("-A INPUT -p tcp --dport 443 -j ACCEPT"),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("-A INPUT -s {{ private.subnet }} -p tcp --dport 9100 -j ACCEPT"),
        "{}",
        m.text
    );
    assert!(m.text.find("-i lo").unwrap() < m.text.find("--dport 22").unwrap());
    // Profiles, several ports, `--force`, IPv6 and lines that are not rules.
    let m = map(
        Path::new("ufw.sh"),
        "ufw allow 'Nginx Full'\nufw allow OpenSSH\nufw deny out 25\nip6tables -P INPUT DROP\nufw status verbose\nufw --force enable\n",
        &t,
    )
    .unwrap();
    assert!(
        m.text
            .contains("-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("-A INPUT -p tcp --dport 22 -j ACCEPT"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("-A OUTPUT -p tcp --dport 25 -j DROP"),
        "{}",
        m.text
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    // No `ufw default` line: ufw's own defaults drop what comes in.
    assert!(m.text.contains(":INPUT DROP [0:0]"), "{}", m.text);
    assert!(m.text.contains(":OUTPUT ACCEPT [0:0]"), "{}", m.text);
    assert!(
        m.lines
            .iter()
            .any(|l| l.contains("ip6tables -P INPUT DROP` -> left out")),
        "{:?}",
        m.lines
    );
    let e = map(
        Path::new("fw"),
        "IPT=/sbin/iptables\n$IPT -A INPUT -p tcp --dport 22 -j ACCEPT\n",
        &t,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("line 2") && e.to_string().contains("looks like a rule"),
        "{e}"
    );
    let e = map(
        Path::new("fw"),
        "iptables -A INPUT -s 54.1.2.3 -j ACCEPT\n",
        &t,
    )
    .unwrap_err();
    assert!(e.to_string().contains("--address 54.1.2.3=HOST"), "{e}");
}

#[test]
fn a_ufw_default_ufw_refuses_sets_no_policy() {
    let design = Design::load("secured_monitored").unwrap();
    let book = AddressBook::new();
    let t = target(&design, &book, "lb-1");
    let m = map(
        Path::new("ufw.sh"),
        "ufw default deny incomming\nufw default drop outgoing\nufw default reject\nufw allow 80/tcp\necho \"y\" | sudo ufw enable\n",
        &t,
    )
    .unwrap();
    let warned = m.warnings.join("\n");
    assert!(warned.contains("direction `incomming`"), "{warned}");
    assert!(warned.contains("policy `drop`"), "{warned}");
    // `ufw default reject` (no direction) is incoming: as ufw sets it, the
    // policy DROP and a last rule that rejects.
    assert!(m.text.contains(":INPUT DROP"), "{}", m.text);
    let input: Vec<&str> = m
        .text
        .lines()
        .filter(|l| l.starts_with("-A INPUT"))
        .collect();
    assert_eq!(input.last(), Some(&"-A INPUT -j REJECT"), "{}", m.text);
    assert!(m.text.contains(":OUTPUT ACCEPT"), "{}", m.text);
    // Enabled through a pipe that answers ufw's prompt.
    assert!(
        m.lines.iter().all(|l| !l.contains("ufw never enabled")),
        "{:?}",
        m.lines
    );
}

#[test]
fn a_rules_file_keeps_its_rules_with_the_runs_addresses() {
    let design = Design::load("secured_monitored").unwrap();
    let mut book = AddressBook::new();
    book.insert(
        "10.0.0.2".into(),
        Known {
            placeholder: "{{ lb-1.private }}".into(),
            what: "lb-1".into(),
        },
    );
    let t = target(&design, &book, "server-1");
    let text = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -i eth0 -s 10.0.0.2/32 -p tcp --dport 80 -j ACCEPT\nCOMMIT\n";
    let m = map(Path::new("rules.v4"), text, &t).unwrap();
    assert!(
        m.text.contains(
            "-A INPUT -i {{ self.public.iface }} -s {{ lb-1.private }} -p tcp --dport 80 -j ACCEPT"
        ),
        "{}",
        m.text
    );
}
