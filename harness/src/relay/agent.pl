#!/usr/bin/perl
# stackproof's relay agent: runs inside the run's probe host and carries the
# harness's traffic, so every claim's packets leave from a container, never
# from the machine that runs stackproof (which may not even see the run's
# networks: a remote Docker engine).
#
# It talks to the harness over its standard input and output, one attached
# `docker exec` stream, in frames: id (u32), type (u8), length (u32), payload.
# Ids the harness opens are even, ids the agent opens (accepted connections)
# are odd. Only perl-base is needed, which every Debian image has.
use strict;
use warnings;
use Socket qw(:all);
use IO::Select;
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use Errno qw(EINPROGRESS EAGAIN EWOULDBLOCK EINTR);

# Frame types (keep in step with relay/mod.rs).
use constant {
    CONNECT => 1, OK => 2, FAIL => 3, DATA => 4, EOF_ => 5, CLOSE => 6,
    UDP => 7, LISTEN_TCP => 8, ACCEPT => 9, LISTEN_UDP => 10, DGRAM => 11,
};

binmode STDIN;
binmode STDOUT;

my %conn;      # id => { fh, kind, connecting, wbuf, shut_wr, read_eof, want_shut }
my %id_of;     # fileno => id
my $next_odd = 1;
my $inbuf = '';

sub out {
    my ($id, $type, $payload) = @_;
    $payload = '' unless defined $payload;
    my $buf = pack('NCN', $id, $type, length $payload) . $payload;
    while (length $buf) {
        my $n = syswrite(STDOUT, $buf);
        if (!defined $n) { next if $! == EINTR; exit 0; }
        substr($buf, 0, $n, '');
    }
}

sub nonblock { my $fh = shift; my $f = fcntl($fh, F_GETFL, 0); fcntl($fh, F_SETFL, $f | O_NONBLOCK); }

