#!/bin/bash
# web-01 (primary database): web from the balancer, MySQL from web-02,
# the exporters from the monitoring network, nothing else.
iptables -F
iptables -A INPUT -i lo -j ACCEPT
iptables -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
iptables -A INPUT -p tcp --dport 22 -j ACCEPT
iptables -A INPUT -s 10.0.0.10 -p tcp --dport 80 -j ACCEPT
iptables -A INPUT -s 10.0.0.22 -p tcp --dport 3306 -j ACCEPT
iptables -A INPUT -s 10.0.0.0/24 -p tcp -m multiport --dports 9100,9113 -j ACCEPT
iptables -P INPUT DROP
