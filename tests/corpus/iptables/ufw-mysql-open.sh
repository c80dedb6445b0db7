#!/usr/bin/env bash
# web-01's firewall: ssh, the site, MySQL for the replica, the exporters.
sudo ufw default deny incoming
sudo ufw default allow outgoing
sudo ufw allow 22/tcp
sudo ufw allow 80/tcp
sudo ufw allow 3306/tcp
sudo ufw allow 9100/tcp
sudo ufw allow 9113/tcp
echo "y" | sudo ufw enable