sub addr_of {
    my ($text) = @_;
    my ($ip, $port) = split / /, $text;
    my $n = inet_aton($ip // '');
    return undef unless $n && defined $port;
    return pack_sockaddr_in($port, $n);
}

sub show { my ($sa) = @_; return '' unless $sa; my ($p, $a) = unpack_sockaddr_in($sa); return inet_ntoa($a) . " $p"; }

sub add {
    my ($id, $fh, %rest) = @_;
    $conn{$id} = { fh => $fh, wbuf => '', %rest };
    $id_of{fileno $fh} = $id;
}

sub drop {
    my ($id) = @_;
    my $c = delete $conn{$id} or return;
    delete $id_of{fileno $c->{fh}};
    close $c->{fh};
}

sub finish_if_done {
    my ($id) = @_;
    my $c = $conn{$id} or return;
    drop($id) if $c->{read_eof} && $c->{shut_wr};
}

sub from_harness {
    my ($id, $type, $p) = @_;
    my $c = $conn{$id};
    if ($type == CONNECT || $type == UDP) {
        my $sa = addr_of($p) or return out($id, FAIL, "bad address `$p`");
        my $udp = $type == UDP;
        socket(my $fh, PF_INET, $udp ? SOCK_DGRAM : SOCK_STREAM, 0) or return out($id, FAIL, "socket: $!");
        nonblock($fh);
        setsockopt($fh, IPPROTO_TCP, TCP_NODELAY, 1) unless $udp;
        if (connect($fh, $sa)) {
            add($id, $fh, kind => $udp ? 'udp' : 'tcp');
            out($id, OK, show(getsockname($fh)) . ' ' . show(getpeername($fh)));
        } elsif ($! == EINPROGRESS) {
            add($id, $fh, kind => 'tcp', connecting => 1);
        } else {
            out($id, FAIL, "$!");
            close $fh;
        }
    } elsif ($type == LISTEN_TCP || $type == LISTEN_UDP) {
        my $sa = addr_of($p) or return out($id, FAIL, "bad address `$p`");
        my $udp = $type == LISTEN_UDP;
        socket(my $fh, PF_INET, $udp ? SOCK_DGRAM : SOCK_STREAM, 0) or return out($id, FAIL, "socket: $!");
        setsockopt($fh, SOL_SOCKET, SO_REUSEADDR, 1);
        bind($fh, $sa) or return out($id, FAIL, "bind $p: $!");
        if (!$udp) { listen($fh, 128) or return out($id, FAIL, "listen $p: $!"); }
        nonblock($fh);
        add($id, $fh, kind => $udp ? 'listen_udp' : 'listen_tcp');
        out($id, OK, show(getsockname($fh)));
    } elsif (!$c) {
        # A frame for a stream already closed here: nothing to do.
    } elsif ($type == DATA) {
        if ($c->{kind} eq 'udp') { send($c->{fh}, $p, 0); }
        else { $c->{wbuf} .= $p; }
    } elsif ($type == DGRAM) {
        my ($peer, $data) = split /\n/, $p, 2;
        my $sa = addr_of($peer);
        send($c->{fh}, $data // '', 0, $sa) if $sa;
    } elsif ($type == EOF_) {
        $c->{want_shut} = 1;
        flush_writes($id);
    } elsif ($type == CLOSE) {
        drop($id);
    }
}

sub flush_writes {
    my ($id) = @_;
    my $c = $conn{$id} or return;
    while (length $c->{wbuf}) {
        my $n = syswrite($c->{fh}, $c->{wbuf});
        if (!defined $n) {
            return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            out($id, CLOSE, "write: $!");
            return drop($id);
        }
        substr($c->{wbuf}, 0, $n, '');
    }
    if ($c->{want_shut} && !$c->{shut_wr}) {
        shutdown($c->{fh}, 1);
        $c->{shut_wr} = 1;
        finish_if_done($id);
    }
}

sub readable {
    my ($id) = @_;
    my $c = $conn{$id} or return;
    my $fh = $c->{fh};
    if ($c->{kind} eq 'listen_tcp') {
        my $peer = accept(my $new, $fh) or return;
        nonblock($new);
        setsockopt($new, IPPROTO_TCP, TCP_NODELAY, 1);
        my $nid = $next_odd;
        $next_odd += 2;
        add($nid, $new, kind => 'tcp');
        out($nid, ACCEPT, "$id " . show($peer));
    } elsif ($c->{kind} eq 'listen_udp') {
        my $peer = recv($fh, my $buf, 65535, 0);
        out($id, DGRAM, show($peer) . "\n" . $buf) if defined $peer;
    } elsif ($c->{kind} eq 'udp') {
        my $peer = recv($fh, my $buf, 65535, 0);
        out($id, DATA, $buf) if defined $peer;
    } else {
        my $n = sysread($fh, my $buf, 65536);
        if (!defined $n) {
            return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            out($id, CLOSE, "read: $!");
            drop($id);
        } elsif ($n == 0) {
            $c->{read_eof} = 1;
            out($id, EOF_);
            finish_if_done($id);
        } else {
            out($id, DATA, $buf);
        }
    }
}

sub writable {
    my ($id) = @_;
    my $c = $conn{$id} or return;
    if ($c->{connecting}) {
        my $err = unpack('i', getsockopt($c->{fh}, SOL_SOCKET, SO_ERROR));
        if ($err) {
            local $! = $err;
            out($id, FAIL, "$!");
            return drop($id);
        }
        delete $c->{connecting};
        out($id, OK, show(getsockname($c->{fh})) . ' ' . show(getpeername($c->{fh})));
    }
    flush_writes($id);
}

nonblock(\*STDIN);
while (1) {
    my $r = IO::Select->new(\*STDIN);
    my $w = IO::Select->new();
    for my $c (values %conn) {
        if ($c->{connecting}) { $w->add($c->{fh}); next; }
        $r->add($c->{fh}) unless $c->{read_eof};
        $w->add($c->{fh}) if length $c->{wbuf};
    }
    my ($rr, $ww) = IO::Select->select($r, $w, undef, 5);
    next unless $rr || $ww;
    for my $fh (@{ $ww || [] }) { my $id = $id_of{fileno $fh}; writable($id) if defined $id; }
    for my $fh (@{ $rr || [] }) {
        if (fileno($fh) == fileno(STDIN)) {
            my $n = sysread(STDIN, $inbuf, 262144, length $inbuf);
            next if !defined $n && ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR);
            exit 0 if !$n;    # the harness went away: so do we
            while (length($inbuf) >= 9) {
                my ($id, $type, $len) = unpack('NCN', $inbuf);
                last if length($inbuf) < 9 + $len;
                my $p = substr($inbuf, 9, $len);
                substr($inbuf, 0, 9 + $len, '');
                from_harness($id, $type, $p);
            }
        } else {
            my $id = $id_of{fileno $fh};
            readable($id) if defined $id;
        }
    }
}
