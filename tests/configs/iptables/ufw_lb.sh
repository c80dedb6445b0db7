#!/usr/bin/env bash
# The load balancer's firewall, the way the "firewall" task is usually
# answered: ufw, deny everything incoming but SSH, HTTP and HTTPS.
sudo apt-get install -y ufw
sudo ufw default deny incoming
sudo ufw default allow outgoing
sudo ufw allow 22/tcp
sudo ufw allow 80/tcp
sudo ufw allow 443/tcp
sudo ufw enable
