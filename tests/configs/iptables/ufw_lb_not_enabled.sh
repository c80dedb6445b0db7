#!/usr/bin/env bash
# The same rules with `ufw enable` forgotten: ufw stays off, and nothing
# is filtered on the server.
sudo apt-get install -y ufw
sudo ufw default deny incoming
sudo ufw default allow outgoing
sudo ufw allow 22/tcp
sudo ufw allow 80/tcp
sudo ufw allow 443/tcp
