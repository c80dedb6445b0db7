#!/usr/bin/env bash
# The load balancer's firewall with ufw, closed ports answered at once
# (reject) rather than left to time out (deny).
ufw default reject incoming
ufw default allow outgoing
ufw allow 22/tcp
ufw allow 80/tcp
ufw allow 443/tcp
ufw --force enable
