#!/usr/bin/bash
apt-get install ufw -y
ufw reset
ufw default deny incoming
ufw default allow outgoing
ufw allow ssh
ufw allow http
ufw allow https
ufw allow from 10.0.0.0/24 to any port 9100 proto tcp
ufw --force enable
