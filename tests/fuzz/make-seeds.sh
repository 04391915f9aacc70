#!/bin/bash
# make-seeds.sh: writes the generated seeds of tests/fuzz/corpus: the
# binary netlink messages (corpus/netlink) and the keyring inputs with
# lines too long to write by hand. The seeds themselves are committed;
# run this only to change them. The other seeds are plain files.
#
# Messages are spelled out byte by byte (little-endian, as on x86), with
# the family id 0x1c that fuzz-netlink.c and tests/test-request.c use.
set -euo pipefail

out=$(cd "$(dirname "$0")" && pwd)/corpus
family=28

# --- hex builders ---------------------------------------------------------
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) \
	$((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
strhex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
# pad4 HEX: zero bytes up to a multiple of four.
pad4() { local h=$1; while [ $(((${#h} / 2) % 4)) != 0 ]; do h+=00; done; echo "$h"; }

# attr TYPE PAYLOAD-HEX
attr() { local p=$2; echo "$(le16 $((4 + ${#p} / 2)))$(le16 "$1")$(pad4 "$p")"; }
u32() { attr "$1" "$(le32 "$2")"; }
str() { attr "$1" "$(strhex "$2")00"; }
# nest TYPE ATTRS-HEX: NLA_F_NESTED set, as the kernel's nla_nest_start does.
nest() { attr $((0x8000 | $1)) "$2"; }

# nlmsg TYPE FLAGS SEQ PAYLOAD-HEX
nlmsg() { echo "$(le32 $((16 + ${#4} / 2)))$(le16 "$1")$(le16 "$2")$(le32 "$3")$(le32 0)$4"; }
# genl CMD ATTRS-HEX: a message of the handshake family.
genl() { nlmsg "$family" 0 "${3:-1}" "$(printf '%02x01' "$1")0000$2"; }
# nlerr ERRNO: NLMSG_ERROR carrying the header of our ACCEPT request.
nlerr() { nlmsg 2 0 1 "$(le32 "$1")$(le32 24)$(le16 "$family")$(le16 5)$(le32 1)$(le32 0)"; }

write() { printf '%b' "$(sed 's/../\\x&/g' <<<"$2")" > "$out/$1"; }

# handshake ABI numbers (src/handshake-abi.h)
READY=1 ACCEPT=2
SOCKFD=1 HANDLER_CLASS=2 MESSAGE_TYPE=3 TIMEOUT=4 AUTH_MODE=5 PEER_IDENTITY=6
CERTIFICATE=7 PEERNAME=8 KEYRING=9 X509_CERT=1 X509_PRIVKEY=2
CLIENTHELLO=1 SERVERHELLO=2 UNAUTH=1 PSK=2 X509=3

# --- netlink ---------------------------------------------------------------
mkdir -p "$out/netlink"
n=netlink
write $n/accept-client-psk "$(genl $ACCEPT "$(u32 $SOCKFD 7)$(u32 $MESSAGE_TYPE $CLIENTHELLO)$(u32 $TIMEOUT 10000)$(u32 $AUTH_MODE $PSK)$(u32 $PEER_IDENTITY 0x1f2e3d4c)$(u32 $PEER_IDENTITY 0x1f2e3d4d)$(str $PEERNAME nvme-target.example.net)")"
write $n/accept-server-psk-keyring "$(genl $ACCEPT "$(u32 $SOCKFD 12)$(u32 $MESSAGE_TYPE $SERVERHELLO)$(u32 $AUTH_MODE $PSK)$(u32 $TIMEOUT 30000)$(u32 $KEYRING 0x2a01c0de)")"
write $n/accept-server-x509 "$(genl $ACCEPT "$(u32 $SOCKFD 9)$(u32 $MESSAGE_TYPE $SERVERHELLO)$(u32 $AUTH_MODE $X509)$(nest $CERTIFICATE "$(u32 $X509_CERT 0x111)$(u32 $X509_PRIVKEY 0x222)")")"
write $n/accept-client-x509-peername "$(genl $ACCEPT "$(str $PEERNAME nfs.example.net)$(u32 $AUTH_MODE $X509)$(nest $CERTIFICATE "$(u32 $X509_PRIVKEY 0x444)$(u32 $X509_CERT 0x333)")$(u32 $MESSAGE_TYPE $CLIENTHELLO)$(u32 $SOCKFD 3)$(u32 $KEYRING 0x2a)")"
write $n/accept-client-unauth "$(genl $ACCEPT "$(u32 $SOCKFD 5)$(u32 $MESSAGE_TYPE $CLIENTHELLO)$(u32 $AUTH_MODE $UNAUTH)")"
write $n/accept-five-peerids "$(genl $ACCEPT "$(u32 $SOCKFD 4)$(u32 $MESSAGE_TYPE $CLIENTHELLO)$(u32 $AUTH_MODE $PSK)$(u32 $PEER_IDENTITY 1)$(u32 $PEER_IDENTITY 2)$(u32 $PEER_IDENTITY 3)$(u32 $PEER_IDENTITY 4)$(u32 $PEER_IDENTITY 5)")"
write $n/accept-future-attrs "$(genl $ACCEPT "$(u32 $SOCKFD 6)$(u32 $HANDLER_CLASS 1)$(u32 $MESSAGE_TYPE $SERVERHELLO)$(u32 $AUTH_MODE $UNAUTH)$(attr 10 "$(strhex future)")$(nest 11 "$(u32 1 1)")")"
# Malformed: SOCKFD twice; a string without its NUL; the last attribute
# running past the message; an ACCEPT whose nlmsg_len exceeds the buffer.
write $n/accept-sockfd-twice "$(genl $ACCEPT "$(u32 $SOCKFD 7)$(u32 $SOCKFD 8)$(u32 $MESSAGE_TYPE $CLIENTHELLO)$(u32 $AUTH_MODE $PSK)")"
write $n/accept-peername-unterminated "$(genl $ACCEPT "$(u32 $SOCKFD 7)$(u32 $MESSAGE_TYPE $CLIENTHELLO)$(u32 $AUTH_MODE $X509)$(attr $PEERNAME "$(strhex host)")")"
accept=$(genl $ACCEPT "$(u32 $SOCKFD 7)$(u32 $MESSAGE_TYPE $CLIENTHELLO)$(u32 $AUTH_MODE $PSK)$(u32 $TIMEOUT 1)")
write $n/accept-attr-overrun "$(genl $ACCEPT "$(u32 $SOCKFD 7)$(u32 $MESSAGE_TYPE $CLIENTHELLO)$(u32 $AUTH_MODE $PSK)$(le16 64)$(le16 $TIMEOUT)$(le32 1)")"
write $n/accept-truncated "${accept:0:$((${#accept} - 6))}"
write $n/ready "$(genl $READY "$(u32 $HANDLER_CLASS 1)" 0)"
write $n/ready-other-class "$(genl $READY "$(u32 $HANDLER_CLASS 2)" 0)"
write $n/error-eagain "$(nlerr -11)"
write $n/error-ack "$(nlerr 0)"
write $n/nlmsg-done "$(nlmsg 3 2 1 "$(le32 0)")"
# What one recv() may return: a READY, then the answer to ACCEPT.
write $n/ready-then-accept "$(genl $READY "$(u32 $HANDLER_CLASS 1)" 0)$(genl $ACCEPT "$(u32 $SOCKFD 7)$(u32 $MESSAGE_TYPE $SERVERHELLO)$(u32 $AUTH_MODE $X509)$(nest $CERTIFICATE "$(u32 $X509_CERT 5)")")"

# --- keyring: identity line, then /proc/keys text -------------------------
mkdir -p "$out/keyring"
long=$(printf 'a%.0s' $(seq 1024))
line='2a01c0de I--Q---     1 perm 3f010000     0     0 keyring   %s: empty\n'
printf "%s\n$line" "$long" "$long" > "$out/keyring/identity-1024"
printf "%sb\n$line" "$long" "$long" > "$out/keyring/identity-1025"
printf ".nvme\n$line" "$long.nvme" > "$out/keyring/line-too-long"
