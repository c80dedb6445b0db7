#!/usr/bin/env bash
# The same, with HTTPS forgotten: the site's 443 is dropped at the firewall.
sudo ufw default deny incoming
sudo ufw default allow outgoing
sudo ufw allow 22/tcp
sudo ufw allow 80/tcp
sudo ufw enable
