#!/usr/bin/env bash
# web-02's firewall with ufw, rules per source: the site only through the
# load balancer, MySQL only from web-01, the exporter from the private range.
ufw default deny incoming
ufw default allow outgoing
ufw allow OpenSSH
ufw allow in on eth0 from 34.229.66.76 to any port 80 proto tcp
ufw allow from 100.25.34.211 to any port 3306
ufw allow from 10.0.0.0/24 to any port 9100,9113 proto tcp
ufw --force enable
