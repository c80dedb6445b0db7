#!/usr/bin/env bash
# configure ufw on the load balancer
sudo apt-get -y install ufw
sudo ufw default deny incomming
sudo ufw default allow outgoing
sudo ufw allow 22/tcp
sudo ufw allow 80/tcp
sudo ufw allow 443/tcp
echo "y" | sudo ufw enable
sudo ufw status
