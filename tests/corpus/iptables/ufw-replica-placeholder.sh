#!/usr/bin/env bash
sudo ufw default deny incoming
sudo ufw default allow outgoing
sudo ufw allow ssh
sudo ufw allow http
sudo ufw allow https
# UFW rule that allows connections from your replica server
sudo ufw allow from [replica_server_ip] to any port 3306
echo "y" | sudo ufw enable
