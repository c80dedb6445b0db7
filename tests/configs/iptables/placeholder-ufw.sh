#!/usr/bin/env bash
# Firewall for the database server: only the web servers may reach MySQL.
sudo ufw default deny incoming
sudo ufw default allow outgoing
sudo ufw allow 22/tcp
sudo ufw allow from WEB_SERVER_IP to any port 3306
sudo ufw --force enable
