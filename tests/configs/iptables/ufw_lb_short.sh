#!/usr/bin/env bash
# The load balancer's firewall in its shortest common form: no `ufw default`
# lines, since ufw already drops what comes in unless a rule allows it.
sudo ufw allow OpenSSH
sudo ufw allow 80/tcp
sudo ufw allow 443/tcp
sudo ufw --force enable
